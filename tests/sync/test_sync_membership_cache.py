"""The kept membership rows (``homeserver/sync/memberships.py``) never hide a change.

Each test warms the cache with syncs first, then changes the user's
membership through the HTTP API (invite, join, leave, kick, ban, a new room)
and checks that the very next ``/sync`` shows it, including a long-poll that
was already waiting when the change happened. Over SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import httpx
from plait_fixtures import RegisterUser, RunningServer
from timeline_helpers import V3, bearer, held_sync, send_ok, sync


async def _post(client: httpx.AsyncClient, user: dict[str, Any], path: str, body: Any) -> Any:
    response = await client.post(f"{V3}{path}", headers=bearer(user["access_token"]), json=body)
    assert response.status_code == 200, response.text
    return response.json()


async def _create(client: httpx.AsyncClient, user: dict[str, Any], **body: Any) -> str:
    room_id: str = (await _post(client, user, "/createRoom", body))["room_id"]
    return room_id


async def _warm(client: httpx.AsyncClient, user: dict[str, Any]) -> str:
    """An initial sync and two incremental ones: the user's rows are kept."""
    token: str = (await sync(client, user["access_token"]))["next_batch"]
    for _ in range(2):
        token = (await sync(client, user["access_token"], since=token))["next_batch"]
    return token


def _membership(body: dict[str, Any], section: str, room_id: str) -> str | None:
    room = body["rooms"][section].get(room_id)
    if room is None:
        return None
    events = room["invite_state"]["events"] if section == "invite" else room["timeline"]["events"]
    own = [e for e in events if e["type"] == "m.room.member"]
    return str(own[-1]["content"]["membership"]) if own else ""


async def test_membership_changes_after_a_warm_cache(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    bob_id = bob["user_id"]
    room_id = await _create(client, alice, preset="private_chat")
    token = await _warm(client, bob)

    await _post(client, alice, f"/rooms/{room_id}/invite", {"user_id": bob_id})
    body = await sync(client, bob["access_token"], since=token)
    assert _membership(body, "invite", room_id) == "invite"

    await _post(client, bob, f"/rooms/{room_id}/join", {})
    body = await sync(client, bob["access_token"], since=body["next_batch"])
    joined = body["rooms"]["join"][room_id]
    assert room_id not in body["rooms"]["invite"]
    # Newly joined: the room's state comes along.
    state_types = {e["type"] for e in joined["state"]["events"] + joined["timeline"]["events"]}
    assert "m.room.create" in state_types

    message = await send_ok(client, alice["access_token"], room_id, "hello")
    body = await sync(client, bob["access_token"], since=body["next_batch"])
    events = body["rooms"]["join"][room_id]["timeline"]["events"]
    assert [e["event_id"] for e in events] == [message]

    await _post(client, alice, f"/rooms/{room_id}/kick", {"user_id": bob_id})
    body = await sync(client, bob["access_token"], since=body["next_batch"])
    assert room_id not in body["rooms"]["join"]
    assert _membership(body, "leave", room_id) == "leave"

    # Back in, then banned.
    await _post(client, alice, f"/rooms/{room_id}/invite", {"user_id": bob_id})
    await _post(client, bob, f"/rooms/{room_id}/join", {})
    body = await sync(client, bob["access_token"], since=body["next_batch"])
    assert room_id in body["rooms"]["join"]
    await _post(client, alice, f"/rooms/{room_id}/ban", {"user_id": bob_id})
    body = await sync(client, bob["access_token"], since=body["next_batch"])
    assert room_id not in body["rooms"]["join"]
    assert _membership(body, "leave", room_id) == "ban"

    # A new room the user creates, then leaves.
    own = await _create(client, bob)
    body = await sync(client, bob["access_token"], since=body["next_batch"])
    assert own in body["rooms"]["join"]
    await _post(client, bob, f"/rooms/{own}/leave", {})
    body = await sync(client, bob["access_token"], since=body["next_batch"])
    assert own not in body["rooms"]["join"]
    assert _membership(body, "leave", own) == "leave"
    # And nothing comes again.
    again = await sync(client, bob["access_token"], since=body["next_batch"])
    assert again["rooms"] == {"join": {}, "invite": {}, "leave": {}, "knock": {}}


async def test_membership_changes_wake_a_waiting_sync(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    bob_id = bob["user_id"]
    token = await _warm(client, bob)

    # Invited to a new room while waiting.
    room_id = ""

    async def create_with_invite() -> None:
        nonlocal room_id
        room_id = await _create(client, alice, preset="private_chat", invite=[bob_id])

    body = await held_sync(client, bob, token, create_with_invite)
    assert _membership(body, "invite", room_id) == "invite"

    async def join_from_another_request() -> None:
        await _post(client, bob, f"/rooms/{room_id}/join", {})

    body = await held_sync(client, bob, body["next_batch"], join_from_another_request)
    assert room_id in body["rooms"]["join"]
    assert room_id not in body["rooms"]["invite"]

    # Joined now: the next waiting sync listens to the room.
    message = ""

    async def alice_sends() -> None:
        nonlocal message
        message = await send_ok(client, alice["access_token"], room_id, "hi")

    body = await held_sync(client, bob, body["next_batch"], alice_sends)
    events = body["rooms"]["join"][room_id]["timeline"]["events"]
    assert [e["event_id"] for e in events] == [message]

    async def kick() -> None:
        await _post(client, alice, f"/rooms/{room_id}/kick", {"user_id": bob_id})

    body = await held_sync(client, bob, body["next_batch"], kick)
    assert room_id not in body["rooms"]["join"]
    assert _membership(body, "leave", room_id) == "leave"

    # Kicked: alice's messages no longer reach him, an invite and ban still do.
    await send_ok(client, alice["access_token"], room_id, "after the kick")
    quiet = await sync(client, bob["access_token"], since=body["next_batch"])
    assert quiet["rooms"]["join"] == {} and quiet["rooms"]["leave"] == {}

    async def ban() -> None:
        await _post(client, alice, f"/rooms/{room_id}/ban", {"user_id": bob_id})

    body = await held_sync(client, bob, quiet["next_batch"], ban)
    assert _membership(body, "leave", room_id) == "ban"
