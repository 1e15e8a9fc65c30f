"""Stream positions, sync tokens, and the notifier that wakes waiting syncs.

Every kind of change has its own monotonically increasing stream position
(DESIGN.md, "Streams and the notifier"). A sync token is the tuple of them,
written ``s<events>_<typing>_<receipts>_<presence>_<account_data>_<to_device>_<device_lists>``.
A service that stores a change calls :meth:`Notifier.notify` with the stream,
its new position and whom it concerns (users and/or rooms); a waiting ``/sync``
or WebSocket session sleeps in :meth:`Notifier.wait_for_change` and wakes only
when a change concerning it arrives (or its timeout passes).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import attrs
import trio

from homeserver.errors import MatrixError

STREAMS = ("events", "typing", "receipts", "presence", "account_data", "to_device", "device_lists")


def invalid_token(error: str = "Invalid sync token") -> MatrixError:
    return MatrixError(400, "M_INVALID_PARAM", error)


@attrs.frozen
class StreamToken:
    events: int = 0
    typing: int = 0
    receipts: int = 0
    presence: int = 0
    account_data: int = 0
    to_device: int = 0
    device_lists: int = 0

    def to_string(self) -> str:
        return "s" + "_".join(str(getattr(self, name)) for name in STREAMS)

    @classmethod
    def parse(cls, value: str) -> StreamToken:
        """Parse a token from a client; anything malformed is 400 M_INVALID_PARAM."""
        if not value.startswith("s") or len(value) > 200:
            raise invalid_token()
        parts = value[1:].split("_")
        if len(parts) > len(STREAMS) or not all(p.isdigit() and len(p) <= 18 for p in parts):
            raise invalid_token()
        # Older tokens with fewer streams stay valid: missing positions are 0.
        return cls(*(int(p) for p in parts))

    def copy_and_advance(self, stream: str, position: int) -> StreamToken:
        if getattr(self, stream) >= position:
            return self
        return attrs.evolve(self, **{stream: position})

    def is_after(self, other: StreamToken) -> bool:
        """True if any position is ahead of ``other``'s."""
        return any(getattr(self, s) > getattr(other, s) for s in STREAMS)


@attrs.frozen
class NotifierStatistics:
    waiters: int
    notifications: int


class _Waiter:
    __slots__ = ("event", "rooms", "user_id")

    def __init__(self, user_id: str, rooms: frozenset[str]) -> None:
        self.user_id = user_id
        self.rooms = rooms
        self.event = trio.Event()


class Notifier:
    """Wakes exactly the waiters a change concerns; holds the current stream positions."""

    def __init__(self) -> None:
        self._positions = dict.fromkeys(STREAMS, 0)
        self._by_user: dict[str, set[_Waiter]] = {}
        self._by_room: dict[str, set[_Waiter]] = {}
        self._notifications = 0
        self._changes = dict.fromkeys(STREAMS, 0)

    def current_token(self) -> StreamToken:
        return StreamToken(**self._positions)

    def change_count(self, stream: str) -> int:
        """How many changes of ``stream`` were announced so far: a cache stamp.

        A value read after taking this count is current for as long as the count
        stays the same. Unlike the position (a maximum), the count moves even for
        a change announced after a later one, so a late announcement still
        invalidates what was read before it.
        """
        return self._changes[stream]

    def set_position(self, stream: str, position: int) -> None:
        """Seed a stream's position at start (from the database) without waking anyone."""
        if stream not in self._positions:
            raise ValueError(f"unknown stream {stream!r}")
        self._positions[stream] = max(self._positions[stream], position)

    def notify(
        self,
        stream: str,
        position: int,
        *,
        users: Iterable[str] = (),
        rooms: Iterable[str] = (),
    ) -> None:
        """A change at ``position`` of ``stream`` concerns these users and rooms' members."""
        self.set_position(stream, position)
        self._notifications += 1
        self._changes[stream] += 1
        woken: set[_Waiter] = set()
        for user_id in users:
            woken.update(self._by_user.get(user_id, ()))
        for room_id in rooms:
            woken.update(self._by_room.get(room_id, ()))
        for waiter in woken:
            waiter.event.set()

    async def wait_for_change(
        self, user_id: str, rooms: Iterable[str], timeout: float
    ) -> bool:
        """Sleep until a change concerning ``user_id`` or one of ``rooms``; False on timeout.

        Register *before* reading what is new (call :meth:`listen` for that), or a
        change landing between the read and the wait is missed; this helper is
        for callers that read after waking.
        """
        with self.listen(user_id, rooms) as waiter:
            with trio.move_on_after(timeout if math.isfinite(timeout) else 1e9):
                await waiter.wait()
                return True
        return False

    def listen(self, user_id: str, rooms: Iterable[str]) -> _Listener:
        return _Listener(self, _Waiter(user_id, frozenset(rooms)))

    def statistics(self) -> NotifierStatistics:
        return NotifierStatistics(
            waiters=sum(len(w) for w in self._by_user.values()), notifications=self._notifications
        )

    def _add(self, waiter: _Waiter) -> None:
        self._by_user.setdefault(waiter.user_id, set()).add(waiter)
        for room_id in waiter.rooms:
            self._by_room.setdefault(room_id, set()).add(waiter)

    def _remove(self, waiter: _Waiter) -> None:
        _discard(self._by_user, waiter.user_id, waiter)
        for room_id in waiter.rooms:
            _discard(self._by_room, room_id, waiter)


def _discard(index: dict[str, set[_Waiter]], key: str, waiter: _Waiter) -> None:
    waiters = index.get(key)
    if waiters is not None:
        waiters.discard(waiter)
        if not waiters:
            del index[key]


class _Listener:
    """A registration that catches changes from the moment it is entered.

    Usage: ``with notifier.listen(user, rooms) as listener: read...; await listener.wait()``.
    """

    def __init__(self, notifier: Notifier, waiter: _Waiter) -> None:
        self._notifier = notifier
        self._waiter = waiter

    def __enter__(self) -> _Listener:
        self._notifier._add(self._waiter)
        return self

    def __exit__(self, *exc: object) -> None:
        self._notifier._remove(self._waiter)

    @property
    def changed(self) -> bool:
        return self._waiter.event.is_set()

    async def wait(self) -> None:
        await self._waiter.event.wait()

    def wake(self) -> None:
        """End :meth:`wait` as a change would (a deadline passed: ``sync/deadlines.py``)."""
        self._waiter.event.set()
