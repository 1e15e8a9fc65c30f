"""Giving freed heap memory back to the operating system after bursts of requests.

glibc's malloc keeps what a burst freed (a registration's buffers, a page of
/messages, thousands of closed connections) in its arenas, mostly in the
worker threads' ones, and returns little of it by itself: measured after the
benchmark scenarios, ``malloc_trim(0)`` released about 7 MB of a 102 MB
server. So the listener asks for a trim now and then while requests arrive
(at most every ``period_s``) and once more when they stop (``quiet_s`` without
a new one); an idle server does nothing. A trim costs a few milliseconds in a
worker thread. Other C libraries (musl) have no ``malloc_trim``: then nothing
happens.
"""

from __future__ import annotations

import ctypes
import logging
import math
from collections.abc import Callable

import attrs

log = logging.getLogger(__name__)

TRIM_PERIOD_S = 5.0
TRIM_QUIET_S = 1.0


@attrs.define
class TrimSchedule:
    """When to trim, from the listener's request count (pure: the caller passes ``now``)."""

    period_s: float = TRIM_PERIOD_S
    quiet_s: float = TRIM_QUIET_S
    _seen: int = 0  # the request count at the previous look
    _changed_at: float = -math.inf  # when that count last moved
    _trimmed_at_count: int = 0  # the request count at the last trim
    _burst_started: float = -math.inf  # the first request after the last trim

    def due(self, requests: int, now: float) -> bool:
        """Whether to trim now; True also records the trim."""
        if requests != self._seen:
            if self._seen == self._trimmed_at_count:
                self._burst_started = now
            self._seen = requests
            self._changed_at = now
        if requests == self._trimmed_at_count:
            return False  # nothing ran since the last trim (or ever): nothing to give back
        quiet = now - self._changed_at >= self.quiet_s
        if quiet or now - self._burst_started >= self.period_s:
            self._trimmed_at_count = requests
            return True
        return False


def _load_malloc_trim() -> Callable[[int], int] | None:
    try:
        # The symbols already loaded into this process, the C library's among them.
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    fn: Callable[[int], int] = trim
    return fn


_malloc_trim: Callable[[int], int] | None = None
_looked_up = False


def release_free_memory() -> bool:
    """``malloc_trim(0)``: give free heap pages back (blocking; run it in a thread).

    Returns whether the C library offers it.
    """
    global _malloc_trim, _looked_up
    if not _looked_up:
        _malloc_trim = _load_malloc_trim()
        _looked_up = True
    if _malloc_trim is None:
        return False
    _malloc_trim(0)
    return True
