"""No password or token ever reaches a log record, at any level."""

from __future__ import annotations

import logging

import httpx
import pytest
from client_helpers import V3, bearer, login, password_auth


async def test_secrets_stay_out_of_logs(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    password = "pw-that-must-not-leak-1234"
    registered = await client.post(
        f"{V3}/register",
        json={
            "username": "alice",
            "password": password,
            "refresh_token": True,
            "auth": {"type": "m.login.dummy"},
        },
    )
    first = registered.json()
    second = (await login(client, "alice", password, refresh_token=True)).json()
    await login(client, "alice", "wrong-password-also-secret")
    refreshed = (
        await client.post(f"{V3}/refresh", json={"refresh_token": second["refresh_token"]})
    ).json()
    await client.get(f"{V3}/account/whoami", params={"access_token": refreshed["access_token"]})
    await client.post(
        f"{V3}/account/password",
        headers=bearer(first["access_token"]),
        json={
            "new_password": "new-secret-password-5678",
            "auth": password_auth("@alice:test.example", None, password),
        },
    )
    secrets = [
        password,
        "wrong-password-also-secret",
        "new-secret-password-5678",
        first["access_token"],
        first["refresh_token"],
        second["access_token"],
        second["refresh_token"],
        refreshed["access_token"],
        refreshed["refresh_token"],
    ]
    # The test's own HTTP client (httpx, httpcore) logs the URLs it requests; only
    # the server's records count.
    server_records = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    text = "\n".join(r.getMessage() for r in server_records)
    assert any(r.name.startswith("homeserver") for r in server_records)
    for secret in secrets:
        assert secret not in text
