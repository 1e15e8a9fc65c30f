"""The local event-creation pipeline on linear histories, in room versions 10, 11 and 12."""

from __future__ import annotations

import itertools

import pytest
import sqlalchemy as sa
import trio
import trio.testing
from dag_checks import ALICE, BOB, SERVER_NAME, SIGNING_KEY, build_room, fold_state, table_counts

from homeserver.core.auth_rules import auth_types_for_event
from homeserver.core.hashing import check_content_hash, compute_event_id
from homeserver.core.room_versions import get_room_version
from homeserver.core.signing import verify_event_signature
from homeserver.errors import MatrixError
from homeserver.events.creation import EventCreationService, StreamNotifier
from homeserver.storage import event_persist as events_module
from homeserver.storage.database import Database
from homeserver.storage.event_tables import state_groups
from homeserver.storage.events import EventStore, StoredEvent

VERSIONS = ["10", "11", "12"]


async def assert_dag_consistent(
    store: EventStore, room_id: str, history: list[StoredEvent]
) -> None:
    """Extremities, current state and the state at every event match a fold of ``history``."""
    assert await store.get_forward_extremities(room_id) == [history[-1].event_id]
    assert await store.get_current_state_ids(room_id) == fold_state(history)
    for index, event in enumerate(history):
        before = await store.get_state_at_event(event.event_id, before=True)
        after = await store.get_state_at_event(event.event_id, before=False)
        assert before == fold_state(history[:index]), index
        assert after == fold_state(history[: index + 1]), index


@pytest.mark.parametrize("version", VERSIONS)
async def test_room_built_through_pipeline(
    service: EventCreationService, store: EventStore, notifier: StreamNotifier, version: str
) -> None:
    rv = get_room_version(version)
    assert rv is not None
    room_id, history = await build_room(service, version)
    create = history[0]
    if version == "12":
        # MSC4291: the room ID is the create event's reference hash; the create has no room_id.
        assert "room_id" not in create.pdu
        assert room_id == "!" + create.event_id[1:]
        assert "creator" not in create.pdu["content"]
    else:
        assert room_id.endswith(":" + SERVER_NAME) and room_id.startswith("!")
        assert create.pdu["room_id"] == room_id
        assert ("creator" in create.pdu["content"]) == (version == "10")
    room = await store.get_room(room_id)
    assert room is not None and (room.room_version, room.creator) == (version, ALICE)
    await assert_dag_consistent(store, room_id, history)

    for i in range(5):
        history.append(
            await service.create_and_persist_event(
                room_id, "m.room.message", ALICE, {"msgtype": "m.text", "body": f"hi {i}"}
            )
        )
        await assert_dag_consistent(store, room_id, history)

    for previous, event in itertools.pairwise(history):
        assert event.pdu["prev_events"] == [previous.event_id]
        assert event.depth == previous.depth + 1
        assert event.stream_ordering > previous.stream_ordering
        assert event.origin_server_ts > previous.origin_server_ts
    for index, event in enumerate(history):
        # Every stored event is a valid signed PDU with the ID we gave it.
        assert compute_event_id(event.pdu, rv) == event.event_id
        assert check_content_hash(event.pdu)
        verify_event_signature(event.pdu, SERVER_NAME, SIGNING_KEY.verify_key, "ed25519:test", rv)
        state = fold_state(history[:index])
        wanted = {state[k] for k in auth_types_for_event(rv, event.pdu) if k in state}
        assert set(event.pdu["auth_events"]) == wanted
        assert (create.event_id in wanted) == (index > 0 and version != "12")
    # Messages add no state groups: one per state event plus the empty state before create.
    groups = await store.database.read(
        lambda c: c.execute(sa.select(sa.func.count()).select_from(state_groups)).scalar_one()
    )
    assert groups == 1 + sum(e.state_key is not None for e in history)
    fetched = await store.get_events([e.event_id for e in history] + ["$missing"])
    assert set(fetched) == {e.event_id for e in history}
    assert fetched[history[-1].event_id].pdu == history[-1].pdu
    assert notifier.position == history[-1].stream_ordering == await store.get_stream_position()
    with trio.fail_after(5):
        await notifier.wait_for_position(history[-1].stream_ordering)
    members = await store.get_members(room_id)
    assert members == {ALICE: "join"}


@pytest.mark.parametrize("version", VERSIONS)
async def test_second_user_joins_and_leaves(
    service: EventCreationService, store: EventStore, version: str
) -> None:
    room_id, history = await build_room(service, version)
    history.append(
        await service.create_and_persist_event(
            room_id, "m.room.member", BOB, {"membership": "join"}, BOB
        )
    )
    history.append(
        await service.create_and_persist_event(room_id, "m.room.message", BOB, {"body": "x"})
    )
    assert await store.get_members(room_id, "join") == {ALICE: "join", BOB: "join"}
    history.append(
        await service.create_and_persist_event(
            room_id, "m.room.member", BOB, {"membership": "leave"}, BOB
        )
    )
    assert await store.get_members(room_id) == {ALICE: "join", BOB: "leave"}
    assert await store.get_members(room_id, "join") == {ALICE: "join"}
    current = await store.get_current_state(room_id)
    assert current[("m.room.member", BOB)].event_id == history[-1].event_id
    await assert_dag_consistent(store, room_id, history)


@pytest.mark.parametrize("version", VERSIONS)
async def test_event_failing_auth_persists_nothing(
    service: EventCreationService, store: EventStore, notifier: StreamNotifier, version: str
) -> None:
    room_id, _history = await build_room(service, version)
    before = await table_counts(store)
    with pytest.raises(MatrixError) as info:
        # Bob never joined: rule "the sender is not joined".
        await service.create_and_persist_event(room_id, "m.room.message", BOB, {"body": "spam"})
    assert (info.value.status, info.value.errcode) == (403, "M_FORBIDDEN")
    assert "not joined" in info.value.error
    with pytest.raises(MatrixError) as info:
        # Joined but without the power to change the topic? Alice can; a fresh joiner cannot.
        await service.create_and_persist_event(
            room_id, "m.room.member", BOB, {"membership": "join"}, BOB
        )
        await service.create_and_persist_event(
            room_id, "m.room.power_levels", BOB, {"users": {BOB: 100}}, ""
        )
    assert info.value.status == 403
    after_join = await table_counts(store)
    # Only Bob's join landed: one event, one state group, one more current_state row.
    assert after_join["events"] == before["events"] + 1
    assert after_join["state_groups"] == before["state_groups"] + 1
    assert after_join["current_state"] == before["current_state"] + 1
    assert after_join["stream_position"] == before["stream_position"] + 1
    assert notifier.position == after_join["stream_position"]


# Right after the event row, and at the very last write (current_state).
@pytest.mark.parametrize("crash_point", ["insert_edges", "apply_current_state_delta"])
@pytest.mark.parametrize("version", ["10", "12"])
async def test_crash_inside_transaction_leaves_nothing(
    service: EventCreationService,
    store: EventStore,
    version: str,
    crash_point: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    room_id, history = await build_room(service, version)
    before = await table_counts(store)

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("simulated crash after the event row")

    monkeypatch.setattr(events_module, crash_point, crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        await service.create_and_persist_event(room_id, "m.room.topic", ALICE, {"topic": "t"}, "")
    assert await table_counts(store) == before
    monkeypatch.undo()

    # The room carries on where it was: same extremity, no gap in the stream.
    history.append(
        await service.create_and_persist_event(room_id, "m.room.topic", ALICE, {"topic": "t"}, "")
    )
    assert history[-1].pdu["prev_events"] == [history[-2].event_id]
    assert history[-1].stream_ordering == before["stream_position"] + 1
    await assert_dag_consistent(store, room_id, history)


@pytest.mark.parametrize("version", ["11", "12"])
async def test_concurrent_sends_stay_linear(
    service: EventCreationService, store: EventStore, version: str
) -> None:
    room_id, _history = await build_room(service, version)
    await service.create_and_persist_event(
        room_id, "m.room.member", BOB, {"membership": "join"}, BOB
    )
    sent: list[StoredEvent] = []

    async def send(i: int) -> None:
        sender = ALICE if i % 2 else BOB
        sent.append(
            await service.create_and_persist_event(
                room_id, "m.room.message", sender, {"body": str(i)}
            )
        )

    async with trio.open_nursery() as nursery:
        for i in range(50):
            nursery.start_soon(send, i)

    assert len(sent) == 50
    assert sorted(e.pdu["content"]["body"] for e in sent) == sorted(str(i) for i in range(50))
    by_depth = sorted(sent, key=lambda e: e.depth)
    # One chain: each event's only prev is the one before it, depths consecutive.
    for previous, event in itertools.pairwise(by_depth):
        assert event.pdu["prev_events"] == [previous.event_id]
        assert event.depth == previous.depth + 1
        assert event.stream_ordering > previous.stream_ordering
    stored = await store.get_events([e.event_id for e in sent])
    assert len(stored) == 50
    assert await store.get_forward_extremities(room_id) == [by_depth[-1].event_id]


@pytest.mark.parametrize("version", VERSIONS)
async def test_state_after_many_state_changes(
    service: EventCreationService, store: EventStore, version: str
) -> None:
    """More than SNAPSHOT_INTERVAL state events: reads cross deltas and snapshots."""
    room_id, history = await build_room(service, version)
    for i in range(230):
        if i % 3 == 0:
            history.append(
                await service.create_and_persist_event(
                    room_id, "m.room.message", ALICE, {"body": str(i)}
                )
            )
        else:
            key = f"k{i % 37}"
            history.append(
                await service.create_and_persist_event(
                    room_id, "org.example.state", ALICE, {"i": i}, key
                )
            )
    for index in [*range(0, len(history), 7), len(history) - 1]:
        event = history[index]
        assert await store.get_state_at_event(event.event_id) == fold_state(history[:index])
        assert await store.get_state_at_event(event.event_id, before=False) == fold_state(
            history[: index + 1]
        )
    # A cold cache reads the same from the database.
    cold = EventStore(store.database)
    for event_index in (5, 120, len(history) - 1):
        event = history[event_index]
        assert await cold.get_state_at_event(event.event_id) == fold_state(history[:event_index])
    assert await store.get_current_state_ids(room_id) == fold_state(history)
    depths = await store.database.read(
        lambda c: [r.delta_depth for r in c.execute(sa.select(state_groups.c.delta_depth)).all()]
    )
    assert max(depths) <= 100 and depths.count(0) >= 2


async def test_concurrent_sends_across_rooms_share_one_gapless_stream(
    service: EventCreationService, store: EventStore
) -> None:
    rooms = [(await build_room(service, version))[0] for version in VERSIONS]
    start = await store.get_stream_position()
    sent: dict[str, list[StoredEvent]] = {room_id: [] for room_id in rooms}

    async def send(room_id: str, i: int) -> None:
        if i % 5 == 0:
            event = await service.create_and_persist_event(
                room_id, "m.room.topic", ALICE, {"topic": str(i)}, ""
            )
        else:
            event = await service.create_and_persist_event(
                room_id, "m.room.message", ALICE, {"body": str(i)}
            )
        sent[room_id].append(event)

    async with trio.open_nursery() as nursery:
        for i in range(15):
            for room_id in rooms:
                nursery.start_soon(send, room_id, i)

    orderings = sorted(e.stream_ordering for events in sent.values() for e in events)
    assert orderings == list(range(start + 1, start + 1 + 45))
    for room_id, events in sent.items():
        chain = sorted(events, key=lambda e: e.depth)
        for previous, event in itertools.pairwise(chain):
            assert event.pdu["prev_events"] == [previous.event_id]
        assert await store.get_forward_extremities(room_id) == [chain[-1].event_id]
        topics = [e for e in chain if e.type == "m.room.topic"]
        current = await store.get_current_state_ids(room_id)
        assert current[("m.room.topic", "")] == topics[-1].event_id


async def test_oversized_event_is_refused_and_not_stored(
    service: EventCreationService, store: EventStore
) -> None:
    room_id, _ = await build_room(service, "11")
    before = await table_counts(store)
    with pytest.raises(MatrixError) as info:
        await service.create_and_persist_event(
            room_id, "m.room.message", ALICE, {"body": "x" * 65_000}
        )
    assert (info.value.status, info.value.errcode) == (413, "M_TOO_LARGE")
    assert await table_counts(store) == before
    # Just under the limit once hashes and signatures are counted: accepted.
    event = await service.create_and_persist_event(
        room_id, "m.room.message", ALICE, {"body": "x" * 64_000}
    )
    assert len(event.pdu["content"]["body"]) == 64_000


async def test_notifier_wakes_waiters_at_the_new_position(
    service: EventCreationService, notifier: StreamNotifier
) -> None:
    room_id, history = await build_room(service, "10")
    woke: list[int] = []

    async def waiter() -> None:
        await notifier.wait_for_position(history[-1].stream_ordering + 1)
        woke.append(notifier.position)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        assert woke == []
        event = await service.create_and_persist_event(room_id, "m.room.message", ALICE, {})
    assert woke == [event.stream_ordering]
    # Per-room locks are dropped once nobody holds or waits for them.
    assert service._room_locks == {}


async def test_two_processes_sending_into_one_room_do_not_fork_it(
    service: EventCreationService, store: EventStore, database_url: str
) -> None:
    """Two services with their own locks and caches, as two worker processes would have.

    The in-process lock cannot order them; the persist transaction notices a prev
    event that stopped being an extremity and the loser rebuilds its event.
    """
    room_id, _ = await build_room(service, "12")
    other_db = Database(database_url)
    try:
        other = EventCreationService(
            EventStore(other_db),
            server_name=SERVER_NAME,
            signing_key=SIGNING_KEY,
            key_id="ed25519:test",
        )
        sent: list[StoredEvent] = []

        async def send(svc: EventCreationService, name: str) -> None:
            for i in range(10):
                sent.append(
                    await svc.create_and_persist_event(
                        room_id, "m.room.message", ALICE, {"body": f"{name}{i}"}
                    )
                )

        async with trio.open_nursery() as nursery:
            nursery.start_soon(send, service, "a")
            nursery.start_soon(send, other, "b")
    finally:
        await other_db.aclose()
    assert len(sent) == 20
    chain = sorted(sent, key=lambda e: e.depth)
    for previous, event in itertools.pairwise(chain):
        assert event.pdu["prev_events"] == [previous.event_id]
    assert await store.get_forward_extremities(room_id) == [chain[-1].event_id]
