"""Many concurrent PUT /send into one room (group commit), end to end over HTTP.

Every transaction ID yields exactly one event, however many retries race, and
the room's history stays one chain in stream order.
"""

from __future__ import annotations

import itertools
import json

import httpx
import sqlalchemy as sa
import trio
from plait_fixtures import RegisterUser, RunningServer
from timeline_helpers import make_room, send

from homeserver.storage.event_tables import events as events_table
from homeserver.storage.transactions import event_txn_ids

SENDERS = ("alice", "bob", "carol")


async def test_concurrent_sends_and_retries_persist_each_transaction_once(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    users = {name: await register_user(client, name) for name in SENDERS}
    ids = {name: f"@{name}:test.example" for name in SENDERS}
    room_id = await make_room(server.hs, ids["alice"], joined=(ids["bob"], ids["carol"]))
    answers: dict[tuple[str, str], set[str]] = {}

    async def sender(name: str) -> None:
        token = users[name]["access_token"]

        async def put(txn: str) -> None:
            response = await send(client, token, room_id, f"{name} {txn}", txn_id=txn)
            assert response.status_code == 200, response.text
            answers.setdefault((name, txn), set()).add(response.json()["event_id"])

        async with trio.open_nursery() as nursery:
            for n in range(15):
                # Every third transaction is sent three times at once (client retries).
                for _ in range(3 if n % 3 == 0 else 1):
                    nursery.start_soon(put, f"txn{n}")

    async with trio.open_nursery() as nursery:
        for name in SENDERS:
            nursery.start_soon(sender, name)

    # One event per transaction ID, the same one for every retry.
    assert len(answers) == 45
    assert all(len(event_ids) == 1 for event_ids in answers.values())

    def read(conn: sa.Connection) -> tuple[list[sa.Row[tuple[str, str]]], int]:
        rows = conn.execute(
            sa.select(events_table.c.event_id, events_table.c.json)
            .where(events_table.c.room_id == room_id, events_table.c.type == "m.room.message")
            .order_by(events_table.c.stream_ordering)
        ).all()
        mapped = conn.execute(
            sa.select(sa.func.count())
            .select_from(event_txn_ids)
            .where(event_txn_ids.c.event_id.in_([row.event_id for row in rows]))
        ).scalar_one()
        return list(rows), int(mapped)

    rows, mapped = await server.hs.database.read(read)
    stored = {row.event_id: json.loads(row.json) for row in rows}
    assert len(stored) == 45 and mapped == 45
    assert set(stored) == {next(iter(ids_)) for ids_ in answers.values()}
    for (name, txn), event_ids in answers.items():
        pdu = stored[next(iter(event_ids))]
        assert (pdu["sender"], pdu["content"]["body"]) == (ids[name], f"{name} {txn}")
    # One chain in stream order: each message's only prev event is the one before.
    for previous, row in itertools.pairwise(rows):
        pdu = stored[row.event_id]
        assert pdu["prev_events"] == [previous.event_id]
        assert pdu["depth"] == stored[previous.event_id]["depth"] + 1
    extremities = await server.hs.event_store.get_forward_extremities(room_id)
    assert extremities == [rows[-1].event_id]
