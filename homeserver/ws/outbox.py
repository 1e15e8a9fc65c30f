"""A bounded outgoing queue per WebSocket connection, and the statistics of all of them.

Producers (the sync stream, command replies) never wait for a slow consumer:
:meth:`Outbox.put` either queues the frame within both bounds (frames and
bytes) or raises :class:`OutboxFull`, and the session closes the connection
with 4008 ("resume from your last next_batch"). The server's memory for one
connection is therefore at most ``max_bytes`` of queued frames plus the frame
being written; a single frame larger than ``max_bytes`` (a big initial sync) is
accepted only into an empty queue.
"""

from __future__ import annotations

import collections

import attrs
import trio


class OutboxFull(Exception):
    """The consumer is too slow: queueing one more frame would pass a bound."""


@attrs.frozen
class WebSocketStatistics:
    """Like trio's ``statistics()``: a snapshot, cheap to take."""

    open_connections: int
    authenticated: int
    # The largest number of bytes and frames any one outbox ever held.
    peak_queued_bytes: int
    peak_queued_frames: int
    frames_sent: int
    # Close codes the server chose (4001, 4003, 4008, 4009, ...), counted when chosen.
    closes: dict[int, int]


class WebSocketHub:
    """Every connection's outbox registers here; the numbers are for tests and operators."""

    def __init__(self) -> None:
        self.open_connections = 0
        self.authenticated = 0
        self.peak_queued_bytes = 0
        self.peak_queued_frames = 0
        self.frames_sent = 0
        self.closes: collections.Counter[int] = collections.Counter()
        self._changed = trio.Event()

    def statistics(self) -> WebSocketStatistics:
        return WebSocketStatistics(
            open_connections=self.open_connections,
            authenticated=self.authenticated,
            peak_queued_bytes=self.peak_queued_bytes,
            peak_queued_frames=self.peak_queued_frames,
            frames_sent=self.frames_sent,
            closes=dict(self.closes),
        )

    def record_close(self, code: int) -> None:
        self.closes[code] += 1
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def wait_changed(self) -> None:
        """Wait until a close is recorded or a connection opens or ends (callers bound it)."""
        await self._changed.wait()

    def opened(self) -> None:
        self.open_connections += 1
        self._wake()

    def ended(self) -> None:
        self.open_connections -= 1
        self._wake()


class Outbox:
    """Frames waiting to be written to one connection, bounded by count and by bytes."""

    def __init__(self, hub: WebSocketHub, max_frames: int, max_bytes: int) -> None:
        self.hub = hub
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        self.queued_bytes = 0
        # Allocated on first use and dropped when drained: an idle connection holds none.
        self._frames: collections.deque[str] | None = None
        self._ready: trio.Event | None = None
        self._closed = False

    def __len__(self) -> int:
        return len(self._frames) if self._frames is not None else 0

    def put(self, frame: str) -> None:
        """Queue ``frame`` at once, or raise :class:`OutboxFull`; never waits."""
        size = len(frame.encode("utf-8")) if not frame.isascii() else len(frame)
        if self._frames and (
            len(self._frames) >= self.max_frames or self.queued_bytes + size > self.max_bytes
        ):
            raise OutboxFull
        if self._frames is None:
            self._frames = collections.deque()
        self._frames.append(frame)
        self.queued_bytes += size
        hub = self.hub
        hub.peak_queued_frames = max(hub.peak_queued_frames, len(self._frames))
        if len(self._frames) > 1:
            # A lone frame may exceed the byte bound (see the module docstring).
            hub.peak_queued_bytes = max(hub.peak_queued_bytes, self.queued_bytes)
        if self._ready is not None:
            self._ready.set()

    async def get(self) -> str:
        """The oldest frame, waiting for one if the queue is empty."""
        while not self._frames:
            if self._closed:
                raise trio.EndOfChannel
            self._ready = trio.Event()
            await self._ready.wait()
            self._ready = None
        frame = self._frames.popleft()
        if not self._frames:
            self._frames = None
        self.queued_bytes -= len(frame.encode("utf-8")) if not frame.isascii() else len(frame)
        return frame

    def close(self) -> None:
        """No more frames: :meth:`get` raises ``EndOfChannel`` once the queue is drained."""
        self._closed = True
        if self._ready is not None:
            self._ready.set()
