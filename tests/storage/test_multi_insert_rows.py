"""insert_rows: many rows in one statement, chunked, counting what went in."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from homeserver.storage import multi_insert
from homeserver.storage.database import Database
from homeserver.storage.multi_insert import insert_rows
from homeserver.storage.transactions import event_txn_ids

COLUMNS = ("user_id", "device_id", "endpoint", "txn_id", "event_id", "created_ts")


def row(n: int, event: str = "$e") -> tuple[object, ...]:
    return ("@a:x", "D", "send", f"t{n}", f"{event}{n}", n)


async def stored(database: Database) -> dict[str, tuple[str, int]]:
    def read(conn: sa.Connection) -> dict[str, tuple[str, int]]:
        query = sa.select(
            event_txn_ids.c.txn_id, event_txn_ids.c.event_id, event_txn_ids.c.created_ts
        )
        return {r.txn_id: (r.event_id, int(r.created_ts)) for r in conn.execute(query)}

    return await database.read(read)


async def test_rows_go_in_chunked_with_their_values(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(multi_insert, "MAX_ROWS", 7)
    rows = [row(n) for n in range(20)]
    count = await database.run(lambda conn: insert_rows(conn, event_txn_ids, COLUMNS, rows))
    assert count == 20
    assert await stored(database) == {f"t{n}": (f"$e{n}", n) for n in range(20)}


async def test_conflicting_rows_are_skipped_and_not_counted(database: Database) -> None:
    first = [row(n) for n in range(3)]
    await database.run(lambda conn: insert_rows(conn, event_txn_ids, COLUMNS, first))
    again = [row(n, "$other") for n in range(1, 5)]
    count = await database.run(
        lambda conn: insert_rows(conn, event_txn_ids, COLUMNS, again, ignore_conflicts=True)
    )
    assert count == 2
    found = await stored(database)
    assert found["t1"] == ("$e1", 1) and found["t2"] == ("$e2", 2)
    assert found["t3"] == ("$other3", 3) and found["t4"] == ("$other4", 4)


async def test_values_with_quotes_and_percent_signs_are_bound(database: Database) -> None:
    odd = [("@a:x", "D", "send", "t'); DROP TABLE x; --", "$100%s %(x)s", 1)]
    assert await database.run(lambda conn: insert_rows(conn, event_txn_ids, COLUMNS, odd)) == 1
    assert await stored(database) == {"t'); DROP TABLE x; --": ("$100%s %(x)s", 1)}
