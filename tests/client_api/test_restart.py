"""Tokens survive a restart: the JWT secret and the sessions are persistent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import httpx
import trio
from client_helpers import V3, assert_error, bearer, whoami
from plait_fixtures import make_config

from client_api import build_router
from homeserver.config import Config
from homeserver.homeserver import HomeServer
from homeserver.http.server import serve_http


@asynccontextmanager
async def running(config: Config) -> AsyncIterator[httpx.AsyncClient]:
    hs = await HomeServer.open(config)
    try:
        async with trio.open_nursery() as nursery:
            port = await nursery.start(
                partial(serve_http, build_router(hs), host="127.0.0.1", port=0, config=config.http)
            )
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                yield client
            nursery.cancel_scope.cancel()
    finally:
        await hs.aclose()


async def test_tokens_survive_a_restart(tmp_path: Path, database_url: str) -> None:
    config = make_config(tmp_path, database_url)
    async with running(config) as client:
        registered = await client.post(
            f"{V3}/register",
            json={
                "username": "alice",
                "password": "pw",
                "refresh_token": True,
                "auth": {"type": "m.login.dummy"},
            },
        )
        tokens = registered.json()
        plain = (
            await client.post(
                f"{V3}/login", json={"type": "m.login.password", "user": "alice", "password": "pw"}
            )
        ).json()
        await client.post(f"{V3}/logout", headers=bearer(plain["access_token"]))
    async with running(config) as client:
        me = await whoami(client, tokens["access_token"])
        assert me.status_code == 200 and me.json()["user_id"] == "@alice:test.example"
        refreshed = await client.post(
            f"{V3}/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert refreshed.status_code == 200
        # A logout before the restart stays a logout.
        assert_error(await whoami(client, plain["access_token"]), 401, "M_UNKNOWN_TOKEN")
