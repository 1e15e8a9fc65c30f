"""Shared fixtures for the whole suite.

Databases
    ``database_url``  parametrized over ``sqlite`` (a file in ``tmp_path``) and
                      ``postgres`` (a fresh schema ``t_<random>`` in database
                      ``test`` at 127.0.0.1:5432, selected through the URL's
                      ``search_path`` and dropped with CASCADE afterwards). Tests
                      that use it run twice. PostgreSQL runs carry the
                      ``postgres`` marker (``-m "not postgres"`` skips them).
    ``database``      a migrated :class:`homeserver.storage.Database` on that URL.

A whole server
    ``server``        HomeServer.open + client_api.build_router + serve_http on
                      127.0.0.1, port 0, in the test's nursery, over both
                      databases. Yields a :class:`RunningServer` (``base_url``,
                      ``hs``, ``config``). Defaults suited to tests: open
                      registration, cheap argon2, rate limits *off*.
                      Ask for other settings with a marker::

                          @pytest.mark.server_config(registration="token",
                                                     rate_limits={"enabled": True, "login_burst": 2})

                      (top-level keys and ``[section]`` dicts, as in the TOML file).
    ``client``        an ``httpx.AsyncClient`` whose base URL is the server.
    ``register_user`` ``await register_user(client, "alice")`` registers (m.login.dummy)
                      and returns the /register JSON (user_id, access_token, device_id).

``hs.clock.advance(seconds)`` moves the server's clock (token expiry, rate limits)
without sleeping.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import AsyncIterator, Iterator
from functools import partial
from pathlib import Path
from typing import Any

# The repository root goes first on sys.path: pytest puts tests/ there, and
# tests/client_api/ (a directory without __init__.py) would otherwise shadow the
# installed client_api package as a namespace package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import psycopg
import pytest
import trio
from plait_fixtures import (
    POSTGRES_URL,
    RegisterUser,
    RunningServer,
    make_config,
    register_user_via_dummy,
)

from homeserver.homeserver import HomeServer
from homeserver.storage.database import Database, with_search_path
from homeserver.storage.migrate import upgrade_engine


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "server_config(**settings): configuration overrides for the server fixture"
    )


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'plait.db'}"
        return
    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield with_search_path(POSTGRES_URL, schema)
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    await db.run_sync(upgrade_engine)
    try:
        yield db
    finally:
        await db.aclose()


@pytest.fixture
async def server(
    request: pytest.FixtureRequest, tmp_path: Path, database_url: str
) -> AsyncIterator[RunningServer]:
    from client_api import build_router
    from homeserver.http.server import serve_http

    overrides: dict[str, Any] = {}
    for marker in reversed(list(request.node.iter_markers("server_config"))):
        overrides.update(marker.kwargs)
    config = make_config(tmp_path, database_url, **overrides)
    hs = await HomeServer.open(config)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(hs.run_services)
            port = await nursery.start(
                partial(serve_http, build_router(hs), host="127.0.0.1", port=0, config=config.http)
            )
            yield RunningServer(f"http://127.0.0.1:{port}", hs, config)
            nursery.cancel_scope.cancel()
    finally:
        await hs.aclose()


@pytest.fixture
async def client(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30.0) as c:
        yield c


@pytest.fixture
def register_user() -> RegisterUser:
    return register_user_via_dummy
