"""Presence: one row per local user, on its own stream.

A row keeps what the user *set* (``state``, ``status_msg``) and when they were
last active and last synced; what others *see* is derived from these and the
clock by the pure rules in ``homeserver/presence.py``. A stored ``stream_id``
changes whenever the visible presence changes (an explicit update, or the
presence service noticing an idle timeout), so ``/sync`` reads "whose presence
changed after position N" as one indexed range read. Rows survive restarts, so
``status_msg`` does too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from homeserver.storage.event_tables import current_state
from homeserver.storage.metadata import metadata
from homeserver.storage.upsert import dialect_insert

_CHUNK = 500

presence = sa.Table(
    "presence",
    metadata,
    sa.Column("user_id", sa.Text, primary_key=True),
    # What the user asked for: online, unavailable or offline.
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("status_msg", sa.Text, nullable=True),
    # Milliseconds since the epoch; 0: never.
    sa.Column("last_active_ts", sa.BigInteger, nullable=False),
    sa.Column("last_sync_ts", sa.BigInteger, nullable=False),
    # The state others saw when this row was last streamed (idle timeouts compare to it).
    sa.Column("visible_state", sa.Text, nullable=False),
    sa.Column("stream_id", sa.BigInteger, nullable=False),
    sa.Index("presence_stream", "stream_id"),
)

presence_stream_position = sa.Table(
    "presence_stream_position",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
)


@attrs.frozen
class PresenceRow:
    user_id: str
    state: str
    status_msg: str | None
    last_active_ts: int
    last_sync_ts: int
    visible_state: str
    stream_id: int


def allocate_position(conn: Connection) -> int:
    position = conn.execute(
        sa.update(presence_stream_position)
        .where(presence_stream_position.c.id == 1)
        .values(position=presence_stream_position.c.position + 1)
        .returning(presence_stream_position.c.position)
    ).scalar_one()
    return int(position)


def read_position(conn: Connection) -> int:
    return int(
        conn.execute(
            sa.select(presence_stream_position.c.position).where(presence_stream_position.c.id == 1)
        ).scalar_one()
    )


def _row(row: sa.Row[Any]) -> PresenceRow:
    return PresenceRow(
        user_id=row.user_id,
        state=row.state,
        status_msg=row.status_msg,
        last_active_ts=int(row.last_active_ts),
        last_sync_ts=int(row.last_sync_ts),
        visible_state=row.visible_state,
        stream_id=int(row.stream_id),
    )


def get(conn: Connection, user_id: str) -> PresenceRow | None:
    row = conn.execute(sa.select(presence).where(presence.c.user_id == user_id)).first()
    return None if row is None else _row(row)


def put(conn: Connection, row: PresenceRow, *, advance: bool) -> PresenceRow:
    """Store (replace) a user's row; ``advance``: take a new stream position (others see a change)."""
    stream_id = allocate_position(conn) if advance else row.stream_id
    stored = attrs.evolve(row, stream_id=stream_id)
    values = attrs.asdict(stored)
    insert = dialect_insert(conn)
    update = {k: v for k, v in values.items() if k != "user_id"}
    conn.execute(
        insert(presence)
        .values(**values)
        .on_conflict_do_update(index_elements=[presence.c.user_id], set_=update)
    )
    return stored


def get_many(conn: Connection, user_ids: Iterable[str]) -> list[PresenceRow]:
    ids = list(user_ids)
    out: list[PresenceRow] = []
    for i in range(0, len(ids), _CHUNK):
        rows = conn.execute(sa.select(presence).where(presence.c.user_id.in_(ids[i : i + _CHUNK])))
        out.extend(_row(row) for row in rows.all())
    return out


def changed_since(conn: Connection, from_pos: int) -> list[PresenceRow]:
    """Rows whose visible presence changed after ``from_pos``, oldest first."""
    rows = conn.execute(
        sa.select(presence).where(presence.c.stream_id > from_pos).order_by(presence.c.stream_id)
    ).all()
    return [_row(row) for row in rows]


def not_offline(conn: Connection) -> list[PresenceRow]:
    """Rows that may still time out (anyone not already seen as offline)."""
    rows = conn.execute(sa.select(presence).where(presence.c.visible_state != "offline")).all()
    return [_row(row) for row in rows]


def users_sharing_a_room(conn: Connection, user_id: str) -> set[str]:
    """Users joined to some room ``user_id`` is joined to (``user_id`` included if joined anywhere)."""
    mine = (
        sa.select(current_state.c.room_id)
        .where(
            current_state.c.type == "m.room.member",
            current_state.c.state_key == user_id,
            current_state.c.membership == "join",
        )
        .scalar_subquery()
    )
    rows = conn.execute(
        sa.select(current_state.c.state_key)
        .where(
            current_state.c.type == "m.room.member",
            current_state.c.membership == "join",
            current_state.c.room_id.in_(mine),
        )
        .distinct()
    ).all()
    return {row.state_key for row in rows}


def share_a_room(conn: Connection, user_a: str, user_b: str) -> bool:
    return user_b in users_sharing_a_room(conn, user_a)
