"""Unread notification counts per (user, room), in memory, kept exact as events arrive.

A woken ``/sync`` asks :meth:`PushProcessor.thread_counts` for each room it
reports; without this cache each such answer is two database reads (the read
marks, then a grouped count of push actions after them), for each of the N
members one message wakes. Here an entry holds what those reads found and is
kept current by the writers of the facts it derives from:

* the push processor (a :class:`StreamFollower`) adds the actions of each batch
  as soon as they are computed (:meth:`CountsCache.apply_batch`), before the
  write that stores them commits, so an entry always covers exactly the
  actions up to the processor's evaluated position; a write that fails resets
  the cache (:meth:`CountsCache.reset`), and the redone batch is applied anew;
* the user's own new event in the room moves their own read mark
  (:meth:`CountsCache.on_new_event`): updated in place when it stays in the
  same thread as their previous own event, dropped otherwise (the previous
  thread's mark falls back to its receipt);
* a read receipt of the user in the room drops the entry
  (:meth:`CountsCache.invalidate`);
* a redaction deletes its target's actions for everyone: the processor drops
  every entry of the room when it applies the batch holding the redaction.

An entry stores per thread the counts of actions at or before ``floor``
(after the marks) and the positions of the few actions after ``floor``, so a
sync whose token is behind the processor counts only up to its token. A
question it cannot answer exactly (a token before ``floor``, or before the
user's own latest event, whose read mark depends on the token) goes to the
database. Loads are generation-stamped (the :class:`homeserver.sync.caches.RoomMembers`
pattern): a load that raced an invalidation is not stored, and one that read
the database at a position behind the evaluated one is completed from the log
of the latest batches (not stored if the log does not reach back, or if one of
those batches held a redaction in the room, whose deletion the read may have
missed).

Bounded: ``max_entries`` entries (least recently used evicted), ``TAIL_MAX``
positions per entry, ``LOG_BATCHES`` logged batches, and the generations of at
most ``4 * max_entries`` keys (forgetting one raises a floor that refuses every
load stamped before it). The server is one process: this cache sees every
write (receipts, events, push actions) that can change a count.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping

import attrs

from homeserver.storage.push import MAIN_THREAD, PushAction

MAX_ENTRIES = 4_096
# Positions after ``floor`` kept per entry; beyond it the oldest fold into the counts.
TAIL_MAX = 64
TAIL_KEEP = 16
LOG_BATCHES = 32

Key = tuple[str, str]  # (user_id, room_id)
Counts = dict[str, tuple[int, int]]


@attrs.define
class Marks:
    """The read marks of an entry (``processor.ReadMarks`` in a mutable form)."""

    unthreaded: int
    threads: dict[str, int]

    def position_for(self, thread_id: str) -> int:
        return self.threads.get(thread_id, self.unthreaded)


@attrs.define
class _Tail:
    notify: list[int] = attrs.Factory(list)
    highlight: list[int] = attrs.Factory(list)


@attrs.define
class Entry:
    marks: Marks
    # The user's own latest event in the room: (position, thread), or None.
    own: tuple[int, str] | None
    floor: int
    base: Counts
    tail: dict[str, _Tail] = attrs.Factory(dict)
    size: int = 0

    @classmethod
    def loaded(
        cls,
        unthreaded: int,
        threads: Mapping[str, int],
        own: tuple[int, str] | None,
        floor: int,
        base: Mapping[str, tuple[int, int]],
        tail: Iterable[tuple[int, str, bool, bool]] = (),
    ) -> Entry:
        """From a database read: ``base`` counts up to ``floor``, ``tail`` rows after it."""
        entry = cls(Marks(unthreaded, dict(threads)), own, floor, dict(base))
        for position, thread, notify, highlight in sorted(tail):
            entry.add(position, thread, notify, highlight)
        return entry

    def answers(self, upto: int | None) -> bool:
        """Whether counts up to ``upto`` (None: everything) are exact from this entry."""
        if upto is None:
            return True
        own_position = self.own[0] if self.own is not None else 0
        return upto >= self.floor and upto >= own_position

    def counts(self, upto: int | None) -> Counts:
        """``{thread: (notifications, highlights)}`` after the marks, up to ``upto``."""
        out: Counts = {}
        for thread in self.base.keys() | self.tail.keys():
            notify, highlight = self.base.get(thread, (0, 0))
            tail = self.tail.get(thread)
            if tail is not None:
                mark = max(self.marks.position_for(thread), self.floor)
                notify += _between(tail.notify, mark, upto)
                highlight += _between(tail.highlight, mark, upto)
            if notify or highlight:
                out[thread] = (notify, highlight)
        return out

    def add(self, position: int, thread: str, notify: bool, highlight: bool) -> None:
        """One new push action (positions arrive in increasing order)."""
        if position <= self.floor or position <= self.marks.position_for(thread):
            return
        if not (notify or highlight):
            return
        tail = self.tail.setdefault(thread, _Tail())
        if notify:
            tail.notify.append(position)
        if highlight:
            tail.highlight.append(position)
        self.size += 1
        if self.size > TAIL_MAX:
            self._fold()

    def own_event(self, position: int, thread: str) -> bool:
        """The user's own new event: move their own mark; False if the entry cannot follow."""
        if self.own is not None and (self.own[1] != thread or position <= self.own[0]):
            return False
        if position <= self.floor:
            return False
        self.own = (position, thread)
        self.marks.threads[thread] = max(self.marks.position_for(thread), position)
        # Every counted action of the thread at or before the floor is now read.
        self.base.pop(thread, None)
        tail = self.tail.get(thread)
        if tail is not None:
            tail.notify = tail.notify[bisect.bisect_right(tail.notify, position) :]
            tail.highlight = tail.highlight[bisect.bisect_right(tail.highlight, position) :]
            self.size = sum(len(t.notify) + len(t.highlight) for t in self.tail.values())
        return True

    def _fold(self) -> None:
        """Move all but the newest ``TAIL_KEEP`` positions into the counts; raise the floor."""
        positions = sorted({p for t in self.tail.values() for p in (*t.notify, *t.highlight)})
        if len(positions) <= TAIL_KEEP:
            return
        floor = positions[-TAIL_KEEP - 1]
        for thread, tail in list(self.tail.items()):
            mark = max(self.marks.position_for(thread), self.floor)
            cut_n = bisect.bisect_right(tail.notify, floor)
            cut_h = bisect.bisect_right(tail.highlight, floor)
            moved = (
                _between(tail.notify[:cut_n], mark, None),
                _between(tail.highlight[:cut_h], mark, None),
            )
            if moved != (0, 0):
                notify, highlight = self.base.get(thread, (0, 0))
                self.base[thread] = (notify + moved[0], highlight + moved[1])
            tail.notify = tail.notify[cut_n:]
            tail.highlight = tail.highlight[cut_h:]
            if not tail.notify and not tail.highlight:
                del self.tail[thread]
        self.floor = floor
        self.size = sum(len(t.notify) + len(t.highlight) for t in self.tail.values())


def _between(positions: list[int], after: int, upto: int | None) -> int:
    """How many of the sorted ``positions`` are in ``(after, upto]``."""
    low = bisect.bisect_right(positions, after)
    high = len(positions) if upto is None else bisect.bisect_right(positions, upto)
    return max(0, high - low)


class CountsCache:
    """(user, room) -> :class:`Entry`; see the module docstring."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._max = max_entries
        self._entries: OrderedDict[Key, Entry] = OrderedDict()
        # Generation of the latest invalidation of a key, or of a whole room ("", room).
        self._generations: OrderedDict[Key, int] = OrderedDict()
        self._epoch = 0
        # Loads stamped before this are refused (a forgotten generation may be newer).
        self._floor = 0
        # (start, end, actions, redacted rooms) of the processor's latest batches,
        # to complete loads.
        self._log: deque[tuple[int, int, list[PushAction], frozenset[str]]] = deque(
            maxlen=LOG_BATCHES
        )
        self.position = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    # -- reading -------------------------------------------------------------------

    def get(self, user_id: str, room_id: str, upto: int | None) -> Counts | None:
        entry = self._entries.get((user_id, room_id))
        if entry is None or not entry.answers(upto):
            self.misses += 1
            return None
        self._entries.move_to_end((user_id, room_id))
        self.hits += 1
        return entry.counts(upto)

    def stamp(self) -> int:
        """Take before a database read; pass to :meth:`put`."""
        return self._epoch

    def put(self, user_id: str, room_id: str, stamp: int, entry: Entry, position: int) -> bool:
        """Store a loaded entry (actions counted up to the processor's ``position``) unless
        an invalidation came after ``stamp``; actions the processor applied since the
        read are added from its log. False if not stored."""
        key = (user_id, room_id)
        if stamp < self._floor:
            return False
        if self._generations.get(key, 0) > stamp or self._generations.get(("", room_id), 0) > stamp:
            return False
        if position < self.position:
            batches = [b for b in self._log if b[1] > position]
            if not batches or batches[0][0] > position:
                return False  # the log no longer reaches back to the read
            if any(room_id in redacted for _, _, _, redacted in batches):
                return False
            for _, _, actions, _ in batches:
                for a in actions:
                    if a.user_id == user_id and a.room_id == room_id:
                        entry.add(a.stream_ordering, a.thread_id, a.notify, a.highlight)
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
        return True

    # -- writers -------------------------------------------------------------------

    def invalidate(self, user_id: str, room_id: str) -> None:
        """The user's read marks in the room changed (a receipt)."""
        self._entries.pop((user_id, room_id), None)
        self._bump((user_id, room_id))

    def invalidate_room(self, room_id: str) -> None:
        """Actions of the room were deleted (a redaction)."""
        for key in [k for k in self._entries if k[1] == room_id]:
            del self._entries[key]
        self._bump(("", room_id))

    def reset(self, position: int) -> None:
        """Forget everything (a batch applied was not written); ``position`` is the
        processor's written position, where it resumes."""
        self._entries.clear()
        self._log.clear()
        self._epoch += 1
        self._floor = self._epoch
        self.position = position

    def on_new_event(self, sender: str, room_id: str, position: int, thread: str | None) -> None:
        """An announced event: its sender's own read mark in the room moves to it."""
        key = (sender, room_id)
        entry = self._entries.get(key)
        # A load in flight may or may not have seen this event: it must not be stored.
        self._bump(key)
        if entry is not None and not entry.own_event(position, thread or MAIN_THREAD):
            del self._entries[key]

    def apply_batch(
        self, start: int, end: int, actions: list[PushAction], redacted_rooms: Iterable[str]
    ) -> None:
        """The processor computed a batch ``(start, end]``: its new actions count, and a
        redaction's room loses its entries (the target's actions are deleted)."""
        for action in actions:
            entry = self._entries.get((action.user_id, action.room_id))
            if entry is not None:
                entry.add(action.stream_ordering, action.thread_id, action.notify, action.highlight)
        rooms = frozenset(redacted_rooms)
        for room_id in rooms:
            self.invalidate_room(room_id)
        self._log.append((start, end, actions, rooms))
        self.position = end

    def _bump(self, key: Key) -> None:
        self._epoch += 1
        self._generations[key] = self._epoch
        self._generations.move_to_end(key)
        while len(self._generations) > 4 * self._max:
            _, generation = self._generations.popitem(last=False)
            self._floor = max(self._floor, generation)
