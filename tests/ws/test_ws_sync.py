"""The /sync stream over a WebSocket: same events, same order, same tokens as long-poll."""

from __future__ import annotations

import json
from typing import Any

import httpx
import trio
from plait_fixtures import RegisterUser, RunningServer
from plait_ws_client import (
    WAIT,
    auth,
    connect,
    http_send,
    make_room,
    messages_only,
    room_timeline,
)

# Enough for every message of a test in one response: no "limited" timeline gaps.
BIG_TIMELINE = {"room": {"timeline": {"limit": 100}}}
BIG_TIMELINE_JSON = json.dumps(BIG_TIMELINE)


async def long_poll_messages(
    client: httpx.AsyncClient, user: dict[str, Any], room_id: str, count: int
) -> list[str]:
    """Event IDs of ``count`` messages read through GET /sync (the long-poll transport)."""
    seen: list[str] = []
    since: str | None = None
    with trio.fail_after(WAIT * 2):
        while len(seen) < count:
            params = {"filter": BIG_TIMELINE_JSON}
            if since:
                params["timeout"] = "10000"
            if since:
                params["since"] = since
            response = await client.get(
                "/_matrix/client/v3/sync", params=params, headers=auth(user)
            )
            assert response.status_code == 200, response.text
            body = response.json()
            since = body["next_batch"]
            seen += [e["event_id"] for e in messages_only(room_timeline(body, room_id))]
    return seen


async def test_two_ws_users_and_a_long_poll_user_see_the_same_order(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    carol = await register_user(client, "carol")
    room_id = await make_room(client, alice, bob, carol)
    rounds = 6
    seen: dict[str, list[str]] = {}
    sent: dict[str, list[str]] = {"alice": [], "bob": []}

    async def ws_user(name: str, user: dict[str, Any]) -> None:
        async with connect(server, user["access_token"]) as ws:
            assert await ws.ok("subscribe", since=None, filter=BIG_TIMELINE) == {}
            await ws.next_sync()
            for i in range(rounds):
                result = await ws.ok(
                    "send",
                    room_id=room_id,
                    event_type="m.room.message",
                    txn_id=f"{name}-{i}",
                    content={"msgtype": "m.text", "body": f"{name} {i}"},
                )
                sent[name].append(result["event_id"])
            events = []
            while len(events) < 2 * rounds:
                events += messages_only(room_timeline(await ws.next_sync(), room_id))
            seen[name] = [e["event_id"] for e in events]

    async def poll_user() -> None:
        seen["carol"] = await long_poll_messages(client, carol, room_id, 2 * rounds)

    with trio.fail_after(WAIT * 3):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ws_user, "alice", alice)
            nursery.start_soon(ws_user, "bob", bob)
            nursery.start_soon(poll_user)
    assert len(seen["alice"]) == 2 * rounds
    assert seen["alice"] == seen["bob"] == seen["carol"]
    assert set(seen["alice"]) == set(sent["alice"]) | set(sent["bob"])
    # Each sender's own messages appear in the order they were sent.
    for name in ("alice", "bob"):
        assert [e for e in seen["carol"] if e in sent[name]] == sent[name]


async def test_resume_from_last_next_batch_loses_and_repeats_nothing(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    room_id = await make_room(client, alice, bob)
    total = 30
    sent: list[str] = []
    received: list[str] = []

    async def sender() -> None:
        for i in range(total):
            sent.append(await http_send(client, alice, room_id, f"t{i}", f"message {i}"))

    with trio.fail_after(WAIT * 3):
        async with trio.open_nursery() as nursery:
            async with connect(server, bob["access_token"]) as ws:
                await ws.ok("subscribe", since=None, filter=BIG_TIMELINE)
                await ws.next_sync()
                nursery.start_soon(sender)
                # Read part of the stream, then drop the socket mid-stream.
                while len(received) < total // 3:
                    body = await ws.next_sync()
                    received += [e["event_id"] for e in messages_only(room_timeline(body, room_id))]
                resume_from = ws.next_batch
                await ws.ws.aclose()
            assert resume_from is not None
            # The sender keeps going while bob is away; bob resumes with his last token.
            async with connect(server, bob["access_token"]) as ws:
                await ws.ok("subscribe", since=resume_from, filter=BIG_TIMELINE)
                while len(received) < total:
                    body = await ws.next_sync()
                    assert body["next_batch"] != resume_from
                    received += [e["event_id"] for e in messages_only(room_timeline(body, room_id))]
    assert received == sent


async def test_ws_and_long_poll_tokens_are_interchangeable(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    room_id = await make_room(client, alice, bob)
    first = await http_send(client, alice, room_id, "a", "over http")
    async with connect(server, bob["access_token"]) as ws:
        await ws.ok("subscribe", since=None)
        initial = await ws.next_sync()
        assert first in [e["event_id"] for e in room_timeline(initial, room_id)]
        token = initial["next_batch"]
    second = await http_send(client, alice, room_id, "b", "after the socket")
    response = await client.get(
        "/_matrix/client/v3/sync", params={"since": token, "timeout": "10000"}, headers=auth(bob)
    )
    body = response.json()
    assert [e["event_id"] for e in messages_only(room_timeline(body, room_id))] == [second]
    third = await http_send(client, alice, room_id, "c", "back to the socket")
    async with connect(server, bob["access_token"]) as ws:
        await ws.ok("subscribe", since=body["next_batch"])
        events = await ws.timeline_until(room_id, 1)
        assert [e["event_id"] for e in messages_only(events)] == [third]
