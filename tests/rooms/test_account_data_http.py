"""Account data and tags end to end, and the stream /sync reads."""

from __future__ import annotations

import httpx
import pytest
from plait_fixtures import RegisterUser, RunningServer
from room_helpers import V3, assert_error, make_user, quote


async def test_global_and_room_account_data(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await make_user(client, register_user, "alice")
    me = f"/user/{quote(alice.user_id)}"
    room_id = await alice.create_room()
    assert_error(await alice.get(f"{me}/account_data/im.vector.setting"), 404, "M_NOT_FOUND")
    start = server.hs.notifier.current_token().account_data
    assert (await alice.put(f"{me}/account_data/im.vector.setting", {"a": 1.5})).status_code == 200
    assert (await alice.get(f"{me}/account_data/im.vector.setting")).json() == {"a": 1.5}
    assert (await alice.put(f"{me}/account_data/im.vector.setting", {"a": 2})).status_code == 200
    assert (await alice.get(f"{me}/account_data/im.vector.setting")).json() == {"a": 2}
    room = f"{me}/rooms/{quote(room_id)}"
    assert_error(await alice.get(f"{room}/account_data/org.x"), 404, "M_NOT_FOUND")
    assert (await alice.put(f"{room}/account_data/org.x", {"r": True})).status_code == 200
    assert (await alice.get(f"{room}/account_data/org.x")).json() == {"r": True}
    # Room and global data do not fall back to each other.
    assert_error(await alice.get(f"{me}/account_data/org.x"), 404, "M_NOT_FOUND")
    # The stream advanced once per write, and the service reports what changed.
    end = server.hs.notifier.current_token().account_data
    assert end == start + 3
    changes = await server.hs.account_data.get_changes_since(alice.user_id, start)
    assert changes.global_data == {"im.vector.setting": {"a": 2}}
    assert changes.rooms == {room_id: {"org.x": {"r": True}}}
    assert changes.position == end
    assert (await server.hs.account_data.get_changes_since(alice.user_id, end)).global_data == {}
    everything = await server.hs.account_data.get_all(alice.user_id)
    assert "im.vector.setting" in everything.global_data
    assert await server.hs.account_data.get_global_since(alice.user_id, start, start + 1) == {}
    assert await server.hs.account_data.get_room_since(alice.user_id, start) == {
        room_id: {"org.x": {"r": True}}
    }


async def test_sync_carries_account_data(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await make_user(client, register_user, "alice")
    me = f"/user/{quote(alice.user_id)}"
    first = (await alice.get("/sync", params={"timeout": "0"})).json()
    assert (await alice.put(f"{me}/account_data/org.example.x", {"v": 1})).status_code == 200
    later = (await alice.get("/sync", params={"since": first["next_batch"], "timeout": "0"})).json()
    events = later["account_data"]["events"]
    assert {"type": "org.example.x", "content": {"v": 1}} in events


async def test_only_the_owner(client: httpx.AsyncClient, register_user: RegisterUser) -> None:
    alice = await make_user(client, register_user, "alice")
    bob = await make_user(client, register_user, "bob")
    theirs = f"/user/{quote(alice.user_id)}"
    assert (await alice.put(f"{theirs}/account_data/org.x", {"v": 1})).status_code == 200
    assert_error(await bob.get(f"{theirs}/account_data/org.x"), 403, "M_FORBIDDEN")
    assert_error(await bob.put(f"{theirs}/account_data/org.x", {"v": 2}), 403, "M_FORBIDDEN")
    room = f"{theirs}/rooms/{quote('!r:test.example')}"
    assert_error(await bob.get(f"{room}/account_data/org.x"), 403, "M_FORBIDDEN")
    assert_error(await bob.get(f"{room}/tags"), 403, "M_FORBIDDEN")
    assert_error(await bob.put(f"{room}/tags/u.x", {}), 403, "M_FORBIDDEN")
    assert (await alice.get(f"{theirs}/account_data/org.x")).json() == {"v": 1}
    assert_error(await bob.get("/user/nope/account_data/org.x"), 400, "M_INVALID_PARAM")


@pytest.mark.parametrize("data_type", ["m.fully_read", "m.push_rules"])
async def test_server_managed_types_refused(
    client: httpx.AsyncClient, register_user: RegisterUser, data_type: str
) -> None:
    alice = await make_user(client, register_user, "alice")
    me = f"/user/{quote(alice.user_id)}"
    assert_error(await alice.put(f"{me}/account_data/{data_type}", {}), 405, "M_BAD_JSON")
    room = f"{me}/rooms/{quote('!r:test.example')}"
    assert_error(await alice.put(f"{room}/account_data/{data_type}", {}), 405, "M_BAD_JSON")
    assert_error(await alice.get(f"{room}/account_data/{data_type}"), 404, "M_NOT_FOUND")


@pytest.mark.parametrize(
    ("data_type", "body", "status", "errcode"),
    [
        ("m.ignored_user_list", {}, 400, "M_BAD_JSON"),
        ("m.ignored_user_list", {"ignored_users": []}, 400, "M_BAD_JSON"),
        ("m.ignored_user_list", {"ignored_users": {"bob": {}}}, 400, "M_BAD_JSON"),
        ("m.ignored_user_list", {"ignored_users": {"@bob:test.example": 1}}, 400, "M_BAD_JSON"),
        ("m.direct", {"@bob:test.example": "!r:test.example"}, 400, "M_BAD_JSON"),
        ("org.big", {"v": "a" * 70000}, 413, "M_TOO_LARGE"),
        ("t" * 300, {}, 400, "M_INVALID_PARAM"),
    ],
)
async def test_bad_content_stores_nothing(
    client: httpx.AsyncClient,
    register_user: RegisterUser,
    data_type: str,
    body: dict[str, object],
    status: int,
    errcode: str,
) -> None:
    alice = await make_user(client, register_user, "alice")
    url = f"/user/{quote(alice.user_id)}/account_data/{data_type}"
    assert_error(await alice.put(url, body), status, errcode)
    assert (await alice.get(url)).status_code in (400, 404)


async def test_ignored_user_list_and_bad_bodies(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await make_user(client, register_user, "alice")
    url = f"/user/{quote(alice.user_id)}/account_data/m.ignored_user_list"
    body = {"ignored_users": {"@bob:test.example": {}}}
    assert (await alice.put(url, body)).status_code == 200
    assert (await alice.get(url)).json() == body
    response = await client.put(V3 + url, content=b"[]", headers=alice.headers)
    assert_error(response, 400, "M_BAD_JSON")
    response = await client.put(V3 + url, content=b"{", headers=alice.headers)
    assert_error(response, 400, "M_NOT_JSON")
    bad_room = f"/user/{quote(alice.user_id)}/rooms/nope/account_data/org.x"
    assert_error(await alice.put(bad_room, {}), 400, "M_INVALID_PARAM")
    assert_error(await alice.get(bad_room), 400, "M_INVALID_PARAM")


async def test_tags(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await make_user(client, register_user, "alice")
    room_id = await alice.create_room()
    base = f"/user/{quote(alice.user_id)}/rooms/{quote(room_id)}"
    assert (await alice.get(f"{base}/tags")).json() == {"tags": {}}
    assert (await alice.put(f"{base}/tags/m.favourite", {"order": 0.25})).status_code == 200
    assert (await alice.put(f"{base}/tags/u.work", {})).status_code == 200
    assert (await alice.get(f"{base}/tags")).json() == {
        "tags": {"m.favourite": {"order": 0.25}, "u.work": {}}
    }
    # Stored as the room's m.tag account data, which /sync sends.
    assert (await alice.get(f"{base}/account_data/m.tag")).json() == {
        "tags": {"m.favourite": {"order": 0.25}, "u.work": {}}
    }
    assert (await alice.delete(f"{base}/tags/m.favourite")).status_code == 200
    assert (await alice.delete(f"{base}/tags/never-set")).status_code == 200
    assert (await alice.get(f"{base}/tags")).json() == {"tags": {"u.work": {}}}
    assert_error(await alice.put(f"{base}/tags/u.x", {"order": "first"}), 400, "M_BAD_JSON")
    assert_error(await alice.put(f"{base}/tags/" + "t" * 300, {}), 400, "M_INVALID_PARAM")
    assert (await alice.get(f"{base}/tags")).json() == {"tags": {"u.work": {}}}


async def test_position_survives_restart(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    from homeserver.homeserver import HomeServer

    alice = await make_user(client, register_user, "alice")
    url = f"/user/{quote(alice.user_id)}/account_data/org.x"
    assert (await alice.put(url, {"v": 1})).status_code == 200
    position = server.hs.notifier.current_token().account_data
    reopened = await HomeServer.open(server.config)
    try:
        assert reopened.notifier.current_token().account_data == position
    finally:
        await reopened.aclose()


async def test_concurrent_tag_and_direct_edits_keep_every_change(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    import trio

    alice = await make_user(client, register_user, "alice")
    room_id = await alice.create_room()
    base = f"/user/{quote(alice.user_id)}/rooms/{quote(room_id)}"
    service = server.hs.account_data
    async with trio.open_nursery() as nursery:
        for i in range(8):
            nursery.start_soon(alice.put, f"{base}/tags/u.t{i}", {})
            nursery.start_soon(
                service.add_direct_room, alice.user_id, f"@u{i}:test.example", room_id
            )
    tags = (await alice.get(f"{base}/tags")).json()["tags"]
    assert sorted(tags) == sorted(f"u.t{i}" for i in range(8))
    direct = await service.get_global(alice.user_id, "m.direct")
    assert direct is not None and len(direct) == 8
