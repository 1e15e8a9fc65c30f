"""Server-side key backup (``/room_keys``): versions and the encrypted session keys in them.

Versions are numbered per user and never reused (a deleted version keeps its
row, flagged ``deleted``), so a client holding an old version number gets
"wrong version" rather than silently writing into a newer backup. ``etag``
counts modifications of a version's keys.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from homeserver.storage.metadata import metadata

e2e_room_keys_versions = sa.Table(
    "e2e_room_keys_versions",
    metadata,
    sa.Column("user_id", sa.Text, primary_key=True),
    sa.Column("version", sa.BigInteger, primary_key=True),
    sa.Column("algorithm", sa.Text, nullable=False),
    sa.Column("auth_data", sa.Text, nullable=False),
    sa.Column("etag", sa.BigInteger, nullable=False),
    sa.Column("deleted", sa.Boolean, nullable=False),
)

e2e_room_keys = sa.Table(
    "e2e_room_keys",
    metadata,
    sa.Column("user_id", sa.Text, primary_key=True),
    sa.Column("version", sa.BigInteger, primary_key=True),
    sa.Column("room_id", sa.Text, primary_key=True),
    sa.Column("session_id", sa.Text, primary_key=True),
    sa.Column("first_message_index", sa.BigInteger, nullable=False),
    sa.Column("forwarded_count", sa.BigInteger, nullable=False),
    sa.Column("is_verified", sa.Boolean, nullable=False),
    sa.Column("session_data", sa.Text, nullable=False),
)


@attrs.frozen
class BackupVersion:
    version: int
    algorithm: str
    auth_data: dict[str, Any]
    etag: int


@attrs.frozen
class RoomKey:
    first_message_index: int
    forwarded_count: int
    is_verified: bool
    session_data: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "first_message_index": self.first_message_index,
            "forwarded_count": self.forwarded_count,
            "is_verified": self.is_verified,
            "session_data": self.session_data,
        }

    def better_than(self, other: RoomKey) -> bool:
        """Key backup "Storing keys": verified wins, then the lower index, then fewer forwards."""
        if self.is_verified != other.is_verified:
            return self.is_verified
        if self.first_message_index != other.first_message_index:
            return self.first_message_index < other.first_message_index
        return self.forwarded_count < other.forwarded_count


def _live(user_id: str) -> Any:
    return sa.and_(
        e2e_room_keys_versions.c.user_id == user_id,
        e2e_room_keys_versions.c.deleted == sa.false(),
    )


def _version(row: Any) -> BackupVersion:
    return BackupVersion(int(row.version), row.algorithm, json.loads(row.auth_data), int(row.etag))


def current_version(conn: Connection, user_id: str) -> BackupVersion | None:
    row = conn.execute(
        sa.select(e2e_room_keys_versions)
        .where(_live(user_id))
        .order_by(e2e_room_keys_versions.c.version.desc())
        .limit(1)
    ).first()
    return None if row is None else _version(row)


def get_version(conn: Connection, user_id: str, version: int) -> BackupVersion | None:
    row = conn.execute(
        sa.select(e2e_room_keys_versions).where(
            _live(user_id), e2e_room_keys_versions.c.version == version
        )
    ).first()
    return None if row is None else _version(row)


def create_version(
    conn: Connection, user_id: str, algorithm: str, auth_data: dict[str, Any]
) -> int:
    latest = conn.execute(
        sa.select(sa.func.max(e2e_room_keys_versions.c.version)).where(
            e2e_room_keys_versions.c.user_id == user_id
        )
    ).scalar()
    version = int(latest or 0) + 1
    conn.execute(
        sa.insert(e2e_room_keys_versions).values(
            user_id=user_id,
            version=version,
            algorithm=algorithm,
            auth_data=json.dumps(auth_data, ensure_ascii=False),
            etag=0,
            deleted=False,
        )
    )
    return version


def update_auth_data(
    conn: Connection, user_id: str, version: int, auth_data: dict[str, Any]
) -> None:
    conn.execute(
        sa.update(e2e_room_keys_versions)
        .where(_live(user_id), e2e_room_keys_versions.c.version == version)
        .values(auth_data=json.dumps(auth_data, ensure_ascii=False))
    )


def delete_version(conn: Connection, user_id: str, version: int) -> bool:
    deleted = conn.execute(
        sa.update(e2e_room_keys_versions)
        .where(_live(user_id), e2e_room_keys_versions.c.version == version)
        .values(deleted=True)
    ).rowcount
    conn.execute(
        sa.delete(e2e_room_keys).where(
            e2e_room_keys.c.user_id == user_id, e2e_room_keys.c.version == version
        )
    )
    return deleted == 1


def bump_etag(conn: Connection, user_id: str, version: int) -> int:
    return int(
        conn.execute(
            sa.update(e2e_room_keys_versions)
            .where(
                e2e_room_keys_versions.c.user_id == user_id,
                e2e_room_keys_versions.c.version == version,
            )
            .values(etag=e2e_room_keys_versions.c.etag + 1)
            .returning(e2e_room_keys_versions.c.etag)
        ).scalar_one()
    )


def count_keys(conn: Connection, user_id: str, version: int) -> int:
    return int(
        conn.execute(
            sa.select(sa.func.count()).where(
                e2e_room_keys.c.user_id == user_id, e2e_room_keys.c.version == version
            )
        ).scalar_one()
    )


def _key(row: Any) -> RoomKey:
    return RoomKey(
        int(row.first_message_index),
        int(row.forwarded_count),
        bool(row.is_verified),
        json.loads(row.session_data),
    )


def read_keys(
    conn: Connection,
    user_id: str,
    version: int,
    room_id: str | None = None,
    session_id: str | None = None,
) -> dict[str, dict[str, RoomKey]]:
    """room_id -> session_id -> key, narrowed to one room or session when given."""
    query = sa.select(e2e_room_keys).where(
        e2e_room_keys.c.user_id == user_id, e2e_room_keys.c.version == version
    )
    if room_id is not None:
        query = query.where(e2e_room_keys.c.room_id == room_id)
    if session_id is not None:
        query = query.where(e2e_room_keys.c.session_id == session_id)
    out: dict[str, dict[str, RoomKey]] = {}
    for row in conn.execute(query):
        out.setdefault(row.room_id, {})[row.session_id] = _key(row)
    return out


def put_key(
    conn: Connection, user_id: str, version: int, room_id: str, session_id: str, key: RoomKey
) -> bool:
    """Store ``key`` unless the stored copy is better; True if something changed."""
    where = (
        e2e_room_keys.c.user_id == user_id,
        e2e_room_keys.c.version == version,
        e2e_room_keys.c.room_id == room_id,
        e2e_room_keys.c.session_id == session_id,
    )
    row = conn.execute(sa.select(e2e_room_keys).where(*where)).first()
    values = {
        "first_message_index": key.first_message_index,
        "forwarded_count": key.forwarded_count,
        "is_verified": key.is_verified,
        "session_data": json.dumps(key.session_data, ensure_ascii=False),
    }
    if row is None:
        conn.execute(
            sa.insert(e2e_room_keys).values(
                user_id=user_id, version=version, room_id=room_id, session_id=session_id, **values
            )
        )
        return True
    if not key.better_than(_key(row)):
        return False
    conn.execute(sa.update(e2e_room_keys).where(*where).values(**values))
    return True


def delete_keys(
    conn: Connection,
    user_id: str,
    version: int,
    room_id: str | None = None,
    session_id: str | None = None,
) -> int:
    query = sa.delete(e2e_room_keys).where(
        e2e_room_keys.c.user_id == user_id, e2e_room_keys.c.version == version
    )
    if room_id is not None:
        query = query.where(e2e_room_keys.c.room_id == room_id)
    if session_id is not None:
        query = query.where(e2e_room_keys.c.session_id == session_id)
    return conn.execute(query).rowcount
