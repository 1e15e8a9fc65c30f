"""Storage of end-to-end encryption keys and the device-list stream.

The server stores keys as the client signed them (JSON text) and never looks
inside beyond what routing needs. Tables:

* ``e2e_device_keys``: one signed device-keys object per device.
* ``e2e_one_time_keys``: handed out oldest first (``id`` is the upload order),
  each exactly once: a claim deletes the row it read and checks it deleted it,
  so two concurrent claims never get the same key (on PostgreSQL the second
  DELETE waits for the first transaction and then finds nothing).
* ``e2e_fallback_keys``: one per (device, algorithm), replaced on upload,
  ``used`` once handed out.
* ``e2e_cross_signing_keys`` / ``e2e_signatures``: cross-signing keys and the
  signatures uploaded separately through ``/keys/signatures/upload``.
* ``device_list_changes``: the ``device_lists`` stream (whose keys changed at
  which position). Positions come from the one-row-per-stream counter in
  ``e2e_stream_positions``, taken inside the writing transaction, so on
  PostgreSQL they commit in position order (as the events stream does).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from homeserver.storage.event_tables import current_state, events
from homeserver.storage.metadata import metadata
from homeserver.storage.upsert import dialect_insert

e2e_stream_positions = sa.Table(
    "e2e_stream_positions",
    metadata,
    sa.Column("stream", sa.Text, primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
)

e2e_device_keys = sa.Table(
    "e2e_device_keys",
    metadata,
    sa.Column("user_id", sa.Text, primary_key=True),
    sa.Column("device_id", sa.Text, primary_key=True),
    sa.Column("key_json", sa.Text, nullable=False),
)

e2e_one_time_keys = sa.Table(
    "e2e_one_time_keys",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("device_id", sa.Text, nullable=False),
    sa.Column("algorithm", sa.Text, nullable=False),
    sa.Column("key_id", sa.Text, nullable=False),
    sa.Column("key_json", sa.Text, nullable=False),
)

e2e_fallback_keys = sa.Table(
    "e2e_fallback_keys",
    metadata,
    sa.Column("user_id", sa.Text, primary_key=True),
    sa.Column("device_id", sa.Text, primary_key=True),
    sa.Column("algorithm", sa.Text, primary_key=True),
    sa.Column("key_id", sa.Text, nullable=False),
    sa.Column("key_json", sa.Text, nullable=False),
    sa.Column("used", sa.Boolean, nullable=False),
)

e2e_cross_signing_keys = sa.Table(
    "e2e_cross_signing_keys",
    metadata,
    sa.Column("user_id", sa.Text, primary_key=True),
    sa.Column("key_type", sa.Text, primary_key=True),
    sa.Column("public_key", sa.Text, nullable=False),
    sa.Column("key_json", sa.Text, nullable=False),
)

e2e_signatures = sa.Table(
    "e2e_signatures",
    metadata,
    sa.Column("target_user_id", sa.Text, primary_key=True),
    sa.Column("target_key_id", sa.Text, primary_key=True),
    sa.Column("signer_user_id", sa.Text, primary_key=True),
    sa.Column("signer_key_id", sa.Text, primary_key=True),
    sa.Column("signature", sa.Text, nullable=False),
)

device_list_changes = sa.Table(
    "device_list_changes",
    metadata,
    sa.Column("stream_id", sa.BigInteger, primary_key=True),
    sa.Column("user_id", sa.Text, nullable=False),
)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


# -- stream positions ---------------------------------------------------------------


def allocate_position(conn: Connection, stream: str) -> int:
    return int(
        conn.execute(
            sa.update(e2e_stream_positions)
            .where(e2e_stream_positions.c.stream == stream)
            .values(position=e2e_stream_positions.c.position + 1)
            .returning(e2e_stream_positions.c.position)
        ).scalar_one()
    )


def read_position(conn: Connection, stream: str) -> int:
    return int(
        conn.execute(
            sa.select(e2e_stream_positions.c.position).where(
                e2e_stream_positions.c.stream == stream
            )
        ).scalar_one()
    )


# -- device keys ----------------------------------------------------------------------


def get_device_keys(conn: Connection, user_id: str, device_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        sa.select(e2e_device_keys.c.key_json).where(
            e2e_device_keys.c.user_id == user_id, e2e_device_keys.c.device_id == device_id
        )
    ).first()
    return None if row is None else dict(json.loads(row.key_json))


def put_device_keys(conn: Connection, user_id: str, device_id: str, keys: dict[str, Any]) -> None:
    encoded = _dumps(keys)
    stmt = dialect_insert(conn)(e2e_device_keys).values(
        user_id=user_id, device_id=device_id, key_json=encoded
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[e2e_device_keys.c.user_id, e2e_device_keys.c.device_id],
            set_={"key_json": encoded},
        )
    )


def read_device_keys(
    conn: Connection, user_id: str, device_ids: Iterable[str] | None
) -> dict[str, dict[str, Any]]:
    """device_id -> stored keys; ``device_ids`` None means all the user's devices."""
    query = sa.select(e2e_device_keys.c.device_id, e2e_device_keys.c.key_json).where(
        e2e_device_keys.c.user_id == user_id
    )
    if device_ids is not None:
        query = query.where(e2e_device_keys.c.device_id.in_(list(device_ids)))
    return {row.device_id: json.loads(row.key_json) for row in conn.execute(query)}


# -- one-time keys -------------------------------------------------------------------


def get_one_time_keys(
    conn: Connection, user_id: str, device_id: str, key_ids: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], Any]:
    """(algorithm, key_id) -> stored key, for those of ``key_ids`` already uploaded."""
    wanted = set(key_ids)
    if not wanted:
        return {}
    rows = conn.execute(
        sa.select(
            e2e_one_time_keys.c.algorithm, e2e_one_time_keys.c.key_id, e2e_one_time_keys.c.key_json
        ).where(
            e2e_one_time_keys.c.user_id == user_id,
            e2e_one_time_keys.c.device_id == device_id,
            e2e_one_time_keys.c.key_id.in_([k for _, k in wanted]),
        )
    ).all()
    return {
        (row.algorithm, row.key_id): json.loads(row.key_json)
        for row in rows
        if (row.algorithm, row.key_id) in wanted
    }


def add_one_time_keys(
    conn: Connection, user_id: str, device_id: str, keys: list[tuple[str, str, Any]]
) -> None:
    """Insert (algorithm, key_id, key) in order: the order they are handed out in."""
    for algorithm, key_id, key in keys:
        conn.execute(
            sa.insert(e2e_one_time_keys).values(
                user_id=user_id,
                device_id=device_id,
                algorithm=algorithm,
                key_id=key_id,
                key_json=_dumps(key),
            )
        )


def count_one_time_keys(conn: Connection, user_id: str, device_id: str) -> dict[str, int]:
    rows = conn.execute(
        sa.select(e2e_one_time_keys.c.algorithm, sa.func.count())
        .where(e2e_one_time_keys.c.user_id == user_id, e2e_one_time_keys.c.device_id == device_id)
        .group_by(e2e_one_time_keys.c.algorithm)
    ).all()
    return {str(row[0]): int(row[1]) for row in rows}


def claim_one_time_key(
    conn: Connection, user_id: str, device_id: str, algorithm: str
) -> tuple[str, Any] | None:
    """Take the oldest key of ``algorithm`` for the device, deleting it; None if none left."""
    for _ in range(20):
        row = conn.execute(
            sa.select(
                e2e_one_time_keys.c.id, e2e_one_time_keys.c.key_id, e2e_one_time_keys.c.key_json
            )
            .where(
                e2e_one_time_keys.c.user_id == user_id,
                e2e_one_time_keys.c.device_id == device_id,
                e2e_one_time_keys.c.algorithm == algorithm,
            )
            .order_by(e2e_one_time_keys.c.id)
            .limit(1)
        ).first()
        if row is None:
            return None
        deleted = conn.execute(
            sa.delete(e2e_one_time_keys).where(e2e_one_time_keys.c.id == row.id)
        ).rowcount
        if deleted == 1:
            return str(row.key_id), json.loads(row.key_json)
        # Another transaction claimed it first: look again.
    return None


# -- fallback keys ---------------------------------------------------------------------


def put_fallback_key(
    conn: Connection, user_id: str, device_id: str, algorithm: str, key_id: str, key: Any
) -> None:
    """Replace the device's fallback key of ``algorithm``; the same key again keeps ``used``."""
    encoded = _dumps(key)
    existing = conn.execute(
        sa.select(e2e_fallback_keys.c.key_id, e2e_fallback_keys.c.key_json).where(
            e2e_fallback_keys.c.user_id == user_id,
            e2e_fallback_keys.c.device_id == device_id,
            e2e_fallback_keys.c.algorithm == algorithm,
        )
    ).first()
    if existing is not None and existing.key_id == key_id and existing.key_json == encoded:
        return
    stmt = dialect_insert(conn)(e2e_fallback_keys).values(
        user_id=user_id,
        device_id=device_id,
        algorithm=algorithm,
        key_id=key_id,
        key_json=encoded,
        used=False,
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[
                e2e_fallback_keys.c.user_id,
                e2e_fallback_keys.c.device_id,
                e2e_fallback_keys.c.algorithm,
            ],
            set_={"key_id": key_id, "key_json": encoded, "used": False},
        )
    )


def claim_fallback_key(
    conn: Connection, user_id: str, device_id: str, algorithm: str
) -> tuple[str, Any] | None:
    row = conn.execute(
        sa.select(e2e_fallback_keys.c.key_id, e2e_fallback_keys.c.key_json).where(
            e2e_fallback_keys.c.user_id == user_id,
            e2e_fallback_keys.c.device_id == device_id,
            e2e_fallback_keys.c.algorithm == algorithm,
        )
    ).first()
    if row is None:
        return None
    conn.execute(
        sa.update(e2e_fallback_keys)
        .where(
            e2e_fallback_keys.c.user_id == user_id,
            e2e_fallback_keys.c.device_id == device_id,
            e2e_fallback_keys.c.algorithm == algorithm,
        )
        .values(used=True)
    )
    return str(row.key_id), json.loads(row.key_json)


def unused_fallback_algorithms(conn: Connection, user_id: str, device_id: str) -> list[str]:
    rows = conn.execute(
        sa.select(e2e_fallback_keys.c.algorithm)
        .where(
            e2e_fallback_keys.c.user_id == user_id,
            e2e_fallback_keys.c.device_id == device_id,
            e2e_fallback_keys.c.used == sa.false(),
        )
        .order_by(e2e_fallback_keys.c.algorithm)
    ).all()
    return [str(row[0]) for row in rows]


# -- cross-signing ---------------------------------------------------------------------


def get_cross_signing_keys(conn: Connection, user_id: str) -> dict[str, dict[str, Any]]:
    """key_type (master, self_signing, user_signing) -> stored key."""
    rows = conn.execute(
        sa.select(e2e_cross_signing_keys.c.key_type, e2e_cross_signing_keys.c.key_json).where(
            e2e_cross_signing_keys.c.user_id == user_id
        )
    ).all()
    return {row.key_type: json.loads(row.key_json) for row in rows}


def put_cross_signing_key(
    conn: Connection, user_id: str, key_type: str, public_key: str, key: dict[str, Any]
) -> None:
    encoded = _dumps(key)
    stmt = dialect_insert(conn)(e2e_cross_signing_keys).values(
        user_id=user_id, key_type=key_type, public_key=public_key, key_json=encoded
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[e2e_cross_signing_keys.c.user_id, e2e_cross_signing_keys.c.key_type],
            set_={"public_key": public_key, "key_json": encoded},
        )
    )


def delete_cross_signing_key(conn: Connection, user_id: str, key_type: str) -> None:
    conn.execute(
        sa.delete(e2e_cross_signing_keys).where(
            e2e_cross_signing_keys.c.user_id == user_id,
            e2e_cross_signing_keys.c.key_type == key_type,
        )
    )


# -- signatures ----------------------------------------------------------------------


def put_signature(
    conn: Connection,
    target_user_id: str,
    target_key_id: str,
    signer_user_id: str,
    signer_key_id: str,
    signature: str,
) -> None:
    stmt = dialect_insert(conn)(e2e_signatures).values(
        target_user_id=target_user_id,
        target_key_id=target_key_id,
        signer_user_id=signer_user_id,
        signer_key_id=signer_key_id,
        signature=signature,
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[
                e2e_signatures.c.target_user_id,
                e2e_signatures.c.target_key_id,
                e2e_signatures.c.signer_user_id,
                e2e_signatures.c.signer_key_id,
            ],
            set_={"signature": signature},
        )
    )


def read_signatures(conn: Connection, target_user_id: str) -> dict[str, list[tuple[str, str, str]]]:
    """target_key_id -> [(signer_user_id, signer_key_id, signature)]."""
    rows = conn.execute(
        sa.select(e2e_signatures).where(e2e_signatures.c.target_user_id == target_user_id)
    ).all()
    out: dict[str, list[tuple[str, str, str]]] = {}
    for row in rows:
        out.setdefault(row.target_key_id, []).append(
            (row.signer_user_id, row.signer_key_id, row.signature)
        )
    return out


# -- device removal --------------------------------------------------------------------


def delete_device_keys(conn: Connection, user_id: str, device_ids: list[str] | None) -> None:
    """Drop the keys of these devices (None: every device of the user)."""
    for table in (e2e_device_keys, e2e_one_time_keys, e2e_fallback_keys):
        query = sa.delete(table).where(table.c.user_id == user_id)
        if device_ids is not None:
            query = query.where(table.c.device_id.in_(device_ids))
        conn.execute(query)
    query = sa.delete(e2e_signatures).where(e2e_signatures.c.target_user_id == user_id)
    if device_ids is not None:
        query = query.where(e2e_signatures.c.target_key_id.in_(device_ids))
    else:
        query = query.where(
            e2e_signatures.c.target_key_id.not_in(
                sa.select(e2e_cross_signing_keys.c.public_key).where(
                    e2e_cross_signing_keys.c.user_id == user_id
                )
            )
        )
    conn.execute(query)


# -- device-list stream -----------------------------------------------------------------


def record_device_list_change(conn: Connection, user_id: str) -> int:
    position = allocate_position(conn, "device_lists")
    conn.execute(sa.insert(device_list_changes).values(stream_id=position, user_id=user_id))
    return position


def users_changed_between(conn: Connection, from_pos: int, to_pos: int) -> set[str]:
    rows = conn.execute(
        sa.select(device_list_changes.c.user_id)
        .where(
            device_list_changes.c.stream_id > from_pos, device_list_changes.c.stream_id <= to_pos
        )
        .distinct()
    ).all()
    return {str(row[0]) for row in rows}


def joined_rooms(conn: Connection, user_id: str) -> list[str]:
    rows = conn.execute(
        sa.select(current_state.c.room_id).where(
            current_state.c.type == "m.room.member",
            current_state.c.state_key == user_id,
            current_state.c.membership == "join",
        )
    ).all()
    return [str(row[0]) for row in rows]


def users_sharing_rooms(conn: Connection, user_id: str) -> set[str]:
    """Everyone joined to a room ``user_id`` is joined to (including ``user_id``)."""
    mine = sa.select(current_state.c.room_id).where(
        current_state.c.type == "m.room.member",
        current_state.c.state_key == user_id,
        current_state.c.membership == "join",
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
    return {str(row[0]) for row in rows} | {user_id}


def room_members(conn: Connection, room_id: str) -> set[str]:
    rows = conn.execute(
        sa.select(current_state.c.state_key).where(
            current_state.c.room_id == room_id,
            current_state.c.type == "m.room.member",
            current_state.c.membership == "join",
        )
    ).all()
    return {str(row[0]) for row in rows}


MAX_MEMBER_CHANGES = 10_000


def member_changes_between(
    conn: Connection, user_id: str, from_pos: int, to_pos: int
) -> list[tuple[str, str, str]]:
    """(room_id, state_key, membership) of member events in (from_pos, to_pos] of the events
    stream, in rooms ``user_id`` has a membership in, oldest first."""
    mine = sa.select(current_state.c.room_id).where(
        current_state.c.type == "m.room.member", current_state.c.state_key == user_id
    )
    rows = conn.execute(
        sa.select(events.c.room_id, events.c.state_key, events.c.membership)
        .where(
            events.c.type == "m.room.member",
            events.c.stream_ordering > from_pos,
            events.c.stream_ordering <= to_pos,
            events.c.outlier == sa.false(),
            events.c.rejected_reason.is_(None),
            events.c.soft_failed == sa.false(),
            events.c.room_id.in_(mine),
        )
        .order_by(events.c.stream_ordering)
        .limit(MAX_MEMBER_CHANGES)
    ).all()
    out: list[tuple[str, str, str]] = []
    for row in rows:
        if row.membership is not None and row.state_key is not None:
            out.append((row.room_id, row.state_key, row.membership))
    return out
