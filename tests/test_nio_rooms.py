"""matrix-nio creates rooms, invites, joins, and exchanges a message with our server.

nio runs on asyncio (aiohttp), so each scenario runs in its own thread with
``asyncio.run`` while the server keeps serving on the trio thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import nio
import pytest
import trio
from plait_fixtures import RunningServer

T = TypeVar("T")


async def in_asyncio(fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return await trio.to_thread.run_sync(lambda: asyncio.run(fn()))


async def registered(base_url: str, name: str) -> nio.AsyncClient:
    client = nio.AsyncClient(base_url, name)
    response = await client.register(name, "s3cret pw", device_name="nio")
    assert isinstance(response, nio.RegisterResponse), response
    return client


@pytest.mark.parametrize("direct", [False, True])
async def test_nio_create_invite_join_message(server: RunningServer, direct: bool) -> None:
    async def scenario() -> dict[str, Any]:
        out: dict[str, Any] = {}
        alice = await registered(server.base_url, "alice")
        bob = await registered(server.base_url, "bob")
        try:
            created = await alice.room_create(
                name="Tea",
                topic="Leaves",
                invite=[bob.user_id],
                is_direct=direct,
                preset=nio.RoomPreset.trusted_private_chat if direct else None,
            )
            assert isinstance(created, nio.RoomCreateResponse), created
            room_id = created.room_id
            out["room_id"] = room_id

            # Bob sees the invite in his sync, then joins.
            synced = await bob.sync(timeout=0)
            assert isinstance(synced, nio.SyncResponse), synced
            out["invited"] = list(synced.rooms.invite)
            joined = await bob.join(room_id)
            assert isinstance(joined, nio.JoinResponse), joined
            rooms = await bob.joined_rooms()
            assert isinstance(rooms, nio.JoinedRoomsResponse), rooms
            out["bob_rooms"] = rooms.rooms
            members = await alice.joined_members(room_id)
            assert isinstance(members, nio.JoinedMembersResponse), members
            out["members"] = sorted(m.user_id for m in members.members)
            state = await alice.room_get_state_event(room_id, "m.room.member", bob.user_id)
            assert isinstance(state, nio.RoomGetStateEventResponse), state
            out["bob_member"] = state.content
            name = await bob.room_get_state_event(room_id, "m.room.name")
            assert isinstance(name, nio.RoomGetStateEventResponse), name
            out["name"] = name.content
            full = await bob.room_get_state(room_id)
            assert isinstance(full, nio.RoomGetStateResponse), full
            out["state_types"] = sorted({e["type"] for e in full.events})

            # A message from Alice reaches Bob through sync and /messages.
            sent = await alice.room_send(
                room_id, "m.room.message", {"msgtype": "m.text", "body": "hello bob"}
            )
            assert isinstance(sent, nio.RoomSendResponse), sent
            out["event_id"] = sent.event_id
            synced = await bob.sync(timeout=5000, since=synced.next_batch)
            assert isinstance(synced, nio.SyncResponse), synced
            timeline = synced.rooms.join[room_id].timeline.events
            out["synced_bodies"] = [getattr(e, "body", None) for e in timeline]
            history = await bob.room_messages(room_id, start=synced.next_batch)
            assert isinstance(history, nio.RoomMessagesResponse), history
            out["history_bodies"] = [getattr(e, "body", None) for e in history.chunk]
        finally:
            await alice.close()
            await bob.close()
        return out

    out = await in_asyncio(scenario)
    room_id = out["room_id"]
    alice_id, bob_id = "@alice:test.example", "@bob:test.example"
    assert out["invited"] == [room_id]
    assert out["bob_rooms"] == [room_id]
    assert out["members"] == [alice_id, bob_id]
    assert out["bob_member"]["membership"] == "join"
    assert out["name"] == {"name": "Tea"}
    assert {"m.room.create", "m.room.power_levels", "m.room.topic"} <= set(out["state_types"])
    assert "hello bob" in out["synced_bodies"]
    assert "hello bob" in out["history_bodies"]
    if direct:
        direct_map = await server.hs.account_data.get_global(bob_id, "m.direct")
        assert direct_map == {alice_id: [room_id]}
        direct_map = await server.hs.account_data.get_global(alice_id, "m.direct")
        assert direct_map == {bob_id: [room_id]}


async def test_nio_moderation_aliases_and_profile(server: RunningServer) -> None:
    async def scenario() -> dict[str, Any]:
        out: dict[str, Any] = {}
        alice = await registered(server.base_url, "alice")
        bob = await registered(server.base_url, "bob")
        try:
            created = await alice.room_create(
                alias="lobby", preset=nio.RoomPreset.public_chat, name="Lobby"
            )
            assert isinstance(created, nio.RoomCreateResponse), created
            room_id = created.room_id
            resolved = await bob.room_resolve_alias("#lobby:test.example")
            assert isinstance(resolved, nio.RoomResolveAliasResponse), resolved
            out["resolved"] = (resolved.room_id, resolved.servers)
            put = await alice.room_put_alias("#other:test.example", room_id)
            assert isinstance(put, nio.RoomPutAliasResponse), put
            deleted = await alice.room_delete_alias("#other:test.example")
            assert isinstance(deleted, nio.RoomDeleteAliasResponse), deleted
            visibility = await alice.room_get_visibility(room_id)
            assert isinstance(visibility, nio.RoomGetVisibilityResponse), visibility
            out["visibility"] = visibility.visibility
            topic = await alice.update_room_topic(room_id, "Be nice")
            assert isinstance(topic, nio.RoomPutStateResponse), topic

            assert isinstance(await bob.join(room_id), nio.JoinResponse)
            renamed = await bob.set_displayname("Bobby")
            assert isinstance(renamed, nio.ProfileSetDisplayNameResponse), renamed
            member = await alice.room_get_state_event(room_id, "m.room.member", bob.user_id)
            assert isinstance(member, nio.RoomGetStateEventResponse), member
            out["bob_name"] = member.content.get("displayname")

            kicked = await alice.room_kick(room_id, bob.user_id, reason="calm down")
            assert isinstance(kicked, nio.RoomKickResponse), kicked
            assert isinstance(await bob.join(room_id), nio.JoinResponse)
            banned = await alice.room_ban(room_id, bob.user_id, reason="enough")
            assert isinstance(banned, nio.RoomBanResponse), banned
            refused = await bob.join(room_id)
            out["join_while_banned"] = type(refused).__name__
            unbanned = await alice.room_unban(room_id, bob.user_id)
            assert isinstance(unbanned, nio.RoomUnbanResponse | nio.RoomBanResponse), unbanned
            invited = await alice.room_invite(room_id, bob.user_id)
            assert isinstance(invited, nio.RoomInviteResponse), invited
            left = await bob.room_leave(room_id)
            assert isinstance(left, nio.RoomLeaveResponse), left
            forgot = await bob.room_forget(room_id)
            assert isinstance(forgot, nio.RoomForgetResponse), forgot
        finally:
            await alice.close()
            await bob.close()
        return out

    out = await in_asyncio(scenario)
    assert out["resolved"][1] == ["test.example"]
    assert out["visibility"] == "private"
    assert out["bob_name"] == "Bobby"
    assert out["join_while_banned"] == "JoinError"
