"""One timer for every waiting long-poll, instead of a cancel scope each.

A held ``/sync`` waits for its listener to fire or its timeout to pass. A
``trio.move_on_at`` per request costs about a kilobyte while it waits (the
cancel scope and its status); here the deadlines sit in one heap and a single
task ends each wait when its time comes (:meth:`Deadlines.add`), so a held
long-poll costs a heap entry. The task is a trio system task started on first
use and ending when no deadline is left.
"""

from __future__ import annotations

import heapq
import itertools
import math
from typing import Protocol

import trio


class Wakeable(Protocol):
    def wake(self) -> None: ...


# Cancelled entries tolerated before the heap is rebuilt without them.
MIN_COMPACT = 64


class DeadlineEntry:
    """A target to wake at ``deadline``; ``target`` is None once woken or cancelled."""

    __slots__ = ("deadline", "order", "target")

    def __init__(self, deadline: float, order: int, target: Wakeable) -> None:
        self.deadline = deadline
        self.order = order
        self.target: Wakeable | None = target

    def __lt__(self, other: DeadlineEntry) -> bool:
        return (self.deadline, self.order) < (other.deadline, other.order)


class Deadlines:
    def __init__(self) -> None:
        self._heap: list[DeadlineEntry] = []
        self._order = itertools.count()
        self._cancelled = 0
        self._rearm: trio.Event | None = None
        self._running = False

    def __len__(self) -> int:
        return len(self._heap) - self._cancelled

    def add(self, deadline: float, target: Wakeable) -> DeadlineEntry:
        """Call ``target.wake()`` once ``trio.current_time()`` reaches ``deadline``,
        unless :meth:`cancel` is called first with the returned entry."""
        earliest = self._heap[0].deadline if self._heap else math.inf
        entry = DeadlineEntry(deadline, next(self._order), target)
        heapq.heappush(self._heap, entry)
        if not self._running:
            self._running = True
            trio.lowlevel.spawn_system_task(self._run, name="sync deadlines")
        elif self._rearm is not None and deadline < earliest:
            self._rearm.set()
        return entry

    def cancel(self, entry: DeadlineEntry) -> None:
        """The wait ended first: drop the target now, the entry when it is cheap."""
        if entry.target is None:
            return  # already woken (or cancelled)
        entry.target = None
        self._cancelled += 1
        if self._cancelled > MIN_COMPACT and self._cancelled * 2 > len(self._heap):
            self._heap = [e for e in self._heap if e.target is not None]
            heapq.heapify(self._heap)
            self._cancelled = 0

    async def _run(self) -> None:
        try:
            while self._heap:
                rearm = self._rearm = trio.Event()
                with trio.move_on_at(self._heap[0].deadline):
                    await rearm.wait()
                now = trio.current_time()
                while self._heap and self._heap[0].deadline <= now:
                    entry = heapq.heappop(self._heap)
                    target = entry.target
                    if target is None:
                        self._cancelled -= 1
                        continue
                    entry.target = None
                    target.wake()
        finally:
            self._running = False
            self._rearm = None
