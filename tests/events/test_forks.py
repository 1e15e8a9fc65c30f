"""Forks and merges: injected prev_events, federated events, soft failure, rejection, outliers."""

from __future__ import annotations

from typing import Any

import pytest
from dag_checks import ALICE, BOB, SERVER_NAME, SIGNING_KEY, build_room, fold_state

from homeserver.core.room_versions import get_room_version
from homeserver.errors import MatrixError
from homeserver.events.builder import build_pdu, finish_pdu, select_auth_events
from homeserver.events.creation import EventCreationService
from homeserver.storage.events import EventStore, StoredEvent

VERSIONS = ["10", "11", "12"]


async def remote_pdu(
    store: EventStore,
    prev: StoredEvent,
    event_type: str,
    content: dict[str, Any],
    state_key: str | None = None,
    *,
    sender: str = ALICE,
    ts: int = 1_800_000_000_000,
) -> tuple[str, dict[str, Any]]:
    """A PDU as another server would send it: built on ``prev`` and signed."""
    room = await store.get_room(prev.room_id)
    assert room is not None
    rv = get_room_version(room.room_version)
    assert rv is not None
    state = await store.get_state_at_event(prev.event_id, before=False)
    assert state is not None
    pdu = build_pdu(
        room_id=prev.room_id,
        event_type=event_type,
        sender=sender,
        content=content,
        state_key=state_key,
        prev_events=[prev.event_id],
        auth_events=[],
        depth=prev.depth + 1,
        origin_server_ts=ts,
    )
    pdu["auth_events"] = select_auth_events(rv, pdu, state)
    return finish_pdu(pdu, rv, SERVER_NAME, SIGNING_KEY, "ed25519:test")


@pytest.mark.parametrize("version", VERSIONS)
async def test_fork_by_injected_prev_events_then_merge(
    service: EventCreationService, store: EventStore, version: str
) -> None:
    room_id, history = await build_room(service, version)
    base = history[-1]
    message = await service.create_and_persist_event(
        room_id, "m.room.message", ALICE, {"body": "a"}
    )
    topic = await service.create_and_persist_event(
        room_id, "m.room.topic", ALICE, {"topic": "fork"}, "", prev_event_ids=[base.event_id]
    )
    assert topic.pdu["prev_events"] == [base.event_id]
    assert topic.depth == message.depth == base.depth + 1
    assert set(await store.get_forward_extremities(room_id)) == {message.event_id, topic.event_id}
    with_topic = fold_state([*history, topic])
    # The topic exists on one branch only: resolution keeps it (it passes auth).
    assert await store.get_current_state_ids(room_id) == with_topic
    assert await store.get_state_at_event(message.event_id, before=False) == fold_state(history)

    merge = await service.create_and_persist_event(room_id, "m.room.message", ALICE, {"body": "m"})
    assert set(merge.pdu["prev_events"]) == {message.event_id, topic.event_id}
    assert merge.depth == base.depth + 2
    assert await store.get_forward_extremities(room_id) == [merge.event_id]
    assert await store.get_state_at_event(merge.event_id) == with_topic
    assert await store.get_current_state_ids(room_id) == with_topic


@pytest.mark.parametrize("version", VERSIONS)
async def test_conflicting_fork_resolves_by_state_resolution(
    service: EventCreationService, store: EventStore, version: str
) -> None:
    room_id, history = await build_room(service, version)
    base = history[-1]
    one = await service.create_and_persist_event(
        room_id, "m.room.topic", ALICE, {"topic": "one"}, ""
    )
    two = await service.create_and_persist_event(
        room_id, "m.room.topic", ALICE, {"topic": "two"}, "", prev_event_ids=[base.event_id]
    )
    assert two.origin_server_ts > one.origin_server_ts
    # Same sender, same mainline position: the later origin_server_ts is applied last and wins
    # (v2 state resolution, mainline ordering).
    expected = {**fold_state(history), ("m.room.topic", ""): two.event_id}
    assert await store.get_current_state_ids(room_id) == expected
    merge = await service.create_and_persist_event(
        room_id, "m.room.topic", ALICE, {"topic": "three"}, ""
    )
    assert await store.get_state_at_event(merge.event_id) == expected
    assert await store.get_state_at_event(merge.event_id, before=False) == {
        **expected,
        ("m.room.topic", ""): merge.event_id,
    }
    assert await store.get_forward_extremities(room_id) == [merge.event_id]
    current = await store.get_current_state(room_id)
    assert current[("m.room.topic", "")].pdu["content"] == {"topic": "three"}


@pytest.mark.parametrize("version", VERSIONS)
async def test_ban_on_one_branch_beats_topic_on_the_other(
    service: EventCreationService, store: EventStore, version: str
) -> None:
    room_id, history = await build_room(service, version)
    history.append(
        await service.create_and_persist_event(
            room_id, "m.room.member", BOB, {"membership": "join"}, BOB
        )
    )
    users = {BOB: 50} if version == "12" else {ALICE: 100, BOB: 50}
    history.append(
        await service.create_and_persist_event(
            room_id, "m.room.power_levels", ALICE, {"users": users}, ""
        )
    )
    base = history[-1]
    ban = await service.create_and_persist_event(
        room_id, "m.room.member", ALICE, {"membership": "ban"}, BOB
    )
    topic = await service.create_and_persist_event(
        room_id, "m.room.topic", BOB, {"topic": "bob was here"}, "", prev_event_ids=[base.event_id]
    )
    # The power event (ban) is applied first; Bob's topic then fails auth and is dropped.
    expected = {**fold_state(history), ("m.room.member", BOB): ban.event_id}
    assert await store.get_current_state_ids(room_id) == expected
    assert await store.get_state_at_event(topic.event_id, before=False) == {
        **fold_state(history),
        ("m.room.topic", ""): topic.event_id,
    }
    assert await store.get_members(room_id) == {ALICE: "join", BOB: "ban"}
    with pytest.raises(MatrixError) as info:
        await service.create_and_persist_event(
            room_id, "m.room.message", BOB, {"body": "still here?"}
        )
    assert info.value.status == 403


@pytest.mark.parametrize("version", VERSIONS)
async def test_federated_events_fork_and_merge(
    service: EventCreationService, store: EventStore, version: str
) -> None:
    room_id, history = await build_room(service, version)
    base = history[-1]
    local = await service.create_and_persist_event(
        room_id, "m.room.name", ALICE, {"name": "local"}, ""
    )
    event_id, pdu = await remote_pdu(store, base, "m.room.topic", {"topic": "remote"}, "")
    remote = await service.persist_federated_event(pdu)
    assert remote.event_id == event_id and not remote.outlier
    assert set(await store.get_forward_extremities(room_id)) == {local.event_id, remote.event_id}
    both = {
        **fold_state(history),
        ("m.room.name", ""): local.event_id,
        ("m.room.topic", ""): remote.event_id,
    }
    assert await store.get_state_at_event(remote.event_id) == fold_state(history)
    assert await store.get_current_state_ids(room_id) == both

    # A remote event with an explicitly given state (as learnt from /state_ids).
    event_id2, pdu2 = await remote_pdu(store, remote, "m.room.message", {"body": "r"})
    given = await store.get_state_at_event(remote.event_id, before=False)
    assert given is not None
    remote2 = await service.persist_federated_event(pdu2, state_before=given)
    assert await store.get_state_at_event(event_id2) == given
    assert set(await store.get_forward_extremities(room_id)) == {local.event_id, remote2.event_id}

    merge = await service.create_and_persist_event(
        room_id, "m.room.message", ALICE, {"body": "merge"}
    )
    assert set(merge.pdu["prev_events"]) == {local.event_id, remote2.event_id}
    assert await store.get_state_at_event(merge.event_id) == both
    assert await store.get_forward_extremities(room_id) == [merge.event_id]


@pytest.mark.parametrize("version", ["10", "12"])
async def test_soft_failed_and_rejected_events_stay_out_of_the_dag_edge(
    service: EventCreationService, store: EventStore, version: str
) -> None:
    room_id, history = await build_room(service, version)
    tip = history[-1]
    _, soft_pdu = await remote_pdu(store, tip, "m.room.topic", {"topic": "soft"}, "")
    soft = await service.persist_federated_event(soft_pdu, soft_failed=True)
    _, rejected_pdu = await remote_pdu(
        store, tip, "m.room.name", {"name": "bad"}, "", ts=1_800_000_000_001
    )
    rejected = await service.persist_federated_event(rejected_pdu, rejected_reason="auth: test")
    assert await store.get_forward_extremities(room_id) == [tip.event_id]
    assert await store.get_current_state_ids(room_id) == fold_state(history)
    # Soft-failed events still have state (they take part in state resolution).
    assert await store.get_state_at_event(soft.event_id, before=False) == fold_state(
        [*history, soft]
    )
    # Rejected events are never applied to state.
    assert await store.get_state_at_event(rejected.event_id, before=False) == fold_state(history)
    stored = await store.get_events([soft.event_id, rejected.event_id])
    assert stored[soft.event_id].soft_failed and stored[soft.event_id].rejected_reason is None
    assert stored[rejected.event_id].rejected_reason == "auth: test"
    nxt = await service.create_and_persist_event(room_id, "m.room.message", ALICE, {"body": "n"})
    assert nxt.pdu["prev_events"] == [tip.event_id]


@pytest.mark.parametrize("version", ["11", "12"])
async def test_outlier_has_no_state_and_is_not_cited(
    service: EventCreationService, store: EventStore, version: str
) -> None:
    room_id, history = await build_room(service, version)
    event_id, pdu = await remote_pdu(store, history[-1], "m.room.message", {"body": "o"})
    outlier = await service.persist_outlier(pdu)
    assert outlier.event_id == event_id and outlier.outlier
    assert await store.get_state_at_event(event_id) is None
    assert await store.get_forward_extremities(room_id) == [history[-1].event_id]
    assert (await store.get_events([event_id]))[event_id].pdu == pdu
    with pytest.raises(MatrixError):
        await service.create_and_persist_event(
            room_id, "m.room.message", ALICE, {"body": "x"}, prev_event_ids=[event_id]
        )


@pytest.mark.parametrize("version", ["10", "12"])
async def test_more_than_twenty_extremities_are_merged_twenty_at_a_time(
    service: EventCreationService, store: EventStore, version: str
) -> None:
    room_id, history = await build_room(service, version)
    base = history[-1]
    forks = []
    for i in range(25):
        _, pdu = await remote_pdu(
            store, base, "m.room.message", {"body": str(i)}, ts=1_800_000_000_000 + i
        )
        forks.append(await service.persist_federated_event(pdu))
    assert len(await store.get_forward_extremities(room_id)) == 25
    assert await store.get_current_state_ids(room_id) == fold_state(history)
    first = await service.create_and_persist_event(room_id, "m.room.message", ALICE, {"body": "m1"})
    assert len(first.pdu["prev_events"]) == 20
    left = set(await store.get_forward_extremities(room_id))
    assert left == {first.event_id} | ({f.event_id for f in forks} - set(first.pdu["prev_events"]))
    assert len(left) == 6
    second = await service.create_and_persist_event(
        room_id, "m.room.message", ALICE, {"body": "m2"}
    )
    assert set(second.pdu["prev_events"]) == left
    assert second.depth == first.depth + 1
    assert await store.get_forward_extremities(room_id) == [second.event_id]
    assert await store.get_state_at_event(second.event_id) == fold_state(history)


@pytest.mark.parametrize("version", ["10", "12"])
async def test_federated_duplicates_are_idempotent_and_outliers_join_the_dag(
    service: EventCreationService, store: EventStore, version: str
) -> None:
    room_id, history = await build_room(service, version)
    tip = history[-1]
    event_id, pdu = await remote_pdu(store, tip, "m.room.topic", {"topic": "late"}, "")
    outlier = await service.persist_outlier(pdu)
    assert (await service.persist_outlier(pdu)).stream_ordering == outlier.stream_ordering
    # The same event arrives again, now with its place in the DAG.
    placed = await service.persist_federated_event(pdu)
    assert placed.event_id == event_id and not placed.outlier
    assert placed.stream_ordering > outlier.stream_ordering
    assert await store.get_forward_extremities(room_id) == [event_id]
    assert await store.get_current_state_ids(room_id) == fold_state([*history, placed])
    assert await EventStore(store.database).get_state_at_event(event_id) == fold_state(history)
    again = await service.persist_federated_event(pdu)
    assert again.stream_ordering == placed.stream_ordering
    assert await store.get_stream_position() == placed.stream_ordering
