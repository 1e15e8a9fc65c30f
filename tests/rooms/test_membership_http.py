"""Membership end to end: join, invite, leave, forget, kick, ban, unban, knock, member lists."""

from __future__ import annotations

import httpx
import pytest
from plait_fixtures import RegisterUser, RunningServer
from room_helpers import User, assert_error, make_user, quote


async def trio_users(client: httpx.AsyncClient, register_user: RegisterUser) -> list[User]:
    return [await make_user(client, register_user, n) for n in ("alice", "bob", "carol")]


async def test_invite_join_leave_forget(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice, bob, _ = await trio_users(client, register_user)
    room_id = await alice.create_room()
    room = f"/rooms/{quote(room_id)}"
    # Not invited yet: an invite-only room refuses the join.
    assert_error(await bob.post(f"{room}/join"), 403, "M_FORBIDDEN")
    assert (await alice.post(f"{room}/invite", {"user_id": bob.user_id})).status_code == 200
    assert await alice.membership(room_id, bob.user_id) == "invite"
    response = await bob.post(f"{room}/join", {"reason": "hi"})
    assert response.json() == {"room_id": room_id}
    member = await alice.membership(room_id, bob.user_id)
    assert member == "join"
    content = (await alice.get(f"{room}/state/m.room.member/{quote(bob.user_id)}")).json()
    assert content == {"membership": "join", "displayname": "bob", "reason": "hi"}
    assert (await bob.get("/joined_rooms")).json() == {"joined_rooms": [room_id]}
    # Joining again with the same profile changes nothing and succeeds.
    assert (await bob.post(f"{room}/join")).status_code == 200
    # Forgetting while joined is refused.
    assert_error(await bob.post(f"{room}/forget"), 400, "M_UNKNOWN")
    assert (await bob.post(f"{room}/leave", {"reason": "bye"})).status_code == 200
    assert await alice.membership(room_id, bob.user_id) == "leave"
    assert (await bob.get("/joined_rooms")).json() == {"joined_rooms": []}
    # Leaving twice: not in the room.
    assert_error(await bob.post(f"{room}/leave"), 403, "M_FORBIDDEN")
    assert (await bob.post(f"{room}/forget")).status_code == 200
    assert await server.hs.membership.forgotten_rooms(bob.user_id) == {room_id}
    # Forgetting again is harmless.
    assert (await bob.post(f"{room}/forget")).status_code == 200


async def test_reject_invite_by_leaving(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice, bob, _ = await trio_users(client, register_user)
    room_id = await alice.create_room(invite=[bob.user_id])
    assert (await bob.post(f"/rooms/{quote(room_id)}/leave")).status_code == 200
    assert await alice.membership(room_id, bob.user_id) == "leave"


async def test_join_public_room_by_alias(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice, bob, _ = await trio_users(client, register_user)
    room_id = await alice.create_room(preset="public_chat", room_alias_name="lobby")
    response = await bob.join("#lobby:test.example")
    assert response.status_code == 200, response.text
    assert response.json() == {"room_id": room_id}
    response = await bob.post(f"/join/{quote(room_id)}?via=test.example&server_name=x")
    assert response.json() == {"room_id": room_id}
    remote = await bob.post(f"/join/{quote('!r:elsewhere.example')}?via=elsewhere.example")
    body = assert_error(remote, 404, "M_NOT_FOUND")
    assert "federation" in body["error"]


@pytest.mark.parametrize(
    ("target", "status", "errcode"),
    [
        ("#nope:test.example", 404, "M_NOT_FOUND"),
        ("#lobby:elsewhere.example", 404, "M_NOT_FOUND"),
        ("!unknown:test.example", 404, "M_NOT_FOUND"),
        ("!unknown:elsewhere.example", 404, "M_NOT_FOUND"),
        ("#bad", 400, "M_INVALID_PARAM"),
        ("nothing", 400, "M_INVALID_PARAM"),
    ],
)
async def test_join_refusals(
    client: httpx.AsyncClient, register_user: RegisterUser, target: str, status: int, errcode: str
) -> None:
    alice = await make_user(client, register_user, "alice")
    assert_error(await alice.join(target), status, errcode)
    assert (await alice.get("/joined_rooms")).json() == {"joined_rooms": []}


async def test_kick_ban_unban(client: httpx.AsyncClient, register_user: RegisterUser) -> None:
    alice, bob, carol = await trio_users(client, register_user)
    room_id = await alice.create_room(preset="public_chat")
    room = f"/rooms/{quote(room_id)}"
    for user in (bob, carol):
        assert (await user.post(f"{room}/join")).status_code == 200
    # Bob (power 0) may not kick or ban.
    assert_error(await bob.post(f"{room}/kick", {"user_id": carol.user_id}), 403, "M_FORBIDDEN")
    assert_error(await bob.post(f"{room}/ban", {"user_id": carol.user_id}), 403, "M_FORBIDDEN")
    assert await alice.membership(room_id, carol.user_id) == "join"
    # Alice kicks Bob with a reason.
    response = await alice.post(f"{room}/kick", {"user_id": bob.user_id, "reason": "spam"})
    assert response.status_code == 200, response.text
    content = (await alice.get(f"{room}/state/m.room.member/{quote(bob.user_id)}")).json()
    assert content == {"membership": "leave", "reason": "spam"}
    # Kicking someone not in the room is refused.
    assert_error(await alice.post(f"{room}/kick", {"user_id": bob.user_id}), 403, "M_FORBIDDEN")
    # Ban, then the banned user cannot join.
    assert (await alice.post(f"{room}/ban", {"user_id": carol.user_id})).status_code == 200
    assert await alice.membership(room_id, carol.user_id) == "ban"
    assert_error(await carol.post(f"{room}/join"), 403, "M_FORBIDDEN")
    # Unban only a banned user; then carol can join again.
    assert_error(await alice.post(f"{room}/unban", {"user_id": bob.user_id}), 403, "M_FORBIDDEN")
    assert (await alice.post(f"{room}/unban", {"user_id": carol.user_id})).status_code == 200
    assert await alice.membership(room_id, carol.user_id) == "leave"
    assert (await carol.post(f"{room}/join")).status_code == 200


@pytest.mark.parametrize("action", ["invite", "kick", "ban", "unban"])
async def test_targeted_bad_input(
    client: httpx.AsyncClient, register_user: RegisterUser, action: str
) -> None:
    alice = await make_user(client, register_user, "alice")
    room_id = await alice.create_room()
    room = f"/rooms/{quote(room_id)}"
    assert_error(await alice.post(f"{room}/{action}", {}), 400, "M_MISSING_PARAM")
    assert_error(await alice.post(f"{room}/{action}", {"user_id": 5}), 400, "M_BAD_JSON")
    assert_error(await alice.post(f"{room}/{action}", {"user_id": "nope"}), 400, "M_INVALID_PARAM")
    assert_error(
        await alice.post(f"{room}/{action}", {"user_id": "@a:test.example", "reason": 1}),
        400,
        "M_BAD_JSON",
    )
    assert_error(
        await alice.post("/rooms/!nope:test.example/" + action, {"user_id": "@a:test.example"}),
        404,
        "M_NOT_FOUND",
    )
    assert_error(
        await alice.post(f"/rooms/nope/{action}", {"user_id": "@a:test.example"}),
        400,
        "M_INVALID_PARAM",
    )


async def test_invite_refusals(client: httpx.AsyncClient, register_user: RegisterUser) -> None:
    alice, bob, carol = await trio_users(client, register_user)
    room_id = await alice.create_room(preset="public_chat")  # invite needs 50 here
    room = f"/rooms/{quote(room_id)}"
    assert (await bob.post(f"{room}/join")).status_code == 200
    assert_error(await bob.post(f"{room}/invite", {"user_id": carol.user_id}), 403, "M_FORBIDDEN")
    assert await alice.membership(room_id, carol.user_id) is None
    # Carol is not in the room, so she cannot invite either.
    assert_error(await carol.post(f"{room}/invite", {"user_id": bob.user_id}), 403, "M_FORBIDDEN")
    assert_error(
        await alice.post(f"{room}/invite", {"user_id": "@ghost:test.example"}), 404, "M_NOT_FOUND"
    )
    assert_error(
        await alice.post(f"{room}/invite", {"user_id": "@x:elsewhere.example"}), 403, "M_FORBIDDEN"
    )
    # Already joined users cannot be invited.
    assert_error(await alice.post(f"{room}/invite", {"user_id": bob.user_id}), 403, "M_FORBIDDEN")


async def test_knock(client: httpx.AsyncClient, register_user: RegisterUser) -> None:
    alice, bob, _ = await trio_users(client, register_user)
    invite_only = await alice.create_room()
    assert_error(await bob.post(f"/knock/{quote(invite_only)}"), 403, "M_FORBIDDEN")
    room_id = await alice.create_room(
        initial_state=[{"type": "m.room.join_rules", "content": {"join_rule": "knock"}}],
        room_alias_name="door",
    )
    response = await bob.post(f"/knock/{quote('#door:test.example')}", {"reason": "let me in"})
    assert response.status_code == 200, response.text
    assert response.json() == {"room_id": room_id}
    assert await alice.membership(room_id, bob.user_id) == "knock"
    assert_error(await bob.post("/knock/!nope:test.example"), 404, "M_NOT_FOUND")


async def test_members_and_joined_members(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice, bob, carol = await trio_users(client, register_user)
    room_id = await alice.create_room(invite=[bob.user_id, carol.user_id])
    room = f"/rooms/{quote(room_id)}"
    assert (await bob.post(f"{room}/join")).status_code == 200
    chunk = (await alice.get(f"{room}/members")).json()["chunk"]
    assert {e["state_key"]: e["content"]["membership"] for e in chunk} == {
        alice.user_id: "join",
        bob.user_id: "join",
        carol.user_id: "invite",
    }
    assert all(e["type"] == "m.room.member" and "event_id" in e for e in chunk)
    only_joined = (await alice.get(f"{room}/members", params={"membership": "join"})).json()
    assert {e["state_key"] for e in only_joined["chunk"]} == {alice.user_id, bob.user_id}
    not_join = (await alice.get(f"{room}/members", params={"not_membership": "join"})).json()
    assert [e["state_key"] for e in not_join["chunk"]] == [carol.user_id]
    assert_error(
        await alice.get(f"{room}/members", params={"membership": "dancing"}), 400, "M_INVALID_PARAM"
    )
    assert_error(
        await alice.get(f"{room}/members", params={"at": "garbage"}), 400, "M_INVALID_PARAM"
    )
    # An invited (not joined) user may not read the member list.
    assert_error(await carol.get(f"{room}/members"), 403, "M_FORBIDDEN")
    joined = (await alice.get(f"{room}/joined_members")).json()
    assert joined == {
        "joined": {
            alice.user_id: {"display_name": "alice", "avatar_url": None},
            bob.user_id: {"display_name": "bob", "avatar_url": None},
        }
    }
    assert_error(await carol.get(f"{room}/joined_members"), 403, "M_FORBIDDEN")
    assert_error(await alice.get("/rooms/!nope:test.example/members"), 404, "M_NOT_FOUND")


async def test_members_at_token(client: httpx.AsyncClient, register_user: RegisterUser) -> None:
    alice, bob, _ = await trio_users(client, register_user)
    room_id = await alice.create_room(preset="public_chat")
    room = f"/rooms/{quote(room_id)}"
    sync = (await alice.get("/sync", params={"timeout": "0"})).json()
    token = sync["next_batch"]
    assert (await bob.post(f"{room}/join")).status_code == 200
    then = (await alice.get(f"{room}/members", params={"at": token})).json()["chunk"]
    assert [e["state_key"] for e in then] == [alice.user_id]
    now = (await alice.get(f"{room}/members")).json()["chunk"]
    assert {e["state_key"] for e in now} == {alice.user_id, bob.user_id}


async def test_left_user_sees_members_as_they_left(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice, bob, carol = await trio_users(client, register_user)
    room_id = await alice.create_room(preset="public_chat")
    room = f"/rooms/{quote(room_id)}"
    assert (await bob.post(f"{room}/join")).status_code == 200
    assert (await bob.post(f"{room}/leave")).status_code == 200
    assert (await carol.post(f"{room}/join")).status_code == 200
    chunk = (await bob.get(f"{room}/members")).json()["chunk"]
    assert {e["state_key"] for e in chunk} == {alice.user_id, bob.user_id}
    assert_error(await bob.get(f"{room}/joined_members"), 403, "M_FORBIDDEN")


async def test_profile_change_updates_member_events(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice, bob, _ = await trio_users(client, register_user)
    rooms = [await alice.create_room(preset="public_chat") for _ in range(2)]
    other = await bob.create_room()
    response = await alice.put(
        f"/profile/{quote(alice.user_id)}/displayname", {"displayname": "Alice L."}
    )
    assert response.status_code == 200, response.text
    response = await alice.put(
        f"/profile/{quote(alice.user_id)}/avatar_url", {"avatar_url": "mxc://test.example/a"}
    )
    assert response.status_code == 200
    for room_id in rooms:
        content = (
            await alice.get(f"/rooms/{quote(room_id)}/state/m.room.member/{quote(alice.user_id)}")
        ).json()
        assert content == {
            "membership": "join",
            "displayname": "Alice L.",
            "avatar_url": "mxc://test.example/a",
        }
    # Rooms Alice is not in are untouched.
    assert await bob.membership(other, alice.user_id) is None
    # A new join carries the profile.
    assert (await bob.join(rooms[0])).status_code == 200
    joined = (await bob.get(f"/rooms/{quote(rooms[0])}/joined_members")).json()["joined"]
    assert joined[alice.user_id] == {
        "display_name": "Alice L.",
        "avatar_url": "mxc://test.example/a",
    }


async def test_restricted_join(client: httpx.AsyncClient, register_user: RegisterUser) -> None:
    alice, bob, carol = await trio_users(client, register_user)
    space = await alice.create_room(preset="public_chat", creation_content={"type": "m.space"})
    room_id = await alice.create_room(
        initial_state=[
            {
                "type": "m.room.join_rules",
                "content": {
                    "join_rule": "restricted",
                    "allow": [{"type": "m.room_membership", "room_id": space}],
                },
            }
        ]
    )
    # Carol is not in the space: refused, and nothing changes.
    assert_error(await carol.join(room_id), 403, "M_FORBIDDEN")
    assert await alice.membership(room_id, carol.user_id) is None
    assert (await bob.join(space)).status_code == 200
    response = await bob.join(room_id)
    assert response.status_code == 200, response.text
    content = (
        await alice.get(f"/rooms/{quote(room_id)}/state/m.room.member/{quote(bob.user_id)}")
    ).json()
    assert content["membership"] == "join"
    assert content["join_authorised_via_users_server"] == alice.user_id


async def test_invite_state_names_the_inviter_pitfall_5(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    """matrix_brief 6 #5: stripped invite state must hold the invite event naming the inviter."""
    alice, bob, _ = await trio_users(client, register_user)
    room_id = await alice.create_room(name="Tea", invite=[bob.user_id], is_direct=True)
    sync = (await bob.get("/sync", params={"timeout": "0"})).json()
    events = sync["rooms"]["invite"][room_id]["invite_state"]["events"]
    by_key = {(e["type"], e["state_key"]): e for e in events}
    invite = by_key[("m.room.member", bob.user_id)]
    assert invite["sender"] == alice.user_id
    assert invite["content"]["membership"] == "invite"
    assert invite["content"]["is_direct"] is True
    assert by_key[("m.room.name", "")]["content"] == {"name": "Tea"}
    assert ("m.room.create", "") in by_key and ("m.room.join_rules", "") in by_key


@pytest.mark.parametrize(
    ("room", "status", "errcode"),
    [("!unknown:test.example", 404, "M_NOT_FOUND"), ("bad-id", 400, "M_INVALID_PARAM")],
)
async def test_every_room_endpoint_on_unknown_or_malformed_rooms(
    client: httpx.AsyncClient, register_user: RegisterUser, room: str, status: int, errcode: str
) -> None:
    alice = await make_user(client, register_user, "alice")
    base = f"/rooms/{quote(room)}"
    for response in [
        await alice.post(f"{base}/join"),
        await alice.post(f"{base}/leave"),
        await alice.post(f"{base}/forget"),
        await alice.get(f"{base}/members"),
        await alice.get(f"{base}/joined_members"),
        await alice.get(f"{base}/aliases"),
        await alice.get(f"{base}/state"),
        await alice.post(f"/knock/{quote(room)}"),
        await alice.post(f"/join/{quote(room)}"),
        await client.get(f"/_matrix/client/v3/directory/list/room/{quote(room)}"),
        await alice.put(f"/directory/list/room/{quote(room)}", {"visibility": "public"}),
    ]:
        assert_error(response, status, errcode)
    assert (await alice.get("/joined_rooms")).json() == {"joined_rooms": []}


async def test_members_at_pagination_token(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice, bob, _ = await trio_users(client, register_user)
    room_id = await alice.create_room(preset="public_chat")
    room = f"/rooms/{quote(room_id)}"
    assert (await bob.post(f"{room}/join")).status_code == 200
    # /messages backwards from "now": its end token points before the whole history.
    page = (await alice.get(f"{room}/messages", params={"dir": "b", "limit": "1"})).json()
    before_bob = page["end"]
    members = (await alice.get(f"{room}/members", params={"at": before_bob})).json()["chunk"]
    assert [e["state_key"] for e in members] == [alice.user_id]
