"""Password change, deactivation, devices and profiles, end to end."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from client_helpers import V3, assert_error, bearer, login, password_auth, whoami
from plait_fixtures import RegisterUser

ALICE = "@alice:test.example"


async def uia_session(response: httpx.Response) -> str:
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["flows"] == [{"stages": ["m.login.password"]}]
    session: str = body["session"]
    return session


async def test_change_password_behind_uia(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    other = (await login(client, "alice")).json()
    token = alice["access_token"]
    url = f"{V3}/account/password"
    session = await uia_session(
        await client.post(url, headers=bearer(token), json={"new_password": "new pw"})
    )
    wrong = await client.post(
        url,
        headers=bearer(token),
        json={"new_password": "new pw", "auth": password_auth(ALICE, session, "wrong")},
    )
    body = assert_error(wrong, 401, "M_FORBIDDEN")
    assert body["session"] == session and body["flows"] == [{"stages": ["m.login.password"]}]
    ok = await client.post(
        url,
        headers=bearer(token),
        json={"new_password": "new pw", "auth": password_auth(ALICE, session)},
    )
    assert ok.status_code == 200 and ok.json() == {}
    assert_error(await login(client, "alice"), 403, "M_FORBIDDEN")
    assert (await login(client, "alice", "new pw")).status_code == 200
    # logout_devices defaults to true: the other device is gone, this one stays.
    assert (await whoami(client, token)).status_code == 200
    assert_error(await whoami(client, other["access_token"]), 401, "M_UNKNOWN_TOKEN")


async def test_change_password_keeping_devices(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    other = (await login(client, "alice")).json()
    ok = await client.post(
        f"{V3}/account/password",
        headers=bearer(alice["access_token"]),
        json={"new_password": "n", "logout_devices": False, "auth": password_auth(ALICE)},
    )
    assert ok.status_code == 200
    assert (await whoami(client, other["access_token"])).status_code == 200


async def test_uia_password_must_name_the_same_user(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    await register_user(client, "mallory", password="mallory pw")
    response = await client.post(
        f"{V3}/account/password",
        headers=bearer(alice["access_token"]),
        json={
            "new_password": "n",
            "auth": password_auth("@mallory:test.example", password="mallory pw"),
        },
    )
    assert_error(response, 401, "M_FORBIDDEN")


async def test_uia_session_is_bound_to_its_operation(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    token = alice["access_token"]
    session = await uia_session(
        await client.post(f"{V3}/delete_devices", headers=bearer(token), json={"devices": []})
    )
    response = await client.post(
        f"{V3}/account/deactivate",
        headers=bearer(token),
        json={"auth": password_auth(ALICE, session)},
    )
    assert_error(response, 400, "M_UNKNOWN")
    assert (await whoami(client, token)).status_code == 200


async def test_deactivate(client: httpx.AsyncClient, register_user: RegisterUser) -> None:
    alice = await register_user(client, "alice")
    other = (await login(client, "alice")).json()
    token = alice["access_token"]
    url = f"{V3}/account/deactivate"
    session = await uia_session(await client.post(url, headers=bearer(token), json={}))
    response = await client.post(
        url, headers=bearer(token), json={"auth": password_auth(ALICE, session)}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"id_server_unbind_result": "no-support"}
    for t in (token, other["access_token"]):
        assert_error(await whoami(client, t), 401, "M_UNKNOWN_TOKEN")
    # Cannot log in, and the name stays taken.
    assert_error(await login(client, "alice"), 403, "M_FORBIDDEN")
    taken = await client.get(f"{V3}/register/available", params={"username": "alice"})
    assert_error(taken, 400, "M_USER_IN_USE")
    assert (await client.get(f"{V3}/profile/{ALICE}")).json() == {}


async def test_device_list_get_rename(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice", device_id="AAA", initial_device_display_name="one")
    second = (await login(client, "alice", device_id="BBB")).json()
    token = alice["access_token"]
    listed = (await client.get(f"{V3}/devices", headers=bearer(token))).json()["devices"]
    assert [d["device_id"] for d in listed] == ["AAA", "BBB"]
    first = listed[0]
    assert first["display_name"] == "one"
    assert first["last_seen_ip"] == "127.0.0.1"
    assert isinstance(first["last_seen_ts"], int)
    renamed = await client.put(
        f"{V3}/devices/BBB", headers=bearer(token), json={"display_name": "two"}
    )
    assert renamed.status_code == 200 and renamed.json() == {}
    got = (await client.get(f"{V3}/devices/BBB", headers=bearer(second["access_token"]))).json()
    assert got["display_name"] == "two" and got["device_id"] == "BBB"
    assert_error(await client.get(f"{V3}/devices/NOPE", headers=bearer(token)), 404, "M_NOT_FOUND")
    assert_error(
        await client.put(f"{V3}/devices/NOPE", headers=bearer(token), json={"display_name": "x"}),
        404,
        "M_NOT_FOUND",
    )
    assert_error(
        await client.put(f"{V3}/devices/AAA", headers=bearer(token), json={"display_name": 5}),
        400,
        "M_BAD_JSON",
    )


async def test_devices_of_others_are_invisible(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    await register_user(client, "alice", device_id="ALICEDEV")
    bob = await register_user(client, "bob")
    assert_error(
        await client.get(f"{V3}/devices/ALICEDEV", headers=bearer(bob["access_token"])),
        404,
        "M_NOT_FOUND",
    )


async def test_delete_device_behind_uia(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice", device_id="AAA")
    victim = (await login(client, "alice", device_id="BBB")).json()
    token = alice["access_token"]
    url = f"{V3}/devices/BBB"
    session = await uia_session(await client.request("DELETE", url, headers=bearer(token)))
    # Nothing happens before UIA is done.
    assert (await whoami(client, victim["access_token"])).status_code == 200
    response = await client.request(
        "DELETE", url, headers=bearer(token), json={"auth": password_auth(ALICE, session)}
    )
    assert response.status_code == 200, response.text
    assert_error(await whoami(client, victim["access_token"]), 401, "M_UNKNOWN_TOKEN")
    assert_error(await client.get(url, headers=bearer(token)), 404, "M_NOT_FOUND")
    assert_error(await client.request("DELETE", url, headers=bearer(token)), 404, "M_NOT_FOUND")


async def test_delete_devices(client: httpx.AsyncClient, register_user: RegisterUser) -> None:
    alice = await register_user(client, "alice", device_id="KEEP")
    others = [(await login(client, "alice", device_id=d)).json() for d in ("D1", "D2")]
    token = alice["access_token"]
    body: dict[str, Any] = {"devices": ["D1", "D2", "UNKNOWN"], "auth": password_auth(ALICE)}
    response = await client.post(f"{V3}/delete_devices", headers=bearer(token), json=body)
    assert response.status_code == 200, response.text
    for other in others:
        assert_error(await whoami(client, other["access_token"]), 401, "M_UNKNOWN_TOKEN")
    listed = (await client.get(f"{V3}/devices", headers=bearer(token))).json()["devices"]
    assert [d["device_id"] for d in listed] == ["KEEP"]
    bad = await client.post(f"{V3}/delete_devices", headers=bearer(token), json={"devices": "D1"})
    assert_error(bad, 400, "M_BAD_JSON")


async def test_profile(client: httpx.AsyncClient, register_user: RegisterUser) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    token = alice["access_token"]
    base = f"{V3}/profile/{ALICE}"
    put = await client.put(
        f"{base}/displayname", headers=bearer(token), json={"displayname": "Alice A."}
    )
    assert put.status_code == 200 and put.json() == {}
    put = await client.put(
        f"{base}/avatar_url", headers=bearer(token), json={"avatar_url": "mxc://test.example/abc"}
    )
    assert put.status_code == 200
    assert (await client.get(base)).json() == {
        "displayname": "Alice A.",
        "avatar_url": "mxc://test.example/abc",
    }
    assert (await client.get(f"{base}/displayname")).json() == {"displayname": "Alice A."}
    assert (await client.get(f"/_matrix/client/r0/profile/{ALICE}/avatar_url")).json() == {
        "avatar_url": "mxc://test.example/abc"
    }
    # Only the owner may write.
    other = await client.put(
        f"{base}/displayname", headers=bearer(bob["access_token"]), json={"displayname": "x"}
    )
    assert_error(other, 403, "M_FORBIDDEN")
    assert_error(
        await client.put(f"{base}/displayname", json={"displayname": "x"}), 401, "M_MISSING_TOKEN"
    )
    # Limits and types.
    too_long = await client.put(
        f"{base}/displayname", headers=bearer(token), json={"displayname": "x" * 257}
    )
    assert_error(too_long, 400, "M_INVALID_PARAM")
    assert_error(
        await client.put(f"{base}/avatar_url", headers=bearer(token), json={"avatar_url": 1}),
        400,
        "M_BAD_JSON",
    )
    assert_error(
        await client.put(f"{base}/avatar_url", headers=bearer(token), json={}),
        400,
        "M_MISSING_PARAM",
    )
    # Clearing.
    cleared = await client.put(
        f"{base}/avatar_url", headers=bearer(token), json={"avatar_url": None}
    )
    assert cleared.status_code == 200
    assert (await client.get(base)).json() == {"displayname": "Alice A."}


@pytest.mark.parametrize(
    ("user_id", "status", "errcode"),
    [
        ("@nobody:test.example", 404, "M_NOT_FOUND"),
        ("@someone:elsewhere.example", 404, "M_NOT_FOUND"),
        ("not-a-user-id", 400, "M_INVALID_PARAM"),
    ],
)
async def test_profile_lookups_that_fail(
    client: httpx.AsyncClient, user_id: str, status: int, errcode: str
) -> None:
    assert_error(await client.get(f"{V3}/profile/{user_id}"), status, errcode)
