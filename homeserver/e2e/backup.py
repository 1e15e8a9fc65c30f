"""Server-side key backup (client-server-api "Server-side key backups").

The server stores encrypted megolm session keys per backup version and keeps
the better copy when a session is uploaded twice. Only the current (newest)
version accepts writes: a client writing to another gets 403
``M_WRONG_ROOM_KEYS_VERSION`` with ``current_version``; no backup at all is 404
``M_NOT_FOUND`` (matrix_brief pitfall 13: js-sdk relies on that errcode).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from homeserver.errors import MatrixError, invalid_param, not_found
from homeserver.storage import key_backup as db
from homeserver.storage.database import Database
from homeserver.storage.key_backup import BackupVersion, RoomKey

# room_id -> session_id -> key
Keys = dict[str, dict[str, RoomKey]]


def parse_version(value: str | None) -> int:
    """A version string from a path or query; an unknown shape is simply not found."""
    if value is None:
        raise MatrixError(400, "M_MISSING_PARAM", "'version' is required")
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise not_found("Unknown backup version")
    return int(value)


def version_json(version: BackupVersion, count: int) -> dict[str, Any]:
    return {
        "algorithm": version.algorithm,
        "auth_data": version.auth_data,
        "count": count,
        "etag": str(version.etag),
        "version": str(version.version),
    }


def _wrong_version(current: BackupVersion | None) -> MatrixError:
    if current is None:
        return not_found("No current backup version")
    return MatrixError(
        403,
        "M_WRONG_ROOM_KEYS_VERSION",
        "Wrong backup version.",
        current_version=str(current.version),
    )


class KeyBackupService:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def create_version(self, user_id: str, algorithm: str, auth_data: dict[str, Any]) -> str:
        for attempt in range(3):
            try:
                version = await self.database.run(
                    lambda conn: db.create_version(conn, user_id, algorithm, auth_data)
                )
                return str(version)
            except IntegrityError:
                # A concurrent create took the same number (PostgreSQL): take the next.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def get_version(self, user_id: str, version: int | None) -> dict[str, Any]:
        def read(conn: Connection) -> dict[str, Any]:
            found = (
                db.current_version(conn, user_id)
                if version is None
                else db.get_version(conn, user_id, version)
            )
            if found is None:
                raise not_found("No backup found" if version is None else "Unknown backup version")
            return version_json(found, db.count_keys(conn, user_id, found.version))

        return await self.database.read(read)

    async def update_version(
        self, user_id: str, version: int, algorithm: str, auth_data: dict[str, Any]
    ) -> None:
        def write(conn: Connection) -> None:
            found = db.get_version(conn, user_id, version)
            if found is None:
                raise not_found("Unknown backup version")
            if found.algorithm != algorithm:
                raise invalid_param("Algorithm does not match")
            db.update_auth_data(conn, user_id, version, auth_data)

        await self.database.run(write)

    async def delete_version(self, user_id: str, version: int) -> None:
        def write(conn: Connection) -> None:
            if not db.delete_version(conn, user_id, version):
                raise not_found("Unknown backup version")

        await self.database.run(write)

    async def put_keys(self, user_id: str, version: int, keys: Keys) -> dict[str, Any]:
        def write(conn: Connection) -> dict[str, Any]:
            current = db.current_version(conn, user_id)
            if current is None or current.version != version:
                raise _wrong_version(current)
            changed = False
            for room_id, sessions in keys.items():
                for session_id, key in sessions.items():
                    changed |= db.put_key(conn, user_id, version, room_id, session_id, key)
            etag = db.bump_etag(conn, user_id, version) if changed else current.etag
            return {"etag": str(etag), "count": db.count_keys(conn, user_id, version)}

        return await self.database.run(write)

    async def get_keys(
        self, user_id: str, version: int, room_id: str | None, session_id: str | None
    ) -> Keys:
        def read(conn: Connection) -> Keys:
            if db.get_version(conn, user_id, version) is None:
                raise not_found("Unknown backup version")
            return db.read_keys(conn, user_id, version, room_id, session_id)

        return await self.database.read(read)

    async def delete_keys(
        self, user_id: str, version: int, room_id: str | None, session_id: str | None
    ) -> dict[str, Any]:
        def write(conn: Connection) -> dict[str, Any]:
            found = db.get_version(conn, user_id, version)
            if found is None:
                raise not_found("Unknown backup version")
            deleted = db.delete_keys(conn, user_id, version, room_id, session_id)
            etag = db.bump_etag(conn, user_id, version) if deleted else found.etag
            return {"etag": str(etag), "count": db.count_keys(conn, user_id, version)}

        return await self.database.run(write)
