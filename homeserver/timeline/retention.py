"""The retention of redacted originals (spec: Client-Server API "Redactions").

A redacted event is served redacted from the moment its redaction is
accepted (``ClientEvents.serialize``), but its original content is kept for
``redaction_retention_s`` (default 7 days) so moderators can still review
it. :class:`RedactionPurger` is a background task of ``HomeServer.run_services``:
every pass rewrites, in bounded batches, the originals whose redaction is
older than that to their redacted form and drops what was derived from them
(``storage/redaction_purge.py``), then evicts them from the event cache.

Age is the redaction's ``origin_server_ts`` against the server clock. A pass
runs every ``CHECK_INTERVAL_S`` (sooner for a shorter retention) and when a
redaction is sent, so a retention of 0 purges within moments.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import trio

from homeserver.storage.database import Database
from homeserver.storage.events import EventStore, StoredEvent
from homeserver.storage.redaction_purge import purge_due

log = logging.getLogger(__name__)

BATCH = 100
CHECK_INTERVAL_S = 600.0


class RedactionPurger:
    def __init__(
        self,
        database: Database,
        event_store: EventStore,
        retention_s: int,
        clock: Callable[[], float],
    ) -> None:
        self.database = database
        self.event_store = event_store
        self.retention_s = retention_s
        self._clock = clock
        self._woken = trio.Event()
        self.passes = 0

    def on_new_event(self, event: StoredEvent) -> None:
        """Hook for new events: a redaction may be due now (short retention)."""
        if event.type == "m.room.redaction":
            self._woken.set()

    def wake(self) -> None:
        self._woken.set()

    async def purge_once(self, limit: int = BATCH) -> int:
        """One bounded batch: how many due redactions it handled."""
        cutoff_ms = int((self._clock() - self.retention_s) * 1000)
        handled, rewritten = await self.database.run(
            lambda conn: purge_due(conn, cutoff_ms, limit)
        )
        for event_id in rewritten:
            self.event_store.invalidate_event(event_id)
        if handled:
            log.info("purged %d redacted originals", len(rewritten))
        return handled

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        interval = min(CHECK_INTERVAL_S, max(1.0, float(self.retention_s)))
        while True:
            self._woken = trio.Event()
            try:
                # Each batch is its own transaction; requests run in between.
                handled = BATCH
                while handled == BATCH:
                    handled = await self.purge_once()
            except trio.Cancelled:
                raise
            except Exception:
                log.exception("purging redacted originals failed; retrying later")
            self.passes += 1
            with trio.move_on_after(interval):
                await self._woken.wait()
