"""Room aliases and the public room directory.

An alias maps to exactly one room (the primary key makes a concurrent second
``PUT`` fail instead of overwriting). The directory stores only rooms
published as ``public``; absence means ``private``, the default.
"""

from __future__ import annotations

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from homeserver.storage.metadata import metadata

room_aliases = sa.Table(
    "room_aliases",
    metadata,
    sa.Column("room_alias", sa.Text, primary_key=True),
    sa.Column("room_id", sa.Text, nullable=False),
    # Who created the alias: they may delete it without power in the room.
    sa.Column("creator", sa.Text, nullable=False),
    sa.Index("room_aliases_room", "room_id"),
)

room_directory = sa.Table(
    "room_directory",
    metadata,
    sa.Column("room_id", sa.Text, primary_key=True),
    sa.Column("visibility", sa.Text, nullable=False),
)


@attrs.frozen
class AliasRow:
    room_alias: str
    room_id: str
    creator: str


class AliasExists(Exception):
    pass


def create_alias(conn: Connection, room_alias: str, room_id: str, creator: str) -> None:
    """Insert the alias; :class:`AliasExists` if it is taken (checked, then enforced by the key)."""
    if get_alias(conn, room_alias) is not None:
        raise AliasExists(room_alias)
    try:
        with conn.begin_nested():
            conn.execute(
                sa.insert(room_aliases).values(
                    room_alias=room_alias, room_id=room_id, creator=creator
                )
            )
    except IntegrityError:
        raise AliasExists(room_alias) from None


def get_alias(conn: Connection, room_alias: str) -> AliasRow | None:
    row = conn.execute(
        sa.select(room_aliases).where(room_aliases.c.room_alias == room_alias)
    ).first()
    if row is None:
        return None
    return AliasRow(room_alias=row.room_alias, room_id=row.room_id, creator=row.creator)


def delete_alias(conn: Connection, room_alias: str) -> bool:
    result = conn.execute(sa.delete(room_aliases).where(room_aliases.c.room_alias == room_alias))
    return bool(result.rowcount)


def aliases_of_room(conn: Connection, room_id: str) -> list[str]:
    rows = conn.execute(
        sa.select(room_aliases.c.room_alias)
        .where(room_aliases.c.room_id == room_id)
        .order_by(room_aliases.c.room_alias)
    ).all()
    return [row.room_alias for row in rows]


def set_visibility(conn: Connection, room_id: str, visibility: str) -> None:
    conn.execute(sa.delete(room_directory).where(room_directory.c.room_id == room_id))
    if visibility == "public":
        conn.execute(sa.insert(room_directory).values(room_id=room_id, visibility="public"))


def get_visibility(conn: Connection, room_id: str) -> str:
    row = conn.execute(
        sa.select(room_directory.c.visibility).where(room_directory.c.room_id == room_id)
    ).first()
    return "private" if row is None else str(row.visibility)


def public_room_ids(conn: Connection) -> list[str]:
    rows = conn.execute(
        sa.select(room_directory.c.room_id)
        .where(room_directory.c.visibility == "public")
        .order_by(room_directory.c.room_id)
    ).all()
    return [row.room_id for row in rows]
