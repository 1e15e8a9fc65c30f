"""Typing notifications: who is typing in which room, in memory, expiring on their own.

Spec: Client-Server API, "Typing Notifications". Typing is ephemeral: nothing is
persisted, a restart forgets it. Each change (start, stop, expiry) takes the
next position of the ``typing`` stream and wakes the room's members through the
notifier. ``/sync`` reads :meth:`TypingService.typing_for_rooms`, which answers
the *full* current list of typers of every room that changed since a position
(the ``m.typing`` event replaces the previous one; matrix_brief.md §1.9).

Expiry is computed from the injected clock on every read, so a reader never
sees a lapsed typer; :meth:`TypingService.run` additionally drops lapsed typers
at their deadline and advances the stream, so waiting syncs learn that someone
stopped typing without anybody else acting.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import attrs
import trio

from homeserver.errors import forbidden
from homeserver.notifier import Notifier
from homeserver.storage.events import StoredEvent

# Clients send about 30 s (Element: 30000 ms); longer timeouts are capped.
MAX_TYPING_TIMEOUT_MS = 30_000
DEFAULT_TYPING_TIMEOUT_MS = 30_000
# The expiry loop sleeps at most this long, so a moved clock is noticed soon.
MAX_SLEEP_S = 5.0

IsJoined = Callable[[str, str], Awaitable[bool]]


@attrs.frozen
class TypingStatistics:
    rooms: int
    typers: int
    position: int


class TypingService:
    """Current typers per room; ``clock`` is wall-clock seconds (``hs.clock.time``)."""

    def __init__(self, notifier: Notifier, is_joined: IsJoined, clock: Callable[[], float]) -> None:
        self._notifier = notifier
        self._is_joined = is_joined
        self._clock = clock
        # room_id -> user_id -> expiry (ms since the epoch)
        self._typers: dict[str, dict[str, int]] = {}
        # room_id -> typing stream position of its last change
        self._room_position: dict[str, int] = {}
        self._position = 0
        self._changed = trio.Event()

    @property
    def position(self) -> int:
        return self._position

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # -- writing --------------------------------------------------------------------

    async def set_typing(
        self, requester: str, user_id: str, room_id: str, typing: bool, timeout_ms: int | None
    ) -> None:
        """``PUT /rooms/{roomId}/typing/{userId}``: only for yourself, only in joined rooms."""
        if requester != user_id:
            raise forbidden("You may only set your own typing state")
        if not await self._is_joined(user_id, room_id):
            raise forbidden("You are not joined to this room")
        if typing:
            timeout = DEFAULT_TYPING_TIMEOUT_MS if timeout_ms is None else timeout_ms
            timeout = max(0, min(timeout, MAX_TYPING_TIMEOUT_MS))
            self.started_typing(user_id, room_id, timeout)
        else:
            self.stopped_typing(user_id, room_id)

    def started_typing(self, user_id: str, room_id: str, timeout_ms: int) -> None:
        typers = self._typers.setdefault(room_id, {})
        was_typing = user_id in typers and typers[user_id] > self._now_ms()
        typers[user_id] = self._now_ms() + timeout_ms
        self._changed.set()
        # Renewing the timeout changes nothing anyone sees: no stream advance.
        if not was_typing:
            self._advance([room_id])

    def stopped_typing(self, user_id: str, room_id: str) -> None:
        """Also for the membership service: a user who leaves stops typing."""
        typers = self._typers.get(room_id)
        if typers is None or user_id not in typers:
            return
        was_typing = typers.pop(user_id) > self._now_ms()
        if not typers:
            del self._typers[room_id]
        if was_typing:
            self._advance([room_id])

    def on_new_event(self, event: StoredEvent) -> None:
        """New-event hook: a member who leaves (or is kicked, banned) stops typing at once."""
        if event.type != "m.room.member" or not event.state_key:
            return
        if event.pdu.get("content", {}).get("membership") != "join":
            self.stopped_typing(event.state_key, event.room_id)

    def expire(self) -> list[str]:
        """Drop lapsed typers now; returns the rooms that changed (and advances the stream)."""
        now = self._now_ms()
        changed: list[str] = []
        for room_id, typers in list(self._typers.items()):
            lapsed = [user for user, expiry in typers.items() if expiry <= now]
            for user in lapsed:
                del typers[user]
            if not typers:
                del self._typers[room_id]
            if lapsed:
                changed.append(room_id)
        if changed:
            self._advance(changed)
        return changed

    def _advance(self, room_ids: list[str]) -> None:
        self._position += 1
        for room_id in room_ids:
            self._room_position[room_id] = self._position
        self._notifier.notify("typing", self._position, rooms=room_ids)

    # -- reading (for /sync) -------------------------------------------------------------

    def typing_users(self, room_id: str) -> list[str]:
        now = self._now_ms()
        return sorted(u for u, expiry in self._typers.get(room_id, {}).items() if expiry > now)

    def typing_for_rooms(
        self, room_ids: Iterable[str], since_pos: int
    ) -> dict[str, dict[str, Any]]:
        """``{room_id: m.typing event}`` for the rooms whose typers changed after ``since_pos``.

        A position from before a restart (ahead of ours: typing is not persisted)
        counts as 0, so the client gets the current typers rather than nothing.
        """
        if since_pos > self._position:
            since_pos = 0
        out: dict[str, dict[str, Any]] = {}
        for room_id in room_ids:
            if self._room_position.get(room_id, 0) > since_pos:
                out[room_id] = {
                    "type": "m.typing",
                    "content": {"user_ids": self.typing_users(room_id)},
                }
        return out

    def statistics(self) -> TypingStatistics:
        return TypingStatistics(
            rooms=len(self._typers),
            typers=sum(len(t) for t in self._typers.values()),
            position=self._position,
        )

    # -- lifetime --------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Expire typers at their deadline, until cancelled (start it in the server's nursery)."""
        task_status.started()
        while True:
            self.expire()
            self._changed = trio.Event()
            deadline = min((e for t in self._typers.values() for e in t.values()), default=None)
            sleep = MAX_SLEEP_S
            if deadline is not None:
                sleep = min(sleep, max(0.0, deadline / 1000 - self._clock()))
            with trio.move_on_after(sleep if math.isfinite(sleep) else MAX_SLEEP_S):
                await self._changed.wait()
