"""Presence: online, unavailable (idle) or offline, and a status message.

Spec: Client-Server API, "Presence". What a user *set* and when they were last
active or last synced are stored (``homeserver/storage/presence.py``); what
others *see* is derived from those and the time by :func:`visible_presence`, a
pure function with ``now`` passed in:

* ``offline`` if set offline, or nothing (no activity, no sync) for
  ``offline_after_s``;
* ``unavailable`` if set online but not active for ``idle_after_s`` (an
  open client that keeps syncing while its user is away), or if set so;
* ``online`` otherwise, with ``currently_active`` while active within the last
  minute (Synapse's granularity).

Activity is an explicit ``PUT``, a sync that brings a user back online, and
what the other services report through :meth:`PresenceService.bump_active`
(receipts, typing; sending messages once ``/send`` calls it). Syncing is
reported by ``/sync`` through :meth:`PresenceService.user_syncing` with the
request's ``set_presence``.

Who sees whom: users who share a joined room, and yourself (Synapse's
``is_visible``); ``GET /presence/{userId}/status`` of anyone else is 403, as in
Synapse. With ``[presence] enabled = false`` (Synapse ``presence.enabled``),
``PUT`` is accepted and ignored, ``GET`` answers ``offline`` and ``/sync``
carries no presence.

:meth:`PresenceService.run` notices idle and offline timeouts and advances the
``presence`` stream so that waiting syncs learn of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import trio

from homeserver.config import PresenceConfig
from homeserver.errors import forbidden
from homeserver.notifier import Notifier
from homeserver.storage import presence as store
from homeserver.storage.database import Database
from homeserver.storage.presence import PresenceRow

ONLINE = "online"
UNAVAILABLE = "unavailable"
OFFLINE = "offline"
STATES = (ONLINE, UNAVAILABLE, OFFLINE)
MAX_STATUS_MSG_LENGTH = 512
# "currently_active" while active within this window (Synapse LAST_ACTIVE_GRANULARITY).
CURRENTLY_ACTIVE_MS = 60_000
# A sync refreshes last_sync_ts in the database at most this often.
SYNC_WRITE_INTERVAL_MS = 30_000
# How often the timeout loop looks for users who went idle or offline.
TIMEOUT_CHECK_S = 5.0


# -- the pure state machine ---------------------------------------------------------------


@attrs.frozen
class PresenceTimeouts:
    idle_after_ms: int
    offline_after_ms: int

    @classmethod
    def from_config(cls, config: PresenceConfig) -> PresenceTimeouts:
        return cls(config.idle_after_s * 1000, config.offline_after_s * 1000)


def new_row(user_id: str) -> PresenceRow:
    return PresenceRow(
        user_id=user_id,
        state=OFFLINE,
        status_msg=None,
        last_active_ts=0,
        last_sync_ts=0,
        visible_state=OFFLINE,
        stream_id=0,
    )


def visible_presence(row: PresenceRow, now_ms: int, timeouts: PresenceTimeouts) -> str:
    """The presence others see now, from what the user set and their activity."""
    if row.state == OFFLINE:
        return OFFLINE
    last_seen = max(row.last_active_ts, row.last_sync_ts)
    if now_ms - last_seen >= timeouts.offline_after_ms:
        return OFFLINE
    if row.state == ONLINE and now_ms - row.last_active_ts >= timeouts.idle_after_ms:
        return UNAVAILABLE
    return row.state


def presence_content(row: PresenceRow, now_ms: int, timeouts: PresenceTimeouts) -> dict[str, Any]:
    """The ``m.presence`` content (and the GET body): presence, last_active_ago, ..."""
    state = visible_presence(row, now_ms, timeouts)
    content: dict[str, Any] = {"presence": state}
    if row.last_active_ts:
        content["last_active_ago"] = max(0, now_ms - row.last_active_ts)
    content["currently_active"] = (
        state == ONLINE and now_ms - row.last_active_ts < CURRENTLY_ACTIVE_MS
    )
    if row.status_msg is not None:
        content["status_msg"] = row.status_msg
    return content


def set_state(row: PresenceRow, state: str, status_msg: str | None, now_ms: int) -> PresenceRow:
    """An explicit update (PUT): the new state and message; online counts as activity.

    Any update shows the client is there, like a sync: the offline timeout restarts.
    """
    last_active = now_ms if state == ONLINE else row.last_active_ts
    return attrs.evolve(
        row, state=state, status_msg=status_msg, last_active_ts=last_active, last_sync_ts=now_ms
    )


def bump_active(row: PresenceRow, now_ms: int) -> PresenceRow:
    """The user did something: they are active, and online unless they chose otherwise."""
    state = ONLINE if row.state == OFFLINE else row.state
    return attrs.evolve(row, state=state, last_active_ts=now_ms)


def syncing(
    row: PresenceRow, set_presence: str, now_ms: int, timeouts: PresenceTimeouts
) -> PresenceRow:
    """A ``/sync`` with ``set_presence``: ``offline`` leaves presence alone (spec).

    ``online`` brings back a user who was (or timed out to) offline, as active;
    it does not override an ``unavailable`` the user set themselves.
    ``unavailable`` marks the user so.
    """
    if set_presence == OFFLINE:
        return row
    was_offline = visible_presence(row, now_ms, timeouts) == OFFLINE
    row = attrs.evolve(row, last_sync_ts=now_ms)
    if set_presence == UNAVAILABLE:
        return attrs.evolve(row, state=UNAVAILABLE)
    if was_offline:
        return attrs.evolve(row, state=ONLINE, last_active_ts=now_ms)
    return row


# -- the service ------------------------------------------------------------------------


class PresenceService:
    def __init__(
        self,
        database: Database,
        notifier: Notifier,
        config: PresenceConfig,
        clock: Callable[[], float],
    ) -> None:
        self.database = database
        self._notifier = notifier
        self.enabled = config.enabled
        self.timeouts = PresenceTimeouts.from_config(config)
        self._clock = clock
        # Rows last read or written, so a sync does not read the database each time.
        self._cache: dict[str, PresenceRow] = {}

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def load_stream_position(self) -> None:
        """Seed the notifier with the stored position, so sync tokens survive a restart."""
        self._notifier.set_position("presence", await self.database.read(store.read_position))

    async def _row(self, user_id: str) -> PresenceRow:
        row = self._cache.get(user_id)
        if row is None:
            row = await self.database.read(lambda conn: store.get(conn, user_id))
            row = new_row(user_id) if row is None else row
            self._cache[user_id] = row
        return row

    async def _save(self, old: PresenceRow, new: PresenceRow) -> None:
        """Store ``new``; advance the stream and wake watchers if what others see changed."""
        now = self._now_ms()
        visible = visible_presence(new, now, self.timeouts)
        # Any change to what is shown (state, message) is news; a fresher timestamp is not.
        advance = (
            visible != old.visible_state
            or new.status_msg != old.status_msg
            or new.state != old.state
            or old.stream_id == 0
        )
        new = attrs.evolve(new, visible_state=visible)
        if new == old:
            return
        stored = await self.database.run(lambda conn: store.put(conn, new, advance=advance))
        self._cache[new.user_id] = stored
        if advance:
            await self._notify(stored)

    async def _notify(self, row: PresenceRow) -> None:
        watchers = await self.database.read(
            lambda conn: store.users_sharing_a_room(conn, row.user_id)
        )
        watchers.add(row.user_id)
        self._notifier.notify("presence", row.stream_id, users=watchers)

    # -- writing --------------------------------------------------------------------

    async def set_presence(
        self, requester: str, user_id: str, state: str, status_msg: str | None
    ) -> None:
        """``PUT /presence/{userId}/status``: only your own; ignored when presence is off."""
        if requester != user_id:
            raise forbidden("You may only set your own presence")
        if not self.enabled:
            return
        old = await self._row(user_id)
        await self._save(old, set_state(old, state, status_msg, self._now_ms()))

    async def bump_active(self, user_id: str) -> None:
        """The user acted (sent, read, typed): for the other services to call."""
        if not self.enabled:
            return
        old = await self._row(user_id)
        now = self._now_ms()
        # Activity within the last window is already "currently active": skip the write.
        recent = old.state != OFFLINE and now - old.last_active_ts < CURRENTLY_ACTIVE_MS // 2
        if recent and visible_presence(old, now, self.timeouts) == old.visible_state:
            return
        await self._save(old, bump_active(old, now))

    async def user_syncing(self, user_id: str, set_presence: str = ONLINE) -> None:
        """Called by ``/sync`` on every request with its ``set_presence`` (default online)."""
        if not self.enabled or set_presence not in STATES:
            return
        old = await self._row(user_id)
        now = self._now_ms()
        new = syncing(old, set_presence, now, self.timeouts)
        recent = now - old.last_sync_ts < SYNC_WRITE_INTERVAL_MS
        if recent and attrs.evolve(new, last_sync_ts=old.last_sync_ts) == old:
            return  # nothing but a fresher sync time: written at most every 30 s
        await self._save(old, new)

    async def check_timeouts(self) -> int:
        """Stream users whose visible presence changed by the clock alone; returns how many."""
        if not self.enabled:
            return 0
        now = self._now_ms()
        rows = await self.database.read(store.not_offline)
        changed = 0
        for stored in rows:
            # The cache holds anything written since the read; it wins.
            row = self._cache.get(stored.user_id, stored)
            if visible_presence(row, now, self.timeouts) != row.visible_state:
                await self._save(row, row)
                changed += 1
        return changed

    # -- reading --------------------------------------------------------------------

    async def get_presence(self, requester: str, user_id: str) -> dict[str, Any]:
        """``GET /presence/{userId}/status``: yourself or someone sharing a room with you."""
        if not self.enabled:
            return {"presence": OFFLINE}
        if requester != user_id:
            visible = await self.database.read(
                lambda conn: store.share_a_room(conn, requester, user_id)
            )
            if not visible:
                raise forbidden("You are not allowed to see this user's presence")
        row = await self._row(user_id)
        return presence_content(row, self._now_ms(), self.timeouts)

    async def presence_for_user(self, user_id: str, since_pos: int) -> list[dict[str, Any]]:
        """``m.presence`` events of users sharing a room with ``user_id`` (and their own),
        changed after ``since_pos`` (0: everyone's current presence). For ``/sync``."""
        if not self.enabled:
            return []

        def read(conn: Any) -> list[PresenceRow]:
            users = store.users_sharing_a_room(conn, user_id) | {user_id}
            return [r for r in store.get_many(conn, users) if r.stream_id > since_pos]

        rows = await self.database.read(read)
        now = self._now_ms()
        return [
            {
                "type": "m.presence",
                "sender": r.user_id,
                "content": presence_content(r, now, self.timeouts),
            }
            for r in sorted(rows, key=lambda r: r.stream_id)
        ]

    # -- lifetime --------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Look for idle and offline timeouts every few seconds, until cancelled."""
        task_status.started()
        if not self.enabled:
            await trio.sleep_forever()
        while True:
            await self.check_timeouts()
            await trio.sleep(TIMEOUT_CHECK_S)
