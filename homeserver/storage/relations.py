"""Relations between events: one row per child event, filled when the child is persisted.

Client-Server API "Forming relationships between events": a child names its
parent in ``content["m.relates_to"]`` (``rel_type`` + ``event_id``). The row
is written inside the event's own transaction (:func:`insert_relation`), so a
relation exists exactly when its event does. Only events clients may see get a
row: never outliers, rejected or soft-failed events, and never state events
(state events receive no bundled aggregations, and may not be replacements).

Redaction does not delete rows: every read (``relation_queries.py``) skips a
child that has an accepted redaction, so a redacted reaction, edit or thread
reply stops counting at once, whichever path recorded the redaction.

This module stays free of other storage imports: the persist path imports it.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from homeserver.storage.event_types import StoredEvent
from homeserver.storage.metadata import metadata

ANNOTATION = "m.annotation"
REPLACE = "m.replace"
THREAD = "m.thread"
REFERENCE = "m.reference"

event_relations = sa.Table(
    "event_relations",
    metadata,
    sa.Column("event_id", sa.Text, primary_key=True),
    sa.Column("room_id", sa.Text, nullable=False),
    sa.Column("relates_to", sa.Text, nullable=False),
    sa.Column("rel_type", sa.Text, nullable=False),
    # content["m.relates_to"]["key"] of m.annotation children, else NULL.
    sa.Column("aggregation_key", sa.Text, nullable=True),
    sa.Column("sender", sa.Text, nullable=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("origin_server_ts", sa.BigInteger, nullable=False),
    sa.Column("topological_ordering", sa.BigInteger, nullable=False),
    sa.Column("stream_ordering", sa.BigInteger, nullable=False),
    sa.Index(
        "event_relations_parent",
        "relates_to",
        "rel_type",
        "topological_ordering",
        "stream_ordering",
    ),
    sa.Index("event_relations_room_type", "room_id", "rel_type", "stream_ordering"),
)

_INSERT = sa.insert(event_relations)


def relation_of(content: Any) -> tuple[str, str, str | None] | None:
    """``(rel_type, parent event_id, annotation key)`` of event content, or None.

    Relations that do not match the schema are ignored (spec "Forming
    relationships between events"): ``m.relates_to`` must be an object with
    string ``rel_type`` and ``event_id``; a rich reply (no ``rel_type``) is none.
    """
    if not isinstance(content, dict):
        return None
    relates_to = content.get("m.relates_to")
    if not isinstance(relates_to, dict):
        return None
    rel_type = relates_to.get("rel_type")
    parent = relates_to.get("event_id")
    if not isinstance(rel_type, str) or not isinstance(parent, str) or not rel_type or not parent:
        return None
    key = relates_to.get("key") if rel_type == ANNOTATION else None
    return rel_type, parent, key if isinstance(key, str) else None


def insert_relation(conn: Connection, event: StoredEvent) -> None:
    """Record ``event``'s relation, if it has one; runs in the event's persist transaction."""
    if (
        event.outlier
        or event.rejected_reason is not None
        or event.soft_failed
        or event.state_key is not None
    ):
        return
    relation = relation_of(event.pdu.get("content"))
    if relation is None:
        return
    rel_type, parent, key = relation
    conn.execute(
        _INSERT,
        {
            "event_id": event.event_id,
            "room_id": event.room_id,
            "relates_to": parent,
            "rel_type": rel_type,
            "aggregation_key": key,
            "sender": event.sender,
            "type": event.type,
            "origin_server_ts": event.origin_server_ts,
            "topological_ordering": event.topological_ordering,
            "stream_ordering": event.stream_ordering,
        },
    )
