"""matrix-nio against our /sync, /send and /messages: invites, joins, long-poll, echo, history.

nio validates every response against its schemas (matrix_brief 6 #30), so a
missing required field fails here. nio runs on asyncio (aiohttp) in a worker
thread with ``asyncio.run`` while the server keeps serving on the trio thread.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import nio
import trio
from plait_fixtures import RunningServer


async def registered(base_url: str, name: str) -> nio.AsyncClient:
    client = nio.AsyncClient(base_url, name)
    response = await client.register(name, "s3cret pw", device_name="nio")
    assert isinstance(response, nio.RegisterResponse), response
    return client


async def scenario(base_url: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    alice = await registered(base_url, "alice")
    bob = await registered(base_url, "bob")
    try:
        created = await alice.room_create(name="Sync room", invite=[bob.user_id])
        assert isinstance(created, nio.RoomCreateResponse), created
        room_id = created.room_id
        first = await alice.sync(timeout=0, full_state=True)
        assert isinstance(first, nio.SyncResponse), first

        # Bob learns of the invite from his sync (nio builds its room list from it).
        synced = await bob.sync(timeout=0)
        assert isinstance(synced, nio.SyncResponse), synced
        assert room_id in synced.rooms.invite
        out["invite_state"] = [
            (type(e).__name__, getattr(e, "sender", None))
            for e in synced.rooms.invite[room_id].invite_state
        ]
        assert room_id in bob.invited_rooms
        joined = await bob.join(room_id)
        assert isinstance(joined, nio.JoinResponse), joined
        synced = await bob.sync(timeout=0, since=synced.next_batch)
        assert isinstance(synced, nio.SyncResponse), synced
        assert room_id in synced.rooms.join
        out["bob_room_name"] = bob.rooms[room_id].display_name

        # Bob long-polls; Alice sends while he waits.
        async def send_later() -> str:
            await asyncio.sleep(0.3)
            sent = await alice.room_send(
                room_id,
                "m.room.message",
                {"msgtype": "m.text", "body": "hello bob"},
                tx_id=txn_id,
            )
            assert isinstance(sent, nio.RoomSendResponse), sent
            return sent.event_id

        txn_id = str(uuid.uuid4())
        waiting = asyncio.ensure_future(bob.sync(timeout=30_000, since=synced.next_batch))
        event_id = await send_later()
        woke = await waiting
        assert isinstance(woke, nio.SyncResponse), woke
        timeline = woke.rooms.join[room_id].timeline.events
        out["bob_received"] = [(e.event_id, getattr(e, "body", None)) for e in timeline]
        out["event_id"] = event_id

        # Alice's own echo carries her transaction ID (pitfall 9).
        echo = await alice.sync(timeout=0, since=first.next_batch)
        assert isinstance(echo, nio.SyncResponse), echo
        mine = [e for e in echo.rooms.join[room_id].timeline.events if e.event_id == event_id]
        out["echo_txn"] = mine[0].transaction_id if mine else None
        out["txn_id"] = txn_id

        # Bob reads it back through /messages from his sync's prev_batch and from the end.
        history = await bob.room_messages(room_id, start=woke.next_batch, limit=10)
        assert isinstance(history, nio.RoomMessagesResponse), history
        out["history_start"] = history.start
        out["history"] = [getattr(e, "body", None) for e in history.chunk]
        out["sent_from"] = woke.next_batch
        context = await bob.room_context(room_id, event_id, limit=4)
        assert isinstance(context, nio.RoomContextResponse), context
        out["context_event"] = context.event.event_id if context.event else None
        # A lazy-loading filter, as Element uses it.
        lazy = await bob.sync(
            timeout=0,
            full_state=True,
            sync_filter={"room": {"state": {"lazy_load_members": True}, "timeline": {"limit": 5}}},
        )
        assert isinstance(lazy, nio.SyncResponse), lazy
        out["lazy_members"] = sorted(
            e.state_key
            for e in lazy.rooms.join[room_id].state
            if isinstance(e, nio.RoomMemberEvent)
        )
    finally:
        await alice.close()
        await bob.close()
    return out


async def test_nio_invite_join_sync_and_messages(server: RunningServer) -> None:
    out = await trio.to_thread.run_sync(lambda: asyncio.run(scenario(server.base_url)))
    # Stripped invite state names the inviter.
    assert ("InviteMemberEvent", "@alice:test.example") in out["invite_state"]
    assert out["bob_room_name"] == "Sync room"
    assert (out["event_id"], "hello bob") in out["bob_received"]
    assert out["echo_txn"] == out["txn_id"]
    assert out["history_start"] == out["sent_from"]
    assert out["history"][0] == "hello bob"
    assert out["context_event"] == out["event_id"]
    assert "@bob:test.example" in out["lazy_members"]
