"""Helpers for the pipeline tests: build rooms, count rows, recompute state independently."""

from __future__ import annotations

from typing import Any

import nacl.signing
import sqlalchemy as sa

from homeserver.events.creation import EventCreationService
from homeserver.storage.event_tables import ALL_TABLES, event_stream_position
from homeserver.storage.events import EventStore, StoredEvent

SERVER_NAME = "test.example"
# A fixed key so failures reproduce; the value is arbitrary.
SIGNING_KEY = nacl.signing.SigningKey(bytes(range(32)))
ALICE = "@alice:test.example"
BOB = "@bob:test.example"

StateKey = tuple[str, str]


async def build_room(service: EventCreationService, version: str) -> tuple[str, list[StoredEvent]]:
    """create, creator join, power levels, public join rules: the usual first four events."""
    create = await service.create_room(ALICE, version)
    room_id = create.room_id
    events = [create]
    events.append(
        await service.create_and_persist_event(
            room_id, "m.room.member", ALICE, {"membership": "join"}, ALICE
        )
    )
    users = {} if version == "12" else {ALICE: 100}
    events.append(
        await service.create_and_persist_event(
            room_id, "m.room.power_levels", ALICE, {"users": users, "users_default": 0}, ""
        )
    )
    events.append(
        await service.create_and_persist_event(
            room_id, "m.room.join_rules", ALICE, {"join_rule": "public"}, ""
        )
    )
    return room_id, events


def fold_state(events: list[StoredEvent]) -> dict[StateKey, str]:
    """The state after a linear history: the last event for each key, in order."""
    state: dict[StateKey, str] = {}
    for event in events:
        if event.state_key is not None and event.rejected_reason is None:
            state[(event.type, event.state_key)] = event.event_id
    return state


async def table_counts(store: EventStore) -> dict[str, Any]:
    """Rows in every DAG table plus the stream counter: a fingerprint of what was written."""

    def _count(conn: sa.Connection) -> dict[str, Any]:
        counts: dict[str, Any] = {
            table.name: conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            for table in ALL_TABLES
        }
        counts["stream_position"] = conn.execute(
            sa.select(event_stream_position.c.position)
        ).scalar_one()
        return counts

    return await store.database.read(_count)
