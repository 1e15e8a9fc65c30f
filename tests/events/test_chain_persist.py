"""Chains of messages written together (persist_message_chain_txn), checked against the rows.

The batch path writes a chain of messages with one statement per table; these
tests read the rows back through a fresh store (no cache) and compare them with
what writing the events one by one means: consecutive stream orderings in chain
order, state groups unchanged, one edge per event, the last event the only
extremity, relations recorded, and a stale extremity refused with nothing written.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import sqlalchemy as sa
import trio
from dag_checks import ALICE, SERVER_NAME, SIGNING_KEY, build_room, table_counts

from homeserver.events.creation import EventCreationService
from homeserver.storage.database import Database
from homeserver.storage.event_persist import is_chain_message, persist_message_chain_txn
from homeserver.storage.event_tables import event_auth_edges, event_edges
from homeserver.storage.events import (
    EventStore,
    EventToPersist,
    ExtremitiesChanged,
    StateBefore,
    StoredEvent,
)
from homeserver.storage.relation_queries import has_annotation


def count_batches(store: EventStore, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    sizes: list[int] = []
    original = store.persist_batch

    async def persist_batch(batch: Any) -> Any:
        items = list(batch)
        sizes.append(len(items))
        return await original(items)

    monkeypatch.setattr(store, "persist_batch", persist_batch)
    return sizes


async def test_a_chain_of_messages_reads_back_as_if_written_one_by_one(
    service: EventCreationService,
    store: EventStore,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    room_id, history = await build_room(service, "10")
    sizes = count_batches(store, monkeypatch)
    sent: list[StoredEvent] = []

    async def send(i: int) -> None:
        sent.append(
            await service.create_and_persist_event(
                room_id, "m.room.message", ALICE, {"body": str(i)}
            )
        )

    async with trio.open_nursery() as nursery:
        for i in range(12):
            nursery.start_soon(send, i)
    assert max(sizes) > 1

    fresh = EventStore(database)
    stored = await fresh.get_events([e.event_id for e in sent])
    ordered = sorted(stored.values(), key=lambda e: e.stream_ordering)
    # What the senders were told is what the rows say.
    assert {e.event_id: e.stream_ordering for e in sent} == {
        e.event_id: e.stream_ordering for e in ordered
    }
    positions = [e.stream_ordering for e in ordered]
    assert positions == list(range(positions[0], positions[0] + 12))
    assert positions[0] == history[-1].stream_ordering + 1
    group = history[-1].state_group_after
    for previous, event in itertools.pairwise([history[-1], *ordered]):
        assert event.pdu["prev_events"] == [previous.event_id]
        assert event.depth == previous.depth + 1
        assert event.state_group_before == event.state_group_after == group
    assert await fresh.get_forward_extremities(room_id) == [ordered[-1].event_id]

    def edges(conn: sa.Connection) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
        ids = [e.event_id for e in ordered]
        prevs: dict[str, set[str]] = {}
        auths: dict[str, set[str]] = {}
        for row in conn.execute(sa.select(event_edges).where(event_edges.c.event_id.in_(ids))):
            prevs.setdefault(row.event_id, set()).add(row.prev_event_id)
        rows = conn.execute(sa.select(event_auth_edges).where(event_auth_edges.c.event_id.in_(ids)))
        for row in rows:
            auths.setdefault(row.event_id, set()).add(row.auth_event_id)
        return prevs, auths

    prevs, auths = await database.read(edges)
    for event in ordered:
        assert prevs[event.event_id] == set(event.pdu["prev_events"])
        assert auths[event.event_id] == set(event.pdu["auth_events"])
    counts = await table_counts(fresh)
    assert counts["stream_position"] == ordered[-1].stream_ordering


async def test_reactions_in_a_chain_are_recorded_as_relations(
    service: EventCreationService, store: EventStore, database: Database
) -> None:
    room_id, _ = await build_room(service, "10")
    target = await service.create_and_persist_event(
        room_id, "m.room.message", ALICE, {"body": "target"}
    )
    keys = [f"k{i}" for i in range(6)]

    async def react(key: str) -> None:
        content = {
            "m.relates_to": {"rel_type": "m.annotation", "event_id": target.event_id, "key": key}
        }
        await service.create_and_persist_event(room_id, "m.reaction", ALICE, content)

    async with trio.open_nursery() as nursery:
        for key in keys:
            nursery.start_soon(react, key)
    for key in [*keys, "absent"]:
        found = await database.read(
            lambda conn, key=key: has_annotation(conn, target.event_id, ALICE, "m.reaction", key)
        )
        assert found == (key != "absent")


async def test_a_chain_on_a_stale_extremity_writes_nothing(
    service: EventCreationService, store: EventStore
) -> None:
    room_id, history = await build_room(service, "10")
    moved = await service.create_and_persist_event(room_id, "m.room.message", ALICE, {"body": "m"})
    before_counts = await table_counts(store)
    tip = history[-1]
    assert tip.state_group_after is not None
    state = await store.get_state_group(tip.state_group_after)
    chain: list[tuple[EventToPersist, int]] = []
    prev = tip.event_id
    for i in range(3):
        pdu = {
            "room_id": room_id,
            "type": "m.room.message",
            "sender": ALICE,
            "content": {"body": str(i)},
            "prev_events": [prev],
            "auth_events": [],
            "depth": tip.depth + 1 + i,
            "origin_server_ts": 0,
        }
        event = EventToPersist(
            event_id=f"$stale{i}",
            pdu=pdu,
            state_before=StateBefore(state=state, group=tip.state_group_after),
            local=True,
            expect_prevs_are_extremities=True,
        )
        assert is_chain_message(event, tip.state_group_after)
        chain.append((event, tip.state_group_after))
        prev = event.event_id
    with pytest.raises(ExtremitiesChanged):
        await store.database.run(lambda conn: persist_message_chain_txn(conn, chain))
    assert await table_counts(store) == before_counts
    assert await store.get_forward_extremities(room_id) == [moved.event_id]


def test_only_plain_messages_on_one_prev_event_qualify() -> None:
    base = {
        "room_id": "!r:x",
        "type": "m.room.message",
        "sender": ALICE,
        "content": {},
        "prev_events": ["$a"],
        "auth_events": [],
        "depth": 2,
        "origin_server_ts": 0,
    }
    before = StateBefore(state={}, group=1)

    def event(**changes: Any) -> EventToPersist:
        pdu = {**base, **changes.pop("pdu", {})}
        fields: dict[str, Any] = {"state_before": before, "local": True, **changes}
        return EventToPersist(event_id="$e", pdu=pdu, **fields)

    assert is_chain_message(event(), 1)
    assert not is_chain_message(event(), None)
    assert not is_chain_message(event(pdu={"state_key": ""}), 1)
    assert not is_chain_message(event(pdu={"prev_events": ["$a", "$b"]}), 1)
    assert is_chain_message(event(pdu={"prev_events": ["$a", "$a"]}), 1)
    assert not is_chain_message(event(local=False), 1)
    assert not is_chain_message(event(rejected_reason="auth"), 1)
    assert not is_chain_message(event(soft_failed=True), 1)
    assert not is_chain_message(event(new_current_state="after"), 1)
    assert not is_chain_message(event(state_before=None), 1)


async def test_two_writers_with_stale_tips_stay_one_chain(
    store: EventStore, service: EventCreationService
) -> None:
    """Another process (a second service on the same database) moves the room meanwhile."""
    room_id, history = await build_room(service, "10")
    other = EventCreationService(
        store, server_name=SERVER_NAME, signing_key=SIGNING_KEY, key_id="ed25519:test"
    )
    sent: list[StoredEvent] = []

    async def send(writer: EventCreationService, i: int) -> None:
        sent.append(
            await writer.create_and_persist_event(
                room_id, "m.room.message", ALICE, {"body": str(i)}
            )
        )

    for round_ in range(3):
        async with trio.open_nursery() as nursery:
            for i in range(6):
                nursery.start_soon(send, service if i % 2 else other, round_ * 10 + i)
    ordered = sorted(sent, key=lambda e: e.stream_ordering)
    for previous, event in itertools.pairwise([history[-1], *ordered]):
        assert event.pdu["prev_events"] == [previous.event_id]
    assert await store.get_forward_extremities(room_id) == [ordered[-1].event_id]
