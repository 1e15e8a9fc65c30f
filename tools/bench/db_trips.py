"""Database round trips: what one ``Database.read`` / ``Database.run`` costs from trio.

Every read and write in the server is one trip through the gateway (hand-off to a
worker thread, BEGIN, the statements, COMMIT, hand-back to trio), so the fixed
cost of a trip is paid by every caller. This measures it with trivial work:
``SELECT 1``, an indexed point query (``get_user``), and a one-row write
(``set_displayname``), sequentially and from C concurrent tasks. Reports trips/s
(wall clock, noisy on a shared machine) and CPU microseconds per trip
(``time.process_time``, all threads of this process: the better comparison).

    python -m tools.bench.db_trips --trips 3000
    python -m tools.bench.db_trips --database-url postgresql://root@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import json
import secrets
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
import trio
from sqlalchemy.engine import Connection

from homeserver.storage import accounts
from homeserver.storage.database import Database, with_search_path
from homeserver.storage.migrate import upgrade_engine

USERS = 100
MAX_TRIPS = 100_000


def _select_one(conn: Connection) -> Any:
    return conn.execute(sa.text("SELECT 1")).scalar()


def _point_query(n: int) -> Callable[[Connection], Any]:
    user_id = f"@u{n % USERS}:bench"
    return lambda conn: accounts.get_user(conn, user_id)


def _write(n: int) -> Callable[[Connection], Any]:
    user_id = f"@u{n % USERS}:bench"
    return lambda conn: accounts.set_displayname(conn, user_id, f"name {n}")


async def _measure(database: Database, kind: str, trips: int, concurrency: int) -> dict[str, Any]:
    def job(n: int) -> Callable[[Connection], Any]:
        if kind == "select1":
            return _select_one
        if kind == "point":
            return _point_query(n)
        return _write(n)

    call = database.run if kind == "write" else database.read
    per_task = trips // concurrency

    async def worker(offset: int) -> None:
        for n in range(per_task):
            await call(job(offset + n))

    cpu, wall = time.process_time(), time.perf_counter()
    async with trio.open_nursery() as nursery:
        for c in range(concurrency):
            nursery.start_soon(worker, c * per_task)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    done = per_task * concurrency
    return {
        "kind": kind,
        "concurrency": concurrency,
        "trips": done,
        "trips_per_s": round(done / wall),
        "cpu_us_per_trip": round(cpu / done * 1e6, 1),
    }


async def run(url: str, trips: int, concurrency: int) -> list[dict[str, Any]]:
    database = Database(url)
    try:
        await database.run_sync(upgrade_engine)

        def setup(conn: Connection) -> None:
            for n in range(USERS):
                accounts.insert_user(
                    conn,
                    user_id=f"@u{n}:bench",
                    password_hash=None,
                    created_ts=0,
                    displayname=None,
                )

        await database.run(setup)
        await _measure(database, "point", min(trips, 500), 1)  # warm up
        results = []
        for kind in ("select1", "point", "write"):
            for c in (1, concurrency):
                results.append(await _measure(database, kind, trips, c))
        return results
    finally:
        await database.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trips", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--database-url", default="", help="PostgreSQL URL (default: SQLite)")
    args = parser.parse_args()
    trips = max(1, min(args.trips, MAX_TRIPS))
    if not args.database_url:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            results = trio.run(run, url, trips, args.concurrency)
    else:
        schema = f"bench_{secrets.token_hex(6)}"
        with psycopg.connect(args.database_url, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        try:
            url = with_search_path(args.database_url, schema)
            results = trio.run(run, url, trips, args.concurrency)
        finally:
            with psycopg.connect(args.database_url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    for row in results:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
