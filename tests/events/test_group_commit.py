"""Group commit: concurrent sends to one room persisted as one chain per transaction.

Every send persists exactly once, the chain stays linear with consecutive
depths and increasing stream orderings, state follows the chain, and an event
that fails (auth, a hook in its transaction) fails alone.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
import sqlalchemy as sa
import trio
import trio.testing
from dag_checks import ALICE, BOB, build_room, fold_state, table_counts

from homeserver.errors import MatrixError
from homeserver.events.creation import EventCreationService
from homeserver.storage.event_tables import events as events_table
from homeserver.storage.events import EventStore, StoredEvent

CAROL = "@carol:test.example"


def count_batches(store: EventStore, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the size of every persist_batch call."""
    sizes: list[int] = []
    original = store.persist_batch

    async def persist_batch(batch: Any) -> Any:
        items = list(batch)
        sizes.append(len(items))
        return await original(items)

    monkeypatch.setattr(store, "persist_batch", persist_batch)
    return sizes


def assert_linear(events: list[StoredEvent]) -> list[StoredEvent]:
    """One chain in stream order: each event cites the one before; depths consecutive."""
    ordered = sorted(events, key=lambda e: e.stream_ordering)
    for previous, event in itertools.pairwise(ordered):
        assert event.pdu["prev_events"] == [previous.event_id]
        assert event.depth == previous.depth + 1
    return ordered


async def assert_state_follows_chain(
    store: EventStore, room_id: str, history: list[StoredEvent]
) -> None:
    assert await store.get_forward_extremities(room_id) == [history[-1].event_id]
    assert await store.get_current_state_ids(room_id) == fold_state(history)
    for index, event in enumerate(history):
        assert await store.get_state_at_event(event.event_id) == fold_state(history[:index])
        after = await store.get_state_at_event(event.event_id, before=False)
        assert after == fold_state(history[: index + 1])


@pytest.mark.parametrize("version", ["10", "12"])
async def test_concurrent_sends_share_transactions_and_stay_one_chain(
    service: EventCreationService,
    store: EventStore,
    version: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    room_id, history = await build_room(service, version)
    sizes = count_batches(store, monkeypatch)
    sent: dict[int, StoredEvent] = {}

    async def send(i: int) -> None:
        sent[i] = await service.create_and_persist_event(
            room_id, "m.room.message", ALICE, {"body": str(i)}
        )

    async with trio.open_nursery() as nursery:
        for i in range(40):
            nursery.start_soon(send, i)

    # Each sender got its own event, and every event was written once.
    assert sorted(sent) == list(range(40))
    assert all(e.pdu["content"]["body"] == str(i) for i, e in sent.items())
    assert sum(sizes) == 40
    assert len(sizes) < 40 and max(sizes) > 1
    ordered = assert_linear([history[-1], *sent.values()])
    assert (await table_counts(store))["stream_position"] == ordered[-1].stream_ordering
    await assert_state_follows_chain(store, room_id, [*history, *ordered[1:]])


async def test_state_events_in_a_batch_chain_their_state(
    service: EventCreationService, store: EventStore
) -> None:
    """Joins, topic changes and messages of the new members, all queued at once."""
    room_id, history = await build_room(service, "10")
    sent: list[StoredEvent] = []

    async def join_and_talk(user: str) -> None:
        sent.append(
            await service.create_and_persist_event(
                room_id, "m.room.member", user, {"membership": "join"}, user
            )
        )
        sent.append(
            await service.create_and_persist_event(
                room_id, "m.room.message", user, {"body": f"hi from {user}"}
            )
        )

    async def topic(i: int) -> None:
        sent.append(
            await service.create_and_persist_event(
                room_id, "m.room.topic", ALICE, {"topic": f"t{i}"}, ""
            )
        )

    async with trio.open_nursery() as nursery:
        for n in range(8):
            nursery.start_soon(join_and_talk, f"@u{n}:test.example")
            nursery.start_soon(topic, n)

    assert len(sent) == 24
    ordered = assert_linear([history[-1], *sent])
    await assert_state_follows_chain(store, room_id, [*history, *ordered[1:]])


async def test_an_event_failing_auth_fails_alone(
    service: EventCreationService, store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Carol is not in the room: her sends are refused, the others' land in the same batches."""
    room_id, history = await build_room(service, "11")
    history.append(
        await service.create_and_persist_event(
            room_id, "m.room.member", BOB, {"membership": "join"}, BOB
        )
    )
    sizes = count_batches(store, monkeypatch)
    sent: list[StoredEvent] = []
    refused: list[int] = []

    async def send(i: int) -> None:
        sender = [ALICE, BOB, CAROL][i % 3]
        try:
            sent.append(
                await service.create_and_persist_event(
                    room_id, "m.room.message", sender, {"body": str(i)}
                )
            )
        except MatrixError as exc:
            assert exc.status == 403
            refused.append(i)

    async with trio.open_nursery() as nursery:
        for i in range(30):
            nursery.start_soon(send, i)

    assert sorted(refused) == [i for i in range(30) if i % 3 == 2]
    assert len(sent) == 20 and sum(sizes) == 20
    assert max(sizes) > 1
    ordered = assert_linear([history[-1], *sent])
    await assert_state_follows_chain(store, room_id, [*history, *ordered[1:]])


async def test_a_failing_transaction_hook_fails_only_its_event(
    service: EventCreationService, store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch's transaction fails; it is retried one event at a time to isolate the bad one."""
    room_id, history = await build_room(service, "10")
    sizes = count_batches(store, monkeypatch)
    sent: dict[int, StoredEvent] = {}
    recorded: dict[int, Any] = {}
    failed: list[int] = []

    def hook_for(i: int) -> Any:
        def hook(conn: sa.Connection, event: StoredEvent) -> str:
            if i == 7:
                raise RuntimeError("simulated failure in the event's transaction")
            return f"hook {i} saw {event.event_id}"

        return hook

    async def send(i: int) -> None:
        try:
            event, recorded[i] = await service.send_event(
                room_id, "m.room.message", ALICE, {"body": str(i)}, in_txn=hook_for(i)
            )
            sent[i] = event
        except RuntimeError:
            failed.append(i)

    async with trio.open_nursery() as nursery:
        for i in range(20):
            nursery.start_soon(send, i)

    assert failed == [7]
    assert sorted(sent) == [i for i in range(20) if i != 7]
    assert all(recorded[i] == f"hook {i} saw {e.event_id}" for i, e in sent.items())
    # Each surviving event was committed exactly once.
    assert sum(sizes) >= 19
    stored = await store.get_events([e.event_id for e in sent.values()])
    assert len(stored) == 19
    ordered = assert_linear([history[-1], *sent.values()])
    assert [e.pdu["content"]["body"] for e in ordered[1:]].count("7") == 0
    await assert_state_follows_chain(store, room_id, [*history, *ordered[1:]])
    # Nothing half-written: a fresh send continues the chain with the next position.
    after = await service.create_and_persist_event(room_id, "m.room.message", ALICE, {"body": "x"})
    assert after.pdu["prev_events"] == [ordered[-1].event_id]
    assert after.stream_ordering == ordered[-1].stream_ordering + 1


async def test_cancelled_senders_lose_nothing_of_the_others(
    service: EventCreationService, store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sender whose task writes a batch is cancelled mid-write, another while queued.

    The batch is finished for the others; the queued one is withdrawn, never written.
    """
    room_id, history = await build_room(service, "10")
    entered, release = trio.Event(), trio.Event()
    original = store.persist_batch

    async def held_persist(batch: Any) -> Any:
        if not entered.is_set():
            entered.set()
            await release.wait()
        return await original(batch)

    monkeypatch.setattr(store, "persist_batch", held_persist)
    sent: dict[str, StoredEvent] = {}
    scopes: dict[str, trio.CancelScope] = {}

    async def send(name: str) -> None:
        with trio.CancelScope() as scopes[name]:
            sent[name] = await service.create_and_persist_event(
                room_id, "m.room.message", ALICE, {"body": name}
            )

    async with trio.open_nursery() as nursery:
        nursery.start_soon(send, "first")
        await entered.wait()  # "first" holds the lock and is writing its batch
        for i in range(5):
            nursery.start_soon(send, f"queued {i}")
        nursery.start_soon(send, "withdrawn")
        await trio.testing.wait_all_tasks_blocked()
        scopes["first"].cancel()
        scopes["withdrawn"].cancel()
        await trio.testing.wait_all_tasks_blocked()
        release.set()

    assert "withdrawn" not in sent
    assert all(f"queued {i}" in sent for i in range(5))

    def bodies(conn: sa.Connection) -> list[str]:
        rows = conn.execute(
            sa.select(events_table.c.json)
            .where(
                events_table.c.room_id == room_id,
                events_table.c.stream_ordering > history[-1].stream_ordering,
            )
            .order_by(events_table.c.stream_ordering)
        ).all()
        return [json.loads(row.json)["content"]["body"] for row in rows]

    stored = await store.database.read(bodies)
    # trio starts the queued tasks in no fixed order; each is written once.
    assert stored[0] == "first"
    assert sorted(stored[1:]) == [f"queued {i}" for i in range(5)]
    chain = await store.get_events(await store.get_forward_extremities(room_id))
    assert len(chain) == 1
    assert service._queues == {} and service._room_locks == {}
