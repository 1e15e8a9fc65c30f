"""A durable follower of the room-event stream: process every committed event once, in order.

The push processor (notification counts) and the search indexer both need to
see every persisted event, but neither belongs in the event's own
transaction: evaluating every member's push rules, or tokenizing a message,
would lengthen the hot path that every send waits on. So each is a follower:
it remembers in ``stream_followers`` how far it got, and a background task
reads the events after that position (up to the notifier's announced
position, so an unannounced commit is never skipped), handles them, and moves
the position in the same transaction as its writes. A crash loses nothing
(the batch is redone) and counts nothing twice (the batch rolled back).

Readers that need the result of a specific event (a ``/sync`` that reports
counts up to position N, a search right after a send) wait for the follower
with :meth:`StreamFollower.wait_for`, bounded by a timeout.

The new-event hook hands over each announced event (already in memory), so a
follower that keeps up takes its batch from that queue and reads nothing
before its write. Events commit in stream order, with no gaps in the counter,
so a queue holding every position from the follower's up to the announced
head is exactly what the database read would return. Anything else (an event
never announced, such as an outlier; a restart; a burst beyond
``QUEUE_LIMIT``) leaves a hole, and that batch is read from the database as
before. The queue is per process: the server is one process.

A follower may also publish a batch's results before they are written
(:meth:`StreamFollower.evaluated`, with ``evaluated_position`` and
:meth:`StreamFollower.wait_for_evaluated`): the push processor's in-memory
counts do, so a woken ``/sync`` does not wait for the write. A failed write
calls :meth:`StreamFollower.write_failed` and the batches are redone.

Writes are grouped: evaluated batches wait (at most ``write_interval``
seconds after the previous write, or until ``BATCH`` events are pending) and
go to the database in one transaction, so under a stream of sends the
followers take a small share of the single SQLite writer instead of one write
per send. A reader that needs the written results (:meth:`StreamFollower.wait_for`)
asks for the write at once. The writes run in a task of their own: a new
event is evaluated while the previous batches are being written (measured
before: a woken ``/sync`` waited 3-19 ms for an evaluation queued behind a
write).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
import trio
from sqlalchemy.engine import Connection

from homeserver.storage import push as store
from homeserver.storage.database import Database
from homeserver.storage.event_tables import events
from homeserver.storage.events import EventStore, StoredEvent

log = logging.getLogger(__name__)

BATCH = 200
# Announced events kept for the follower; beyond this it reads the database.
QUEUE_LIMIT = 2 * BATCH
# A reader waits at most this long for the follower before answering with what is there.
DEFAULT_WAIT = 5.0


class StreamFollower:
    """Subclasses implement :meth:`prepare` (async, reads) and :meth:`write` (in the transaction)."""

    name = "follower"
    start_from_current = False
    # Seconds an evaluated batch may wait for the next grouped write (0: write at once).
    write_interval = 0.0

    def __init__(
        self, database: Database, event_store: EventStore, head: Callable[[], int]
    ) -> None:
        self.database = database
        self.event_store = event_store
        self._head = head
        self.position = 0
        # Where the latest committed batch began (its end is ``position``).
        self.batch_start = 0
        self._woken = trio.Event()
        self._advanced = trio.Event()
        # How far batches were handed to :meth:`evaluated` (at or after ``position``).
        self.evaluated_position = 0
        self._evaluated = trio.Event()
        self._started = False
        # Evaluated batches not written yet: (start, end, batch, prepared).
        self._pending: list[tuple[int, int, list[StoredEvent], Any]] = []
        self._pending_events = 0
        self._last_write = -math.inf
        # A reader waits for the written position: write without waiting for the interval.
        self._write_now = False
        # Set when the writer task has something new to consider.
        self._write_wake = trio.Event()
        # Moves when a failed write throws the evaluated batches away: a batch
        # prepared across that moment is dropped (it is redone from ``position``).
        self._generation = 0
        # stream_ordering -> announced event not processed yet (see the module docstring).
        self._queue: dict[int, StoredEvent] = {}
        # Statistics: batches taken from the queue, and read from the database.
        self.batches_from_memory = 0
        self.batches_from_database = 0

    # Hook for EventCreationService.add_new_event_hook: a new event is announced.
    def on_new_event(self, event: StoredEvent) -> None:
        if event.stream_ordering > self.evaluated_position and len(self._queue) < QUEUE_LIMIT:
            self._queue[event.stream_ordering] = event
        self._woken.set()

    async def prepare(self, batch: list[StoredEvent]) -> Any:
        """Work that needs awaits (state, rules) for a batch; the result goes to :meth:`write`."""
        return None

    def write(self, conn: Connection, batch: list[StoredEvent], prepared: Any) -> None:
        raise NotImplementedError

    def evaluated(self, start: int, end: int, batch: list[StoredEvent], prepared: Any) -> None:
        """Called on the trio thread once a batch is prepared, before its write commits."""

    def write_failed(self) -> None:
        """Called when a batch handed to :meth:`evaluated` was not written (it is redone)."""

    async def wait_for_evaluated(self, position: int, timeout: float = DEFAULT_WAIT) -> bool:
        """Like :meth:`wait_for`, but only until :meth:`evaluated` saw ``position``."""
        with trio.move_on_after(timeout):
            while self.evaluated_position < position:
                if not self._started:
                    return False
                await self._evaluated.wait()
            return True
        return False

    async def wait_for(self, position: int, timeout: float = DEFAULT_WAIT) -> bool:
        """Wait until events up to ``position`` are processed; False on timeout or not running."""
        with trio.move_on_after(timeout):
            while self.position < position:
                if not self._started:
                    return False
                self._write_now = True
                self._woken.set()
                self._write_wake.set()
                await self._advanced.wait()
            return True
        return False

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        stored = await self.database.read(lambda conn: store.read_follower(conn, self.name))
        if stored is None:
            stored = self._head() if self.start_from_current else 0
            position = stored
            await self.database.run(lambda conn: store.write_follower(conn, self.name, position))
        self.position = self.evaluated_position = stored
        self._started = True
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._write_when_due)
                task_status.started()
                while True:
                    self._woken = trio.Event()
                    try:
                        more = await self.step()
                    except trio.Cancelled:
                        raise
                    except Exception:
                        # Keep the follower alive (a bad event must not stop counts for
                        # everyone); retry the batch after a pause.
                        log.exception("%s: batch after %d failed", self.name, self.position)
                        await trio.sleep(1.0)
                        continue
                    if not more:
                        with trio.move_on_after(30.0):
                            await self._woken.wait()
        finally:
            self._started = False

    def _write_due(self) -> bool:
        return bool(self._pending) and (
            self._write_now
            or self._pending_events >= BATCH
            or trio.current_time() >= self._last_write + self.write_interval
        )

    async def _write_when_due(self) -> None:
        """The writer task: writes the pending batches whenever a write is due."""
        while True:
            self._write_wake = trio.Event()
            if self._write_due():
                try:
                    await self._write_pending()
                except trio.Cancelled:
                    raise
                except Exception:
                    log.exception("%s: write after %d failed", self.name, self.position)
                    self._woken.set()  # the evaluator redoes the batches
                    await trio.sleep(1.0)
                continue
            wait = math.inf
            if self._pending:
                wait = max(0.0, self._last_write + self.write_interval - trio.current_time())
            with trio.move_on_after(wait):
                await self._write_wake.wait()

    async def step(self) -> bool:
        """Evaluate one batch (the writer task writes it when due); True if there may
        be more right away."""
        head = self._head()
        start = self.evaluated_position
        generation = self._generation
        full = False
        if head > start:
            queued = queued_batch(self._queue, start, head, BATCH)
            if queued is not None:
                self.batches_from_memory += 1
                batch = queued
                end = batch[-1].stream_ordering
                full = end < head
            else:
                self.batches_from_database += 1
                ids = await self.database.read(
                    lambda conn: _event_ids_after(conn, start, head, BATCH)
                )
                found = await self.event_store.get_events([i for _, i in ids])
                batch = [found[i] for _, i in ids if i in found]
                full = len(ids) == BATCH
                end = ids[-1][0] if full else head
            prepared = await self.prepare(batch)
            if generation != self._generation or start != self.evaluated_position:
                return True  # a write failed meanwhile: start again from ``position``
            self.evaluated(start, end, batch, prepared)
            self._pending.append((start, end, batch, prepared))
            self._pending_events += len(batch)
            self.evaluated_position = end
            for position in [p for p in self._queue if p <= end]:
                del self._queue[position]
            self._evaluated.set()
            self._evaluated = trio.Event()
            self._write_wake.set()
        return full

    async def _write_pending(self) -> None:
        """Write every evaluated batch in one transaction, and move the position.

        Batches evaluated while it runs wait for the next write.
        """
        pending, self._pending = self._pending, []
        self._pending_events = 0
        start, end = pending[0][0], pending[-1][1]
        self._write_now = False

        def txn(conn: Connection) -> None:
            for _, _, batch, prepared in pending:
                self.write(conn, batch, prepared)
            store.write_follower(conn, self.name, end)

        try:
            await self.database.run(txn)
        except BaseException:
            # Redo from the written position (the events come from the database),
            # with the batches evaluated since: they counted on this one.
            self._pending = []
            self._pending_events = 0
            self._generation += 1
            self.evaluated_position = self.position
            self.write_failed()
            raise
        self._last_write = trio.current_time()
        self.batch_start = start
        self.position = end
        for _, _, batch, prepared in pending:
            self.after_batch(batch, prepared)
        self._advanced.set()
        self._advanced = trio.Event()

    def after_batch(self, batch: list[StoredEvent], prepared: Any) -> None:
        """Called on the trio thread after the batch committed (wake-ups)."""


def queued_batch(
    queue: Mapping[int, StoredEvent], start: int, head: int, limit: int
) -> list[StoredEvent] | None:
    """Every position in ``(start, min(head, start + limit)]`` from ``queue``, in order,
    or None if one is missing (then the database has the batch)."""
    end = min(head, start + limit)
    batch: list[StoredEvent] = []
    for position in range(start + 1, end + 1):
        event = queue.get(position)
        if event is None:
            return None
        batch.append(event)
    return batch or None


def _event_ids_after(conn: Connection, after: int, upto: int, limit: int) -> list[tuple[int, str]]:
    rows = conn.execute(
        sa.select(events.c.stream_ordering, events.c.event_id)
        .where(events.c.stream_ordering > after, events.c.stream_ordering <= upto)
        .order_by(events.c.stream_ordering)
        .limit(limit)
    ).all()
    return [(int(r.stream_ordering), r.event_id) for r in rows]


def is_live(event: StoredEvent) -> bool:
    """Events clients see: not rejected, soft-failed or outliers."""
    return event.rejected_reason is None and not event.soft_failed and not event.outlier
