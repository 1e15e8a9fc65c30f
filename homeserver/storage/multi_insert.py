"""Many rows in one INSERT statement, for the hot write paths (a batch of sent events).

``executemany`` runs the statement once per row: on SQLite every row is one
``sqlite3_step``, around which the worker thread lets go of the GIL and may
wait a whole switch interval to get it back while the trio thread is busy. One
``INSERT ... VALUES (...), (...)`` is one step (PostgreSQL: one round trip).
The SQL text is built once per (dialect, table, columns, row count) and kept;
values are always bound parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

# Rows per statement: far below SQLite's 32,766 bound parameters for our tables.
MAX_ROWS = 500
_MAX_CACHED = 512
_sql_cache: dict[tuple[str, str, tuple[str, ...], int, bool], str] = {}


def _placeholder(conn: Connection) -> str:
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def _sql(
    conn: Connection, table: sa.Table, columns: tuple[str, ...], rows: int, ignore_conflicts: bool
) -> str:
    key = (conn.dialect.name, table.name, columns, rows, ignore_conflicts)
    sql = _sql_cache.get(key)
    if sql is None:
        quote = conn.dialect.identifier_preparer.quote
        mark = _placeholder(conn)
        one = "(" + ", ".join([mark] * len(columns)) + ")"
        sql = (
            f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
            f"VALUES {', '.join([one] * rows)}"
        )
        if ignore_conflicts:
            sql += " ON CONFLICT DO NOTHING"
        if len(_sql_cache) >= _MAX_CACHED:
            _sql_cache.clear()
        _sql_cache[key] = sql
    return sql


def insert_rows(
    conn: Connection,
    table: sa.Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    ignore_conflicts: bool = False,
) -> int:
    """Insert ``rows`` (values in ``columns`` order); return how many rows went in.

    With ``ignore_conflicts`` a row that violates a unique constraint is skipped
    (ON CONFLICT DO NOTHING) and not counted.
    """
    names = tuple(columns)
    inserted = 0
    for start in range(0, len(rows), MAX_ROWS):
        chunk = rows[start : start + MAX_ROWS]
        params = tuple(value for row in chunk for value in row)
        sql = _sql(conn, table, names, len(chunk), ignore_conflicts)
        inserted += conn.exec_driver_sql(sql, params).rowcount
    return inserted
