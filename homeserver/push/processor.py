"""Notification counts: every joined local member's push rules, evaluated for every new event.

A :class:`StreamFollower`: it evaluates (``evaluator.evaluate``) each event for
each local member joined to the room (never the sender) and stores the
notifying results in ``event_push_actions``, each with the thread the event
belongs to (``main`` or the thread root, ``receipts.thread_of``). Counts are
"actions after the user's read marks", so a receipt (or a reply) clears them
with no write here.

The room context (member count, display names, power levels) is the room
state *at* the event (its ``state_group_before``), read once per state group
and batch: a message sent before a rename or a power change is judged by the
state it was sent in, whenever the follower reaches it.

A redaction deletes its target's push actions (Synapse does the same), so a
redacted message stops counting in ``unread_notifications`` and leaves
``GET /notifications``.

Read marks (Client-Server API "Receipts", "Threaded read receipts"): an
unthreaded receipt reads every thread up to its event; a ``main`` receipt
only the main timeline; a receipt with a thread root only that thread. The
user's own latest event reads its own thread (or the main timeline) up to it.

:meth:`PushProcessor.thread_counts` answers from :class:`CountsCache`
(``push/counts_cache.py``) when it can: the processor adds the actions of a
batch as soon as they are computed (before their write commits; a failed write
resets the cache, and the batch is redone), the new-event hook moves the sender's own mark, a read receipt
(:meth:`PushProcessor.on_receipt`) and a redaction drop entries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs
from sqlalchemy.engine import Connection

from homeserver.push.counts_cache import TAIL_MAX, CountsCache, Entry
from homeserver.push.evaluator import PushContext, RuleMemo, evaluate
from homeserver.push.follower import StreamFollower, is_live
from homeserver.push.rules import PushRuleService
from homeserver.receipts import MAIN_THREAD, READ, READ_PRIVATE, thread_of
from homeserver.storage import push as store
from homeserver.storage import receipts as receipt_store
from homeserver.storage.database import Database
from homeserver.storage.events import EventStore, StoredEvent
from homeserver.storage.state import StateKey
from homeserver.storage.timeline import redaction_target

MAX_NOTIFICATIONS_PAGE = 100
# The badge looks at the rooms of the user's latest this many notifying actions.
BADGE_SCAN = 1000


class PushProcessor(StreamFollower):
    name = "push_actions"
    # A server upgraded to this version does not evaluate its whole history.
    start_from_current = True
    # Counts are served from memory once evaluated; the write (and the pushers it
    # wakes) may wait this long to be grouped with the next batches.
    write_interval = 0.1

    def __init__(
        self,
        database: Database,
        event_store: EventStore,
        head: Callable[[], int],
        rules: PushRuleService,
        server_name: str,
    ) -> None:
        super().__init__(database, event_store, head)
        self.rules = rules
        self.server_name = server_name
        self._listeners: list[Callable[[set[str]], None]] = []
        self.counts_cache = CountsCache()

    def on_new_event(self, event: StoredEvent) -> None:
        super().on_new_event(event)
        # The sender's own event is their read mark in the room.
        self.counts_cache.on_new_event(
            event.sender, event.room_id, event.stream_ordering, thread_of(event)
        )

    def on_receipt(self, user_id: str, room_id: str) -> None:
        """Hook for ReceiptService: a read receipt of the user in the room was stored."""
        self.counts_cache.invalidate(user_id, room_id)

    def add_listener(self, listener: Callable[[set[str]], None]) -> None:
        """Called with the users who got new push actions (the pusher sender wakes)."""
        self._listeners.append(listener)

    async def prepare(self, batch: list[StoredEvent]) -> Prepared:
        actions: list[store.PushAction] = []
        redacted: list[tuple[str, str]] = []
        rooms: dict[int | None, RoomContext | None] = {}
        # Each recipient's rules are read and merged once per batch, not once per
        # event: a busy room's batch would otherwise rebuild every member's set
        # for every message.
        rule_sets: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for event in batch:
            if not is_live(event):
                continue
            if event.type == "m.room.redaction":
                target = redaction_target(event.pdu)
                if target is not None:
                    redacted.append((event.room_id, target))
                continue
            group = event.state_group_before
            if group is None or group not in rooms:
                rooms[group] = await self._room_context(event)
            context = rooms[group]
            if context is not None:
                actions.extend(await self._actions_for(event, context, rule_sets))
        return Prepared(actions, redacted)

    async def _room_context(self, event: StoredEvent) -> RoomContext | None:
        """Members and power levels in the state before ``event`` (current state if unknown)."""
        if event.state_group_before is None:
            current = await self.event_store.get_current_state(event.room_id)
            return room_context(current)
        ids = await self.event_store.get_state_group_shared(event.state_group_before)
        wanted = {
            key: event_id
            for key, event_id in ids.items()
            if key[0] == "m.room.member" or key in _POWER_KEYS
        }
        found = await self.event_store.get_events(wanted.values())
        return room_context({k: found[i] for k, i in wanted.items() if i in found})

    async def _actions_for(
        self,
        event: StoredEvent,
        room: RoomContext,
        rule_sets: dict[str, dict[str, list[dict[str, Any]]]],
    ) -> list[store.PushAction]:
        joined = room.joined
        recipients = [u for u in joined if u != event.sender and u.endswith(":" + self.server_name)]
        # An invite reaches a user who is not (yet) joined.
        invitee = event.state_key if event.type == "m.room.member" else None
        if invitee and invitee not in joined and invitee.endswith(":" + self.server_name):
            recipients.append(invitee)
        if not recipients:
            return []
        client_event = {**event.pdu, "event_id": event.event_id}
        thread = thread_of(event) or MAIN_THREAD
        missing = [u for u in recipients if u not in rule_sets]
        if missing:
            rule_sets.update(await self.rules.rule_sets(missing))
        out: list[store.PushAction] = []
        # Every recipient shares the event, member count and power levels below.
        memo = RuleMemo()
        for user_id in recipients:
            context = PushContext(
                user_id=user_id,
                display_name=joined.get(user_id),
                room_member_count=len(joined),
                power_levels=room.power_levels,
            )
            result = evaluate(rule_sets[user_id], client_event, context, memo)
            if result.notify or result.highlight:
                out.append(
                    store.PushAction(
                        user_id=user_id,
                        event_id=event.event_id,
                        room_id=event.room_id,
                        stream_ordering=event.stream_ordering,
                        notify=result.notify,
                        highlight=result.highlight,
                        actions=list(result.actions),
                        ts=event.origin_server_ts,
                        thread_id=thread,
                    )
                )
        return out

    def write(self, conn: Connection, batch: list[StoredEvent], prepared: Any) -> None:
        store.insert_push_actions(conn, prepared.actions)
        # After the insert: a target in the same batch as its redaction goes too.
        store.delete_push_actions_of(conn, prepared.redacted)

    def evaluated(self, start: int, end: int, batch: list[StoredEvent], prepared: Any) -> None:
        # The cache counts the batch before its write commits, so a woken /sync need
        # not wait for the write; a failed write resets the cache (the batch is redone).
        self.counts_cache.apply_batch(
            start, end, prepared.actions, (room_id for room_id, _ in prepared.redacted)
        )

    def write_failed(self) -> None:
        self.counts_cache.reset(self.position)

    def after_batch(self, batch: list[StoredEvent], prepared: Any) -> None:
        users = {a.user_id for a in prepared.actions}
        if users:
            for listener in self._listeners:
                listener(users)

    # -- reading -----------------------------------------------------------------------

    async def read_marks(self, user_id: str, room_id: str, upto: int | None = None) -> ReadMarks:
        """The user's read marks in the room: receipts, and their own latest event."""
        bound = upto if upto is not None else self._head()
        marks, _ = await self.database.read(
            lambda conn: _read_marks_txn(conn, user_id, room_id, bound)
        )
        return marks

    async def thread_counts(
        self, user_id: str, room_id: str, upto: int | None = None
    ) -> dict[str, tuple[int, int]]:
        """``{thread: (notification_count, highlight_count)}`` after the user's read marks;
        ``main`` is the main timeline, other keys thread roots. Threads with no unread
        action are absent.

        With ``upto`` (the sync token's event position), waits (bounded) until
        the processor has handled the events up to it, so a sync reporting a
        message also counts it.
        """
        if upto is not None:
            await self.wait_for_evaluated(upto)
        cached = self.counts_cache.get(user_id, room_id, upto)
        if cached is not None:
            return cached
        if upto is not None:
            # The database holds the actions up to the processor's written position.
            await self.wait_for(upto)
        stamp = self.counts_cache.stamp()
        position = self.position
        head = max(self._head(), upto or 0)
        floor = position if upto is None else min(upto, position)

        def read(conn: Connection) -> tuple[Entry, bool]:
            marks, own_mark = _read_marks_txn(conn, user_id, room_id, head)
            base = store.count_unread_by_thread(
                conn, user_id, room_id, marks.unthreaded, marks.threads, floor
            )
            tail = store.unread_actions_between(
                conn,
                user_id,
                room_id,
                marks.unthreaded,
                marks.threads,
                floor,
                position,
                TAIL_MAX + 1,
            )
            entry = Entry.loaded(marks.unthreaded, marks.threads, own_mark, floor, base, tail)
            return entry, len(tail) <= TAIL_MAX

        entry, complete = await self.database.read(read)
        if complete:
            self.counts_cache.put(user_id, room_id, stamp, entry, position)
        if complete and entry.answers(upto):
            return entry.counts(upto)
        # A token behind the user's own latest event (their read mark then was an
        # earlier one), or more unread than an entry keeps: count as the database does.
        return await self._read_thread_counts(user_id, room_id, upto)

    async def _read_thread_counts(
        self, user_id: str, room_id: str, upto: int | None
    ) -> dict[str, tuple[int, int]]:
        marks = await self.read_marks(user_id, room_id, upto)
        return await self.database.read(
            lambda conn: store.count_unread_by_thread(
                conn, user_id, room_id, marks.unthreaded, marks.threads, upto
            )
        )

    async def counts(self, user_id: str, room_id: str, upto: int | None = None) -> tuple[int, int]:
        """(notification_count, highlight_count) over the main timeline and every thread."""
        return total_counts(await self.thread_counts(user_id, room_id, upto))

    async def badge(self, user_id: str) -> int:
        """Unread notifications across the user's joined rooms (the Push Gateway API's
        ``counts.unread``), after each room's read marks.

        Bounded: only rooms among the user's latest ``BADGE_SCAN`` notifying actions
        are looked at (a room with nothing that recent has long been read or is
        beyond what a badge shows). Four queries whatever the number of rooms.
        """
        bound = self._head()

        def read(conn: Connection) -> int:
            room_ids = store.rooms_with_recent_actions(conn, user_id, BADGE_SCAN)
            if not room_ids:
                return 0
            by_room: dict[str, list[tuple[str, int]]] = {r: [] for r in room_ids}
            for room_id, thread, position in store.receipts_in_rooms(
                conn, user_id, room_ids, (READ, READ_PRIVATE)
            ):
                by_room[room_id].append((thread, position))
            own = store.last_events_of_sender(conn, user_id, room_ids, bound)
            marks: dict[str, tuple[int, Mapping[str, int]]] = {}
            for room_id in room_ids:
                event = own.get(room_id)
                own_mark = (
                    None
                    if event is None
                    else (event.stream_ordering, thread_of(event) or MAIN_THREAD)
                )
                found = read_marks(by_room[room_id], own_mark)
                marks[room_id] = (found.unthreaded, found.threads)
            return store.count_notifications_in_rooms(conn, user_id, marks)

        return await self.database.read(read)

    async def notifications(
        self, user_id: str, before: int | None, limit: int, only_highlight: bool
    ) -> list[store.PushAction]:
        limit = max(1, min(limit, MAX_NOTIFICATIONS_PAGE))
        await self.wait_for(self._head())
        return await self.database.read(
            lambda conn: store.read_notifications(conn, user_id, before, limit, only_highlight)
        )


def _read_marks_txn(
    conn: Connection, user_id: str, room_id: str, bound: int
) -> tuple[ReadMarks, tuple[int, str] | None]:
    """The user's read marks in the room (receipts, and their own latest event at or
    below ``bound``), and that own event's mark, read in the caller's transaction."""
    rows = receipt_store.of_user_in_room(conn, user_id, room_id, (READ, READ_PRIVATE))
    own = store.last_event_of_sender(conn, room_id, user_id, bound)
    own_mark = None if own is None else (own.stream_ordering, thread_of(own) or MAIN_THREAD)
    return read_marks(((r.thread_id, r.event_stream_ordering) for r in rows), own_mark), own_mark


# -- pure helpers ----------------------------------------------------------------------------

_POWER_KEYS: frozenset[StateKey] = frozenset({("m.room.power_levels", ""), ("m.room.create", "")})


@attrs.frozen
class Prepared:
    actions: list[store.PushAction]
    # (room_id, redacted event_id): their push actions are deleted.
    redacted: list[tuple[str, str]]


@attrs.frozen
class RoomContext:
    joined: dict[str, str | None]  # user_id -> display name
    power_levels: dict[str, Any] | None


def room_context(state: Mapping[StateKey, StoredEvent]) -> RoomContext:
    """Joined members (with display names) and power levels of a room state."""
    joined: dict[str, str | None] = {}
    for (type_, state_key), member in state.items():
        if type_ != "m.room.member":
            continue
        content = member.pdu.get("content", {})
        if isinstance(content, dict) and content.get("membership") == "join":
            name = content.get("displayname")
            joined[state_key] = name if isinstance(name, str) else None
    power = state.get(("m.room.power_levels", ""))
    levels: dict[str, Any] | None
    if power is not None:
        content = power.pdu.get("content", {})
        levels = content if isinstance(content, dict) else None
    else:
        create = state.get(("m.room.create", ""))
        creator = create.sender if create is not None else None
        levels = {"users": {creator: 100}} if creator else None
    return RoomContext(joined, levels)


@attrs.frozen
class ReadMarks:
    """Stream positions up to which the user has read: ``unthreaded`` for every thread,
    ``threads[t]`` (already at least ``unthreaded``) for thread ``t`` or ``main``."""

    unthreaded: int
    threads: dict[str, int]

    def position_for(self, thread_id: str) -> int:
        return self.threads.get(thread_id, self.unthreaded)


def read_marks(receipts: Iterable[tuple[str, int]], own_event: tuple[int, str] | None) -> ReadMarks:
    """Read marks from ``(thread_id, event position)`` receipts (``''`` unthreaded) and the
    user's own latest event ``(position, thread)``."""
    receipts = list(receipts)
    unthreaded = max((p for t, p in receipts if t == receipt_store.UNTHREADED), default=0)
    threads: dict[str, int] = {}
    for thread, position in receipts:
        if thread != receipt_store.UNTHREADED:
            threads[thread] = max(threads.get(thread, unthreaded), position)
    if own_event is not None:
        position, thread = own_event
        threads[thread] = max(threads.get(thread, unthreaded), position)
    return ReadMarks(unthreaded, threads)


def total_counts(by_thread: Mapping[str, tuple[int, int]]) -> tuple[int, int]:
    return (
        sum(n for n, _ in by_thread.values()),
        sum(h for _, h in by_thread.values()),
    )


def sync_counts(
    by_thread: Mapping[str, tuple[int, int]], per_thread: bool
) -> tuple[tuple[int, int], dict[str, tuple[int, int]]]:
    """``unread_notifications`` and ``unread_thread_notifications`` of a room in /sync.

    Spec (Client-Server API, "Receiving notifications" and the /sync response):
    when the filter asks for ``unread_thread_notifications``, the room's counts
    are of the main timeline only and each thread is counted on its own;
    otherwise the room's counts cover every thread.
    """
    if not per_thread:
        return total_counts(by_thread), {}
    main = by_thread.get(MAIN_THREAD, (0, 0))
    threads = {t: c for t, c in by_thread.items() if t != MAIN_THREAD and c != (0, 0)}
    return main, threads
