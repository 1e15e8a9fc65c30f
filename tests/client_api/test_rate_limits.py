"""Rate limits over HTTP: per IP on login/register, per user on writes."""

from __future__ import annotations

import httpx
import pytest
from client_helpers import V3, assert_error, bearer, login
from plait_fixtures import RegisterUser, RunningServer

TIGHT = {
    "enabled": True,
    "login_burst": 3,
    "login_per_second": 0.01,
    "register_burst": 3,
    "register_per_second": 0.01,
    "writes_burst": 2,
    "writes_per_second": 0.01,
}


def assert_limited(response: httpx.Response) -> int:
    body = assert_error(response, 429, "M_LIMIT_EXCEEDED")
    retry_after_ms: int = body["retry_after_ms"]
    assert retry_after_ms > 0
    assert int(response.headers["retry-after"]) >= retry_after_ms // 1000
    return retry_after_ms


@pytest.mark.server_config(rate_limits=TIGHT)
async def test_login_is_limited_per_ip(
    client: httpx.AsyncClient, server: RunningServer, register_user: RegisterUser
) -> None:
    await register_user(client, "alice")
    assert (await login(client, "alice")).status_code == 200
    assert (await login(client, "alice", "wrong")).status_code == 403
    assert (await login(client, "alice")).status_code == 200
    retry_after_ms = assert_limited(await login(client, "alice"))
    # Failed attempts count too: guessing passwords is what the limit is for.
    assert_limited(await login(client, "nobody", "guess"))
    server.hs.clock.advance(retry_after_ms / 1000)
    assert (await login(client, "alice")).status_code == 200


@pytest.mark.server_config(rate_limits=TIGHT)
async def test_register_is_limited_per_ip(client: httpx.AsyncClient) -> None:
    for name in ("a1", "a2", "a3"):
        response = await client.post(
            f"{V3}/register",
            json={"username": name, "password": "pw", "auth": {"type": "m.login.dummy"}},
        )
        assert response.status_code == 200
    assert_limited(await client.get(f"{V3}/register/available", params={"username": "a4"}))


@pytest.mark.server_config(rate_limits=TIGHT)
async def test_writes_are_limited_per_user(
    client: httpx.AsyncClient, register_user: RegisterUser, server: RunningServer
) -> None:
    alice = await register_user(client, "alice")
    bob = (
        await client.post(
            f"{V3}/register",
            json={"username": "bob", "password": "pw", "auth": {"type": "m.login.dummy"}},
        )
    ).json()
    url = f"{V3}/profile/@alice:test.example/displayname"
    for _ in range(2):
        ok = await client.put(url, headers=bearer(alice["access_token"]), json={"displayname": "A"})
        assert ok.status_code == 200
    assert_limited(
        await client.put(url, headers=bearer(alice["access_token"]), json={"displayname": "A"})
    )
    # Reads are not limited, and another user has a bucket of their own.
    for _ in range(5):
        assert (
            await client.get(f"{V3}/account/whoami", headers=bearer(alice["access_token"]))
        ).status_code == 200
    bob_url = f"{V3}/profile/@bob:test.example/displayname"
    assert (
        await client.put(bob_url, headers=bearer(bob["access_token"]), json={"displayname": "B"})
    ).status_code == 200


@pytest.mark.server_config(rate_limits={**TIGHT, "enabled": False})
async def test_disabled_limits_never_answer_429(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    await register_user(client, "alice")
    for _ in range(10):
        assert (await login(client, "alice")).status_code == 200
