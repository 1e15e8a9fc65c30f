"""Account data: per-user JSON documents, global or scoped to a room, on their own stream.

Each write takes the next position of the ``account_data`` stream inside its
transaction (a one-row counter, like the events stream, so on PostgreSQL
commits happen in position order) and stamps the row with it. ``/sync`` then
asks "which of this user's documents changed after position N", which is one
indexed range read; only the newest version of each document is kept, since
sync sends whole documents, never deltas.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from homeserver.storage.metadata import metadata
from homeserver.storage.upsert import dialect_insert

# Global account data is stored with this room_id, so one primary key covers both kinds.
GLOBAL = ""

account_data = sa.Table(
    "account_data",
    metadata,
    sa.Column("user_id", sa.Text, primary_key=True),
    sa.Column("room_id", sa.Text, primary_key=True),
    sa.Column("type", sa.Text, primary_key=True),
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("stream_id", sa.BigInteger, nullable=False),
    sa.Index("account_data_user_stream", "user_id", "stream_id"),
)

account_data_stream_position = sa.Table(
    "account_data_stream_position",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
)


@attrs.frozen
class AccountDataRow:
    room_id: str  # GLOBAL for global account data
    type: str
    content: dict[str, Any]
    stream_id: int


def allocate_position(conn: Connection) -> int:
    position = conn.execute(
        sa.update(account_data_stream_position)
        .where(account_data_stream_position.c.id == 1)
        .values(position=account_data_stream_position.c.position + 1)
        .returning(account_data_stream_position.c.position)
    ).scalar_one()
    return int(position)


def read_position(conn: Connection) -> int:
    return int(
        conn.execute(
            sa.select(account_data_stream_position.c.position).where(
                account_data_stream_position.c.id == 1
            )
        ).scalar_one()
    )


def put(
    conn: Connection, user_id: str, room_id: str, data_type: str, content: dict[str, Any]
) -> int:
    """Store (replace) one document; returns its new stream position."""
    position = allocate_position(conn)
    _write(conn, user_id, room_id, data_type, content, position)
    return position


def _write(
    conn: Connection,
    user_id: str,
    room_id: str,
    data_type: str,
    content: dict[str, Any],
    position: int,
) -> None:
    insert = dialect_insert(conn)
    encoded = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
    stmt = insert(account_data).values(
        user_id=user_id, room_id=room_id, type=data_type, content=encoded, stream_id=position
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[account_data.c.user_id, account_data.c.room_id, account_data.c.type],
            set_={"content": encoded, "stream_id": position},
        )
    )


def get(conn: Connection, user_id: str, room_id: str, data_type: str) -> dict[str, Any] | None:
    row = conn.execute(
        sa.select(account_data.c.content).where(
            account_data.c.user_id == user_id,
            account_data.c.room_id == room_id,
            account_data.c.type == data_type,
        )
    ).first()
    if row is None:
        return None
    value: dict[str, Any] = json.loads(row.content)
    return value


def _rows(conn: Connection, query: sa.Select[Any]) -> list[AccountDataRow]:
    return [
        AccountDataRow(
            room_id=row.room_id,
            type=row.type,
            content=json.loads(row.content),
            stream_id=int(row.stream_id),
        )
        for row in conn.execute(query.order_by(account_data.c.stream_id)).all()
    ]


def changed_since(
    conn: Connection, user_id: str, from_pos: int, to_pos: int | None
) -> list[AccountDataRow]:
    """The user's documents (global and per room) written in (from_pos, to_pos]."""
    query = sa.select(account_data).where(
        account_data.c.user_id == user_id, account_data.c.stream_id > from_pos
    )
    if to_pos is not None:
        query = query.where(account_data.c.stream_id <= to_pos)
    return _rows(conn, query)


def modify(
    conn: Connection,
    user_id: str,
    room_id: str,
    data_type: str,
    change: Callable[[dict[str, Any] | None], dict[str, Any] | None],
) -> int | None:
    """Read, change and write one document in this transaction; None if ``change`` returns None.

    The stream counter is locked *first*, as :func:`put` does, so every account data
    write takes its locks in the same order (no deadlock) and two concurrent edits of
    ``m.direct`` or ``m.tag`` cannot lose each other's change, even when the row does
    not exist yet. A position taken for no change is a harmless gap in the stream.
    """
    position = allocate_position(conn)
    new = change(get(conn, user_id, room_id, data_type))
    if new is None:
        return None
    _write(conn, user_id, room_id, data_type, new, position)
    return position
