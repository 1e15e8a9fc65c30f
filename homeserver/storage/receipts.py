"""Read receipts on their own stream: the latest receipt per (room, type, user, thread).

Spec (Client-Server API, "Receipts"): each ``(user_id, receipt_type, thread)``
names a single event, so a new receipt replaces the old row. Each write takes
the next position of the ``receipts`` stream inside its transaction (a one-row
counter, like the events stream) and stamps the row; ``/sync`` asks "which
receipts in these rooms changed in (from, to]", one indexed range read. Clients
replace acknowledgements by user, type and thread, so only the newest row of
each key is ever needed.

``thread_id`` is ``''`` for an unthreaded receipt (a primary key column cannot
be NULL), ``'main'`` for the main timeline, or a thread root's event ID.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from homeserver.storage.metadata import metadata
from homeserver.storage.upsert import dialect_insert

UNTHREADED = ""
# IN (...) lists are split so no query carries more parameters than SQLite allows.
_CHUNK = 500

receipts = sa.Table(
    "receipts",
    metadata,
    sa.Column("room_id", sa.Text, primary_key=True),
    sa.Column("receipt_type", sa.Text, primary_key=True),
    sa.Column("user_id", sa.Text, primary_key=True),
    sa.Column("thread_id", sa.Text, primary_key=True),
    sa.Column("event_id", sa.Text, nullable=False),
    # The receipt's data: {"ts": ...} (thread_id is added when rendering).
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("stream_id", sa.BigInteger, nullable=False),
    # The event's stream ordering: "which of two receipts is further ahead".
    sa.Column("event_stream_ordering", sa.BigInteger, nullable=False),
    sa.Index("receipts_room_stream", "room_id", "stream_id"),
)

receipts_stream_position = sa.Table(
    "receipts_stream_position",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
)


@attrs.frozen
class ReceiptRow:
    room_id: str
    receipt_type: str
    user_id: str
    thread_id: str  # UNTHREADED, "main" or a thread root
    event_id: str
    data: dict[str, Any]
    stream_id: int
    event_stream_ordering: int


def allocate_position(conn: Connection) -> int:
    position = conn.execute(
        sa.update(receipts_stream_position)
        .where(receipts_stream_position.c.id == 1)
        .values(position=receipts_stream_position.c.position + 1)
        .returning(receipts_stream_position.c.position)
    ).scalar_one()
    return int(position)


def read_position(conn: Connection) -> int:
    return int(
        conn.execute(
            sa.select(receipts_stream_position.c.position).where(receipts_stream_position.c.id == 1)
        ).scalar_one()
    )


def put(
    conn: Connection,
    *,
    room_id: str,
    receipt_type: str,
    user_id: str,
    thread_id: str,
    event_id: str,
    data: dict[str, Any],
    event_stream_ordering: int,
) -> int:
    """Store (replace) one receipt; returns its new stream position."""
    position = allocate_position(conn)
    insert = dialect_insert(conn)
    encoded = json.dumps(data, separators=(",", ":"))
    values = {
        "event_id": event_id,
        "data": encoded,
        "stream_id": position,
        "event_stream_ordering": event_stream_ordering,
    }
    stmt = insert(receipts).values(
        room_id=room_id, receipt_type=receipt_type, user_id=user_id, thread_id=thread_id, **values
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[
                receipts.c.room_id,
                receipts.c.receipt_type,
                receipts.c.user_id,
                receipts.c.thread_id,
            ],
            set_=values,
        )
    )
    return position


def _row(row: sa.Row[Any]) -> ReceiptRow:
    return ReceiptRow(
        room_id=row.room_id,
        receipt_type=row.receipt_type,
        user_id=row.user_id,
        thread_id=row.thread_id,
        event_id=row.event_id,
        data=json.loads(row.data),
        stream_id=int(row.stream_id),
        event_stream_ordering=int(row.event_stream_ordering),
    )


def get(
    conn: Connection, room_id: str, receipt_type: str, user_id: str, thread_id: str
) -> ReceiptRow | None:
    row = conn.execute(
        sa.select(receipts).where(
            receipts.c.room_id == room_id,
            receipts.c.receipt_type == receipt_type,
            receipts.c.user_id == user_id,
            receipts.c.thread_id == thread_id,
        )
    ).first()
    return None if row is None else _row(row)


def changed_in_rooms(
    conn: Connection,
    room_ids: Iterable[str],
    from_pos: int,
    to_pos: int | None,
    *,
    types: Iterable[str],
) -> list[ReceiptRow]:
    """Receipts of these types in these rooms written in (from_pos, to_pos], oldest first."""
    ids = list(room_ids)
    wanted = list(types)
    out: list[ReceiptRow] = []
    for i in range(0, len(ids), _CHUNK):
        query = sa.select(receipts).where(
            receipts.c.room_id.in_(ids[i : i + _CHUNK]),
            receipts.c.receipt_type.in_(wanted),
            receipts.c.stream_id > from_pos,
        )
        if to_pos is not None:
            query = query.where(receipts.c.stream_id <= to_pos)
        out.extend(_row(row) for row in conn.execute(query).all())
    out.sort(key=lambda r: r.stream_id)
    return out


def of_user_in_room(
    conn: Connection, user_id: str, room_id: str, types: Iterable[str]
) -> list[ReceiptRow]:
    """All of one user's receipts of these types in one room (every thread)."""
    rows = conn.execute(
        sa.select(receipts).where(
            receipts.c.room_id == room_id,
            receipts.c.user_id == user_id,
            receipts.c.receipt_type.in_(list(types)),
        )
    ).all()
    return [_row(row) for row in rows]
