"""/login, /refresh, /logout, /logout/all, /account/whoami, and token checking."""

from __future__ import annotations

import httpx
import pytest
from client_helpers import V3, assert_error, bearer, login, whoami
from plait_fixtures import RegisterUser, RunningServer


async def test_login_flows(client: httpx.AsyncClient) -> None:
    for prefix in ("v3", "r0"):
        response = await client.get(f"/_matrix/client/{prefix}/login")
        assert response.status_code == 200
        assert response.json() == {"flows": [{"type": "m.login.password"}]}


@pytest.mark.parametrize("user", ["alice", "@alice:test.example", "ALICE"])
async def test_password_login_by_identifier(
    client: httpx.AsyncClient, register_user: RegisterUser, user: str
) -> None:
    await register_user(client, "alice")
    response = await login(client, user, initial_device_display_name="laptop")
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["user_id"] == "@alice:test.example"
    assert result["device_id"] and result["access_token"]
    assert "refresh_token" not in result and "expires_in_ms" not in result
    me = (await whoami(client, result["access_token"])).json()
    assert me == {
        "user_id": "@alice:test.example",
        "device_id": result["device_id"],
        "is_guest": False,
    }
    device = await client.get(
        f"{V3}/devices/{result['device_id']}", headers=bearer(result["access_token"])
    )
    assert device.json()["display_name"] == "laptop"


async def test_legacy_user_field_and_r0(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    await register_user(client, "bob")
    response = await client.post(
        "/_matrix/client/r0/login",
        json={"type": "m.login.password", "user": "bob", "password": "correct horse"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["user_id"] == "@bob:test.example"


async def test_failed_logins_look_the_same(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    await register_user(client, "carol")
    wrong_password = await login(client, "carol", "wrong")
    no_such_user = await login(client, "nobody", "wrong")
    other_server = await login(client, "@carol:elsewhere.example", "correct horse")
    bodies = [
        assert_error(r, 403, "M_FORBIDDEN") for r in (wrong_password, no_such_user, other_server)
    ]
    assert bodies[0] == bodies[1] == bodies[2]


@pytest.mark.parametrize(
    ("body", "errcode"),
    [
        ({"type": "m.login.token", "token": "x"}, "M_UNKNOWN"),
        ({"password": "x", "user": "a"}, "M_MISSING_PARAM"),
        ({"type": "m.login.password", "user": "a"}, "M_MISSING_PARAM"),
        ({"type": "m.login.password", "password": 5, "user": "a"}, "M_BAD_JSON"),
        ({"type": "m.login.password", "password": "x"}, "M_BAD_JSON"),
        ({"type": "m.login.password", "password": "x", "identifier": "a"}, "M_BAD_JSON"),
        (
            {
                "type": "m.login.password",
                "password": "x",
                "identifier": {"type": "m.id.user", "user": 1},
            },
            "M_BAD_JSON",
        ),
        (
            {"type": "m.login.password", "password": "x", "identifier": {"type": "m.id.phone"}},
            "M_UNKNOWN",
        ),
        (
            {"type": "m.login.password", "password": "x", "user": "a", "refresh_token": "yes"},
            "M_BAD_JSON",
        ),
        ({"type": "m.login.password", "password": "x" * 513, "user": "a"}, "M_INVALID_PARAM"),
    ],
)
async def test_bad_login_requests(
    client: httpx.AsyncClient, body: dict[str, object], errcode: str
) -> None:
    assert_error(await client.post(f"{V3}/login", json=body), 400, errcode)


async def test_missing_and_bad_tokens(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    assert_error(await client.get(f"{V3}/account/whoami"), 401, "M_MISSING_TOKEN")
    assert_error(await whoami(client, "garbage"), 401, "M_UNKNOWN_TOKEN")
    alice = await register_user(client, "alice")
    token = alice["access_token"]
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    body = assert_error(await whoami(client, tampered), 401, "M_UNKNOWN_TOKEN")
    assert "soft_logout" not in body
    # The deprecated query parameter still works (matrix-nio's Api builder uses it).
    response = await client.get(f"{V3}/account/whoami", params={"access_token": token})
    assert response.json()["user_id"] == "@alice:test.example"


async def test_login_with_existing_device_id_replaces_its_token(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    first = await register_user(client, "dan", device_id="PHONE")
    second = (await login(client, "dan", device_id="PHONE")).json()
    assert second["device_id"] == "PHONE"
    assert_error(await whoami(client, first["access_token"]), 401, "M_UNKNOWN_TOKEN")
    assert (await whoami(client, second["access_token"])).status_code == 200


async def test_logout_revokes_at_once_and_deletes_device(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    other = (await login(client, "alice")).json()
    response = await client.post(f"{V3}/logout", headers=bearer(alice["access_token"]), json={})
    assert response.status_code == 200 and response.json() == {}
    assert_error(await whoami(client, alice["access_token"]), 401, "M_UNKNOWN_TOKEN")
    devices = await client.get(f"{V3}/devices", headers=bearer(other["access_token"]))
    assert [d["device_id"] for d in devices.json()["devices"]] == [other["device_id"]]


@pytest.mark.server_config(auth={"session_cache_s": 60.0})
async def test_logout_all_revokes_every_session_even_with_cache(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    tokens = [(await register_user(client, "erin"))["access_token"]]
    for _ in range(2):
        tokens.append((await login(client, "erin")).json()["access_token"])
    for token in tokens:  # warm the session cache
        assert (await whoami(client, token)).status_code == 200
    response = await client.post(f"{V3}/logout/all", headers=bearer(tokens[1]))
    assert response.status_code == 200
    for token in tokens:
        assert_error(await whoami(client, token), 401, "M_UNKNOWN_TOKEN")
    # The account itself still works.
    assert (await login(client, "erin")).status_code == 200


async def refreshable_login(
    client: httpx.AsyncClient, register_user: RegisterUser, name: str
) -> dict[str, str]:
    await register_user(client, name)
    response = await login(client, name, refresh_token=True)
    assert response.status_code == 200
    result: dict[str, str] = response.json()
    return result


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post(f"{V3}/refresh", json={"refresh_token": token})


async def test_refresh_rotates_tokens(
    client: httpx.AsyncClient, register_user: RegisterUser, server: RunningServer
) -> None:
    first = await refreshable_login(client, register_user, "fay")
    lifetime_ms = server.config.auth.access_token_lifetime_s * 1000
    assert first["expires_in_ms"] == lifetime_ms
    response = await refresh(client, first["refresh_token"])
    assert response.status_code == 200, response.text
    second = response.json()
    assert set(second) == {"access_token", "refresh_token", "expires_in_ms"}
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    me = (await whoami(client, second["access_token"])).json()
    assert (me["user_id"], me["device_id"]) == ("@fay:test.example", first["device_id"])
    # Using the new tokens ends the grace period: the first refresh token is now spent,
    # and presenting it again is treated as theft.
    assert_error(await refresh(client, first["refresh_token"]), 401, "M_UNKNOWN_TOKEN")
    assert_error(await whoami(client, second["access_token"]), 401, "M_UNKNOWN_TOKEN")
    assert_error(await refresh(client, second["refresh_token"]), 401, "M_UNKNOWN_TOKEN")


async def test_refresh_can_be_repeated_until_new_tokens_are_used(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    first = await refreshable_login(client, register_user, "gil")
    lost = (await refresh(client, first["refresh_token"])).json()
    # The client never saw ``lost`` and retries with the old token: allowed (spec).
    retry = await refresh(client, first["refresh_token"])
    assert retry.status_code == 200
    second = retry.json()
    assert (await whoami(client, second["access_token"])).status_code == 200
    # The lost refresh token was superseded; using it now revokes the session.
    assert_error(await refresh(client, lost["refresh_token"]), 401, "M_UNKNOWN_TOKEN")
    assert_error(await whoami(client, second["access_token"]), 401, "M_UNKNOWN_TOKEN")


async def test_refresh_chain_then_reuse_of_an_old_token_revokes(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    tokens = await refreshable_login(client, register_user, "hal")
    used = [tokens["refresh_token"]]
    for _ in range(3):
        tokens = (await refresh(client, tokens["refresh_token"])).json()
        used.append(tokens["refresh_token"])
    assert len(set(used)) == 4
    # The newest refresh token is fine; the oldest was spent two rotations ago.
    assert_error(await refresh(client, used[0]), 401, "M_UNKNOWN_TOKEN")
    assert_error(await refresh(client, used[-1]), 401, "M_UNKNOWN_TOKEN")
    assert_error(await whoami(client, tokens["access_token"]), 401, "M_UNKNOWN_TOKEN")


async def test_expired_access_token_is_a_soft_logout(
    client: httpx.AsyncClient, register_user: RegisterUser, server: RunningServer
) -> None:
    tokens = await refreshable_login(client, register_user, "ida")
    plain = (await login(client, "ida")).json()
    server.hs.clock.advance(server.config.auth.access_token_lifetime_s + 1)
    body = assert_error(await whoami(client, tokens["access_token"]), 401, "M_UNKNOWN_TOKEN")
    assert body["soft_logout"] is True
    # Tokens of clients that did not ask to refresh never expire.
    assert (await whoami(client, plain["access_token"])).status_code == 200
    renewed = (await refresh(client, tokens["refresh_token"])).json()
    assert (await whoami(client, renewed["access_token"])).status_code == 200


@pytest.mark.server_config(auth={"refresh_token_lifetime_s": 60})
async def test_expired_refresh_token(
    client: httpx.AsyncClient, register_user: RegisterUser, server: RunningServer
) -> None:
    tokens = await refreshable_login(client, register_user, "jo")
    server.hs.clock.advance(61)
    assert_error(await refresh(client, tokens["refresh_token"]), 401, "M_UNKNOWN_TOKEN")


async def test_bad_refresh_requests(client: httpx.AsyncClient) -> None:
    assert_error(await refresh(client, "plr_unknown"), 401, "M_UNKNOWN_TOKEN")
    assert_error(await client.post(f"{V3}/refresh", json={}), 400, "M_MISSING_PARAM")
    assert_error(await client.post(f"{V3}/refresh", json={"refresh_token": 3}), 400, "M_BAD_JSON")
    assert_error(
        await client.post(f"{V3}/refresh", json={"refresh_token": "x" * 600}),
        400,
        "M_INVALID_PARAM",
    )


async def test_logout_of_refreshable_session(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    tokens = await refreshable_login(client, register_user, "kim")
    assert (
        await client.post(f"{V3}/logout", headers=bearer(tokens["access_token"]))
    ).status_code == 200
    assert_error(await refresh(client, tokens["refresh_token"]), 401, "M_UNKNOWN_TOKEN")
