"""Random DAGs built through the pipeline agree with an in-memory model of the room.

The model keeps each event's state after it in a plain dict, computed from the
DAG alone: one prev event passes its state on; several are resolved with the
pure state resolution. The store must give back the same state at every event
(through state groups, deltas and snapshots), the same extremities and the same
current state after every step.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from dag_checks import ALICE, build_room

from homeserver.core.room_versions import get_room_version
from homeserver.core.state_res import resolve_state
from homeserver.events.creation import EventCreationService, pdu_with_id
from homeserver.storage.events import EventStore, StoredEvent

StateKey = tuple[str, str]


class RoomModel:
    def __init__(self, version: str) -> None:
        rv = get_room_version(version)
        assert rv is not None
        self.rv = rv
        self.after: dict[str, dict[StateKey, str]] = {}
        self.pdus: dict[str, dict[str, Any]] = {}
        self.has_child: set[str] = set()
        self.order: list[str] = []

    def resolve(self, states: Sequence[Mapping[StateKey, str]]) -> dict[StateKey, str]:
        if all(s == states[0] for s in states[1:]):
            return dict(states[0])
        return resolve_state(self.rv, states, self.pdus)

    def state_before(self, prevs: Sequence[str]) -> dict[StateKey, str]:
        return self.resolve([self.after[p] for p in dict.fromkeys(prevs)]) if prevs else {}

    def add(self, event: StoredEvent) -> None:
        before = self.state_before(event.prev_event_ids)
        if event.state_key is not None:
            before[(event.type, event.state_key)] = event.event_id
        self.after[event.event_id] = before
        self.pdus[event.event_id] = pdu_with_id(event)
        self.has_child.update(event.prev_event_ids)
        self.order.append(event.event_id)

    def extremities(self) -> set[str]:
        return {e for e in self.order if e not in self.has_child}

    def current(self) -> dict[StateKey, str]:
        return self.resolve([self.after[e] for e in sorted(self.extremities())])


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("version", ["10", "12"])
async def test_random_dag_matches_model(
    service: EventCreationService, store: EventStore, version: str, seed: int
) -> None:
    rng = random.Random(seed)
    room_id, history = await build_room(service, version)
    model = RoomModel(version)
    for event in history:
        model.add(event)
    forked = merged = 0
    for step in range(40):
        roll = rng.random()
        # Prev events: the room's extremities (a merge), or a random older event (a fork).
        prevs: list[str] | None = None
        if roll < 0.45:
            candidates = model.order[3:]
            prevs = rng.sample(candidates, k=min(len(candidates), rng.choice([1, 1, 2])))
        if rng.random() < 0.6:
            key = f"k{rng.randrange(5)}"
            event = await service.create_and_persist_event(
                room_id, "org.example.s", ALICE, {"step": step}, key, prev_event_ids=prevs
            )
        else:
            event = await service.create_and_persist_event(
                room_id, "m.room.message", ALICE, {"body": str(step)}, prev_event_ids=prevs
            )
        if prevs is not None:
            assert event.prev_event_ids == prevs
        model.add(event)
        forked += len(model.extremities()) > 1
        merged += len(set(event.prev_event_ids)) > 1
        assert set(await store.get_forward_extremities(room_id)) == model.extremities()
        assert await store.get_current_state_ids(room_id) == model.current(), step
    # The walk really forked and merged.
    assert forked >= 5 and merged >= 3, (forked, merged)
    for event_id in model.order:
        got = await store.get_state_at_event(event_id, before=False)
        assert got == model.after[event_id], event_id
    # A fresh store (cold caches) reads every state from the database alone.
    cold = EventStore(store.database)
    for event_id in model.order:
        stored = await cold.get_event(event_id)
        assert stored is not None
        assert await cold.get_state_at_event(event_id) == model.state_before(stored.prev_event_ids)
