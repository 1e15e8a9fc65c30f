"""Typing, receipts and presence reach other users through /sync (the read APIs in use)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import trio
from ephemeral_helpers import V3, User, make_room, make_user, send_message
from plait_fixtures import RegisterUser, RunningServer


async def sync(
    client: httpx.AsyncClient, user: User, since: str | None = None, timeout: int = 0
) -> dict[str, Any]:
    params: dict[str, Any] = {"timeout": timeout}
    if since is not None:
        params["since"] = since
    r = await client.get(f"{V3}/sync", params=params, headers=user.headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def ephemeral(body: dict[str, Any], room_id: str, event_type: str) -> list[dict[str, Any]]:
    room = body.get("rooms", {}).get("join", {}).get(room_id, {})
    events = room.get("ephemeral", {}).get("events", [])
    return [e for e in events if e["type"] == event_type]


def presence_of(body: dict[str, Any], user_id: str) -> list[dict[str, Any]]:
    events = body.get("presence", {}).get("events", [])
    return [e["content"] for e in events if e["sender"] == user_id]


async def test_typing_and_receipts_in_incremental_sync(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    hs = server.hs
    alice = await make_user(client, register_user, "alice")
    bob = await make_user(client, register_user, "bob")
    room = await make_room(hs, alice.user_id, bob.user_id)
    message = await send_message(hs, room, alice.user_id)
    since = (await sync(client, bob))["next_batch"]

    r = await client.put(
        f"{V3}/rooms/{quote(room)}/typing/{quote(alice.user_id)}",
        json={"typing": True, "timeout": 20000},
        headers=alice.headers,
    )
    assert r.status_code == 200
    r = await client.post(
        f"{V3}/rooms/{quote(room)}/receipt/m.read/{quote(message)}", json={}, headers=alice.headers
    )
    assert r.status_code == 200
    r = await client.post(
        f"{V3}/rooms/{quote(room)}/receipt/m.read.private/{quote(message)}",
        json={},
        headers=bob.headers,
    )
    assert r.status_code == 200

    body = await sync(client, bob, since)
    assert ephemeral(body, room, "m.typing") == [
        {"type": "m.typing", "content": {"user_ids": [alice.user_id]}}
    ]
    (receipt,) = ephemeral(body, room, "m.receipt")
    assert set(receipt["content"][message]) == {"m.read", "m.read.private"}
    assert alice.user_id in receipt["content"][message]["m.read"]
    assert bob.user_id in receipt["content"][message]["m.read.private"]

    # Alice's own sync never shows Bob's private receipt.
    alice_body = await sync(client, alice)
    for event in ephemeral(alice_body, room, "m.receipt"):
        for by_type in event["content"].values():
            assert "m.read.private" not in by_type

    # Nothing new: the next incremental sync has no ephemeral events for the room.
    again = await sync(client, bob, body["next_batch"])
    assert ephemeral(again, room, "m.typing") == []
    assert ephemeral(again, room, "m.receipt") == []


async def test_a_waiting_sync_wakes_for_typing(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    hs = server.hs
    alice = await make_user(client, register_user, "alice")
    bob = await make_user(client, register_user, "bob")
    room = await make_room(hs, alice.user_id, bob.user_id)
    since = (await sync(client, bob))["next_batch"]
    result: dict[str, Any] = {}

    async def wait_for_sync() -> None:
        result.update(await sync(client, bob, since, timeout=30_000))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait_for_sync)
        await trio.sleep(0.2)  # let the sync start waiting (correctness does not depend on it)
        r = await client.put(
            f"{V3}/rooms/{quote(room)}/typing/{quote(alice.user_id)}",
            json={"typing": True},
            headers=alice.headers,
        )
        assert r.status_code == 200
    assert ephemeral(result, room, "m.typing")[0]["content"]["user_ids"] == [alice.user_id]


async def test_presence_in_sync_only_for_users_sharing_a_room(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    hs = server.hs
    alice = await make_user(client, register_user, "alice")
    bob = await make_user(client, register_user, "bob")
    carol = await make_user(client, register_user, "carol")
    await make_room(hs, alice.user_id, bob.user_id)
    r = await client.put(
        f"{V3}/presence/{quote(alice.user_id)}/status",
        json={"presence": "online", "status_msg": "here"},
        headers=alice.headers,
    )
    assert r.status_code == 200
    bob_body = await sync(client, bob)
    (content,) = presence_of(bob_body, alice.user_id)
    assert content["presence"] == "online" and content["status_msg"] == "here"
    # Syncing made Bob online too, and he sees himself.
    assert presence_of(bob_body, bob.user_id)[0]["presence"] == "online"
    assert presence_of(await sync(client, carol), alice.user_id) == []
    # Idle: Bob's next sync carries Alice's change to unavailable.
    hs.clock.advance(301)
    assert await hs.presence.check_timeouts() >= 1
    later = await sync(client, bob, bob_body["next_batch"])
    assert [c["presence"] for c in presence_of(later, alice.user_id)] == ["unavailable"]
