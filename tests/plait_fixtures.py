"""Importable pieces of the shared fixtures (conftest modules cannot be imported reliably).

Tests import types and helpers from here: ``from plait_fixtures import RunningServer``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
import httpx

from homeserver.config import Config, load_config
from homeserver.homeserver import HomeServer

POSTGRES_URL = "postgresql://root@127.0.0.1:5432/test"
# Cheap password hashing for tests (production uses the argon2-cffi defaults).
TEST_AUTH = {"argon2_time_cost": 1, "argon2_memory_cost_kib": 8, "argon2_parallelism": 1}


def make_config(tmp_path: Path, database_url: str, **overrides: Any) -> Config:
    """A validated test configuration; ``overrides`` as in the TOML file."""
    settings: dict[str, Any] = {
        "server_name": "test.example",
        "listen": "127.0.0.1:0",
        "data_dir": str(tmp_path / "data"),
        "database_url": database_url,
        "registration": "open",
        "auth": dict(TEST_AUTH),
        "rate_limits": {"enabled": False},
    }
    for key, value in overrides.items():
        if isinstance(value, dict):
            settings[key] = {**settings.get(key, {}), **value}
        else:
            settings[key] = value
    return load_config(env={}, overrides=settings)


@attrs.define
class RunningServer:
    base_url: str
    hs: HomeServer
    config: Config


RegisterUser = Callable[..., Awaitable[dict[str, Any]]]


async def register_user_via_dummy(
    client: httpx.AsyncClient, username: str, password: str = "correct horse", **body: Any
) -> dict[str, Any]:
    response = await client.post(
        "/_matrix/client/v3/register",
        json={
            "username": username,
            "password": password,
            "auth": {"type": "m.login.dummy"},
            **body,
        },
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result
