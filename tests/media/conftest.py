"""Fixtures for the media tests: clients logged in as alice and bob."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest


@pytest.fixture
async def alice(
    server: Any, client: httpx.AsyncClient, register_user: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """A client authenticated as @alice (same server as ``client``)."""
    async with await _authed(server, client, register_user, "alice") as c:
        yield c


@pytest.fixture
async def bob(
    server: Any, client: httpx.AsyncClient, register_user: Any
) -> AsyncIterator[httpx.AsyncClient]:
    async with await _authed(server, client, register_user, "bob") as c:
        yield c


async def _authed(
    server: Any, client: httpx.AsyncClient, register_user: Any, name: str
) -> httpx.AsyncClient:
    body = await register_user(client, name)
    return httpx.AsyncClient(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {body['access_token']}"},
        timeout=60.0,
    )
