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
"""

from __future__ import annotations

import logging
from collections.abc import Callable
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
# A reader waits at most this long for the follower before answering with what is there.
DEFAULT_WAIT = 5.0


class StreamFollower:
    """Subclasses implement :meth:`prepare` (async, reads) and :meth:`write` (in the transaction)."""

    name = "follower"
    start_from_current = False

    def __init__(
        self, database: Database, event_store: EventStore, head: Callable[[], int]
    ) -> None:
        self.database = database
        self.event_store = event_store
        self._head = head
        self.position = 0
        self._woken = trio.Event()
        self._advanced = trio.Event()
        self._started = False

    # Hook for EventCreationService.add_new_event_hook: a new event is announced.
    def on_new_event(self, event: StoredEvent) -> None:
        self._woken.set()

    async def prepare(self, batch: list[StoredEvent]) -> Any:
        """Work that needs awaits (state, rules) for a batch; the result goes to :meth:`write`."""
        return None

    def write(self, conn: Connection, batch: list[StoredEvent], prepared: Any) -> None:
        raise NotImplementedError

    async def wait_for(self, position: int, timeout: float = DEFAULT_WAIT) -> bool:
        """Wait until events up to ``position`` are processed; False on timeout or not running."""
        with trio.move_on_after(timeout):
            while self.position < position:
                if not self._started:
                    return False
                await self._advanced.wait()
            return True
        return False

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        stored = await self.database.read(lambda conn: store.read_follower(conn, self.name))
        if stored is None:
            stored = self._head() if self.start_from_current else 0
            position = stored
            await self.database.run(lambda conn: store.write_follower(conn, self.name, position))
        self.position = stored
        self._started = True
        try:
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
                    with trio.move_on_after(30):
                        await self._woken.wait()
        finally:
            self._started = False

    async def step(self) -> bool:
        """Process one batch; True if there may be more right away."""
        head = self._head()
        start = self.position
        if head <= start:
            return False
        ids = await self.database.read(lambda conn: _event_ids_after(conn, start, head, BATCH))
        found = await self.event_store.get_events([i for _, i in ids])
        batch = [found[i] for _, i in ids if i in found]
        end = ids[-1][0] if len(ids) == BATCH else head
        prepared = await self.prepare(batch)

        def txn(conn: Connection) -> None:
            self.write(conn, batch, prepared)
            store.write_follower(conn, self.name, end)

        await self.database.run(txn)
        self.position = end
        self._advanced.set()
        self._advanced = trio.Event()
        self.after_batch(batch, prepared)
        return len(ids) == BATCH

    def after_batch(self, batch: list[StoredEvent], prepared: Any) -> None:
        """Called on the trio thread after the batch committed (wake-ups)."""


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
