"""Token-authenticated registration (m.login.registration_token), end to end."""

from __future__ import annotations

import httpx
import pytest
from client_helpers import V3, assert_error
from plait_fixtures import RunningServer

VALIDITY = "/_matrix/client/v1/register/m.login.registration_token/validity"
pytestmark = pytest.mark.server_config(registration="token")


async def register_with_token(
    client: httpx.AsyncClient, username: str, token: str
) -> httpx.Response:
    first = await client.post(f"{V3}/register", json={"username": username, "password": "pw"})
    assert first.status_code == 401
    uia = first.json()
    assert uia["flows"] == [{"stages": ["m.login.registration_token", "m.login.dummy"]}]
    session = uia["session"]
    after_token = await client.post(
        f"{V3}/register",
        json={
            "username": username,
            "password": "pw",
            "auth": {"type": "m.login.registration_token", "token": token, "session": session},
        },
    )
    if after_token.status_code != 401 or "errcode" in after_token.json():
        return after_token
    assert after_token.json()["completed"] == ["m.login.registration_token"]
    return await client.post(
        f"{V3}/register",
        json={
            "username": username,
            "password": "pw",
            "auth": {"type": "m.login.dummy", "session": session},
        },
    )


async def validity(client: httpx.AsyncClient, token: str) -> bool:
    response = await client.get(VALIDITY, params={"token": token})
    assert response.status_code == 200, response.text
    valid: bool = response.json()["valid"]
    return valid


async def test_dummy_is_not_enough(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"{V3}/register",
        json={"username": "a", "password": "pw", "auth": {"type": "m.login.dummy"}},
    )
    assert_error(response, 401, "M_UNRECOGNIZED")


async def test_uses_are_counted_and_exhausted(
    client: httpx.AsyncClient, server: RunningServer
) -> None:
    row = await server.hs.registration.create_token("twice", uses_allowed=2)
    assert (row.token, row.pending, row.completed) == ("twice", 0, 0)
    assert await validity(client, "twice")
    for name in ("u1", "u2"):
        response = await register_with_token(client, name, "twice")
        assert response.status_code == 200, response.text
        assert response.json()["user_id"] == f"@{name}:test.example"
    stored = await server.hs.registration.get_token("twice")
    assert stored is not None and (stored.pending, stored.completed) == (0, 2)
    assert not await validity(client, "twice")
    third = await register_with_token(client, "u3", "twice")
    body = assert_error(third, 401, "M_UNAUTHORIZED")
    assert body["flows"] == [{"stages": ["m.login.registration_token", "m.login.dummy"]}]


async def test_abandoned_session_gives_the_use_back(
    client: httpx.AsyncClient, server: RunningServer
) -> None:
    await server.hs.registration.create_token("solo", uses_allowed=1)
    # A client passes the token stage (which reserves the use) and then walks away.
    first = await client.post(f"{V3}/register", json={"username": "quitter", "password": "pw"})
    session = first.json()["session"]
    after_token = await client.post(
        f"{V3}/register",
        json={
            "username": "quitter",
            "password": "pw",
            "auth": {"type": "m.login.registration_token", "token": "solo", "session": session},
        },
    )
    assert after_token.status_code == 401
    assert after_token.json()["completed"] == ["m.login.registration_token"]
    stored = await server.hs.registration.get_token("solo")
    assert stored is not None and (stored.pending, stored.completed) == (1, 0)
    assert not await validity(client, "solo")
    assert_error(await register_with_token(client, "other", "solo"), 401, "M_UNAUTHORIZED")
    # Once its UIA session expires, the reservation is released.
    server.hs.clock.advance(3600)
    assert await validity(client, "solo")
    assert (await register_with_token(client, "later", "solo")).status_code == 200
    stored = await server.hs.registration.get_token("solo")
    assert stored is not None and (stored.pending, stored.completed) == (0, 1)


async def test_expired_token(client: httpx.AsyncClient, server: RunningServer) -> None:
    expiry_ms = int((server.hs.clock.time() + 60) * 1000)
    await server.hs.registration.create_token("soon", expiry_time=expiry_ms)
    assert await validity(client, "soon")
    server.hs.clock.advance(61)
    assert not await validity(client, "soon")
    assert_error(await register_with_token(client, "late", "soon"), 401, "M_UNAUTHORIZED")


async def test_unlimited_token_and_admin_functions(
    client: httpx.AsyncClient, server: RunningServer
) -> None:
    generated = await server.hs.registration.create_token(length=20)
    assert len(generated.token) == 20 and generated.uses_allowed is None
    for i in range(3):
        assert (await register_with_token(client, f"n{i}", generated.token)).status_code == 200
    await server.hs.registration.create_token("spent", uses_allowed=0)
    listed = await server.hs.registration.list_tokens()
    assert sorted(t.token for t in listed) == sorted([generated.token, "spent"])
    assert [t.token for t in await server.hs.registration.list_tokens(valid=False)] == ["spent"]
    updated = await server.hs.registration.update_token("spent", uses_allowed=1)
    assert updated is not None and (updated.uses_allowed, updated.expiry_time) == (1, None)
    assert await validity(client, "spent")
    expired = await server.hs.registration.update_token("spent", expiry_time=1)
    assert expired is not None and expired.uses_allowed == 1
    assert not await validity(client, "spent")
    assert await server.hs.registration.update_token("missing", uses_allowed=2) is None
    assert await server.hs.registration.delete_token(generated.token)
    assert not await server.hs.registration.delete_token(generated.token)
    assert not await validity(client, generated.token)


async def test_unknown_token_and_bad_input(client: httpx.AsyncClient) -> None:
    assert not await validity(client, "nosuchtoken")
    assert_error(await register_with_token(client, "x", "nosuchtoken"), 401, "M_UNAUTHORIZED")
    assert_error(await client.get(VALIDITY), 400, "M_MISSING_PARAM")
    assert_error(await client.get(VALIDITY, params={"token": "bad token!"}), 400, "M_INVALID_PARAM")
    assert_error(await client.get(VALIDITY, params={"token": "x" * 65}), 400, "M_INVALID_PARAM")


@pytest.mark.server_config(registration="open")
async def test_validity_is_forbidden_without_token_registration(client: httpx.AsyncClient) -> None:
    assert_error(await client.get(VALIDITY, params={"token": "abc"}), 403, "M_FORBIDDEN")
