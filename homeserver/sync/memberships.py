"""Each user's membership rows (``storage.timeline.read_user_memberships``), kept in memory.

Every ``/sync`` starts from the rooms the user is in; a woken long-poll used
to read them twice. :class:`UserMemberships` keeps the rows of the users that
sync, dropped by :meth:`UserMemberships.on_new_event` for every member event
whose ``state_key`` is the user, and for all users at once when an event may
have re-resolved a room's state (a merge of forks, or an event that does not
follow the last one seen in its room: a state reset can change anybody's
membership without a member event about them).

Race-free as ``RoomMembers`` is: a read takes a generation stamp before it
starts and is stored only if nothing was invalidated meanwhile. A kept entry
includes every change up to the hook watermark (``HookedPositions``): a
member event at or below it has passed the hook and dropped the entry. The
server is one process: the hooks see every event it stores.

Bounded: ``max_users`` entries, least recently used evicted; the record of
invalidations is cleared when full (every read older than that is then
refused).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from homeserver.storage.events import StoredEvent
from homeserver.storage.timeline import Membership

MEMBERSHIP_USERS = 5_000
# Users whose last invalidation is remembered before the record is cleared.
MAX_INVALIDATIONS = 20_000
# Rooms whose last event is remembered, to tell an event following it from a fork.
LAST_EVENT_ROOMS = 20_000


class UserMemberships:
    """Per user, their current membership in every room (as ``read_user_memberships``)."""

    def __init__(
        self,
        max_users: int = MEMBERSHIP_USERS,
        max_invalidations: int = MAX_INVALIDATIONS,
        max_rooms: int = LAST_EVENT_ROOMS,
    ) -> None:
        self._max_users = max_users
        self._max_invalidations = max_invalidations
        self._max_rooms = max_rooms
        self._users: OrderedDict[str, tuple[Membership, ...]] = OrderedDict()
        self._epoch = 0
        # user -> epoch of their last invalidation; reads stamped below ``_floor`` are refused.
        self._invalidated: dict[str, int] = {}
        self._floor = 0
        # room -> its last event as the hook saw it (a linear room's only extremity).
        self._last_event: OrderedDict[str, str] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def on_new_event(self, event: StoredEvent) -> None:
        """Hook for every stored event (``SyncService.on_new_event``)."""
        prev = event.prev_event_ids
        last = self._last_event.get(event.room_id)
        if event.type == "m.room.create" and not prev:
            pass  # a new room: nobody's membership changes
        elif len(prev) != 1 or last is None or prev[0] != last:
            # Not a plain step after the room's last event: the room's current
            # state may have been resolved anew, memberships included.
            self.invalidate_all()
        self._last_event[event.room_id] = event.event_id
        self._last_event.move_to_end(event.room_id)
        while len(self._last_event) > self._max_rooms:
            self._last_event.popitem(last=False)
        if event.type == "m.room.member" and event.state_key is not None:
            self.invalidate(event.state_key)

    def invalidate(self, user_id: str) -> None:
        self._epoch += 1
        self._users.pop(user_id, None)
        self._invalidated[user_id] = self._epoch
        if len(self._invalidated) > self._max_invalidations:
            self._invalidated.clear()
            self._floor = self._epoch

    def invalidate_all(self) -> None:
        self._epoch += 1
        self._users.clear()
        self._invalidated.clear()
        self._floor = self._epoch

    def stamp(self) -> int:
        """Take before reading; pass to :meth:`put` so a read that raced a change is dropped."""
        return self._epoch

    def get(self, user_id: str) -> tuple[Membership, ...] | None:
        found = self._users.get(user_id)
        if found is None:
            self.misses += 1
            return None
        self.hits += 1
        self._users.move_to_end(user_id)
        return found

    def put(self, user_id: str, stamp: int, rows: Sequence[Membership]) -> None:
        if stamp < self._floor or self._invalidated.get(user_id, 0) > stamp:
            return
        self._users[user_id] = tuple(rows)
        self._users.move_to_end(user_id)
        while len(self._users) > self._max_users:
            self._users.popitem(last=False)
