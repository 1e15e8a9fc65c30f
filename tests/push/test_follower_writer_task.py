"""A stream follower evaluates new events while its previous write is still running."""

from __future__ import annotations

import threading
from typing import Any

import trio
from sqlalchemy.engine import Connection

from homeserver.push.follower import StreamFollower
from homeserver.storage.database import Database
from homeserver.storage.events import EventStore, StoredEvent


def _event(position: int) -> StoredEvent:
    return StoredEvent(
        event_id=f"$e{position}",
        room_id="!r:test",
        type="m.room.message",
        state_key=None,
        sender="@a:test",
        depth=position,
        topological_ordering=position,
        stream_ordering=position,
        origin_server_ts=position,
        rejected_reason=None,
        soft_failed=False,
        outlier=False,
        state_group_before=None,
        state_group_after=None,
        pdu={"type": "m.room.message", "content": {}},
    )


class _SlowFirstWrite(StreamFollower):
    name = "test_slow_writer"
    write_interval = 0.0

    def __init__(self, database: Database, store: EventStore) -> None:
        super().__init__(database, store, lambda: self.head)
        self.head = 0
        self.release = threading.Event()
        self.writing = threading.Event()
        self.written: list[list[int]] = []

    def write(self, conn: Connection, batch: list[StoredEvent], prepared: Any) -> None:
        if not self.written:
            self.writing.set()
            assert self.release.wait(10), "the test never released the first write"
        self.written.append([e.stream_ordering for e in batch])

    def announce(self, position: int) -> None:
        self.head = position
        self.on_new_event(_event(position))


async def test_a_new_event_is_evaluated_during_the_previous_write(database: Database) -> None:
    follower = _SlowFirstWrite(database, EventStore(database))
    async with trio.open_nursery() as nursery:
        await nursery.start(follower.run)
        follower.announce(1)
        await trio.to_thread.run_sync(follower.writing.wait, 10)
        # The first write is stuck in its thread; the next event is evaluated anyway.
        follower.announce(2)
        with trio.fail_after(5):
            assert await follower.wait_for_evaluated(2)
        assert follower.position == 0  # nothing written yet
        follower.release.set()
        with trio.fail_after(5):
            assert await follower.wait_for(2)
        assert follower.written == [[1], [2]]
        nursery.cancel_scope.cancel()
