"""POST /createRoom end to end: presets, versions, options, and refusals that store nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from plait_fixtures import RegisterUser
from room_helpers import User, assert_error, make_user, quote


async def test_private_chat_default_state(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await make_user(client, register_user, "alice")
    room_id = await alice.create_room(name="Tea", topic="Leaves")
    state = await alice.state(room_id)
    assert state[("m.room.create", "")]["content"]["room_version"] == "10"
    assert state[("m.room.create", "")]["content"]["creator"] == alice.user_id
    assert state[("m.room.member", alice.user_id)]["content"]["membership"] == "join"
    assert state[("m.room.join_rules", "")]["content"] == {"join_rule": "invite"}
    assert state[("m.room.history_visibility", "")]["content"]["history_visibility"] == "shared"
    assert state[("m.room.guest_access", "")]["content"]["guest_access"] == "can_join"
    levels = state[("m.room.power_levels", "")]["content"]
    assert levels["users"] == {alice.user_id: 100}
    assert levels["invite"] == 0
    assert state[("m.room.name", "")]["content"] == {"name": "Tea"}
    assert state[("m.room.topic", "")]["content"]["topic"] == "Leaves"
    rooms = (await alice.get("/joined_rooms")).json()
    assert rooms == {"joined_rooms": [room_id]}


@pytest.mark.parametrize("version", ["10", "11", "12"])
async def test_room_versions(
    client: httpx.AsyncClient, register_user: RegisterUser, version: str
) -> None:
    alice = await make_user(client, register_user, "alice")
    room_id = await alice.create_room(room_version=version, preset="public_chat")
    state = await alice.state(room_id)
    create = state[("m.room.create", "")]["content"]
    assert create["room_version"] == version
    assert ("creator" in create) == (version == "10")
    levels = state[("m.room.power_levels", "")]["content"]
    assert levels["users"] == ({} if version == "12" else {alice.user_id: 100})
    if version == "12":
        assert ":" not in room_id  # v12 room IDs carry no server name (pitfall 26)
    # The creator can still act with full power: set the name.
    response = await alice.put(f"/rooms/{quote(room_id)}/state/m.room.name", {"name": "x"})
    assert response.status_code == 200, response.text


@pytest.mark.server_config(default_room_version="11")
async def test_default_room_version_from_config(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await make_user(client, register_user, "alice")
    room_id = await alice.create_room()
    state = await alice.state(room_id)
    assert state[("m.room.create", "")]["content"]["room_version"] == "11"


async def test_unsupported_room_version(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await make_user(client, register_user, "alice")
    response = await alice.post("/createRoom", {"room_version": "999"})
    assert_error(response, 400, "M_UNSUPPORTED_ROOM_VERSION")
    assert (await alice.get("/joined_rooms")).json() == {"joined_rooms": []}


async def test_alias_visibility_and_invite_dm(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await make_user(client, register_user, "alice")
    bob = await make_user(client, register_user, "bob")
    response = await alice.post(
        "/createRoom",
        {
            "preset": "trusted_private_chat",
            "is_direct": True,
            "invite": [bob.user_id],
            "room_alias_name": "tea",
            "visibility": "public",
        },
    )
    assert response.status_code == 200, response.text
    room_id = response.json()["room_id"]
    state = await alice.state(room_id)
    invite = state[("m.room.member", bob.user_id)]["content"]
    assert invite["membership"] == "invite"
    assert invite["is_direct"] is True
    assert invite["displayname"] == "bob"
    assert state[("m.room.canonical_alias", "")]["content"] == {"alias": "#tea:test.example"}
    assert state[("m.room.power_levels", "")]["content"]["users"][bob.user_id] == 100
    alias = await client.get(f"/_matrix/client/v3/directory/room/{quote('#tea:test.example')}")
    assert alias.json() == {"room_id": room_id, "servers": ["test.example"]}
    public = (await client.get("/_matrix/client/v3/publicRooms")).json()
    assert [r["room_id"] for r in public["chunk"]] == [room_id]
    # m.direct on both sides.
    direct_a = (await alice.get(f"/user/{quote(alice.user_id)}/account_data/m.direct")).json()
    assert direct_a == {bob.user_id: [room_id]}
    direct_b = (await bob.get(f"/user/{quote(bob.user_id)}/account_data/m.direct")).json()
    assert direct_b == {alice.user_id: [room_id]}
    # Bob joins: still recorded once.
    assert (await bob.join(room_id)).status_code == 200
    direct_b = (await bob.get(f"/user/{quote(bob.user_id)}/account_data/m.direct")).json()
    assert direct_b == {alice.user_id: [room_id]}


async def rooms_of(user: User) -> list[str]:
    rooms: list[str] = (await user.get("/joined_rooms")).json()["joined_rooms"]
    return rooms


async def test_alias_taken_is_room_in_use_and_creates_nothing(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await make_user(client, register_user, "alice")
    await alice.create_room(room_alias_name="tea")
    response = await alice.post("/createRoom", {"room_alias_name": "tea"})
    assert_error(response, 400, "M_ROOM_IN_USE")
    assert len(await rooms_of(alice)) == 1


@pytest.mark.parametrize(
    ("body", "status", "errcode"),
    [
        ({"invite": "@bob:test.example"}, 400, "M_BAD_JSON"),
        ({"invite": ["@bob:test.example"] * 101}, 400, "M_INVALID_PARAM"),
        ({"invite": ["not-a-user"]}, 400, "M_INVALID_PARAM"),
        ({"invite": ["@nobody:test.example"]}, 404, "M_NOT_FOUND"),
        ({"invite": ["@bob:elsewhere.example"]}, 400, "M_UNKNOWN"),
        ({"visibility": "secret"}, 400, "M_BAD_JSON"),
        ({"preset": "party"}, 400, "M_BAD_JSON"),
        ({"name": 5}, 400, "M_BAD_JSON"),
        ({"name": "x" * 300}, 400, "M_INVALID_PARAM"),
        ({"is_direct": "yes"}, 400, "M_BAD_JSON"),
        ({"initial_state": {}}, 400, "M_BAD_JSON"),
        ({"initial_state": [{"type": "x"}]}, 400, "M_BAD_JSON"),
        ({"initial_state": [{"type": 1, "content": {}}]}, 400, "M_BAD_JSON"),
        (
            {"initial_state": [{"type": "m.room.member", "state_key": "@a:b", "content": {}}]},
            400,
            "M_INVALID_ROOM_STATE",
        ),
        ({"initial_state": [{"type": "x", "content": {"f": 1.5}}]}, 400, "M_BAD_JSON"),
        ({"initial_state": [{"type": "x", "content": {"v": "a" * 70000}}]}, 413, "M_TOO_LARGE"),
        ({"power_level_content_override": []}, 400, "M_BAD_JSON"),
        ({"power_level_content_override": {"ban": "50"}}, 400, "M_INVALID_ROOM_STATE"),
        (
            {"name": "x", "power_level_content_override": {"users": {}, "users_default": 0}},
            400,
            "M_INVALID_ROOM_STATE",
        ),
        ({"creation_content": "x"}, 400, "M_BAD_JSON"),
        ({"room_alias_name": "a:b"}, 400, "M_INVALID_PARAM"),
        ({"room_alias_name": "a" * 250}, 400, "M_INVALID_PARAM"),
        ({"invite_3pid": [{"medium": "email"}]}, 400, "M_UNKNOWN"),
    ],
)
async def test_refusals_store_nothing(
    client: httpx.AsyncClient,
    register_user: RegisterUser,
    body: dict[str, Any],
    status: int,
    errcode: str,
) -> None:
    alice = await make_user(client, register_user, "alice")
    await make_user(client, register_user, "bob")
    response = await alice.post("/createRoom", body)
    assert_error(response, status, errcode)
    assert await rooms_of(alice) == []
    public = (await client.get("/_matrix/client/v3/publicRooms")).json()
    assert public["chunk"] == []


async def test_not_json_and_no_token(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await make_user(client, register_user, "alice")
    response = await client.post(
        "/_matrix/client/v3/createRoom", content=b"{nope", headers=alice.headers
    )
    assert_error(response, 400, "M_NOT_JSON")
    response = await client.post("/_matrix/client/v3/createRoom", json={})
    assert_error(response, 401, "M_MISSING_TOKEN")


async def test_initial_state_and_encryption(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await make_user(client, register_user, "alice")
    room_id = await alice.create_room(
        initial_state=[
            {"type": "m.room.encryption", "content": {"algorithm": "m.megolm.v1.aes-sha2"}},
            {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "public"}},
        ],
        creation_content={"m.federate": False, "type": "m.space"},
    )
    state = await alice.state(room_id)
    assert state[("m.room.encryption", "")]["content"]["algorithm"] == "m.megolm.v1.aes-sha2"
    assert state[("m.room.join_rules", "")]["content"] == {"join_rule": "public"}
    create = state[("m.room.create", "")]["content"]
    assert create["m.federate"] is False and create["type"] == "m.space"


async def test_empty_body_creates_private_room(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await make_user(client, register_user, "alice")
    response = await client.post(
        "/_matrix/client/v3/createRoom", content=b"", headers=alice.headers
    )
    assert response.status_code == 200, response.text
    assert (await client.get("/_matrix/client/v3/publicRooms")).json()["chunk"] == []
