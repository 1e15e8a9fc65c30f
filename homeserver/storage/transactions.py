"""Client transaction IDs: ``PUT .../send/{type}/{txnId}`` is idempotent per device and endpoint.

A retried request (the client never saw our answer) must get the same event
back, never a second event (client-server-api "Transaction identifiers";
matrix_brief 1.1). The scope is ``(user, device, endpoint)``: the same txnId on
/send and on /redact names two different transactions. The mapping also lets
/sync put ``unsigned.transaction_id`` on the sending device's own echo.

The primary key makes the mapping a single row: :func:`claim_txn` inserts it
and, if another request got there first, rolls the new event back and names
the existing one (:class:`TxnAlreadyClaimed`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from homeserver.storage.metadata import metadata
from homeserver.storage.multi_insert import insert_rows

event_txn_ids = sa.Table(
    "event_txn_ids",
    metadata,
    sa.Column("user_id", sa.Text, primary_key=True),
    sa.Column("device_id", sa.Text, primary_key=True),
    sa.Column("endpoint", sa.Text, primary_key=True),
    sa.Column("txn_id", sa.Text, primary_key=True),
    sa.Column("event_id", sa.Text, nullable=False),
    sa.Column("created_ts", sa.BigInteger, nullable=False),
    sa.Index("event_txn_ids_event", "event_id"),
)

_CHUNK = 500


def read_txn(
    conn: Connection, user_id: str, device_id: str, endpoint: str, txn_id: str
) -> str | None:
    """The event a transaction produced, if it completed."""
    value = conn.execute(
        sa.select(event_txn_ids.c.event_id).where(
            event_txn_ids.c.user_id == user_id,
            event_txn_ids.c.device_id == device_id,
            event_txn_ids.c.endpoint == endpoint,
            event_txn_ids.c.txn_id == txn_id,
        )
    ).scalar_one_or_none()
    return None if value is None else str(value)


class TxnAlreadyClaimed(Exception):
    """The transaction ID already maps to an event: the caller's transaction must not commit.

    Raised inside the event's own transaction, which then rolls back, so a
    retried request never leaves a second event behind.
    """

    def __init__(self, event_id: str) -> None:
        super().__init__(f"transaction already produced {event_id}")
        self.event_id = event_id


_CLAIM_COLUMNS = ("user_id", "device_id", "endpoint", "txn_id", "event_id", "created_ts")


def claim_txn(
    conn: Connection,
    user_id: str,
    device_id: str,
    endpoint: str,
    txn_id: str,
    event_id: str,
    now_ms: int,
) -> str:
    """Record ``event_id`` for the transaction, in the event's own transaction.

    One statement on the send path: INSERT ... ON CONFLICT DO NOTHING, which
    never aborts the transaction by itself (PostgreSQL included). If the
    transaction ID is already taken (a retry the caller's memory did not know
    of: after a restart, or from another process), raise
    :class:`TxnAlreadyClaimed` with the first event so the new one is rolled back.
    """
    row = (user_id, device_id, endpoint, txn_id, event_id, now_ms)
    if insert_rows(conn, event_txn_ids, _CLAIM_COLUMNS, [row], ignore_conflicts=True) == 1:
        return event_id
    existing = read_txn(conn, user_id, device_id, endpoint, txn_id)
    if existing is None:
        raise RuntimeError("transaction ID neither inserted nor found")
    raise TxnAlreadyClaimed(existing)


@attrs.frozen
class TxnClaim:
    """The in-transaction hook of a send: record its transaction ID (see :func:`claim_txn`).

    Called as ``claim(conn, event)``; the events of one batch are claimed together
    with :meth:`run_batch`, one statement for all of them (the event store groups
    consecutive hooks that share a ``run_batch``).
    """

    user_id: str
    device_id: str
    endpoint: str
    txn_id: str
    now_ms: int

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.user_id, self.device_id, self.endpoint, self.txn_id)

    def __call__(self, conn: Connection, event: Any) -> str:
        return claim_txn(conn, *self.key, str(event.event_id), self.now_ms)

    @staticmethod
    def run_batch(conn: Connection, items: Sequence[tuple[TxnClaim, Any]]) -> list[str]:
        """Claim every ``(claim, event)`` at once; raise :class:`TxnAlreadyClaimed` if one is taken."""
        keys = [claim.key for claim, _ in items]
        if len(items) == 1 or len(set(keys)) != len(keys):
            return [claim(conn, event) for claim, event in items]
        # One multi-row statement (multi_insert.py); the row count tells if any was taken.
        rows = [(*claim.key, str(event.event_id), claim.now_ms) for claim, event in items]
        inserted = insert_rows(conn, event_txn_ids, _CLAIM_COLUMNS, rows, ignore_conflicts=True)
        if inserted != len(items):
            for claim, event in items:
                existing = read_txn(conn, *claim.key)
                if existing is None:
                    raise RuntimeError("transaction ID neither inserted nor found")
                if existing != str(event.event_id):
                    raise TxnAlreadyClaimed(existing)
            raise RuntimeError("fewer transaction IDs inserted than claimed, none taken")
        return [str(event.event_id) for _, event in items]


def read_txn_ids_for_device(
    conn: Connection, user_id: str, device_id: str, event_ids: Iterable[str]
) -> dict[str, str]:
    """event_id -> txn_id for those of ``event_ids`` this device sent with a transaction ID."""
    ids = list(dict.fromkeys(event_ids))
    found: dict[str, str] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        rows = conn.execute(
            sa.select(event_txn_ids.c.event_id, event_txn_ids.c.txn_id).where(
                event_txn_ids.c.event_id.in_(chunk),
                event_txn_ids.c.user_id == user_id,
                event_txn_ids.c.device_id == device_id,
            )
        ).all()
        for row in rows:
            found[row.event_id] = row.txn_id
    return found
