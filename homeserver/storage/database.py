"""The one gateway to the database: every blocking call runs in a worker thread.

Handlers and services never hold a connection across an ``await``: they hand a
plain function to :meth:`Database.run` (read-write) or :meth:`Database.read`
(read-only), and that function runs inside one transaction in a worker thread:
it commits if the function returns and rolls back if it raises.

Every read and write in the server is one such trip, so its fixed cost is paid
by every caller. A trip is therefore kept short: each engine has a small crew of
long-lived worker threads fed by one FIFO queue, and each worker keeps its own
connection for its lifetime (no per-job thread start or naming, no pool checkout
and reset). The result comes back to the waiting trio task through the trio
token. A crew has at most ``pool_size`` threads, each holding one connection;
workers start on demand and leave after a while without work, closing their
connection, so a burst cannot open an unbounded number of threads or
connections and an idle server holds none.

SQLite and PostgreSQL differ in how they handle concurrent writers:

* SQLite allows one writer at a time. A deferred transaction that reads and then
  writes can fail at once with ``SQLITE_BUSY`` when another writer got there
  first (busy_timeout does not help when upgrading a read lock). So writes go
  through a crew of exactly one worker, whose queue is the writer lock: its
  transactions begin with ``BEGIN IMMEDIATE`` and run one after the other.
  Reads use a crew of other connections, which WAL lets run beside the writer;
  each read begins with a plain (deferred) ``BEGIN``, so all its statements see
  one snapshot. Each reader connection costs memory (its schema, statement
  and page caches: about 0.6 MB in a running server), and reads are mostly
  Python under the GIL, so the read crew is small.
* PostgreSQL handles both through one crew. A read runs in autocommit mode: its
  statements cost one round trip each, with no BEGIN and COMMIT trips (under
  READ COMMITTED each statement of a transaction sees a snapshot of its own
  anyway). So a function given to ``read`` must only read: on PostgreSQL its
  writes would not be one transaction.

Cancellation: a trio task cancelled while its job waits in the queue withdraws
it (the function never runs); once a worker has taken the job, the task waits
for the transaction to end, so no connection is left mid-transaction and a
committed result reaches its caller (the cancellation is then raised at the
caller's next checkpoint), as ``trio.to_thread.run_sync`` does by default.

A connection the server closed (restart, idle timeout) is noticed by the
statement that fails on it: the transaction was rolled back, so it runs once
more on a new connection.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import attrs
import outcome
import sqlalchemy as sa
import trio
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

T = TypeVar("T")

# Worker threads (and so connections) a crew may use at once: PostgreSQL's one
# crew, and SQLite's readers (its writer crew has one).
DEFAULT_SQLITE_READERS = 4


def default_pool_size(cores: int | None) -> int:
    """PostgreSQL workers for this machine: twice its cores, from 4 to 8.

    A worker spends its job mostly in SQLAlchemy and psycopg under the GIL; the
    round trip itself is a fraction of a millisecond on a nearby server. So
    beyond a few per core, more workers add contention, and memory: each holds
    a thread, its malloc arena and a connection (about 0.4 MB of the server's
    memory, and a PostgreSQL backend). Measured on 2 cores, the benchmark
    scenarios ran as fast with 4 workers as with 8.
    """
    return min(8, max(4, 2 * (cores or 1)))


def _usable_cores() -> int | None:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count()


DEFAULT_POOL_SIZE = default_pool_size(_usable_cores())
# Page cache per SQLite connection, KiB (SQLite's default is 2,000 KiB, for
# each connection). A miss costs a read from the operating system's file cache,
# which every connection shares: a few microseconds. The writer's default-size
# cache was 1.5 MB of the idle server's memory after the benchmark scenarios.
SQLITE_READER_CACHE_KIB = 512
SQLITE_WRITER_CACHE_KIB = 512
SQLITE_BUSY_TIMEOUT_MS = 10_000
# The writer copies the write-ahead log back into the database file (a
# checkpoint) in the commit that takes the log past this many pages, and every
# write queued behind it waits. Most of a checkpoint's cost is the fsync of the
# log's new pages, so it grows with the log: at SQLite's default of 1,000 pages
# (4 MiB) a checkpoint held the writer 7-9 ms, at 250 pages about 3 ms, for the
# same total work (about 3% more, measured apart: a hot page is copied back
# more often). On the delivery benchmark (10 receivers, 6 runs each): p99
# 15.1 -> 12.9 ms, p50 unchanged; sends/s within the noise (two alternating
# rounds of 6 runs: +6% and -3%).
SQLITE_WAL_AUTOCHECKPOINT_PAGES = 250
# A worker without a job for this long closes its connection and ends.
WORKER_IDLE_S = 30.0
# A worker replaces a PostgreSQL connection older than this before its next job
# (what pool_recycle did for pooled connections).
RECYCLE_S = 3600.0


def normalize_url(url: str) -> str:
    """Select the drivers we ship: psycopg 3 for PostgreSQL, the stdlib for SQLite."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://") :]
    if url.startswith("postgres://"):
        return "postgresql+psycopg://" + url[len("postgres://") :]
    return url


def with_search_path(url: str, schema: str) -> str:
    """A PostgreSQL URL whose connections use ``schema`` first (test isolation, tenants)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "options"]
    query.append(("options", f"-csearch_path={schema}"))
    return urlunsplit(parts._replace(query=urlencode(query)))


def _sqlite_engine(
    url: str,
    *,
    begin: str,
    pool_size: int,
    cache_kib: int | None = None,
    autocheckpoint: int | None = None,
) -> Engine:
    # One connection per worker, and one more for callers of ``Database.engine``.
    engine = sa.create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        pool_size=pool_size,
        max_overflow=1,
        pool_pre_ping=False,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # BEGIN is issued by ``do_begin`` (pysqlite's own transaction handling
        # would begin deferred transactions lazily, at the first write).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        if cache_kib is not None:
            cursor.execute(f"PRAGMA cache_size=-{int(cache_kib)}")
        if autocheckpoint is not None:
            cursor.execute(f"PRAGMA wal_autocheckpoint={int(autocheckpoint)}")
        cursor.close()

    def _do_begin(pool_connection: Any) -> None:
        # Straight to the sqlite3 connection: a "begin" event listener would cost
        # an exec_driver_sql per transaction and, by its mere presence, event
        # dispatch on every statement of the engine (measured: 16 vs 32
        # microseconds for a trivial transaction, about 7 less per statement).
        getattr(pool_connection, "dbapi_connection", pool_connection).execute(begin)

    engine.dialect.do_begin = _do_begin  # type: ignore[method-assign,assignment]
    return engine


# Job kinds.
_READ, _WRITE, _ENGINE = 0, 1, 2
# Job states, changed under the crew's lock.
_QUEUED, _TAKEN, _WITHDRAWN = 0, 1, 2


@attrs.define(eq=False, slots=True)
class _Job(Generic[T]):
    fn: Callable[[Any], T]
    kind: int
    task: trio.lowlevel.Task
    token: trio.lowlevel.TrioToken
    state: int = _QUEUED
    crew: _Crew | None = None


class _Crew:
    """One generation of worker threads over one queue (replaced, not reused, on close)."""

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[_Job[Any] | None] = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []
        self.idle = 0  # workers not running a job
        self.queued = 0  # jobs put and not yet taken (or skipped)
        self.jobs = 0  # jobs run, for statistics
        self.closed = False


@attrs.frozen
class CrewStatistics:
    """What :meth:`Database.statistics` reports for one crew of workers."""

    name: str
    max_workers: int
    workers: int
    idle_workers: int
    queued_jobs: int
    jobs_run: int


class _Workers:
    """Up to ``size`` worker threads for one engine, each with a connection of its own."""

    def __init__(self, engine: Engine, size: int, name: str) -> None:
        self.engine = engine
        self.size = size
        self.name = name
        self.sqlite = engine.dialect.name == "sqlite"
        self._crew = _Crew()
        self._serial = 0

    def submit(self, job: _Job[Any]) -> None:
        crew = self._crew
        with crew.lock:
            if crew.closed:  # stopped just now: the next crew takes it
                return self.submit(job)
            job.crew = crew
            crew.queued += 1
            if crew.queued > crew.idle and len(crew.threads) < self.size:
                crew.idle += 1  # until it takes a job
                self._serial += 1
                thread = threading.Thread(
                    target=self._work,
                    args=(crew,),
                    name=f"plait-db-{self.name}-{self._serial}",
                    daemon=True,
                )
                crew.threads.append(thread)
                thread.start()
            crew.queue.put(job)

    def withdraw(self, job: _Job[Any]) -> bool:
        """Take back a job no worker has started; False if one has."""
        assert job.crew is not None
        with job.crew.lock:
            if job.state != _QUEUED:
                return False
            job.state = _WITHDRAWN
            return True

    def statistics(self) -> CrewStatistics:
        crew = self._crew
        with crew.lock:
            return CrewStatistics(
                name=self.name,
                max_workers=self.size,
                workers=len(crew.threads),
                idle_workers=crew.idle,
                queued_jobs=crew.queued,
                jobs_run=crew.jobs,
            )

    def stop(self) -> None:
        """End every worker after the jobs already queued (blocking: call it in a thread)."""
        crew, self._crew = self._crew, _Crew()
        with crew.lock:
            crew.closed = True
            threads = list(crew.threads)
            for _ in threads:
                crew.queue.put(None)
        for thread in threads:
            thread.join()

    def _work(self, crew: _Crew) -> None:
        worker = _Worker(self)
        me = threading.current_thread()
        try:
            while True:
                try:
                    job = crew.queue.get(timeout=WORKER_IDLE_S)
                except queue.Empty:
                    with crew.lock:
                        # Unless a job was put just now with no other idle worker to
                        # take it: then it is this worker's to run.
                        if crew.queued < crew.idle:
                            crew.idle -= 1
                            crew.threads.remove(me)
                            return
                    continue
                with crew.lock:
                    if job is None:
                        crew.idle -= 1
                        crew.threads.remove(me)
                        return
                    crew.queued -= 1
                    if job.state == _WITHDRAWN:
                        continue
                    job.state = _TAKEN
                    crew.idle -= 1
                    crew.jobs += 1
                result = outcome.capture(worker.run, job)
                with crew.lock:
                    # Idle before the caller hears back, so that its next job finds
                    # this worker instead of starting another one.
                    crew.idle += 1
                job.token.run_sync_soon(trio.lowlevel.reschedule, job.task, result)
        finally:
            worker.close()


class _Worker:
    """The connection of one worker thread, and the transactions it runs on it."""

    def __init__(self, workers: _Workers) -> None:
        self.workers = workers
        self.conn: Connection | None = None
        self.dbapi: Any = None
        self.connected_at = 0.0

    def run(self, job: _Job[T]) -> T:
        if job.kind == _ENGINE:
            # The function opens connections of its own: give ours back to the pool.
            self.close()
            return job.fn(self.workers.engine)
        try:
            return self._transaction(job)
        except DBAPIError as e:
            # The server closed the connection (restart, idle timeout): SQLAlchemy has
            # invalidated it, the transaction was rolled back; run it once more.
            if not e.connection_invalidated:
                raise
            log.warning("database connection lost; retrying the transaction once")
            self.close()
        return self._transaction(job)

    def _connect(self) -> Connection:
        conn = self.conn
        if conn is not None:
            if not conn.invalidated and (
                self.workers.sqlite or time.monotonic() - self.connected_at < RECYCLE_S
            ):
                return conn
            self.close()
        conn = self.workers.engine.connect()
        self.conn = conn
        self.dbapi = conn.connection.dbapi_connection
        self.connected_at = time.monotonic()
        return conn

    def _transaction(self, job: _Job[T]) -> T:
        conn = self._connect()
        if not self.workers.sqlite:
            # A read runs its statements in autocommit mode: each is one round trip,
            # without BEGIN and COMMIT trips of its own. Under READ COMMITTED, each
            # statement of a transaction sees a snapshot of its own anyway.
            autocommit = job.kind == _READ
            if self.dbapi.autocommit != autocommit:
                self.dbapi.autocommit = autocommit
        with conn.begin():
            return job.fn(conn)

    def close(self) -> None:
        conn, dbapi = self.conn, self.dbapi
        self.conn, self.dbapi = None, None
        if conn is None:
            return
        try:
            if dbapi is not None and not self.workers.sqlite and dbapi.autocommit:
                # Back to the pool as the pool gave it: its next user (``run_sync``,
                # ``Database.engine``) expects ``begin()`` to open a real transaction.
                dbapi.autocommit = False
            conn.close()
        except Exception:  # an invalidated or broken connection: nothing to give back
            log.debug("closing a database connection failed", exc_info=True)


class Database:
    """Runs functions of a SQLAlchemy ``Connection`` in transactions, off the trio thread."""

    def __init__(self, url: str, *, pool_size: int | None = None) -> None:
        self.url = normalize_url(url)
        self.dialect = "sqlite" if self.url.startswith("sqlite") else "postgresql"
        if self.dialect == "sqlite":
            path = self.url.split("///", 1)[-1] if "///" in self.url else ""
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            readers = pool_size or DEFAULT_SQLITE_READERS
            self._writer = _sqlite_engine(
                self.url,
                begin="BEGIN IMMEDIATE",
                pool_size=1,
                cache_kib=SQLITE_WRITER_CACHE_KIB,
                autocheckpoint=SQLITE_WAL_AUTOCHECKPOINT_PAGES,
            )
            self._reader = _sqlite_engine(
                self.url, begin="BEGIN", pool_size=readers, cache_kib=SQLITE_READER_CACHE_KIB
            )
            self._write_workers = _Workers(self._writer, 1, "write")
            self._read_workers = _Workers(self._reader, readers, "read")
        else:
            # No pre-ping: it costs a round trip per checkout (measured: 5,900 vs
            # 4,200 session checks/s). A connection found dead is retried once instead.
            size = pool_size or DEFAULT_POOL_SIZE
            engine = sa.create_engine(
                self.url, pool_size=size, max_overflow=1, pool_recycle=RECYCLE_S
            )
            self._writer = self._reader = engine
            self._write_workers = self._read_workers = _Workers(engine, size, "rw")

    @property
    def engine(self) -> Engine:
        """The read-write engine, for migrations (run them through :meth:`run_sync`)."""
        return self._writer

    async def run(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in one read-write transaction; commit if it returns, roll back if it raises."""
        return await self._in_thread(self._write_workers, fn, _WRITE)

    async def read(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in one transaction meant only to read (concurrent with writes on SQLite)."""
        return await self._in_thread(self._read_workers, fn, _READ)

    async def run_sync(self, fn: Callable[[Engine], T]) -> T:
        """Run ``fn`` with the engine itself in a worker thread (migrations, maintenance).

        On SQLite it runs on the writer's worker, so no write runs beside it.
        """
        return await self._submit(self._write_workers, fn, _ENGINE)

    async def _in_thread(self, workers: _Workers, fn: Callable[[Connection], T], kind: int) -> T:
        return await self._submit(workers, fn, kind)

    async def _submit(self, workers: _Workers, fn: Callable[[Any], T], kind: int) -> T:
        await trio.lowlevel.checkpoint_if_cancelled()
        job = _Job(fn, kind, trio.lowlevel.current_task(), trio.lowlevel.current_trio_token())
        workers.submit(job)

        def abort(_raise_cancel: Any) -> trio.lowlevel.Abort:
            if workers.withdraw(job):
                return trio.lowlevel.Abort.SUCCEEDED
            return trio.lowlevel.Abort.FAILED

        result: T = await trio.lowlevel.wait_task_rescheduled(abort)
        return result

    def statistics(self) -> list[CrewStatistics]:
        """Worker threads and queued jobs of each crew (the writer's first)."""
        crews = [self._write_workers]
        if self._read_workers is not self._write_workers:
            crews.append(self._read_workers)
        return [crew.statistics() for crew in crews]

    async def aclose(self) -> None:
        await trio.to_thread.run_sync(self._dispose)

    def _dispose(self) -> None:
        self._write_workers.stop()
        if self._read_workers is not self._write_workers:
            self._read_workers.stop()
        self._writer.dispose()
        if self._reader is not self._writer:
            self._reader.dispose()
