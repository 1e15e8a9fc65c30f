"""The database gateway: transactions, the SQLite writer, concurrency, cancellation, retry.

Each test runs on SQLite and PostgreSQL (the ``database_url`` fixture) unless it
is about one of them. Functions handed to the gateway run in worker threads; the
tests hold them there with ``threading.Event`` to arrange interleavings, and
bound every wait with a generous ``trio.fail_after`` (a hang is a failure; no
assertion depends on how long anything took).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
import trio
from plait_fixtures import POSTGRES_URL
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from homeserver.storage import database as database_module
from homeserver.storage.database import Database, default_pool_size

WAIT = 30.0  # bound on waits that only a bug would make long

items = sa.table("gateway_items", sa.column("id", sa.Integer), sa.column("v", sa.Text))


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url, pool_size=4)
    await database.run(
        lambda conn: conn.exec_driver_sql(
            "CREATE TABLE gateway_items (id INTEGER PRIMARY KEY, v TEXT NOT NULL)"
        )
    )
    try:
        yield database
    finally:
        await database.aclose()


def insert(conn: Connection, item_id: int, v: str = "x") -> None:
    conn.execute(sa.insert(items).values(id=item_id, v=v))


def count(conn: Connection) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(items)).scalar_one())


def ids(conn: Connection) -> list[int]:
    return [row.id for row in conn.execute(sa.select(items.c.id).order_by(items.c.id))]


def sqlite_path(database: Database) -> str:
    return database.url.split("///", 1)[1]


async def wait_in_thread(event: threading.Event) -> None:
    assert await trio.to_thread.run_sync(event.wait, WAIT)


class Boom(Exception):
    pass


async def test_a_transaction_commits_when_the_function_returns(db: Database) -> None:
    def write(conn: Connection) -> str:
        insert(conn, 1)
        insert(conn, 2)
        return "done"

    assert await db.run(write) == "done"
    assert await db.read(ids) == [1, 2]


async def test_a_transaction_rolls_back_when_the_function_raises(db: Database) -> None:
    await db.run(lambda conn: insert(conn, 1))

    def write_then_fail(conn: Connection) -> None:
        insert(conn, 2)
        conn.execute(sa.update(items).where(items.c.id == 1).values(v="changed"))
        raise Boom

    with pytest.raises(Boom):
        await db.run(write_then_fail)
    rows = await db.read(lambda conn: list(conn.execute(sa.select(items.c.id, items.c.v))))
    assert [tuple(row) for row in rows] == [(1, "x")]
    # The worker's connection is not left inside the failed transaction.
    await db.run(lambda conn: insert(conn, 3))
    assert await db.read(ids) == [1, 3]


async def test_a_failed_statement_rolls_back_and_surfaces_as_sqlalchemy_error(
    db: Database,
) -> None:
    await db.run(lambda conn: insert(conn, 1))

    def duplicate(conn: Connection) -> None:
        insert(conn, 2)
        insert(conn, 1)

    with pytest.raises(sa.exc.IntegrityError):
        await db.run(duplicate)
    assert await db.read(ids) == [1]


async def test_savepoints_work_inside_a_transaction(db: Database) -> None:
    def write(conn: Connection) -> bool:
        insert(conn, 1)
        try:
            with conn.begin_nested():
                insert(conn, 1)
        except sa.exc.IntegrityError:
            return False
        return True

    assert await db.run(write) is False
    assert await db.read(ids) == [1]


async def test_many_reads_run_while_a_write_holds_its_transaction(db: Database) -> None:
    await db.run(lambda conn: insert(conn, 1))
    writing, release = threading.Event(), threading.Event()

    def slow_write(conn: Connection) -> None:
        insert(conn, 2)
        writing.set()
        if not release.wait(WAIT):
            raise AssertionError("never released")

    seen: list[int] = []

    async def reader() -> None:
        seen.append(await db.read(count))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(db.run, slow_write)
        await wait_in_thread(writing)
        with trio.fail_after(WAIT):
            async with trio.open_nursery() as readers:
                for _ in range(25):
                    readers.start_soon(reader)
        # Every read finished while the write was still open, and none saw its row.
        assert seen == [1] * 25
        release.set()
    assert await db.read(count) == 2


async def test_a_read_sees_one_snapshot_across_its_statements_on_sqlite(db: Database) -> None:
    if db.dialect != "sqlite":
        pytest.skip("PostgreSQL reads run under READ COMMITTED: a snapshot per statement")
    await db.run(lambda conn: insert(conn, 1))
    first_done, written = threading.Event(), threading.Event()

    def two_statements(conn: Connection) -> tuple[int, int]:
        first = count(conn)
        first_done.set()
        if not written.wait(WAIT):
            raise AssertionError("never released")
        return first, count(conn)

    async with trio.open_nursery() as nursery:
        result: list[tuple[int, int]] = []

        async def read() -> None:
            result.append(await db.read(two_statements))

        nursery.start_soon(read)
        await wait_in_thread(first_done)
        await db.run(lambda conn: insert(conn, 2))
        written.set()
    assert result == [(1, 1)]
    assert await db.read(count) == 2


async def test_sqlite_writes_run_one_at_a_time(db: Database) -> None:
    if db.dialect != "sqlite":
        pytest.skip("PostgreSQL runs writers concurrently")
    lock = threading.Lock()
    running = 0
    most = 0

    def write(n: int) -> Callable[[Connection], None]:
        def fn(conn: Connection) -> None:
            nonlocal running, most
            with lock:
                running += 1
                most = max(most, running)
            # A read, then a write: a deferred transaction could fail with SQLITE_BUSY
            # here if another writer had begun meanwhile.
            count(conn)
            insert(conn, n)
            threading.Event().wait(0.002)  # widen the window for an overlap
            with lock:
                running -= 1

        return fn

    with trio.fail_after(WAIT):
        async with trio.open_nursery() as nursery:
            for n in range(20):
                nursery.start_soon(db.run, write(n))
    assert most == 1
    assert await db.read(count) == 20


async def test_a_sqlite_write_holds_the_write_lock_from_its_first_statement(
    db: Database,
) -> None:
    if db.dialect != "sqlite":
        pytest.skip("about SQLite's BEGIN IMMEDIATE")

    def other_writer_can_begin() -> bool:
        other = sqlite3.connect(sqlite_path(db), timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            return False
        else:
            other.execute("ROLLBACK")
            return True
        finally:
            other.close()

    def only_reads(conn: Connection) -> bool:
        count(conn)
        return other_writer_can_begin()

    assert await db.run(only_reads) is False
    # A read does not take it, and neither does a writer between transactions.
    assert await db.read(only_reads) is True
    assert await trio.to_thread.run_sync(other_writer_can_begin) is True


async def test_the_engine_used_directly_still_runs_transactions(db: Database) -> None:
    """Migrations and tools use ``Database.engine``; a worker's own BEGIN must not leak there."""
    await db.run(lambda conn: insert(conn, 1))

    def direct(engine: sa.Engine) -> None:
        with engine.connect() as conn:
            try:
                with conn.begin():
                    insert(conn, 2)
                    raise Boom
            except Boom:
                pass

    await trio.to_thread.run_sync(direct, db.engine)
    await db.run_sync(direct)  # on a worker thread: after its own transactions there
    assert await db.read(ids) == [1]
    assert await db.run_sync(lambda engine: sa.inspect(engine).has_table("gateway_items"))


async def test_a_cancelled_caller_still_gets_its_committed_result(db: Database) -> None:
    started, release = threading.Event(), threading.Event()

    def write(conn: Connection) -> str:
        insert(conn, 1)
        started.set()
        if not release.wait(WAIT):
            raise AssertionError("never released")
        return "committed"

    got: list[str] = []
    scope = trio.CancelScope()

    async def cancel_while_running() -> None:
        await wait_in_thread(started)
        scope.cancel()
        await trio.sleep(0.01)  # the caller stays parked: the write is under way
        assert got == []
        release.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(cancel_while_running)
        with scope:
            got.append(await db.run(write))
            await trio.lowlevel.checkpoint()  # the cancellation arrives here, after the result
            got.append("not reached")
    assert scope.cancelled_caught
    assert got == ["committed"]
    assert await db.read(ids) == [1]
    await db.run(lambda conn: insert(conn, 2))  # the connection is usable again
    assert await db.read(ids) == [1, 2]


async def test_a_job_cancelled_while_queued_never_runs(database_url: str) -> None:
    db = Database(database_url, pool_size=1)
    try:
        started, release = threading.Event(), threading.Event()
        ran: list[str] = []

        def blocker(conn: Connection) -> None:
            started.set()
            if not release.wait(WAIT):
                raise AssertionError("never released")

        def record(name: str) -> Callable[[Connection], None]:
            return lambda conn: ran.append(name)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(db.read, blocker)
            await wait_in_thread(started)
            with trio.move_on_after(0.01) as scope:  # queued behind the blocker by then
                await db.read(record("cancelled"))
            assert scope.cancelled_caught
            release.set()
        await db.read(record("later"))
        assert ran == ["later"]
        stats = {crew.name: crew for crew in db.statistics()}
        assert all(crew.queued_jobs == 0 for crew in stats.values())
    finally:
        await db.aclose()


async def test_workers_are_bounded_and_gone_after_aclose(database_url: str) -> None:
    db = Database(database_url, pool_size=3)
    lock = threading.Lock()
    running = 0
    most = 0
    threads: set[threading.Thread] = set()

    def read(conn: Connection) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
            threads.add(threading.current_thread())
        threading.Event().wait(0.002)
        result = conn.execute(sa.text("SELECT 1")).scalar_one()
        with lock:
            running -= 1
        return int(result)

    with trio.fail_after(WAIT):
        async with trio.open_nursery() as nursery:
            for _ in range(40):
                nursery.start_soon(db.read, read)
    assert most <= 3
    assert 1 <= len(threads) <= 3
    assert all(crew.workers <= crew.max_workers for crew in db.statistics())
    await db.aclose()
    assert not any(thread.is_alive() for thread in threads)
    assert all(crew.workers == 0 for crew in db.statistics())
    # Closed is not broken: a later call starts workers again.
    assert await db.read(lambda conn: conn.execute(sa.text("SELECT 2")).scalar_one()) == 2
    await db.aclose()


async def test_sequential_calls_reuse_one_worker(db: Database) -> None:
    names = [await db.read(lambda conn: threading.current_thread().name) for _ in range(20)]
    assert len(set(names)) == 1


async def test_idle_workers_leave_and_come_back(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database_module, "WORKER_IDLE_S", 0.05)
    db = Database(database_url, pool_size=2)
    try:
        worker = await db.read(lambda conn: threading.current_thread())
        await trio.to_thread.run_sync(worker.join, WAIT)
        assert not worker.is_alive()
        assert all(crew.workers == 0 for crew in db.statistics())
        assert await db.read(lambda conn: conn.execute(sa.text("SELECT 1")).scalar_one()) == 1
    finally:
        await db.aclose()


def _terminate_own_backend(conn: Connection) -> None:
    conn.exec_driver_sql("SELECT pg_terminate_backend(pg_backend_pid())")


async def test_a_write_on_a_dropped_connection_is_retried_once(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite connections cannot be lost to a server restart")
    db = Database(database_url, pool_size=1)
    try:
        await db.run(
            lambda conn: conn.exec_driver_sql(
                "CREATE TABLE gateway_items (id INTEGER PRIMARY KEY, v TEXT NOT NULL)"
            )
        )
        calls: list[int] = []

        def write(conn: Connection) -> int:
            calls.append(1)
            if len(calls) == 1:
                _terminate_own_backend(conn)  # what a server restart does to it
            insert(conn, len(calls))
            return len(calls)

        assert await db.run(write) == 2
        assert await db.read(ids) == [2]

        def always_dropped(conn: Connection) -> None:
            calls.append(1)
            _terminate_own_backend(conn)

        calls.clear()
        with pytest.raises(DBAPIError) as raised:
            await db.run(always_dropped)
        assert raised.value.connection_invalidated
        assert len(calls) == 2  # once more, not forever
        assert await db.read(ids) == [2]
    finally:
        await db.aclose()


async def test_a_read_after_the_server_dropped_every_connection(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite connections cannot be lost to a server restart")
    db = Database(database_url, pool_size=3)
    try:
        pids: set[int] = set()
        lock = threading.Lock()

        def pid(conn: Connection) -> int:
            threading.Event().wait(0.002)
            value = int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
            with lock:
                pids.add(value)
            return value

        async with trio.open_nursery() as nursery:
            for _ in range(9):
                nursery.start_soon(db.read, pid)
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            for value in pids:
                admin.execute("SELECT pg_terminate_backend(%s)", (value,))
        results: list[Any] = []

        async def read() -> None:
            results.append(await db.read(pid))

        async with trio.open_nursery() as nursery:
            for _ in range(9):
                nursery.start_soon(read)
        assert len(results) == 9
        assert not set(results) & (pids - set(results))
    finally:
        await db.aclose()


async def test_sqlite_readers_and_the_writer_keep_a_small_page_cache(
    tmp_path: Path,
) -> None:
    from homeserver.storage.database import SQLITE_READER_CACHE_KIB, SQLITE_WRITER_CACHE_KIB

    database = Database(f"sqlite:///{tmp_path / 'cache.db'}")
    try:
        reader = await database.read(
            lambda conn: conn.exec_driver_sql("PRAGMA cache_size").scalar()
        )
        writer = await database.run(lambda conn: conn.exec_driver_sql("PRAGMA cache_size").scalar())
    finally:
        await database.aclose()
    assert reader == -SQLITE_READER_CACHE_KIB
    assert writer == -SQLITE_WRITER_CACHE_KIB


async def test_the_sqlite_writer_checkpoints_its_log_every_few_pages(tmp_path: Path) -> None:
    """The write-ahead log is copied back often, so a checkpoint is short: after about
    5 MB of writes the log file has stayed under 2 MiB (SQLite's default threshold,
    1,000 pages, lets it reach 4 MiB)."""
    path = tmp_path / "wal.db"
    database = Database(f"sqlite:///{path}")
    try:
        await database.run(
            lambda conn: conn.exec_driver_sql("CREATE TABLE blobs (id INTEGER PRIMARY KEY, v TEXT)")
        )
        for i in range(160):  # 160 transactions of 32 KiB
            await database.run(
                lambda conn, i=i: conn.exec_driver_sql(
                    "INSERT INTO blobs (id, v) VALUES (?, ?)", (i, "x" * 32768)
                )
            )
        wal = (tmp_path / "wal.db-wal").stat().st_size
    finally:
        await database.aclose()
    assert wal < 2 * 1024 * 1024


async def test_a_connection_given_back_to_the_pool_after_reads_opens_real_transactions(
    database_url: str,
) -> None:
    # PostgreSQL reads run in autocommit; a worker that hands its connection back
    # (before a run_sync job here) must hand it back in transaction mode.
    database = Database(database_url, pool_size=1)
    try:
        await database.read(lambda conn: conn.exec_driver_sql("SELECT 1").scalar())

        def autocommit_inside_begin(engine: sa.engine.Engine) -> bool:
            with engine.begin() as conn:
                return bool(getattr(conn.connection.dbapi_connection, "autocommit", False))

        assert await database.run_sync(autocommit_inside_begin) is False
    finally:
        await database.aclose()


def test_postgresql_workers_are_twice_the_cores_from_four_to_eight() -> None:
    assert [default_pool_size(n) for n in (None, 1, 2, 3, 4, 16)] == [4, 4, 4, 6, 8, 8]
