"""Purging redacted originals: rewrite a redacted event's stored PDU to its redacted form.

Redaction is applied when an event is served (``ClientEvents.serialize``), so
for a while the original content stays in ``events.json`` for moderation.
Once a redaction is older than the retention period
(``redaction_retention_s``), :func:`purge_due` rewrites its target's row to
the room version's redacted form (``core.redaction.redact_event``; hashes and
signatures are kept, so the event stays verifiable and keeps its ID), drops
what was derived from the content (the search index row, push actions) and
marks the redaction ``purged``. Redacting an already redacted form changes
nothing, so clients are served the same event before and after.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from homeserver.core.canonical_json import encode_canonical_json
from homeserver.core.redaction import redact_event
from homeserver.core.room_versions import get_room_version
from homeserver.storage import push as push_store
from homeserver.storage import search as search_store
from homeserver.storage.event_tables import events, rooms
from homeserver.storage.events import read_events
from homeserver.storage.timeline import event_redactions


def read_due(conn: Connection, cutoff_ms: int, limit: int) -> list[tuple[str, str, str]]:
    """``(redaction_id, target_id, room_id)`` of unpurged redactions sent at or before
    ``cutoff_ms``, oldest first."""
    r = event_redactions.c
    rows = conn.execute(
        sa.select(r.event_id, r.redacts, r.room_id)
        .join(events, events.c.event_id == r.event_id)
        .where(
            r.purged == sa.false(),
            events.c.origin_server_ts <= cutoff_ms,
            events.c.rejected_reason.is_(None),
            events.c.soft_failed == sa.false(),
        )
        .order_by(events.c.stream_ordering)
        .limit(limit)
    ).all()
    return [(row.event_id, row.redacts, row.room_id) for row in rows]


def purge_due(conn: Connection, cutoff_ms: int, limit: int) -> tuple[int, list[str]]:
    """Purge up to ``limit`` due redactions: (how many were handled, targets rewritten)."""
    due = read_due(conn, cutoff_ms, limit)
    if not due:
        return 0, []
    targets = read_events(conn, [target for _, target, _ in due])
    room_ids = {room_id for _, _, room_id in due}
    versions = dict(
        conn.execute(
            sa.select(rooms.c.room_id, rooms.c.room_version).where(rooms.c.room_id.in_(room_ids))
        ).all()
    )
    updates: list[dict[str, str]] = []
    gone: list[tuple[str, str]] = []
    for _, target_id, room_id in due:
        target = targets.get(target_id)
        version = get_room_version(versions.get(room_id, ""))
        if target is None or target.room_id != room_id or version is None:
            continue  # unknown here, or a redaction naming another room's event: nothing to do
        gone.append((room_id, target_id))
        redacted = redact_event(target.pdu, version)
        if redacted != target.pdu:
            updates.append(
                {"b_id": target_id, "b_json": encode_canonical_json(redacted).decode("utf-8")}
            )
    if updates:
        conn.execute(
            sa.update(events)
            .where(events.c.event_id == sa.bindparam("b_id"))
            .values(json=sa.bindparam("b_json")),
            updates,
        )
    search_store.delete_entries(conn, [target for _, target in gone])
    push_store.delete_push_actions_of(conn, gone)
    _mark_purged(conn, [redaction for redaction, _, _ in due])
    return len(due), [u["b_id"] for u in updates]


def _mark_purged(conn: Connection, redaction_ids: Sequence[str]) -> None:
    for start in range(0, len(redaction_ids), 500):
        conn.execute(
            sa.update(event_redactions)
            .where(event_redactions.c.event_id.in_(redaction_ids[start : start + 500]))
            .values(purged=True)
        )
