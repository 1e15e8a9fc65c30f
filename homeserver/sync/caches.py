"""In-memory caches that make a woken incremental ``/sync`` cheap.

When one event lands in a room with N members holding a ``/sync``, N syncs
wake at once and each used to read the same things again. Two caches here
share that work:

* :class:`RecentEvents`: per room, the newest events of a stream range that
  is known to be complete, ``(lo, hi]``. An entry starts from a database
  read of a whole range, so it holds exactly what the database held: events
  commit in stream order and syncs read only up to the announced position
  (``sync/service.py``), so nothing can later appear inside a range already
  read. A range that reaches the newest event of its room the new-event hook
  has seen is *followed*: the hook appends each new event of the room, and
  the range is then complete up to :class:`HookedPositions`' watermark (every
  position at or below it has passed the hook), so a woken sync reads
  nothing. Otherwise the first woken sync extends the range with one read
  (under the room's lock); the others find it covered and read nothing.
  Events never change once stored (a redaction is applied when serializing,
  from ``event_redactions``), so entries never go stale.
* :class:`RoomMembers`: per room, the summary facts (member counts and hero
  candidates) from the room's current member events. Invalidated by
  :meth:`RoomMembers.on_new_event` for every member event, with a generation
  number so a read that raced an invalidation is never stored.

Both are bounded (rooms kept, events per room) and evict the least recently
used room. The server is one process: the hooks see every event it stores.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence

import attrs
import trio

from homeserver.push.follower import is_live
from homeserver.storage.events import StoredEvent

# Rooms whose recent events are kept, and events kept per room (the default
# timeline limit is 10; a bigger window serves clients that ask for more).
RECENT_ROOMS = 2_000
RECENT_EVENTS_PER_ROOM = 50
MEMBER_ROOMS = 2_000
# Hero candidates kept per room: MAX_HEROES plus the syncing user, who is skipped.
HERO_CANDIDATES = 6
# Rooms whose newest hooked position is remembered (for following kept ranges).
HOOKED_ROOMS = 20_000
# Hooked positions above a gap kept before the gap is taken for a position that
# never passes the hook (an outlier's); a real gap fills within one scheduling round.
MAX_PENDING_POSITIONS = 10_000


class HookedPositions:
    """The watermark of the new-event hook: every position at or below :attr:`upto` has
    passed it (or never will: a gap left too long is skipped).

    Hooks may run out of stream order (two rooms' transactions finish together),
    so the announced position can be ahead of a hook still to run; an
    in-memory answer for a position is only exact up to this watermark.
    Fed by ``SyncService.on_new_event``.
    """

    def __init__(self, start: int, max_pending: int = MAX_PENDING_POSITIONS) -> None:
        self.upto = start
        self._pending: set[int] = set()
        self._max_pending = max_pending

    def hooked(self, position: int) -> None:
        if position <= self.upto:
            return
        self._pending.add(position)
        if len(self._pending) > self._max_pending:
            # A position that never passes the hook (an outlier's): step over it.
            self.upto = min(self._pending) - 1
        while self.upto + 1 in self._pending:
            self.upto += 1
            self._pending.discard(self.upto)


ReadRange = Callable[[str, int, int, int], Awaitable[list[StoredEvent]]]


@attrs.define
class _Range:
    """Every visible event of the room with ``lo < stream_ordering <= hi``, oldest first."""

    lo: int
    hi: int
    events: list[StoredEvent]
    positions: list[int]
    # Every event of the room that passed the hook above ``hi`` is appended: the
    # range is complete up to the hook watermark too.
    followed: bool = False


class RecentEvents:
    """The newest events of each room, shared by every sync that reads them."""

    def __init__(
        self,
        read_range: ReadRange,
        *,
        max_rooms: int = RECENT_ROOMS,
        per_room: int = RECENT_EVENTS_PER_ROOM,
        hooked: HookedPositions | None = None,
        max_hooked_rooms: int = HOOKED_ROOMS,
    ) -> None:
        self._read_range = read_range
        self._max_rooms = max_rooms
        self._per_room = per_room
        self._rooms: OrderedDict[str, _Range] = OrderedDict()
        self._locks: dict[str, trio.Lock] = {}
        # Without a watermark (no hook feeding :meth:`on_new_event`) nothing is followed.
        self._hooked = hooked
        # room -> the newest position of the room that passed the hook; rooms not
        # here had none above ``_untracked_below`` (the start, or an evicted one).
        self._last_hooked: OrderedDict[str, int] = OrderedDict()
        self._untracked_below = hooked.upto if hooked is not None else 0
        self._max_hooked_rooms = max_hooked_rooms
        self.hits = 0
        self.misses = 0

    def on_new_event(self, event: StoredEvent) -> None:
        """Hook for every stored event, after :meth:`HookedPositions.hooked` saw it."""
        if self._hooked is None:
            return
        room_id = event.room_id
        position = event.stream_ordering
        # A room not remembered may have had hooked events up to ``_untracked_below``.
        last = self._last_hooked.get(room_id, self._untracked_below)
        self._last_hooked[room_id] = max(last, position)
        self._last_hooked.move_to_end(room_id)
        while len(self._last_hooked) > self._max_hooked_rooms:
            _, evicted = self._last_hooked.popitem(last=False)
            self._untracked_below = max(self._untracked_below, evicted)
        cached = self._rooms.get(room_id)
        if cached is None or not cached.followed or not is_live(event):
            return
        if position <= cached.lo:
            return  # below the kept window (trimmed away)
        if position <= cached.hi:
            if position not in cached.positions:
                # Cannot happen (a range read up to ``hi`` saw it): stop trusting the room.
                del self._rooms[room_id]
            return
        at = bisect.bisect_right(cached.positions, position)
        if at > 0 and cached.positions[at - 1] == position:
            return
        cached.positions.insert(at, position)
        cached.events.insert(at, event)
        self._trim(cached)

    def _get(self, room_id: str) -> _Range | None:
        """The kept range, its ``hi`` raised to the hook watermark if followed."""
        cached = self._rooms.get(room_id)
        if cached is not None and cached.followed:
            assert self._hooked is not None
            if self._hooked.upto > cached.hi:
                cached.hi = self._hooked.upto
        return cached

    def _follow(self, room_id: str, cached: _Range) -> None:
        """Follow a range complete up to ``hi`` if no hooked event of the room is above it."""
        if cached.followed or self._hooked is None:
            return
        last = self._last_hooked.get(room_id, self._untracked_below)
        if last <= cached.hi:
            cached.followed = True

    def _trim(self, cached: _Range) -> None:
        if len(cached.events) > self._per_room:
            cut = len(cached.events) - self._per_room
            cached.lo = max(cached.lo, cached.events[cut - 1].stream_ordering)
            del cached.events[:cut]
            del cached.positions[:cut]

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
        cached = self._get(room_id)
        if cached is not None and after <= cached.hi < upto:
            cached.hi = upto
            self._follow(room_id, cached)

    def is_kept(self, room_id: str) -> bool:
        return room_id in self._rooms

    def covers(self, room_id: str, after: int, upto: int) -> bool | None:
        """Whether the room has events in ``(after, upto]``, if the cache knows; else None."""
        cached = self._get(room_id)
        if cached is None or upto > cached.hi or after < cached.lo:
            return None
        start = bisect.bisect_right(cached.positions, after)
        end = bisect.bisect_right(cached.positions, upto)
        return end > start

    def has_no_member_events(self, room_id: str, after: int, upto: int) -> bool:
        """True if the kept range proves the room had no member event in ``(after, upto]``."""
        cached = self._get(room_id)
        if cached is None or upto > cached.hi or after < cached.lo:
            return False
        start = bisect.bisect_right(cached.positions, after)
        end = bisect.bisect_right(cached.positions, upto)
        return all(e.type != "m.room.member" for e in cached.events[start:end])

    def _lookup(self, room_id: str, after: int, upto: int, limit: int) -> list[StoredEvent] | None:
        cached = self._get(room_id)
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
        cached = self._get(room_id)
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
        cached = self._get(room_id)
        if cached is not None and fresh.lo <= cached.hi and cached.lo <= fresh.hi:
            # Overlapping or touching complete ranges: their union is complete
            # (and a followed one stays followed: the hook keeps appending to it).
            merged: dict[int, StoredEvent] = {e.stream_ordering: e for e in cached.events}
            merged.update((e.stream_ordering, e) for e in fresh.events)
            ordered = [merged[p] for p in sorted(merged)]
            fresh = _Range(
                min(cached.lo, fresh.lo),
                max(cached.hi, fresh.hi),
                ordered,
                [e.stream_ordering for e in ordered],
                cached.followed,
            )
        elif cached is not None and cached.hi > fresh.hi:
            return  # a disjoint, older range: keep the newer one
        self._trim(fresh)
        self._follow(room_id, fresh)
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
