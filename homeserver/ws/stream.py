"""A WebSocket /sync subscription: answer once, then sleep on the notifier until there is news.

Long-poll ``/sync`` must return within its timeout, so a client holding one
re-runs the whole sync (database reads, building the answer) every 30 to 60 s
even when nothing happened. A WebSocket has no such deadline: between two
frames an idle subscription is one notifier registration and one sleeping
task, with **no database reads and no timer** (the heartbeat lives in the
session). The loop:

1. Register with the notifier for the user and the rooms they are joined to
   (:meth:`Notifier.listen`) *before* reading, so nothing landing during the
   read is missed.
2. Run the ordinary sync with ``timeout_ms = 0`` from the last ``next_batch``:
   the frames are exactly ``/sync`` bodies, and consecutive ones cover
   consecutive token ranges, as with long-poll.
3. If the answer shows the user joined or left a room, re-read the joined
   rooms and go to 1 (a listener's rooms are fixed when it registers).
   Otherwise sleep until the listener fires, and go to 1.

The joined rooms are read from the database once at subscribe and again only
after a membership change of the user. Membership events also notify their
target user (``HomeServer._on_new_event``), so a join that lands between the
rooms read and the registration still shows up in the next answer.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Collection
from typing import Any

import attrs
import trio

from homeserver.notifier import Notifier
from homeserver.presence import PresenceService
from homeserver.storage.database import Database
from homeserver.storage.timeline import read_user_memberships
from homeserver.sync.service import SyncRequest, SyncService, parse_since

Body = dict[str, Any]


def membership_changed(body: Body, rooms: Collection[str]) -> bool:
    """Does this /sync answer join a room not in ``rooms``, or leave one that is?"""
    section = body.get("rooms")
    if not isinstance(section, dict):
        return False
    joined = section.get("join") or {}
    left = section.get("leave") or {}
    return any(room_id not in rooms for room_id in joined) or any(
        room_id in rooms for room_id in left
    )


@attrs.define
class StreamStatistics:
    """How often subscriptions did work: tests assert that idle ones do none."""

    syncs: int = 0
    room_reads: int = 0
    waiting: int = 0


class SyncStreams:
    """Runs the /sync stream of every WebSocket subscription (one per connection)."""

    def __init__(
        self,
        database: Database,
        notifier: Notifier,
        sync: SyncService,
        presence: PresenceService | None = None,
        presence_keepalive_s: float = math.inf,
    ) -> None:
        self.database = database
        self.notifier = notifier
        self.sync = sync
        self.presence = presence
        self.presence_keepalive_s = presence_keepalive_s
        self.stats = StreamStatistics()
        self._changed = trio.Event()

    async def wait_changed(self) -> None:
        """Wait until a subscription starts or stops waiting (callers bound it)."""
        await self._changed.wait()

    def _waiting(self, delta: int) -> None:
        self.stats.waiting += delta
        self._changed.set()
        self._changed = trio.Event()

    async def joined_rooms(self, user_id: str) -> frozenset[str]:
        self.stats.room_reads += 1
        memberships = await self.database.read(lambda conn: read_user_memberships(conn, user_id))
        return frozenset(m.room_id for m in memberships if m.membership == "join")

    async def run(
        self,
        request: SyncRequest,
        since: str | None,
        push: Callable[[Body], None],
        *,
        beat: Callable[[], Awaitable[None]] | None = None,
        beat_interval: float = math.inf,
    ) -> None:
        """Push each /sync body that moves the token, forever (until cancelled).

        ``push`` must not block (the session's bounded outbox); a ``MatrixError``
        from the sync (a bad filter, a token from the future) propagates. The
        connection's heartbeat, ``beat``, runs from the wait every
        ``beat_interval`` seconds, so a subscription needs no task of its own
        for it.
        """
        user_id = request.user_id
        request = attrs.evolve(request, timeout_ms=0)
        next_beat = trio.current_time() + beat_interval
        rooms = await self.joined_rooms(user_id)
        while True:
            with self.notifier.listen(user_id, rooms) as listener:
                self.stats.syncs += 1
                body = await self.sync.sync(request)
                next_batch = body["next_batch"]
                if since is None or next_batch != since:
                    push(body)
                if next_batch != since:
                    since = next_batch
                    request = attrs.evolve(request, since=parse_since(next_batch), full_state=False)
                if membership_changed(body, rooms):
                    rooms = await self.joined_rooms(user_id)
                    continue
                next_beat = await self._sleep(listener, request, beat, beat_interval, next_beat)

    async def _sleep(
        self,
        listener: Any,
        request: SyncRequest,
        beat: Callable[[], Awaitable[None]] | None,
        beat_interval: float,
        next_beat: float,
    ) -> float:
        """Until the listener fires, beating on time and keeping presence alive meanwhile.

        Neither the heartbeat nor the presence keep-alive syncs or reads rooms;
        returns when the next beat is due.
        """
        self._waiting(1)
        keepalive_at = trio.current_time() + self.presence_keepalive_s
        try:
            while True:
                # Checked before the wait too: a busy stream still beats on time.
                now = trio.current_time()
                if beat is not None and now >= next_beat:
                    await beat()
                    next_beat = trio.current_time() + beat_interval
                if self.presence is not None and now >= keepalive_at:
                    await self.presence.user_syncing(
                        request.user_id, request.set_presence or "online"
                    )
                    keepalive_at = trio.current_time() + self.presence_keepalive_s
                if listener.changed:
                    break
                with trio.move_on_at(min(next_beat, keepalive_at)):
                    await listener.wait()
        finally:
            self._waiting(-1)
        return next_beat
