"""In-memory caches that make a woken incremental ``/sync`` cheap.

When one event lands in a room with N members holding a ``/sync``, N syncs
wake at once and each used to read the same things again. Two caches here
share that work:

* :class:`RecentEvents`: per room, the newest events of a stream range that
  is known to be complete, ``(lo, hi]``. Every entry comes from a database
  read of a whole range, never from a hook, so it holds exactly what the
  database held: events commit in stream order and syncs read only up to the
  announced position (``sync/service.py``), so nothing can later appear inside
  a range already read. The first woken sync extends the range with one read
  (under the room's lock); the others find it covered and read nothing.
  Events never change once stored (a redaction is applied when serializing,
  from ``event_redactions``), so entries never go stale.
* :class:`RoomMembers`: per room, the summary facts (member counts and hero
  candidates) from the room's current member events. Invalidated by
  :meth:`RoomMembers.on_new_event` for every member event, with a generation
  number so a read that raced an invalidation is never stored.

Both are bounded (rooms kept, events per room) and evict the least recently
used room.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence

import attrs
import trio

from homeserver.storage.events import StoredEvent

# Rooms whose recent events are kept, and events kept per room (the default
# timeline limit is 10; a bigger window serves clients that ask for more).
RECENT_ROOMS = 2_000
RECENT_EVENTS_PER_ROOM = 50
MEMBER_ROOMS = 2_000
# Hero candidates kept per room: MAX_HEROES plus the syncing user, who is skipped.
HERO_CANDIDATES = 6

ReadRange = Callable[[str, int, int, int], Awaitable[list[StoredEvent]]]


@attrs.define
class _Range:
    """Every visible event of the room with ``lo < stream_ordering <= hi``, oldest first."""

    lo: int
    hi: int
    events: list[StoredEvent]
    positions: list[int]


class RecentEvents:
    """The newest events of each room, shared by every sync that reads them."""

    def __init__(
        self,
        read_range: ReadRange,
        *,
        max_rooms: int = RECENT_ROOMS,
        per_room: int = RECENT_EVENTS_PER_ROOM,
    ) -> None:
        self._read_range = read_range
        self._max_rooms = max_rooms
        self._per_room = per_room
        self._rooms: OrderedDict[str, _Range] = OrderedDict()
        self._locks: dict[str, trio.Lock] = {}
        self.hits = 0
        self.misses = 0

    async def read(self, room_id: str, after: int, upto: int, limit: int) -> list[StoredEvent]:
        """The newest ``limit`` events with ``after < stream_ordering <= upto``, oldest first.

        The same answer as ``storage.timeline.read_room_stream_range``; ``upto``
        must be at or below the announced events position.
        """
        if upto <= after or limit <= 0:
            return []
        found = self._lookup(room_id, after, upto, limit)
        if found is not None:
            self.hits += 1
            return found
        lock = self._locks.get(room_id)
        if lock is None:
            lock = self._locks[room_id] = trio.Lock()
        try:
            async with lock:
                # Another sync may have read this range while we waited.
                found = self._lookup(room_id, after, upto, limit)
                if found is not None:
                    self.hits += 1
                    return found
                self.misses += 1
                return await self._fill(room_id, after, upto, limit)
        finally:
            if not lock.locked() and lock.statistics().tasks_waiting == 0:
                self._locks.pop(room_id, None)

    def note_no_events(self, room_id: str, after: int, upto: int) -> None:
        """The database showed no event of the room in ``(after, upto]``: extend a range to it."""
        cached = self._rooms.get(room_id)
        if cached is not None and after <= cached.hi < upto:
            cached.hi = upto

    def is_kept(self, room_id: str) -> bool:
        return room_id in self._rooms

    def covers(self, room_id: str, after: int, upto: int) -> bool | None:
        """Whether the room has events in ``(after, upto]``, if the cache knows; else None."""
        cached = self._rooms.get(room_id)
        if cached is None or upto > cached.hi or after < cached.lo:
            return None
        start = bisect.bisect_right(cached.positions, after)
        end = bisect.bisect_right(cached.positions, upto)
        return end > start

    def has_no_member_events(self, room_id: str, after: int, upto: int) -> bool:
        """True if the kept range proves the room had no member event in ``(after, upto]``."""
        cached = self._rooms.get(room_id)
        if cached is None or upto > cached.hi or after < cached.lo:
            return False
        start = bisect.bisect_right(cached.positions, after)
        end = bisect.bisect_right(cached.positions, upto)
        return all(e.type != "m.room.member" for e in cached.events[start:end])

    def _lookup(self, room_id: str, after: int, upto: int, limit: int) -> list[StoredEvent] | None:
        cached = self._rooms.get(room_id)
        if cached is None or upto > cached.hi:
            return None
        end = bisect.bisect_right(cached.positions, upto)
        start = bisect.bisect_right(cached.positions, after)
        if after >= cached.lo:
            self._rooms.move_to_end(room_id)
            return cached.events[max(start, end - limit) : end]
        # The range reaches below what is kept: enough newer events still answer it.
        if end - start >= limit:
            self._rooms.move_to_end(room_id)
            return cached.events[end - limit : end]
        return None

    async def _fill(self, room_id: str, after: int, upto: int, limit: int) -> list[StoredEvent]:
        cached = self._rooms.get(room_id)
        if cached is not None and cached.hi < upto:
            # Extend the kept range: read only what is new since it.
            batch = await self._read_range(room_id, cached.hi, upto, self._per_room)
            self._store(room_id, cached.hi, upto, batch, self._per_room)
            found = self._lookup(room_id, after, upto, limit)
            if found is not None:
                return found
        want = max(limit, self._per_room)
        batch = await self._read_range(room_id, after, upto, want)
        self._store(room_id, after, upto, batch, want)
        return batch[-limit:]

    def _store(
        self, room_id: str, after: int, upto: int, batch: Sequence[StoredEvent], asked: int
    ) -> None:
        """Keep a read of the newest ``asked`` events in ``(after, upto]``."""
        # Fewer than asked: the whole range; else complete from the oldest returned.
        lo = after if len(batch) < asked else batch[0].stream_ordering - 1
        fresh = _Range(lo, upto, list(batch), [e.stream_ordering for e in batch])
        cached = self._rooms.get(room_id)
        if cached is not None and fresh.lo <= cached.hi and cached.lo <= fresh.hi:
            # Overlapping or touching complete ranges: their union is complete.
            merged: dict[int, StoredEvent] = {e.stream_ordering: e for e in cached.events}
            merged.update((e.stream_ordering, e) for e in fresh.events)
            ordered = [merged[p] for p in sorted(merged)]
            fresh = _Range(
                min(cached.lo, fresh.lo),
                max(cached.hi, fresh.hi),
                ordered,
                [e.stream_ordering for e in ordered],
            )
        elif cached is not None and cached.hi > fresh.hi:
            return  # a disjoint, older range: keep the newer one
        if len(fresh.events) > self._per_room:
            cut = len(fresh.events) - self._per_room
            fresh.lo = fresh.events[cut - 1].stream_ordering
            fresh.events = fresh.events[cut:]
            fresh.positions = fresh.positions[cut:]
        self._rooms[room_id] = fresh
        self._rooms.move_to_end(room_id)
        while len(self._rooms) > self._max_rooms:
            self._rooms.popitem(last=False)


@attrs.frozen
class MemberSummary:
    """What a room summary needs from the room's current member events."""

    joined: int
    invited: int
    # The first HERO_CANDIDATES joined or invited users, oldest membership first;
    # and the same of those who left or were banned (heroes when nobody is left).
    present: tuple[str, ...]
    gone: tuple[str, ...]

    @classmethod
    def from_rows(cls, rows: Sequence[tuple[str, str, int]]) -> MemberSummary:
        present = [u for u, m, _ in rows if m in ("join", "invite")]
        return cls(
            joined=sum(1 for _, m, _ in rows if m == "join"),
            invited=sum(1 for _, m, _ in rows if m == "invite"),
            present=tuple(present[:HERO_CANDIDATES]),
            gone=tuple([u for u, m, _ in rows if m in ("leave", "ban")][:HERO_CANDIDATES]),
        )


class RoomMembers:
    """Per room :class:`MemberSummary`, dropped whenever a member event of the room is stored."""

    def __init__(self, max_rooms: int = MEMBER_ROOMS) -> None:
        self._max_rooms = max_rooms
        self._rooms: OrderedDict[str, MemberSummary] = OrderedDict()
        self._generation: dict[str, int] = {}
        self._epoch = 0

    def on_new_event(self, event: StoredEvent) -> None:
        """Hook for every stored event (``EventCreationService.add_new_event_hook``)."""
        if event.type == "m.room.member":
            self.invalidate(event.room_id)

    def invalidate(self, room_id: str) -> None:
        self._rooms.pop(room_id, None)
        self._generation[room_id] = self._epoch = self._epoch + 1

    def get(self, room_id: str) -> MemberSummary | None:
        found = self._rooms.get(room_id)
        if found is not None:
            self._rooms.move_to_end(room_id)
        return found

    def stamp(self, room_id: str) -> int:
        """Take before reading; pass to :meth:`put` so a read that raced a change is dropped."""
        return self._generation.get(room_id, 0)

    def put(self, room_id: str, stamp: int, summary: MemberSummary) -> None:
        if self._generation.get(room_id, 0) != stamp:
            return
        self._rooms[room_id] = summary
        self._rooms.move_to_end(room_id)
        while len(self._rooms) > self._max_rooms:
            # Generations stay: a read stamped before an invalidation must never match.
            self._rooms.popitem(last=False)
