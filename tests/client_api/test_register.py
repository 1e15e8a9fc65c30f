"""POST /register (UIA with m.login.dummy), /register/available, username rules."""

from __future__ import annotations

import httpx
import pytest
from client_helpers import V3, assert_error, bearer, login, whoami
from plait_fixtures import RegisterUser, RunningServer


async def test_uia_dance_with_dummy(client: httpx.AsyncClient) -> None:
    body = {"username": "alice", "password": "correct horse"}
    first = await client.post(f"{V3}/register", json=body)
    assert first.status_code == 401
    uia = first.json()
    assert uia["flows"] == [{"stages": ["m.login.dummy"]}]
    assert uia["params"] == {}
    assert isinstance(uia["session"], str) and uia["session"]
    assert "errcode" not in uia
    second = await client.post(
        f"{V3}/register",
        json={**body, "auth": {"type": "m.login.dummy", "session": uia["session"]}},
    )
    assert second.status_code == 200, second.text
    result = second.json()
    assert result["user_id"] == "@alice:test.example"
    assert result["device_id"]
    me = await whoami(client, result["access_token"])
    assert me.json() == {
        "user_id": "@alice:test.example",
        "device_id": result["device_id"],
        "is_guest": False,
    }
    # The session is spent.
    again = await client.post(
        f"{V3}/register",
        json={
            "username": "alice2",
            "password": "x",
            "auth": {"type": "m.login.dummy", "session": uia["session"]},
        },
    )
    assert_error(again, 400, "M_UNKNOWN")


async def test_dummy_without_session_succeeds_at_once(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"{V3}/register",
        json={"username": "bob", "password": "pw", "auth": {"type": "m.login.dummy"}},
    )
    assert response.status_code == 200, response.text
    assert response.json()["user_id"] == "@bob:test.example"


async def test_wrong_stage_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"{V3}/register",
        json={
            "username": "bob",
            "password": "pw",
            "auth": {"type": "m.login.registration_token", "token": "x"},
        },
    )
    body = assert_error(response, 401, "M_UNRECOGNIZED")
    assert body["flows"] == [{"stages": ["m.login.dummy"]}]


async def test_r0_prefix_and_device_fields(
    client: httpx.AsyncClient, server: RunningServer
) -> None:
    response = await client.post(
        "/_matrix/client/r0/register",
        json={
            "username": "Carol",
            "password": "pw",
            "device_id": "MYDEVICE",
            "initial_device_display_name": "Carol's phone",
            "auth": {"type": "m.login.dummy"},
        },
    )
    assert response.status_code == 200, response.text
    result = response.json()
    # Localparts are lower-cased.
    assert result["user_id"] == "@carol:test.example"
    assert result["device_id"] == "MYDEVICE"
    assert "refresh_token" not in result and "expires_in_ms" not in result
    device = await client.get(f"{V3}/devices/MYDEVICE", headers=bearer(result["access_token"]))
    assert device.json()["display_name"] == "Carol's phone"
    # Profile starts with the localpart as display name.
    profile = await client.get(f"{V3}/profile/@carol:test.example")
    assert profile.json() == {"displayname": "carol"}


async def test_inhibit_login_returns_only_user_id(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"{V3}/register",
        json={
            "username": "dave",
            "password": "pw",
            "inhibit_login": True,
            "auth": {"type": "m.login.dummy"},
        },
    )
    assert response.status_code == 200
    assert response.json() == {"user_id": "@dave:test.example"}
    assert (await login(client, "dave", "pw")).status_code == 200


async def test_no_username_generates_one(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"{V3}/register", json={"password": "pw", "auth": {"type": "m.login.dummy"}}
    )
    assert response.status_code == 200
    user_id = response.json()["user_id"]
    assert user_id.startswith("@") and user_id.endswith(":test.example")
    assert (await login(client, user_id, "pw")).status_code == 200


async def test_user_in_use(client: httpx.AsyncClient, register_user: RegisterUser) -> None:
    await register_user(client, "erin")
    response = await client.post(
        f"{V3}/register",
        json={"username": "ERIN", "password": "pw", "auth": {"type": "m.login.dummy"}},
    )
    assert_error(response, 400, "M_USER_IN_USE")
    # Checked before UIA, so even the first request learns it.
    assert_error(
        await client.post(f"{V3}/register", json={"username": "erin"}), 400, "M_USER_IN_USE"
    )


@pytest.mark.parametrize("username", ["a:b", "has space", "é", "x" * 250, "", 'quote"'])
async def test_invalid_usernames(client: httpx.AsyncClient, username: str) -> None:
    response = await client.post(
        f"{V3}/register",
        json={"username": username, "password": "pw", "auth": {"type": "m.login.dummy"}},
    )
    assert_error(response, 400, "M_INVALID_USERNAME")


async def test_username_length_limit_is_the_full_user_id(client: httpx.AsyncClient) -> None:
    # "@" + localpart + ":test.example" must be at most 255 bytes.
    longest = "a" * (255 - len("@:test.example"))
    ok = await client.get(f"{V3}/register/available", params={"username": longest})
    assert ok.json() == {"available": True}
    too_long = await client.get(f"{V3}/register/available", params={"username": longest + "a"})
    assert_error(too_long, 400, "M_INVALID_USERNAME")


async def test_available(client: httpx.AsyncClient, register_user: RegisterUser) -> None:
    await register_user(client, "frank")
    free = await client.get(f"{V3}/register/available", params={"username": "george"})
    assert free.status_code == 200 and free.json() == {"available": True}
    taken = await client.get("/_matrix/client/r0/register/available", params={"username": "frank"})
    assert_error(taken, 400, "M_USER_IN_USE")
    assert_error(
        await client.get(f"{V3}/register/available", params={"username": "A B"}),
        400,
        "M_INVALID_USERNAME",
    )
    assert_error(await client.get(f"{V3}/register/available"), 400, "M_MISSING_PARAM")


async def test_guest_registration_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(f"{V3}/register", params={"kind": "guest"}, json={})
    assert_error(response, 403, "M_GUEST_ACCESS_FORBIDDEN")
    assert_error(
        await client.post(f"{V3}/register", params={"kind": "robot"}, json={}),
        400,
        "M_INVALID_PARAM",
    )


@pytest.mark.server_config(registration="closed")
async def test_closed_registration(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"{V3}/register",
        json={"username": "x", "password": "pw", "auth": {"type": "m.login.dummy"}},
    )
    assert_error(response, 403, "M_FORBIDDEN")


@pytest.mark.parametrize(
    ("body", "status", "errcode"),
    [
        (b"{not json", 400, "M_NOT_JSON"),
        (b"[1, 2]", 400, "M_BAD_JSON"),
        (b'{"username": 5}', 400, "M_BAD_JSON"),
        (b'{"username": "ok", "password": ["x"]}', 400, "M_BAD_JSON"),
        (b'{"username": "ok", "inhibit_login": "yes"}', 400, "M_BAD_JSON"),
        (b'{"username": "ok", "auth": "dummy"}', 400, "M_BAD_JSON"),
        (b'{"username": "ok", "auth": {"type": 1}}', 400, "M_BAD_JSON"),
        (b'{"username": "ok", "auth": {"type": "m.login.dummy", "session": 7}}', 400, "M_BAD_JSON"),
        (
            b'{"username": "ok", "auth": {"type": "m.login.dummy", "session": "nope"}}',
            400,
            "M_UNKNOWN",
        ),
    ],
)
async def test_malformed_bodies(
    client: httpx.AsyncClient, body: bytes, status: int, errcode: str
) -> None:
    response = await client.post(
        f"{V3}/register", content=body, headers={"Content-Type": "application/json"}
    )
    assert_error(response, status, errcode)


async def test_bad_json_names_the_field(client: httpx.AsyncClient) -> None:
    response = await client.post(f"{V3}/register", json={"username": "ok", "device_id": 12})
    assert "device_id" in assert_error(response, 400, "M_BAD_JSON")["error"]


async def test_password_length_limit(client: httpx.AsyncClient) -> None:
    ok = await client.post(
        f"{V3}/register",
        json={"username": "long1", "password": "p" * 512, "auth": {"type": "m.login.dummy"}},
    )
    assert ok.status_code == 200
    # 256 two-byte characters = 512 bytes: allowed; one more byte: refused.
    too_long = await client.post(
        f"{V3}/register",
        json={"username": "long2", "password": "é" * 256 + "x", "auth": {"type": "m.login.dummy"}},
    )
    assert "password" in assert_error(too_long, 400, "M_INVALID_PARAM")["error"]


async def test_refresh_token_at_registration(
    client: httpx.AsyncClient, server: RunningServer
) -> None:
    response = await client.post(
        f"{V3}/register",
        json={
            "username": "rita",
            "password": "pw",
            "refresh_token": True,
            "auth": {"type": "m.login.dummy"},
        },
    )
    result = response.json()
    assert result["refresh_token"]
    assert result["expires_in_ms"] == server.config.auth.access_token_lifetime_s * 1000
    assert (await whoami(client, result["access_token"])).status_code == 200


async def test_password_is_required_and_the_session_survives(client: httpx.AsyncClient) -> None:
    # Element's first request is an empty body, to learn the flows.
    first = await client.post(f"{V3}/register", json={})
    assert first.status_code == 401
    session = first.json()["session"]
    no_password = await client.post(
        f"{V3}/register",
        json={"username": "nopw", "auth": {"type": "m.login.dummy", "session": session}},
    )
    assert "password" in assert_error(no_password, 400, "M_MISSING_PARAM")["error"]
    retry = await client.post(
        f"{V3}/register",
        json={
            "username": "nopw",
            "password": "pw",
            "auth": {"type": "m.login.dummy", "session": session},
        },
    )
    assert retry.status_code == 200, retry.text
