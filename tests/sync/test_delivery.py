"""Delivery guarantee: consecutive incremental syncs see every event once, in stream order.

Ten senders in five rooms send concurrently, so stream positions are allocated
by transactions of different rooms racing each other; three receivers keep
long-polling with the previous ``next_batch``. Every receiver must end up with
every message exactly once, in increasing stream order.
"""

from __future__ import annotations

from typing import Any

import httpx
import sqlalchemy as sa
import trio
from plait_fixtures import RegisterUser, RunningServer
from timeline_helpers import make_room, send, sync

from homeserver.storage.event_tables import events as events_table

SENDERS = 10
MESSAGES = 100
ROOMS = 5
RECEIVERS = 3
# Each room gets 200 messages in all: a timeline never needs to be cut.
NO_GAPS = {"room": {"timeline": {"limit": 1000}}}


async def test_concurrent_senders_every_event_once_in_order(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    hs = server.hs
    senders = [await register_user(client, f"sender{i}") for i in range(SENDERS)]
    receivers = [await register_user(client, f"receiver{i}") for i in range(RECEIVERS)]
    creator = senders[0]["user_id"]
    others = tuple(s["user_id"] for s in senders[1:]) + tuple(r["user_id"] for r in receivers)
    rooms = [await make_room(hs, creator, joined=others) for _ in range(ROOMS)]
    expected = SENDERS * MESSAGES
    starts = [(await sync(client, r["access_token"]))["next_batch"] for r in receivers]
    received: list[list[tuple[str, str]]] = [[] for _ in receivers]

    async def sender(index: int) -> None:
        token = senders[index]["access_token"]
        room_id = rooms[index % ROOMS]
        for n in range(MESSAGES):
            response = await send(client, token, room_id, f"{index}:{n}", txn_id=f"d{n}")
            assert response.status_code == 200, response.text

    async def receiver(index: int) -> None:
        token = receivers[index]["access_token"]
        since = starts[index]
        with trio.fail_after(240):
            while len(received[index]) < expected:
                body = await sync(client, token, since=since, timeout=30_000, filter=NO_GAPS)
                for room in body["rooms"]["join"].values():
                    # A gap would be legal (the client pages back), but not with this limit.
                    assert room["timeline"]["limited"] is False
                    for event in room["timeline"]["events"]:
                        if event["type"] == "m.room.message":
                            received[index].append((event["event_id"], event["content"]["body"]))
                since = body["next_batch"]

    async with trio.open_nursery() as nursery:
        for i in range(RECEIVERS):
            nursery.start_soon(receiver, i)
        async with trio.open_nursery() as senders_nursery:
            for i in range(SENDERS):
                senders_nursery.start_soon(sender, i)

    def orderings(conn: sa.Connection) -> dict[str, int]:
        rows = conn.execute(
            sa.select(events_table.c.event_id, events_table.c.stream_ordering).where(
                events_table.c.type == "m.room.message"
            )
        ).all()
        return {row.event_id: int(row.stream_ordering) for row in rows}

    stream = await hs.database.read(orderings)
    assert len(stream) == expected
    for got in received:
        ids = [event_id for event_id, _ in got]
        assert len(ids) == expected and set(ids) == set(stream)  # all, none twice
        # Timeline order within a room is stream order; across rooms each sync
        # covers a disjoint, increasing range, so per-room order suffices here.
        positions = [stream[i] for i in ids]
        per_sender: dict[str, list[int]] = {}
        for _, body in got:
            per_sender.setdefault(body.split(":")[0], []).append(int(body.split(":")[1]))
        assert all(seq == list(range(MESSAGES)) for seq in per_sender.values())
        by_room: dict[int, list[int]] = {}
        for (_, body), position in zip(got, positions, strict=True):
            by_room.setdefault(int(body.split(":")[0]) % ROOMS, []).append(position)
        assert all(seq == sorted(seq) for seq in by_room.values())


async def test_sync_ranges_are_contiguous(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    """Each sync's events lie in (since, next_batch]: consecutive ranges never overlap."""
    alice = await register_user(client, "alice")
    room_id = await make_room(server.hs, alice["user_id"])
    since = (await sync(client, alice["access_token"]))["next_batch"]
    seen: list[dict[str, Any]] = []
    for i in range(5):
        await send(client, alice["access_token"], room_id, f"x{i}")
        body = await sync(client, alice["access_token"], since=since)
        seen.extend(body["rooms"]["join"][room_id]["timeline"]["events"])
        assert int(body["next_batch"][1:].split("_")[0]) > int(since[1:].split("_")[0])
        since = body["next_batch"]
    assert [e["content"]["body"] for e in seen] == [f"x{i}" for i in range(5)]
