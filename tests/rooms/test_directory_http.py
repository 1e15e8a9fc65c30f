"""Aliases, room directory visibility, /publicRooms and /user_directory/search end to end."""

from __future__ import annotations

import httpx
import pytest
from plait_fixtures import RegisterUser, RunningServer
from room_helpers import V3, assert_error, make_user, quote

ALIAS = "#tea:test.example"


async def test_alias_lifecycle(client: httpx.AsyncClient, register_user: RegisterUser) -> None:
    alice = await make_user(client, register_user, "alice")
    bob = await make_user(client, register_user, "bob")
    room_id = await alice.create_room(preset="public_chat")
    path = f"/directory/room/{quote(ALIAS)}"
    assert_error(await client.get(V3 + path), 404, "M_NOT_FOUND")
    # Bob is not in the room: he cannot give it an alias.
    assert_error(await bob.put(path, {"room_id": room_id}), 403, "M_FORBIDDEN")
    assert (await alice.put(path, {"room_id": room_id})).status_code == 200
    assert_error(await alice.put(path, {"room_id": room_id}), 409, "M_UNKNOWN")
    # Reading needs no token.
    resolved = (await client.get(V3 + path)).json()
    assert resolved == {"room_id": room_id, "servers": ["test.example"]}
    aliases = (await alice.get(f"/rooms/{quote(room_id)}/aliases")).json()
    assert aliases == {"aliases": [ALIAS]}
    # Bob joins, but he neither created the alias nor has the power to delete it.
    assert (await bob.join(room_id)).status_code == 200
    assert_error(await bob.delete(path), 403, "M_FORBIDDEN")
    assert (await alice.delete(path)).status_code == 200
    assert_error(await alice.delete(path), 404, "M_NOT_FOUND")
    assert (await alice.get(f"/rooms/{quote(room_id)}/aliases")).json() == {"aliases": []}


async def test_room_admin_may_delete_others_alias(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await make_user(client, register_user, "alice")
    bob = await make_user(client, register_user, "bob")
    room_id = await alice.create_room(preset="public_chat")
    assert (await bob.join(room_id)).status_code == 200
    path = f"/directory/room/{quote(ALIAS)}"
    assert (await bob.put(path, {"room_id": room_id})).status_code == 200
    assert (await alice.delete(path)).status_code == 200


@pytest.mark.parametrize(
    ("alias", "body", "status", "errcode"),
    [
        ("tea", {"room_id": "!x:test.example"}, 400, "M_INVALID_PARAM"),
        ("#tea", {"room_id": "!x:test.example"}, 400, "M_INVALID_PARAM"),
        ("#:test.example", {"room_id": "!x:test.example"}, 400, "M_INVALID_PARAM"),
        ("#tea:bad_server!", {"room_id": "!x:test.example"}, 400, "M_INVALID_PARAM"),
        ("#" + "a" * 300 + ":test.example", {"room_id": "!x:test.example"}, 400, "M_INVALID_PARAM"),
        ("#tea:elsewhere.example", {"room_id": "!x:test.example"}, 404, "M_NOT_FOUND"),
        (ALIAS, {}, 400, "M_MISSING_PARAM"),
        (ALIAS, {"room_id": 3}, 400, "M_BAD_JSON"),
        (ALIAS, {"room_id": "nope"}, 400, "M_INVALID_PARAM"),
        (ALIAS, {"room_id": "!unknown:test.example"}, 404, "M_NOT_FOUND"),
    ],
)
async def test_put_alias_refusals(
    client: httpx.AsyncClient,
    register_user: RegisterUser,
    alias: str,
    body: dict[str, object],
    status: int,
    errcode: str,
) -> None:
    alice = await make_user(client, register_user, "alice")
    await alice.create_room()
    assert_error(await alice.put(f"/directory/room/{quote(alias)}", body), status, errcode)
    assert_error(await client.get(f"{V3}/directory/room/{quote(ALIAS)}"), 404, "M_NOT_FOUND")


async def test_get_alias_refusals(client: httpx.AsyncClient) -> None:
    assert_error(await client.get(f"{V3}/directory/room/nope"), 400, "M_INVALID_PARAM")
    assert_error(
        await client.get(f"{V3}/directory/room/{quote('#a:elsewhere.example')}"), 404, "M_NOT_FOUND"
    )


async def test_room_aliases_needs_membership(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await make_user(client, register_user, "alice")
    carol = await make_user(client, register_user, "carol")
    room_id = await alice.create_room()
    assert_error(await carol.get(f"/rooms/{quote(room_id)}/aliases"), 403, "M_FORBIDDEN")
    assert_error(await carol.get("/rooms/!nope:test.example/aliases"), 404, "M_NOT_FOUND")


async def test_directory_visibility(client: httpx.AsyncClient, register_user: RegisterUser) -> None:
    alice = await make_user(client, register_user, "alice")
    bob = await make_user(client, register_user, "bob")
    room_id = await alice.create_room(preset="public_chat", name="Lobby", topic="Hello")
    path = f"/directory/list/room/{quote(room_id)}"
    assert (await client.get(V3 + path)).json() == {"visibility": "private"}
    assert (await bob.join(room_id)).status_code == 200
    assert_error(await bob.put(path, {"visibility": "public"}), 403, "M_FORBIDDEN")
    assert_error(await alice.put(path, {"visibility": "open"}), 400, "M_BAD_JSON")
    assert (await alice.put(path, {"visibility": "public"})).status_code == 200
    assert (await client.get(V3 + path)).json() == {"visibility": "public"}
    rooms = (await client.get(f"{V3}/publicRooms")).json()
    assert rooms["total_room_count_estimate"] == 1
    assert rooms["chunk"] == [
        {
            "room_id": room_id,
            "num_joined_members": 2,
            "world_readable": False,
            "guest_can_join": False,
            "name": "Lobby",
            "topic": "Hello",
            "join_rule": "public",
        }
    ]
    assert (await alice.put(path, {"visibility": "private"})).status_code == 200
    assert (await client.get(f"{V3}/publicRooms")).json()["chunk"] == []
    assert_error(
        await client.get(f"{V3}/directory/list/room/!nope:test.example"), 404, "M_NOT_FOUND"
    )
    assert_error(await client.get(f"{V3}/directory/list/room/nope"), 400, "M_INVALID_PARAM")


async def test_public_rooms_pagination_and_filter(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await make_user(client, register_user, "alice")
    bob = await make_user(client, register_user, "bob")
    names = ["Apple", "Banana", "Cherry"]
    rooms = {n: await alice.create_room(visibility="public", name=n) for n in names}
    assert (await bob.join(rooms["Cherry"])).status_code == 200
    await alice.create_room(visibility="public", name="Space", creation_content={"type": "m.space"})
    first = (await client.get(f"{V3}/publicRooms", params={"limit": "2"})).json()
    assert first["chunk"][0]["room_id"] == rooms["Cherry"]  # most members first
    assert len(first["chunk"]) == 2 and first["total_room_count_estimate"] == 4
    second = (
        await client.get(f"{V3}/publicRooms", params={"limit": "2", "since": first["next_batch"]})
    ).json()
    assert len(second["chunk"]) == 2 and "next_batch" not in second
    assert "prev_batch" in second
    seen = {r["room_id"] for r in first["chunk"] + second["chunk"]}
    assert len(seen) == 4
    found = (await alice.post("/publicRooms", {"filter": {"generic_search_term": "anan"}})).json()
    assert [r["room_id"] for r in found["chunk"]] == [rooms["Banana"]]
    spaces = (await alice.post("/publicRooms", {"filter": {"room_types": ["m.space"]}})).json()
    assert [r["name"] for r in spaces["chunk"]] == ["Space"]
    assert spaces["chunk"][0]["room_type"] == "m.space"
    plain = (await alice.post("/publicRooms", {"filter": {"room_types": [None]}})).json()
    assert len(plain["chunk"]) == 3
    # Refusals.
    assert_error(
        await client.get(f"{V3}/publicRooms", params={"limit": "x"}), 400, "M_INVALID_PARAM"
    )
    assert_error(
        await client.get(f"{V3}/publicRooms", params={"since": "zzz"}), 400, "M_INVALID_PARAM"
    )
    assert_error(
        await client.get(f"{V3}/publicRooms", params={"server": "elsewhere.example"}),
        404,
        "M_NOT_FOUND",
    )
    assert_error(await alice.post("/publicRooms", {"limit": -1}), 400, "M_BAD_JSON")
    assert_error(await alice.post("/publicRooms", {"filter": []}), 400, "M_BAD_JSON")
    assert_error(
        await alice.post("/publicRooms", {"filter": {"room_types": [1]}}), 400, "M_BAD_JSON"
    )
    assert_error(await client.post(f"{V3}/publicRooms", json={}), 401, "M_MISSING_TOKEN")


async def test_user_directory(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await make_user(client, register_user, "alice")
    bob = await make_user(client, register_user, "bob")
    carol = await make_user(client, register_user, "carol")
    dave = await make_user(client, register_user, "dave")
    await make_user(client, register_user, "bobby")  # shares nothing with alice
    # Alice and Bob share a private room; Carol is in a public room; Dave in neither.
    private = await alice.create_room(invite=[bob.user_id])
    assert (await bob.join(private)).status_code == 200
    await carol.create_room(preset="public_chat")
    await dave.create_room()
    response = await alice.post("/user_directory/search", {"search_term": "bob"})
    assert response.json() == {
        "results": [{"user_id": bob.user_id, "display_name": "bob"}],
        "limited": False,
    }
    found = (await alice.post("/user_directory/search", {"search_term": "CAR"})).json()
    assert [r["user_id"] for r in found["results"]] == [carol.user_id]
    assert (await alice.post("/user_directory/search", {"search_term": "dave"})).json()[
        "results"
    ] == []
    # Display names match too, and % is not a wildcard.
    await bob.put(f"/profile/{quote(bob.user_id)}/displayname", {"displayname": "Robert 100%"})
    found = (await alice.post("/user_directory/search", {"search_term": "robert 100%"})).json()
    assert [r["user_id"] for r in found["results"]] == [bob.user_id]
    assert (await alice.post("/user_directory/search", {"search_term": "%"})).json()["results"][0][
        "user_id"
    ] == bob.user_id
    limited = (await alice.post("/user_directory/search", {"search_term": "", "limit": 1})).json()
    assert len(limited["results"]) == 1 and limited["limited"] is True
    # A deactivated account is no longer offered.
    await server.hs.accounts.deactivate(carol.user_id)
    found = (await alice.post("/user_directory/search", {"search_term": "carol"})).json()
    assert found["results"] == []
    assert_error(await alice.post("/user_directory/search", {}), 400, "M_MISSING_PARAM")
    assert_error(await alice.post("/user_directory/search", {"search_term": 1}), 400, "M_BAD_JSON")
    assert_error(
        await alice.post("/user_directory/search", {"search_term": "a" * 1000}),
        400,
        "M_INVALID_PARAM",
    )
    assert_error(
        await alice.post("/user_directory/search", {"search_term": "a", "limit": "x"}),
        400,
        "M_INVALID_PARAM",
    )


async def test_public_rooms_hide_redacted_names(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await make_user(client, register_user, "alice")
    room_id = await alice.create_room(visibility="public", name="Oops", topic="kept")
    room = f"/rooms/{quote(room_id)}"
    event = (await alice.get(f"{room}/state/m.room.name", params={"format": "event"})).json()
    response = await alice.put(f"{room}/redact/{quote(event['event_id'])}/t1", {})
    assert response.status_code == 200, response.text
    entry = (await client.get(f"{V3}/publicRooms")).json()["chunk"][0]
    assert "name" not in entry
    assert entry["topic"] == "kept" and entry["join_rule"] == "public"


async def test_empty_name_counts_as_no_name_pitfall_6(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    """matrix_brief 6 #6: a room name set to "" must count as no name."""
    alice = await make_user(client, register_user, "alice")
    room_id = await alice.create_room(visibility="public", name="Named")
    assert (await alice.put(f"/rooms/{quote(room_id)}/state/m.room.name", {"name": ""})).is_success
    entry = (await client.get(f"{V3}/publicRooms")).json()["chunk"][0]
    assert "name" not in entry


async def test_v12_rooms_without_server_name_pitfall_26(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    """matrix_brief 6 #26: v12 room IDs have no domain; every directory path must cope."""
    alice = await make_user(client, register_user, "alice")
    room_id = await alice.create_room(room_version="12", visibility="public", room_alias_name="v12")
    assert ":" not in room_id
    alias = (await client.get(f"{V3}/directory/room/{quote('#v12:test.example')}")).json()
    assert alias["room_id"] == room_id
    assert (await client.get(f"{V3}/directory/list/room/{quote(room_id)}")).json() == {
        "visibility": "public"
    }
    assert [r["room_id"] for r in (await client.get(f"{V3}/publicRooms")).json()["chunk"]] == [
        room_id
    ]
