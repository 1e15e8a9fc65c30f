"""event_relations on both databases: which persisted events get a row, and the bundle reads."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from homeserver.storage.database import Database
from homeserver.storage.events import EventStore, EventToPersist, RoomInfo, StateBefore
from homeserver.storage.relation_queries import (
    MAX_EDIT_CANDIDATES,
    has_annotation,
    read_bundle_rows,
)
from homeserver.storage.relations import event_relations
from homeserver.storage.timeline import record_redaction

ROOM = "!r:test.example"
ALICE = "@alice:test.example"
BOB = "@bob:test.example"


@pytest.fixture
def store(database: Database) -> EventStore:
    return EventStore(database)


def relates(rel_type: str, parent: str, **extra: Any) -> dict[str, Any]:
    return {"m.relates_to": {"rel_type": rel_type, "event_id": parent, **extra}}


async def persist(
    store: EventStore,
    event_id: str,
    content: dict[str, Any],
    *,
    event_type: str = "m.room.message",
    sender: str = ALICE,
    depth: int = 2,
    outlier: bool = False,
    state_key: str | None = None,
    **flags: Any,
) -> None:
    pdu: dict[str, Any] = {
        "room_id": ROOM,
        "type": event_type,
        "sender": sender,
        "content": content,
        "prev_events": [] if event_id == "$create" else ["$create"],
        "auth_events": [],
        "depth": depth,
        "origin_server_ts": 1000 + depth,
    }
    if state_key is not None:
        pdu["state_key"] = state_key
    await store.persist(
        EventToPersist(
            event_id=event_id,
            pdu=pdu,
            state_before=None if outlier else StateBefore(state={}),
            new_room=(
                RoomInfo(room_id=ROOM, room_version="10", creator=ALICE)
                if event_id == "$create"
                else None
            ),
            **flags,
        )
    )


async def relation_rows(database: Database) -> dict[str, tuple[str, str, str | None]]:
    rows = await database.read(lambda conn: conn.execute(sa.select(event_relations)).all())
    return {r.event_id: (r.rel_type, r.relates_to, r.aggregation_key) for r in rows}


async def test_rows_only_for_events_clients_see(database: Database, store: EventStore) -> None:
    await persist(store, "$create", {}, event_type="m.room.create", state_key="", depth=1)
    await persist(store, "$root", {"body": "root"})
    await persist(store, "$thread", {"body": "t", **relates("m.thread", "$root")})
    await persist(
        store, "$react", relates("m.annotation", "$root", key="👍"), event_type="m.reaction"
    )
    await persist(store, "$reply", {"m.relates_to": {"m.in_reply_to": {"event_id": "$root"}}})
    await persist(store, "$custom", relates("org.example.rel", "$root"), depth=3)
    await persist(store, "$rejected", relates("m.thread", "$root"), rejected_reason="auth")
    await persist(store, "$soft", relates("m.thread", "$root"), soft_failed=True)
    await persist(store, "$state", relates("m.thread", "$root"), state_key="")
    await persist(store, "$outlier", relates("m.reference", "$root"), outlier=True)
    assert await relation_rows(database) == {
        "$thread": ("m.thread", "$root", None),
        "$react": ("m.annotation", "$root", "👍"),
        "$custom": ("org.example.rel", "$root", None),
    }
    # The outlier gets its row once it arrives with its place in the DAG.
    await persist(store, "$outlier", relates("m.reference", "$root"))
    assert (await relation_rows(database))["$outlier"] == ("m.reference", "$root", None)


async def test_bundle_rows_and_redactions(database: Database, store: EventStore) -> None:
    await persist(store, "$create", {}, event_type="m.room.create", state_key="", depth=1)
    await persist(store, "$root", {"body": "root"})
    new = {"m.new_content": {"body": "x"}}
    await persist(store, "$edit1", {**new, **relates("m.replace", "$root")}, depth=3)
    await persist(store, "$edit2", {**new, **relates("m.replace", "$root")}, depth=4)
    await persist(store, "$bob_edit", {**new, **relates("m.replace", "$root")}, sender=BOB)
    await persist(store, "$t1", relates("m.thread", "$root"), sender=BOB, depth=5)
    await persist(store, "$t2", relates("m.thread", "$root"), depth=6)
    await persist(store, "$ref", relates("m.reference", "$root"), depth=7)
    await persist(
        store, "$react", relates("m.annotation", "$root", key="k"), event_type="m.reaction"
    )

    rows = await database.read(lambda conn: read_bundle_rows(conn, ["$root", "$t1"], BOB))
    # Another sender's edit is no candidate; newest first.
    assert [c.event_id for c in rows.edits["$root"]] == ["$edit2", "$edit1"]
    thread = rows.threads["$root"]
    assert (thread.latest_event_id, thread.count, thread.participated) == ("$t2", 2, True)
    assert rows.references == {"$root": ["$ref"]}
    assert "$t1" not in rows.threads and not rows.empty

    def annotated(conn: Any) -> bool:
        return has_annotation(conn, "$root", ALICE, "m.reaction", "k")

    assert await database.read(annotated)
    # Redacted children stop counting.
    for i, target in enumerate(("$edit2", "$t2", "$react")):
        await persist(
            store, f"$redaction{i}", {"redacts": target}, event_type="m.room.redaction", depth=9
        )
        await database.run(
            lambda conn, i=i, target=target: record_redaction(conn, f"$redaction{i}", target, ROOM)
        )
    rows = await database.read(lambda conn: read_bundle_rows(conn, ["$root"], ALICE))
    assert [c.event_id for c in rows.edits["$root"]] == ["$edit1"]
    thread = rows.threads["$root"]
    assert (thread.latest_event_id, thread.count, thread.participated) == ("$t1", 1, False)
    assert not await database.read(annotated)
    empty = await database.read(lambda conn: read_bundle_rows(conn, ["$ref"], ALICE))
    assert empty.empty


async def test_edit_candidates_are_bounded(database: Database, store: EventStore) -> None:
    await persist(store, "$create", {}, event_type="m.room.create", state_key="", depth=1)
    await persist(store, "$root", {"body": "root"})
    new = {"m.new_content": {"body": "x"}}
    for i in range(MAX_EDIT_CANDIDATES + 5):
        await persist(store, f"$edit{i:02}", {**new, **relates("m.replace", "$root")}, depth=3 + i)
    rows = await database.read(lambda conn: read_bundle_rows(conn, ["$root"], ALICE))
    newest = [f"$edit{i:02}" for i in reversed(range(5, MAX_EDIT_CANDIDATES + 5))]
    assert [c.event_id for c in rows.edits["$root"]] == newest
