"""Stored filters: ``POST /user/{userId}/filter`` returns an ID that later requests name.

Filters are immutable once stored (a client that wants another filter uploads
another), so the ID is simply a global row number; lookups check the owner so
one user can never read or use another's filter.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from homeserver.storage.metadata import metadata

user_filters = sa.Table(
    "user_filters",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("filter_json", sa.Text, nullable=False),
    sa.Index("user_filters_user", "user_id"),
)


def insert_filter(conn: Connection, user_id: str, body: dict[str, Any]) -> str:
    new_id = conn.execute(
        sa.insert(user_filters)
        .values(user_id=user_id, filter_json=json.dumps(body, ensure_ascii=False))
        .returning(user_filters.c.id)
    ).scalar_one()
    return str(new_id)


def read_filter(conn: Connection, user_id: str, filter_id: str) -> dict[str, Any] | None:
    if not (filter_id.isascii() and filter_id.isdigit()) or len(filter_id) > 18:
        return None
    text = conn.execute(
        sa.select(user_filters.c.filter_json).where(
            user_filters.c.id == int(filter_id), user_filters.c.user_id == user_id
        )
    ).scalar_one_or_none()
    if text is None:
        return None
    value: dict[str, Any] = json.loads(text)
    return value
