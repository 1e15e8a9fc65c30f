"""matrix-nio, a real third-party client, registers and logs in against our server.

nio runs on asyncio (aiohttp), so each scenario runs in its own thread with
``asyncio.run`` while the server keeps serving on the trio thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import nio
import pytest
import trio
from plait_fixtures import RunningServer

T = TypeVar("T")


async def in_asyncio(fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return await trio.to_thread.run_sync(lambda: asyncio.run(fn()))


async def test_nio_register_login_whoami(server: RunningServer) -> None:
    async def scenario() -> dict[str, Any]:
        out: dict[str, Any] = {}
        client = nio.AsyncClient(server.base_url, "alice")
        try:
            registered = await client.register("alice", "s3cret pw", device_name="nio test")
            assert isinstance(registered, nio.RegisterResponse), registered
            out["registered"] = (registered.user_id, registered.device_id)
            whoami = await client.whoami()
            assert isinstance(whoami, nio.WhoamiResponse), whoami
            out["whoami_after_register"] = (whoami.user_id, whoami.device_id)
        finally:
            await client.close()

        client = nio.AsyncClient(server.base_url, "@alice:test.example")
        try:
            login = await client.login("s3cret pw", device_name="second device")
            assert isinstance(login, nio.LoginResponse), login
            out["login"] = (login.user_id, login.device_id)
            whoami = await client.whoami()
            assert isinstance(whoami, nio.WhoamiResponse), whoami
            out["whoami_after_login"] = (whoami.user_id, whoami.device_id)
            devices = await client.devices()
            assert isinstance(devices, nio.DevicesResponse), devices
            out["devices"] = sorted(d.id for d in devices.devices)
            wrong = nio.AsyncClient(server.base_url, "@alice:test.example")
            try:
                failed = await wrong.login("wrong password")
                out["wrong_login"] = type(failed).__name__
            finally:
                await wrong.close()
        finally:
            await client.close()
        return out

    out = await in_asyncio(scenario)
    user_id = "@alice:test.example"
    registered_device = out["registered"][1]
    assert out["registered"][0] == user_id and registered_device
    assert out["whoami_after_register"] == (user_id, registered_device)
    login_device = out["login"][1]
    assert out["login"][0] == user_id and login_device != registered_device
    assert out["whoami_after_login"] == (user_id, login_device)
    assert out["devices"] == sorted([registered_device, login_device])
    assert out["wrong_login"] == "LoginError"


@pytest.mark.server_config(registration="token")
async def test_nio_register_with_token(server: RunningServer) -> None:
    await server.hs.registration.create_token("niotoken", uses_allowed=1)

    async def scenario() -> tuple[str, str, str]:
        client = nio.AsyncClient(server.base_url, "bob")
        try:
            response = await client.register_with_token("bob", "pw", "niotoken")
            assert isinstance(response, nio.RegisterResponse), response
            again = nio.AsyncClient(server.base_url, "carol")
            try:
                refused = await again.register_with_token("carol", "pw", "niotoken")
            finally:
                await again.close()
            return response.user_id, response.device_id, type(refused).__name__
        finally:
            await client.close()

    user_id, device_id, refused = await in_asyncio(scenario)
    assert user_id == "@bob:test.example" and device_id
    assert refused == "RegisterErrorResponse"
