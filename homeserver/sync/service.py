"""``GET /sync``: everything new for a user since a token, waiting for it if there is nothing.

The loop that makes delivery exact:

1. Register with the notifier (:meth:`Notifier.listen`) for the user and their
   rooms *before* reading anything, so a change that lands during the read
   still wakes us.
2. Take ``upto = notifier.current_token()``: the positions every service has
   announced. A position is announced only after its transaction committed,
   and event positions commit in order (``storage/timeline.py``), so every
   event at or below ``upto.events`` is readable: ``upto`` is the "persisted
   up to" watermark.
3. Read exactly the range ``(since, upto]`` and answer with ``next_batch =
   upto``. Consecutive syncs therefore cover consecutive ranges: every event
   once, in stream order, none skipped.
4. If the answer is empty and the client asked to wait, sleep until the
   listener fires or the timeout passes, then go back to 1.
"""

from __future__ import annotations

import contextlib
import functools
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import attrs
import trio

from homeserver.core.canonical_json import parse_strict_json
from homeserver.errors import MatrixError, bad_json, not_found
from homeserver.notifier import Notifier, StreamToken
from homeserver.push.processor import sync_counts
from homeserver.storage.database import Database
from homeserver.storage.events import EventStore, StoredEvent
from homeserver.storage.filters import insert_filter, read_filter
from homeserver.storage.rooms import forgotten_rooms
from homeserver.storage.timeline import (
    Membership,
    read_membership_events_of_user,
    read_rooms_with_events,
    read_user_memberships,
)
from homeserver.sync.caches import HookedPositions
from homeserver.sync.deadlines import Deadlines
from homeserver.sync.filters import DEFAULT_FILTER, Filter, apply_event_fields, parse_filter
from homeserver.sync.memberships import UserMemberships
from homeserver.sync.rooms import RoomSync, Timeline
from homeserver.sync.sources import SyncSources
from homeserver.timeline.client_events import ClientEvents

MAX_TIMEOUT_MS = 60_000
# Rooms of one response built at once (each holds a database thread at a time).
ROOMS_IN_PARALLEL = 4
MAX_INLINE_FILTER = 8192
# Rooms whose kept recent events a sync extends one by one rather than asking
# the database which rooms changed (one read for all).
EXTEND_INLINE = 2
# Users whose m.ignored_user_list is kept in memory (dropped all at once when full).
IGNORED_CACHE_USERS = 10_000
# Parsed filters kept (inline by their text, stored by user and ID), least recently used out.
FILTER_CACHE = 1_000


@attrs.frozen
class SyncRequest:
    user_id: str
    device_id: str
    since: StreamToken | None = None
    timeout_ms: int = 0
    full_state: bool = False
    filter: Filter = DEFAULT_FILTER
    set_presence: str | None = None


@attrs.frozen
class _UserMembership:
    membership: str
    event: StoredEvent


class SyncService:
    def __init__(
        self,
        database: Database,
        store: EventStore,
        notifier: Notifier,
        client_events: ClientEvents,
        sources: SyncSources | None = None,
    ) -> None:
        self.database = database
        self.store = store
        self.notifier = notifier
        self.client_events = client_events
        self.sources = sources if sources is not None else SyncSources()
        # Every position at or below ``hooked.upto`` has passed :meth:`on_new_event`.
        self.hooked = HookedPositions(notifier.current_token().events)
        self.rooms = RoomSync(database, store, client_events, self.hooked)
        self.memberships = UserMemberships()
        self._ignored_cache: dict[str, tuple[int, frozenset[str]]] = {}
        # Stored filters never change (a new upload gets a new ID) and inline ones
        # are their text: a parsed filter is kept without invalidation, and every
        # sync with the same filter shares one (held long-polls included).
        self._filters: OrderedDict[tuple[str, str], Filter] = OrderedDict()
        self._deadlines = Deadlines()

    def on_new_event(self, event: StoredEvent) -> None:
        """Hook for every stored event: keeps the in-memory caches of ``sync/caches.py``
        and ``sync/memberships.py`` true. The watermark moves last: whatever reads
        it finds the caches already updated for the event."""
        self.rooms.recent.on_new_event(event)
        self.rooms.members.on_new_event(event)
        self.memberships.on_new_event(event)
        self.hooked.hooked(event.stream_ordering)

    async def _current_memberships(
        self, user_id: str, at_least: int
    ) -> tuple[Sequence[Membership], int]:
        """The user's current membership rows, and a position they are complete up to
        (at least ``at_least``, which must not be above the announced position).

        Kept rows hold every change up to the hook watermark; otherwise they are
        read, complete up to the position announced when the read began.
        """
        cached = self.memberships.get(user_id)
        if cached is not None and self.hooked.upto >= at_least:
            return cached, self.hooked.upto
        before = self.notifier.current_token().events
        stamp = self.memberships.stamp()
        rows = await self.database.read(lambda conn: read_user_memberships(conn, user_id))
        self.memberships.put(user_id, stamp, rows)
        return rows, before

    # -- filters --------------------------------------------------------------------

    async def store_filter(self, user_id: str, body: dict[str, Any]) -> str:
        parse_filter(body)  # validate before storing
        return await self.database.run(lambda conn: insert_filter(conn, user_id, body))

    async def get_filter(self, user_id: str, filter_id: str) -> dict[str, Any]:
        body = await self.database.read(lambda conn: read_filter(conn, user_id, filter_id))
        if body is None:
            raise not_found("Unknown filter")
        return body

    async def resolve_filter(self, user_id: str, param: str | None) -> Filter:
        """``?filter=``: inline JSON when it starts with ``{``, otherwise a stored filter's ID."""
        if param is None or param == "":
            return DEFAULT_FILTER
        inline = param.lstrip().startswith("{")
        # An inline filter is the same for everyone; a stored one is its owner's.
        key = ("", param) if inline else (user_id, param)
        found = self._filters.get(key)
        if found is not None:
            self._filters.move_to_end(key)
            return found
        if inline:
            if len(param) > MAX_INLINE_FILTER:
                raise bad_json("The filter is too long")
            try:
                value = parse_strict_json(param)
            except (ValueError, RecursionError):
                raise bad_json("The filter is not valid JSON") from None
            parsed = parse_filter(value)
        else:
            parsed = parse_filter(await self.get_filter(user_id, param))
        self._filters[key] = parsed
        while len(self._filters) > FILTER_CACHE:
            self._filters.popitem(last=False)
        return parsed

    # -- sync -----------------------------------------------------------------------

    async def sync(self, request: SyncRequest) -> dict[str, Any]:
        presence = self.sources.presence
        if presence is not None:
            await presence.user_syncing(request.user_id, request.set_presence or "online")
        timeout = min(max(request.timeout_ms, 0), MAX_TIMEOUT_MS) / 1000
        if request.since is None or request.full_state:
            timeout = 0
        deadline = trio.current_time() + timeout
        while True:
            memberships, complete = await self._current_memberships(request.user_id, 0)
            rooms = [m.room_id for m in memberships if m.membership == "join"]
            with self.notifier.listen(request.user_id, rooms) as listener:
                upto = self.notifier.current_token()
                if upto != request.since or trio.current_time() >= deadline:
                    # If the rows are complete up to ``upto`` (no event announced since
                    # they were read, or kept and the hooks caught up), use them as
                    # they are.
                    fresh = memberships if upto.events <= complete else None
                    response, has_updates = await self._build(request, upto, fresh)
                    if has_updates or trio.current_time() >= deadline:
                        return response
                    # A held long-poll keeps only its listener: the empty answer and
                    # the rows are rebuilt when it wakes.
                    del response, fresh
                # else: nothing at all happened since the client's token (the usual
                # long-poll, sent right after the previous answer): nothing to build.
                del memberships, rooms
                # One shared timer ends the wait at the deadline (no cancel scope each).
                entry = self._deadlines.add(deadline, listener)
                try:
                    await listener.wait()
                finally:
                    self._deadlines.cancel(entry)

    async def _memberships_at(
        self, user_id: str, upto: int, fresh: Sequence[Membership] | None
    ) -> dict[str, _UserMembership]:
        """The user's membership in each room as of position ``upto``.

        Read after ``upto`` was taken (unless ``fresh`` is known to include every
        change up to it), so no change at or below it is missed; changes above it
        are rolled back to the last membership at ``upto``.
        """
        current = fresh
        if current is None:
            current, _ = await self._current_memberships(user_id, upto)
        result: dict[str, _UserMembership] = {}
        late: list[Membership] = [m for m in current if m.stream_ordering > upto]
        ids = [m.event_id for m in current if m.stream_ordering <= upto]
        found = await self.store.get_events(ids)
        for m in current:
            if m.event_id in found:
                result[m.room_id] = _UserMembership(m.membership, found[m.event_id])
        for m in late:
            # Changed after ``upto``: use the last membership event at or before it.
            own = await self.database.read(
                functools.partial(
                    read_membership_events_of_user, user_id=user_id, room_id=m.room_id, upto=upto
                )
            )
            if own:
                membership = own[-1].pdu.get("content", {}).get("membership", "")
                result[m.room_id] = _UserMembership(str(membership), own[-1])
        return result

    async def _rooms_with_events(self, joined: list[str], after: int, upto: int) -> set[str]:
        """Which rooms have events in ``(after, upto]``: the recent-events cache answers
        for the rooms it covers, one database read for the rest."""
        recent = self.rooms.recent
        found: set[str] = set()
        unknown: list[str] = []
        for room_id in joined:
            known = recent.covers(room_id, after, upto)
            if known is None:
                unknown.append(room_id)
            elif known:
                found.add(room_id)
        if after >= upto or not unknown:
            return found
        kept = [r for r in unknown if recent.is_kept(r)]
        if len(kept) == len(unknown) <= EXTEND_INLINE:
            # The receivers woken by one event: the first extends the room's kept
            # range (one read, under the room's lock), the others find it there.
            for room_id in kept:
                if await recent.read(room_id, after, upto, 1):
                    found.add(room_id)
            return found
        with_events = await self.database.read(
            lambda conn: read_rooms_with_events(conn, unknown, after, upto)
        )
        for room_id in unknown:
            if room_id not in with_events:
                # Proven quiet in (after, upto]: a kept range ending at or after
                # ``after`` now reaches ``upto``, so the next sync asks nothing.
                recent.note_no_events(room_id, after, upto)
        return found | with_events

    async def _was_joined_at(self, user_id: str, room_id: str, position: int) -> bool:
        own = await self.database.read(
            lambda conn: read_membership_events_of_user(conn, user_id, room_id, upto=position)
        )
        return bool(own) and own[-1].pdu.get("content", {}).get("membership") == "join"

    async def _build(
        self, request: SyncRequest, upto: StreamToken, fresh: Sequence[Membership] | None = None
    ) -> tuple[dict[str, Any], bool]:
        user_id = request.user_id
        since = request.since
        room_filter = request.filter.room
        since_events = min(since.events, upto.events) if since is not None else 0
        # A first (or full-state) sync reads the database: its independent reads
        # run side by side, so its latency is its slowest read, not their sum. An
        # incremental sync is answered from memory as a rule (a woken one makes no
        # trip at all): there, tasks would cost more than they could save.
        cold = since is None or request.full_state
        first: dict[str, Any] = {}
        await _gather(
            first,
            cold,
            ("memberships", self._memberships_at, user_id, upto.events, fresh),
            ("account_data", self._account_data, request, upto),
            ("presence", self._presence, request, upto),
        )
        memberships: dict[str, _UserMembership] = {
            room_id: m
            for room_id, m in first["memberships"].items()
            if room_filter.matches_room(room_id)
        }
        account_data: _AccountData = first["account_data"]
        ignored = await self._ignored(request, upto, account_data)
        joined = [r for r, m in memberships.items() if m.membership == "join"]
        ephemeral = await self._ephemeral(request, joined, upto)

        newly_joined: set[str] = set()
        if since is None or request.full_state:
            join_rooms = list(joined)
            full_rooms = set(joined)
        else:
            changed = {r for r in joined if memberships[r].event.stream_ordering > since_events}
            for room_id in changed:
                if not await self._was_joined_at(user_id, room_id, since_events):
                    newly_joined.add(room_id)
            with_events = await self._rooms_with_events(joined, since_events, upto.events)
            extra = set(ephemeral) | set(account_data.rooms)
            join_rooms = [r for r in joined if r in with_events or r in newly_joined or r in extra]
            full_rooms = newly_joined

        join: dict[str, Any] = {}
        limiter = trio.CapacityLimiter(ROOMS_IN_PARALLEL)

        async def build_room(room_id: str, limiter: trio.CapacityLimiter | None) -> None:
            async with limiter if limiter is not None else contextlib.nullcontext():
                full = room_id in full_rooms
                section = await self._joined_room(
                    request,
                    room_id,
                    after=0 if since is None else since_events,
                    upto=upto,
                    full=full,
                    ephemeral=ephemeral.get(room_id, []),
                    account_data=account_data.rooms.get(room_id, {}),
                    ignored=ignored,
                )
            empty = not (
                section["timeline"]["events"]
                or section["state"]["events"]
                or section["ephemeral"]["events"]
                or section["account_data"]["events"]
            )
            if full or not empty:
                join[room_id] = section

        if len(join_rooms) == 1:
            await build_room(join_rooms[0], None)
        elif join_rooms:
            async with trio.open_nursery() as nursery:
                for room_id in join_rooms:
                    nursery.start_soon(build_room, room_id, limiter)

        invite: dict[str, Any] = {}
        leave: dict[str, Any] = {}
        # Forgotten rooms never come back in a full sync's leave section (spec: /forget).
        forgotten: set[str] = set()
        if since is None and room_filter.include_leave:
            forgotten = await self.database.read(lambda conn: forgotten_rooms(conn, user_id))
        for room_id, m in memberships.items():
            is_new = since is None or m.event.stream_ordering > since_events
            if m.membership == "invite" and is_new and m.event.sender not in ignored:
                invite[room_id] = {
                    "invite_state": {"events": await self.rooms.invite_state(room_id, m.event)}
                }
            elif m.membership in ("leave", "ban") and is_new:
                if since is None and (not room_filter.include_leave or room_id in forgotten):
                    continue
                leave[room_id] = await self._left_room(
                    request, room_id, m.event, since_events, ignored
                )

        response: dict[str, Any] = {
            "next_batch": upto.to_string(),
            "rooms": {"join": join, "invite": invite, "leave": leave, "knock": {}},
            "account_data": {"events": account_data.global_events},
            "presence": {"events": first["presence"]},
            "to_device": {"events": []},
            "device_one_time_keys_count": {},
            "device_unused_fallback_key_types": [],
        }
        if since is not None:
            response["device_lists"] = {"changed": [], "left": []}
        e2e_updates = await self._e2e(request, upto, response, first["memberships"])
        has_updates = bool(
            e2e_updates
            or join
            or invite
            or leave
            or response["account_data"]["events"]
            or response["presence"]["events"]
        )
        return response, has_updates

    async def _joined_room(
        self,
        request: SyncRequest,
        room_id: str,
        *,
        after: int,
        upto: StreamToken,
        full: bool,
        ephemeral: list[dict[str, Any]],
        account_data: dict[str, dict[str, Any]],
        ignored: frozenset[str],
    ) -> dict[str, Any]:
        user_id = request.user_id
        room_filter = request.filter.room
        parts: dict[str, Any] = {}
        cold = full or after == 0  # as in _build: side by side only when reading
        await _gather(
            parts,
            cold,
            (
                "timeline",
                self.rooms.timeline,
                user_id,
                room_id,
                after,
                upto.events,
                room_filter.timeline,
                ignored,
            ),
            (
                "counts",
                self._counts,
                user_id,
                room_id,
                upto,
                room_filter.timeline.unread_thread_notifications,
            ),
        )
        timeline: Timeline = parts["timeline"]
        summary, heroes, unread, highlights, threads = parts["counts"]
        state = await self.rooms.state_section(
            user_id,
            room_id,
            timeline,
            upto.events,
            since=None if full else after,
            full=full,
            state_filter=room_filter.state,
            heroes=heroes,
        )
        fields = request.filter.event_fields
        serialized: dict[str, Any] = {}
        await _gather(
            serialized,
            cold,
            ("timeline", self._serialize, request, timeline.events, True),
            ("state", self._serialize, request, state, False),
        )
        return {
            "timeline": {
                "events": [apply_event_fields(e, fields) for e in serialized["timeline"]],
                "limited": timeline.limited,
                "prev_batch": timeline.prev_batch,
            },
            "state": {"events": [apply_event_fields(e, fields) for e in serialized["state"]]},
            "ephemeral": {"events": ephemeral},
            "account_data": {
                "events": [
                    {"type": t, "content": c}
                    for t, c in account_data.items()
                    if room_filter.account_data.matches(t, user_id)
                ]
            },
            "summary": summary,
            "unread_notifications": {
                "notification_count": unread,
                "highlight_count": highlights,
            },
            **(
                {
                    "unread_thread_notifications": {
                        root: {"notification_count": n, "highlight_count": h}
                        for root, (n, h) in threads.items()
                    }
                }
                if threads
                else {}
            ),
        }

    async def _serialize(
        self, request: SyncRequest, events: list[StoredEvent], echo: bool
    ) -> list[dict[str, Any]]:
        """Client format, or the PDUs as stored for ``event_format: federation``."""
        if request.filter.event_format == "federation":
            return [{**e.pdu, "event_id": e.event_id} for e in events]
        if echo:
            return await self.client_events.serialize(
                events, user_id=request.user_id, device_id=request.device_id
            )
        # The state section skips prev_content: finding it costs the state before
        # each event (a big room's initial sync would read a group per member),
        # and clients read it on timeline events, where it is still sent.
        return await self.client_events.serialize(events, with_prev_content=False)

    async def _counts(
        self, user_id: str, room_id: str, upto: StreamToken, per_thread: bool
    ) -> tuple[dict[str, Any], list[str], int, int, dict[str, tuple[int, int]]]:
        """Summary, heroes, unread and highlight counts (after the user's read receipts),
        and the per-thread counts when the filter asks for ``unread_thread_notifications``.

        With a push source, the counts are those of the user's push rules
        (``push.processor.sync_counts``); without one, every message after the
        receipt counts and none highlights.
        """
        if self.sources.push is None:
            read_up_to = 0
            receipts = self.sources.receipts
            if receipts is not None:
                found = await receipts.latest_read_position(user_id, room_id)
                read_up_to = found[1] if found is not None else 0
            summary, heroes, unread = await self.rooms.summary_and_unread(
                user_id, room_id, read_up_to, upto.events
            )
            return summary, heroes, unread, 0, {}
        # The push counts need neither the receipt nor the plain unread count; the
        # summary is cached per room (``RoomSync.members``).
        summary, heroes = await self.rooms.summary(user_id, room_id)
        by_thread = await self.sources.push.thread_counts(user_id, room_id, upto.events)
        (notifications, highlights), threads = sync_counts(by_thread, per_thread)
        return summary, heroes, notifications, highlights, threads

    async def _ignored(
        self, request: SyncRequest, upto: StreamToken, account_data: _AccountData
    ) -> frozenset[str]:
        """The user's ``m.ignored_user_list`` as of ``upto``.

        Kept per user with the account data position it is true at. The sync's own
        account data changes, ``(since, upto]``, tell whether it changed since
        (account data is never deleted: every write is a change in the stream), so
        others' account data writes cost no read.
        """
        source = self.sources.account_data
        if source is None:
            return frozenset()
        user_id = request.user_id
        now = upto.account_data
        since = request.since.account_data if request.since is not None else 0
        if account_data.ignored is not None:
            # Changed in (since, upto]: its newest content came with the changes.
            self._keep_ignored(user_id, now, account_data.ignored)
            return account_data.ignored
        cached = self._ignored_cache.get(user_id)
        if cached is not None and (cached[0] >= now or since <= cached[0]):
            # Known at a position from which the changes up to ``upto`` are known:
            # none of them is the list.
            self._keep_ignored(user_id, now, cached[1])
            return cached[1]
        if since == 0 and request.since is None:
            # All of the user's account data came up to ``upto``, without a list.
            self._keep_ignored(user_id, now, frozenset())
            return frozenset()
        # Changes at or below the position announced before the read are in it.
        before = self.notifier.current_token().account_data
        ignored = frozenset(await source.ignored_users(user_id))
        self._keep_ignored(user_id, before, ignored)
        return ignored

    def _keep_ignored(self, user_id: str, position: int, ignored: frozenset[str]) -> None:
        cached = self._ignored_cache.get(user_id)
        if cached is not None and cached[0] > position:
            return  # a concurrent sync knows it at a later position
        if cached is None and len(self._ignored_cache) >= IGNORED_CACHE_USERS:
            self._ignored_cache.clear()
        self._ignored_cache[user_id] = (position, ignored)

    async def _left_room(
        self,
        request: SyncRequest,
        room_id: str,
        leave_event: StoredEvent,
        since: int,
        ignored: frozenset[str],
    ) -> dict[str, Any]:
        """A room the user left (or was banned from): its events up to and including the leave."""
        room_filter = request.filter.room
        upto = leave_event.stream_ordering
        after = since if request.since is not None else 0
        timeline = await self.rooms.timeline(
            request.user_id, room_id, after, upto, room_filter.timeline, ignored
        )
        full = request.since is None or request.full_state
        state = await self.rooms.state_section(
            request.user_id,
            room_id,
            timeline,
            upto,
            since=None if full else after,
            full=full,
            state_filter=room_filter.state,
        )
        fields = request.filter.event_fields
        timeline_json = await self._serialize(request, timeline.events, True)
        state_json = await self._serialize(request, state, False)
        return {
            "timeline": {
                "events": [apply_event_fields(e, fields) for e in timeline_json],
                "limited": timeline.limited,
                "prev_batch": timeline.prev_batch,
            },
            "state": {"events": [apply_event_fields(e, fields) for e in state_json]},
            "account_data": {"events": []},
        }

    async def _ephemeral(
        self, request: SyncRequest, joined: list[str], upto: StreamToken
    ) -> dict[str, list[dict[str, Any]]]:
        since = request.since
        out: dict[str, list[dict[str, Any]]] = {}
        event_filter = request.filter.room.ephemeral
        typing = self.sources.typing
        if typing is not None:
            since_typing = since.typing if since is not None else 0
            for room_id, event in typing.typing_for_rooms(joined, since_typing).items():
                out.setdefault(room_id, []).append(event)
        receipts = self.sources.receipts
        if receipts is not None and (since is None or since.receipts < upto.receipts):
            since_receipts = since.receipts if since is not None else 0
            found = await receipts.receipts_for_rooms(
                request.user_id, joined, since_receipts, upto.receipts
            )
            for room_id, event in found.items():
                out.setdefault(room_id, []).append(event)
        return {
            room_id: kept
            for room_id, events in out.items()
            if (kept := [e for e in events if event_filter.matches(e["type"], "")])
        }

    async def _account_data(self, request: SyncRequest, upto: StreamToken) -> _AccountData:
        source = self.sources.account_data
        if source is None:
            return _AccountData([], {}, None)
        if request.since is not None and request.since.account_data >= upto.account_data:
            return _AccountData([], {}, None)  # the range (since, upto] is empty: nothing to read
        since = request.since.account_data if request.since is not None else 0
        changes = await source.get_changes_since(request.user_id, since, upto.account_data)
        event_filter = request.filter.account_data
        global_events = [
            {"type": t, "content": c}
            for t, c in changes.global_data.items()
            if event_filter.matches(t, request.user_id)
        ]
        ignored: frozenset[str] | None = None
        if "m.ignored_user_list" in changes.global_data:
            # As ``AccountDataService.ignored_users`` reads it.
            listed = changes.global_data["m.ignored_user_list"].get("ignored_users")
            ignored = frozenset(listed) if isinstance(listed, dict) else frozenset()
        return _AccountData(global_events, changes.rooms, ignored)

    async def _presence(self, request: SyncRequest, upto: StreamToken) -> list[dict[str, Any]]:
        presence = self.sources.presence
        if presence is None:
            return []
        if request.since is not None and request.since.presence >= upto.presence:
            # No presence change announced since the token: the next one wakes us.
            return []
        since = request.since.presence if request.since is not None else 0
        events = await presence.presence_for_user(request.user_id, since)
        presence_filter = request.filter.presence
        return [e for e in events if presence_filter.matches(e["type"], str(e.get("sender", "")))]

    def _no_member_changes(self, rooms: Iterable[str], after: int, upto: int) -> bool:
        """True if the kept recent events prove no member event in ``(after, upto]``
        in any of ``rooms`` (the rooms the user has a membership in at ``upto``)."""
        recent = self.rooms.recent
        return all(recent.has_no_member_events(room_id, after, upto) for room_id in rooms)

    async def _e2e(
        self,
        request: SyncRequest,
        upto: StreamToken,
        response: dict[str, Any],
        rooms: Iterable[str],
    ) -> bool:
        """Fill the E2E sections (``homeserver/e2e/sync_source.py``); True if there is news.

        To-device messages come at most 100 at a time: then ``next_batch`` stops at
        the last one handed out, so the rest follow in the next sync.
        """
        e2e = self.sources.e2e
        if e2e is None:
            return False
        since = request.since
        user_id, device_id = request.user_id, request.device_id
        events, to_device_pos = await e2e.to_device_section(
            user_id, device_id, since.to_device if since is not None else None, upto.to_device
        )
        response["to_device"]["events"] = events
        if to_device_pos != upto.to_device:
            response["next_batch"] = attrs.evolve(upto, to_device=to_device_pos).to_string()
        counts, fallback_types = await e2e.device_key_counts(user_id, device_id)
        response["device_one_time_keys_count"] = counts
        response["device_unused_fallback_key_types"] = fallback_types
        changed: list[str] = []
        left: list[str] = []
        if since is not None:
            device_since = since
            if since.events < upto.events and self._no_member_changes(
                rooms, since.events, upto.events
            ):
                # No member event in any of the user's rooms in the range: only the
                # device_lists stream can name someone (often nothing to read at all).
                device_since = attrs.evolve(since, events=upto.events)
            changed, left = await e2e.device_lists(user_id, device_since, upto)
            response["device_lists"] = {"changed": changed, "left": left}
        return bool(events or changed or left)


async def _into(
    results: dict[str, Any], key: str, fn: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any
) -> None:
    """Run ``fn`` and keep its result under ``key`` (for reads started in one nursery)."""
    results[key] = await fn(*args, **kwargs)


async def _gather(results: dict[str, Any], side_by_side: bool, *calls: tuple[Any, ...]) -> None:
    """Run each ``(key, fn, *args)`` and keep ``fn(*args)``'s result under ``key``.

    Side by side (a task each) when they are expected to wait on the database,
    one after the other otherwise: measured on the delivery benchmark, the
    tasks and nurseries of a woken sync cost more CPU than the sync's own work.
    """
    if side_by_side:
        async with trio.open_nursery() as nursery:
            for key, fn, *args in calls:
                nursery.start_soon(functools.partial(_into, results, key, fn, *args))
    else:
        for key, fn, *args in calls:
            results[key] = await fn(*args)


@attrs.frozen
class _AccountData:
    global_events: list[dict[str, Any]]
    rooms: dict[str, dict[str, dict[str, Any]]]
    # The new m.ignored_user_list if it is among the changes, else None.
    ignored: frozenset[str] | None


def parse_since(value: str | None) -> StreamToken | None:
    if value is None or value == "":
        return None
    return StreamToken.parse(value)


def parse_timeout(value: str | None) -> int:
    if value is None or value == "":
        return 0
    if not value.isdigit() or len(value) > 12:
        raise MatrixError(400, "M_INVALID_PARAM", "'timeout' must be a non-negative integer")
    return int(value)
