"""The dialect's own INSERT, which knows ``ON CONFLICT``, imported on first use.

``sqlalchemy.dialects.postgresql`` imports every PostgreSQL driver module
SQLAlchemy ships (asyncpg, pg8000, psycopg2cffi, ...): about 2.3 MB of
heap that a server on SQLite never needs. So the storage modules ask here,
with their connection, instead of importing both dialects at import time.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection


def dialect_insert(conn: Connection) -> Any:
    """``insert`` of the connection's dialect (postgresql or sqlite), with ``on_conflict_do_*``.

    Typed ``Any`` because the two dialects' Insert classes share those methods
    without sharing a base class that declares them.
    """
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert
