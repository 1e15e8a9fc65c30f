"""The to-device inbox: messages queued per recipient device on the ``to_device`` stream.

Each message gets the next ``to_device`` position (the counter in
``e2e_stream_positions``, taken inside the transaction so positions commit in
order on PostgreSQL) and waits in ``to_device_inbox`` until the device syncs
with a token past it. ``to_device_txns`` makes ``PUT /sendToDevice`` idempotent
per (sender, device, txnId).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from homeserver.storage.e2e_keys import allocate_position
from homeserver.storage.metadata import metadata
from homeserver.storage.upsert import dialect_insert

# How long a (device, txnId) pair is remembered for idempotency.
TXN_ID_LIFETIME_MS = 24 * 3600 * 1000

to_device_inbox = sa.Table(
    "to_device_inbox",
    metadata,
    sa.Column("stream_id", sa.BigInteger, primary_key=True),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("device_id", sa.Text, nullable=False),
    sa.Column("message_json", sa.Text, nullable=False),
)

to_device_txns = sa.Table(
    "to_device_txns",
    metadata,
    sa.Column("user_id", sa.Text, primary_key=True),
    sa.Column("device_id", sa.Text, primary_key=True),
    sa.Column("txn_id", sa.Text, primary_key=True),
    sa.Column("created_ts", sa.BigInteger, nullable=False),
)


def claim_txn(conn: Connection, user_id: str, device_id: str, txn_id: str, now_ms: int) -> bool:
    """Record the transaction ID; False if this device already used it.

    IDs older than :data:`TXN_ID_LIFETIME_MS` are forgotten on the way (clients
    retry within seconds), so the table stays small.
    """
    conn.execute(
        sa.delete(to_device_txns).where(
            to_device_txns.c.user_id == user_id,
            to_device_txns.c.device_id == device_id,
            to_device_txns.c.created_ts < now_ms - TXN_ID_LIFETIME_MS,
        )
    )
    insert = dialect_insert(conn)
    # RETURNING, not rowcount: psycopg reports no rowcount for this INSERT.
    inserted = conn.execute(
        insert(to_device_txns)
        .values(user_id=user_id, device_id=device_id, txn_id=txn_id, created_ts=now_ms)
        .on_conflict_do_nothing()
        .returning(to_device_txns.c.txn_id)
    ).first()
    return inserted is not None


def pending_counts(
    conn: Connection, targets: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    """Messages waiting for each (user, device)."""
    out: dict[tuple[str, str], int] = {}
    by_user: dict[str, list[str]] = {}
    for user_id, device_id in targets:
        by_user.setdefault(user_id, []).append(device_id)
    for user_id, device_ids in by_user.items():
        rows = conn.execute(
            sa.select(to_device_inbox.c.device_id, sa.func.count())
            .where(
                to_device_inbox.c.user_id == user_id, to_device_inbox.c.device_id.in_(device_ids)
            )
            .group_by(to_device_inbox.c.device_id)
        ).all()
        for row in rows:
            out[(user_id, str(row[0]))] = int(row[1])
    return out


def enqueue(conn: Connection, user_id: str, device_id: str, message: dict[str, Any]) -> int:
    position = allocate_position(conn, "to_device")
    conn.execute(
        sa.insert(to_device_inbox).values(
            stream_id=position,
            user_id=user_id,
            device_id=device_id,
            message_json=json.dumps(message, ensure_ascii=False, separators=(",", ":")),
        )
    )
    return position


def read_messages(
    conn: Connection, user_id: str, device_id: str, after: int, upto: int, limit: int
) -> list[tuple[int, dict[str, Any]]]:
    rows = conn.execute(
        sa.select(to_device_inbox.c.stream_id, to_device_inbox.c.message_json)
        .where(
            to_device_inbox.c.user_id == user_id,
            to_device_inbox.c.device_id == device_id,
            to_device_inbox.c.stream_id > after,
            to_device_inbox.c.stream_id <= upto,
        )
        .order_by(to_device_inbox.c.stream_id)
        .limit(limit)
    ).all()
    return [(int(row.stream_id), json.loads(row.message_json)) for row in rows]


def has_messages_upto(conn: Connection, user_id: str, device_id: str, upto: int) -> bool:
    return (
        conn.execute(
            sa.select(to_device_inbox.c.stream_id)
            .where(
                to_device_inbox.c.user_id == user_id,
                to_device_inbox.c.device_id == device_id,
                to_device_inbox.c.stream_id <= upto,
            )
            .limit(1)
        ).first()
        is not None
    )


def delete_upto(conn: Connection, user_id: str, device_id: str, upto: int) -> int:
    return conn.execute(
        sa.delete(to_device_inbox).where(
            to_device_inbox.c.user_id == user_id,
            to_device_inbox.c.device_id == device_id,
            to_device_inbox.c.stream_id <= upto,
        )
    ).rowcount


def delete_devices(conn: Connection, user_id: str, device_ids: list[str] | None) -> None:
    """Drop the queues (and transaction IDs) of these devices; None: all of the user's."""
    for table in (to_device_inbox, to_device_txns):
        query = sa.delete(table).where(table.c.user_id == user_id)
        if device_ids is not None:
            query = query.where(table.c.device_id.in_(device_ids))
        conn.execute(query)
