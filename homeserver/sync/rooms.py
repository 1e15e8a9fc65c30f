"""One room's part of a /sync response: timeline, state, summary, unread counts.

All reads are bounded by ``upto``, the events position the sync answers for,
so the response describes exactly the stream range ``(since, upto]`` and the
next sync continues from ``upto`` without gaps or repeats.

State follows ``sync.yaml``: ``state`` is the state *before* the timeline's
first event. On an initial sync, a newly joined room or ``full_state`` it is
all of it; on an incremental sync with a gap (``limited``) it is the state
events from the gap; otherwise the timeline carries every change. With lazy
loading only the member events of the timeline's senders, the heroes and the
syncing user are sent (matrix_brief 1.4 and 6 #4).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from homeserver.storage.database import Database
from homeserver.storage.events import EventStore, StoredEvent
from homeserver.storage.state import StateKey
from homeserver.storage.timeline import (
    count_messages_after,
    last_event_of_sender,
    read_member_rows,
    read_room_stream_range,
)
from homeserver.sync.caches import HookedPositions, MemberSummary, RecentEvents, RoomMembers
from homeserver.sync.filters import RoomEventFilter
from homeserver.timeline.client_events import ClientEvents, strip_event
from homeserver.timeline.tokens import StreamPoint, TopologicalToken

DEFAULT_TIMELINE_LIMIT = 10
MAX_HEROES = 5
# State in invite_state (client-server-api "Stripped state"; create required since v1.16).
INVITE_STATE_TYPES = (
    "m.room.create",
    "m.room.join_rules",
    "m.room.name",
    "m.room.avatar",
    "m.room.topic",
    "m.room.canonical_alias",
    "m.room.encryption",
)


@attrs.frozen
class Timeline:
    events: list[StoredEvent]
    limited: bool
    prev_batch: str


def _filter_view(event: StoredEvent) -> dict[str, Any]:
    return {
        "type": event.type,
        "sender": event.sender,
        "room_id": event.room_id,
        "content": event.pdu.get("content", {}),
    }


class RoomSync:
    """Builds the per-room sections; shared by the join and leave paths."""

    def __init__(
        self,
        database: Database,
        store: EventStore,
        client_events: ClientEvents,
        hooked: HookedPositions | None = None,
    ) -> None:
        self.database = database
        self.store = store
        self.client_events = client_events
        # Shared by every sync: N receivers woken by one event read it once (none
        # once the room's range is followed by the hook, see ``sync/caches.py``).
        self.recent = RecentEvents(self._read_db, hooked=hooked)
        self.members = RoomMembers()

    async def timeline(
        self,
        user_id: str,
        room_id: str,
        after: int,
        upto: int,
        event_filter: RoomEventFilter,
        ignored: frozenset[str] = frozenset(),
    ) -> Timeline:
        """The newest visible, filtered events in ``(after, upto]``, oldest first.

        Messages from ``ignored`` users (``m.ignored_user_list``) are left out;
        their state events stay, or the room's state would not add up.
        """
        limit = event_filter.limit if event_filter.limit is not None else DEFAULT_TIMELINE_LIMIT
        collected: list[StoredEvent] = []
        cursor = upto
        limited = False
        batch_size = max(2 * limit, 20)
        while True:
            if len(collected) >= limit:
                # Anything older left in range means a gap the client can fill.
                limited = bool(await self._read(room_id, after, cursor, 1))
                break
            batch = await self._read(room_id, after, cursor, batch_size)
            if not batch:
                break
            matching = [
                e
                for e in batch
                if event_filter.matches_event(_filter_view(e))
                and (e.state_key is not None or e.sender not in ignored)
            ]
            visible = {
                e.event_id for e in await self.client_events.filter_visible(user_id, matching)
            }
            for event in reversed(batch):
                cursor = event.stream_ordering - 1
                if event.event_id in visible:
                    collected.append(event)
                    if len(collected) >= limit:
                        break
            if len(batch) < batch_size and len(collected) < limit:
                break
        collected.reverse()
        if collected:
            first = collected[0]
            prev_batch = TopologicalToken.before(
                first.topological_ordering, first.stream_ordering
            ).to_string()
        else:
            prev_batch = StreamPoint(upto).to_string()
        return Timeline(collected, limited, prev_batch)

    async def _read(self, room_id: str, after: int, upto: int, limit: int) -> list[StoredEvent]:
        return await self.recent.read(room_id, after, upto, limit)

    async def _read_db(self, room_id: str, after: int, upto: int, limit: int) -> list[StoredEvent]:
        if upto <= after:
            return []
        loaded = await self.database.read(
            lambda conn: read_room_stream_range(conn, room_id, after, upto, limit)
        )
        # The recent-events cache keeps these: share the event cache's copies.
        return self.store.share_cached(loaded)

    async def state_before_timeline(
        self, room_id: str, timeline: Timeline, upto: int
    ) -> dict[StateKey, str]:
        """State ids before the timeline's first event (at ``upto`` if it is empty)."""
        if timeline.events:
            group = timeline.events[0].state_group_before
        else:
            latest = await self._read(room_id, 0, upto, 1)
            group = latest[0].state_group_after if latest else None
        if group is None:
            return {}
        return dict(await self.store.get_state_group(group))

    async def state_section(
        self,
        user_id: str,
        room_id: str,
        timeline: Timeline,
        upto: int,
        *,
        since: int | None,
        full: bool,
        state_filter: RoomEventFilter,
        heroes: Iterable[str] = (),
    ) -> list[StoredEvent]:
        """The events of the ``state`` section (see the module docstring)."""
        lazy = state_filter.lazy_load_members
        if not full and not timeline.limited and not lazy:
            return []
        state = await self.state_before_timeline(room_id, timeline, upto)
        in_timeline = {e.event_id for e in timeline.events}
        wanted_members: set[str] | None = None
        if lazy:
            wanted_members = {e.sender for e in timeline.events}
            if full:
                # The user's own member event always (matrix_brief 6 #4), and the
                # heroes', so names like "Alice and Bob" resolve (dendrite#2910).
                # Incremental syncs add only the new senders: the client has the rest.
                wanted_members |= {user_id, *heroes}
        ids: list[str] = []
        for (event_type, state_key), event_id in state.items():
            if event_id in in_timeline:
                continue
            if event_type == "m.room.member" and wanted_members is not None:
                # Members outside the wanted set still come when they changed in
                # the gap of a limited sync (matrix_brief 1.4); see the cut below.
                if state_key not in wanted_members and (full or not timeline.limited):
                    continue
            elif lazy and not full and not timeline.limited:
                continue  # Only members on a lazy, gapless incremental sync.
            ids.append(event_id)
        found = await self.store.get_events(ids)
        events = [found[i] for i in ids if i in found]
        if not full and since is not None:
            first = timeline.events[0].stream_ordering if timeline.events else upto + 1
            events = [
                e
                for e in events
                if (since < e.stream_ordering < first)
                or (
                    e.type == "m.room.member"
                    and wanted_members is not None
                    and e.state_key in wanted_members
                )
            ]
        events = [e for e in events if state_filter.matches_event(_filter_view(e))]
        events.sort(key=lambda e: e.stream_ordering)
        return events

    async def summary_and_unread(
        self, user_id: str, room_id: str, read_up_to: int, upto: int
    ) -> tuple[dict[str, Any], list[str], int]:
        """The room summary, its heroes and the unread count, in one database trip.

        The member facts come from :class:`RoomMembers` when cached (a big room's
        member list is then read once, not once per woken member).
        """
        cached = self.members.get(room_id)
        stamp = self.members.stamp(room_id)

        def read(conn: Any) -> tuple[MemberSummary | None, int]:
            own = last_event_of_sender(conn, room_id, user_id, upto)
            unread = count_messages_after(conn, room_id, user_id, max(own, read_up_to), upto)
            if cached is not None:
                return None, unread
            return MemberSummary.from_rows(read_member_rows(conn, room_id)), unread

        members, unread = await self.database.read(read)
        if members is None:
            assert cached is not None
            members = cached
        else:
            self.members.put(room_id, stamp, members)
        summary, heroes = self._summary(user_id, members)
        return summary, heroes, unread

    async def summary(self, user_id: str, room_id: str) -> tuple[dict[str, Any], list[str]]:
        """``m.heroes`` and member counts (client-server-api "Room summary")."""
        members = self.members.get(room_id)
        if members is None:
            stamp = self.members.stamp(room_id)
            rows = await self.database.read(lambda conn: read_member_rows(conn, room_id))
            members = MemberSummary.from_rows(rows)
            self.members.put(room_id, stamp, members)
        return self._summary(user_id, members)

    def _summary(self, user_id: str, members: MemberSummary) -> tuple[dict[str, Any], list[str]]:
        heroes = [u for u in members.present if u != user_id][:MAX_HEROES]
        if not heroes:
            # Everyone else left: name the room after who was there (spec allows leave/ban).
            heroes = [u for u in members.gone if u != user_id][:MAX_HEROES]
        summary = {
            "m.heroes": heroes,
            "m.joined_member_count": members.joined,
            "m.invited_member_count": members.invited,
        }
        return summary, heroes

    async def invite_state(self, room_id: str, invite: StoredEvent) -> list[dict[str, Any]]:
        """Stripped state for an invite: the room's basics, the invite and the inviter's member event."""
        if invite.state_group_before is not None:
            state = await self.store.get_state_group(invite.state_group_before)
        else:
            state = await self.store.get_current_state_ids(room_id)
        ids = [state[(t, "")] for t in INVITE_STATE_TYPES if (t, "") in state]
        inviter_member = state.get(("m.room.member", invite.sender))
        if inviter_member is not None:
            ids.append(inviter_member)
        found = await self.store.get_events(ids)
        stripped = [strip_event(found[i]) for i in ids if i in found]
        own = strip_event(invite)
        own["event_id"] = invite.event_id
        own["origin_server_ts"] = invite.origin_server_ts
        stripped.append(own)
        return stripped
