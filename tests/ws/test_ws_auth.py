"""Authenticating a WebSocket: the first frame carries the token (spec/websocket.md)."""

from __future__ import annotations

import httpx
import pytest
import trio
import trio_websocket
from plait_fixtures import RegisterUser, RunningServer
from plait_ws_client import WAIT, WsClient, close_code, connect, ws_url


async def test_auth_ok_names_the_user_and_device(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    async with trio_websocket.open_websocket_url(ws_url(server)) as ws:
        ws_client = WsClient(ws)
        await ws_client.send({"type": "auth", "access_token": alice["access_token"], "id": 7})
        ok = await ws_client.expect(lambda f: True)
        assert ok == {
            "type": "auth_ok",
            "id": 7,
            "user_id": alice["user_id"],
            "device_id": alice["device_id"],
        }
        assert await ws_client.command("ping") == {"type": "pong", "id": "c1"}
    assert server.hs.websockets.statistics().closes == {}


async def test_bad_token_gets_the_http_error_and_4001(server: RunningServer) -> None:
    async with trio_websocket.open_websocket_url(ws_url(server)) as ws:
        ws_client = WsClient(ws)
        await ws_client.send({"type": "auth", "access_token": "not-a-token"})
        error = await ws_client.expect(lambda f: True)
        assert error["type"] == "error"
        assert error["errcode"] == "M_UNKNOWN_TOKEN"
        assert await close_code(ws) == 4001


@pytest.mark.parametrize(
    "first",
    ['{"type":"subscribe","since":null}', "not json", '{"type":"auth"}', "[1,2]"],
)
async def test_anything_but_auth_first_is_closed_with_4001(
    server: RunningServer, first: str
) -> None:
    async with trio_websocket.open_websocket_url(ws_url(server)) as ws:
        await ws.send_message(first)
        error = WsClient(ws)
        frame = await error.expect(lambda f: True)
        assert frame["type"] == "error"
        assert frame["errcode"] in ("M_MISSING_TOKEN", "M_NOT_JSON", "M_BAD_JSON")
        assert await close_code(ws) == 4001


@pytest.mark.server_config(websocket={"auth_timeout_s": 0.2})
async def test_no_auth_frame_in_time_is_closed_with_4001(server: RunningServer) -> None:
    async with trio_websocket.open_websocket_url(ws_url(server)) as ws:
        frame = await WsClient(ws).expect(lambda f: True)
        assert frame["errcode"] == "M_MISSING_TOKEN"
        assert await close_code(ws) == 4001
    assert server.hs.websockets.statistics().closes == {4001: 1}


async def test_server_keeps_serving_after_failed_auths(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    for _ in range(3):
        async with trio_websocket.open_websocket_url(ws_url(server)) as ws:
            await ws.send_message(b"\x00binary")
            assert await close_code(ws) == 4001
    bob = await register_user(client, "bob")
    async with connect(server, bob["access_token"]) as ws_client:
        assert (await ws_client.command("ping"))["type"] == "pong"
    with trio.fail_after(WAIT):
        while server.hs.websockets.statistics().open_connections:
            await server.hs.websockets.wait_changed()
    assert server.hs.websockets.statistics().closes == {4001: 3}
