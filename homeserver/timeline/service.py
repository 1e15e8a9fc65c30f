"""Sending messages and reading history: /send, /redact, /messages, /context, /event.

Sending is idempotent per ``(user, device, endpoint, txnId)``: a per-key lock
in this process serializes concurrent retries, a bounded memory of recent
transactions answers a retry without touching the database, and the stored
mapping (written in the event's own transaction, whose primary key lets the
first event recorded win) catches any retry the memory does not know of (after
a restart, an eviction, or from another process) by rolling the new event back.
So a first send, the common case, does no database read of its own.

Reading goes through :class:`~homeserver.timeline.client_events.ClientEvents`
so every path applies history visibility and the client format the same way.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from homeserver.core.canonical_json import (
    MAX_PDU_SIZE,
    CanonicalJSONError,
    encode_canonical_json,
)
from homeserver.core.power_levels import power_levels_from_state
from homeserver.errors import MatrixError, bad_json, forbidden, not_found, too_large
from homeserver.events.creation import EventCreationService
from homeserver.notifier import Notifier
from homeserver.storage.database import Database
from homeserver.storage.events import EventStore, InTxnHook, StoredEvent
from homeserver.storage.relation_queries import has_annotation
from homeserver.storage.timeline import (
    read_event_near_ts,
    read_membership_events_of_user,
    read_page_ids,
    record_redaction,
)
from homeserver.storage.transactions import TxnAlreadyClaimed, TxnClaim, read_txn
from homeserver.sync.filters import RoomEventFilter
from homeserver.sync.visibility import history_visibility_of
from homeserver.timeline.client_events import ClientEvents
from homeserver.timeline.relations import annotation_lock_key, check_new_relation
from homeserver.timeline.tokens import (
    PaginationPoint,
    StreamPoint,
    TopologicalToken,
)

# Room for everything a PDU carries besides its content (ids, hashes, signatures, edges).
PDU_OVERHEAD_BYTES = 2048
DEFAULT_LIMIT = 10
MAX_LIMIT = 1000
# Rows read per query while filling a page; filtered rows cost another round.
_BATCH = 100
# Stop scanning after this many rows for one page (a filter that matches nothing).
_MAX_SCAN = 20_000
_START = TopologicalToken(-(2**62), 0)
# Recent (user, device, endpoint, txnId) -> event ID remembered to answer retries.
_MAX_KNOWN_TXNS = 2048


@attrs.frozen
class Page:
    events: list[StoredEvent]
    # The point after the last event returned; None when there is nothing further.
    next_point: PaginationPoint | None


def check_content(content: Any) -> dict[str, Any]:
    """Event content: a JSON object with a canonical form, small enough for a PDU."""
    if not isinstance(content, dict):
        raise bad_json("Content must be a JSON object")
    try:
        size = len(encode_canonical_json(content))
    except CanonicalJSONError as exc:
        raise bad_json(f"Content is not valid event JSON: {exc}") from None
    if size + PDU_OVERHEAD_BYTES > MAX_PDU_SIZE:
        raise too_large(f"Event content is {size} bytes; events are limited to {MAX_PDU_SIZE}")
    return content


def _record_redaction(
    claim: TxnClaim, redacts: str, room_id: str, conn: Any, event: StoredEvent
) -> str:
    """The in-transaction hook of a redaction: what it redacts, then its transaction ID."""
    record_redaction(conn, event.event_id, redacts, room_id)
    return claim(conn, event)


class MessageService:
    def __init__(
        self,
        database: Database,
        store: EventStore,
        events: EventCreationService,
        notifier: Notifier,
        clock_ms: Callable[[], int],
    ) -> None:
        self.database = database
        self.store = store
        self.events = events
        self.notifier = notifier
        self.client_events = ClientEvents(database, store, clock_ms)
        self._clock_ms = clock_ms
        self._txn_locks: dict[tuple[str, ...], trio.Lock] = {}
        self._txn_lock_users: dict[tuple[str, ...], int] = {}
        # Transactions this process recorded or found: a mapping never changes once
        # stored (the first event wins, rows are never deleted), so entries cannot
        # go stale; a miss only means the event's transaction will check.
        self._known_txns: OrderedDict[tuple[str, ...], str] = OrderedDict()

    @asynccontextmanager
    async def _txn_lock(self, key: tuple[str, ...]) -> AsyncIterator[None]:
        lock = self._txn_locks.setdefault(key, trio.Lock())
        self._txn_lock_users[key] = self._txn_lock_users.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._txn_lock_users[key] -= 1
            if self._txn_lock_users[key] == 0:
                del self._txn_lock_users[key]
                del self._txn_locks[key]

    # -- sending --------------------------------------------------------------------

    async def send(
        self,
        user_id: str,
        device_id: str,
        room_id: str,
        event_type: str,
        content: Mapping[str, Any],
        txn_id: str,
        *,
        endpoint: str = "send",
        redacts: str | None = None,
    ) -> str:
        """Send a message event once per transaction ID; return its event ID."""
        if event_type == "m.room.redaction" and redacts is None:
            # A redaction sent through /send (v11 clients put "redacts" in content)
            # is checked and recorded like one sent through /redact.
            target = content.get("redacts")
            if not isinstance(target, str):
                raise bad_json("A redaction needs 'redacts' in its content")
            redacts = target
        key = (user_id, device_id, endpoint, txn_id)
        # The same reaction sent twice at once: the second waits, then is refused.
        annotation = annotation_lock_key(user_id, event_type, content) or ("txn", *key)
        async with self._txn_lock(key), self._txn_lock(annotation):
            existing = self._known_txns.get(key)
            if existing is not None:
                self._known_txns.move_to_end(key)
                return existing
            try:
                claimed = await self._send_new(
                    user_id, room_id, event_type, content, key, redacts=redacts
                )
            except MatrixError:
                # Perhaps a retry of a transaction recorded before this process
                # remembered it (a restart): it gets its event even if sending it
                # now would be refused (the sender left, the reaction exists...).
                stored = await self.database.read(lambda conn: read_txn(conn, *key))
                if stored is None:
                    raise
                claimed = stored
            self._remember_txn(key, claimed)
            return claimed

    async def _send_new(
        self,
        user_id: str,
        room_id: str,
        event_type: str,
        content: Mapping[str, Any],
        key: tuple[str, str, str, str],
        *,
        redacts: str | None,
    ) -> str:
        """Check and send the event of a transaction ID this process does not know of."""
        if redacts is not None:
            await self._check_redaction(user_id, room_id, redacts)
        await check_new_relation(
            content,
            sender=user_id,
            room_id=room_id,
            event_type=event_type,
            get_event=self.store.get_event,
            has_annotation=self._has_annotation,
        )
        # In the event's own transaction: a crash cannot keep the event and lose
        # the mapping (a retry would then send it twice).
        claim = TxnClaim(*key, now_ms=self._clock_ms())
        record: InTxnHook = claim
        if redacts is not None:
            record = functools.partial(_record_redaction, claim, redacts, room_id)

        try:
            _, claimed = await self.events.send_event(
                room_id, event_type, user_id, content, in_txn=record
            )
        except TxnAlreadyClaimed as exc:
            # A retry of a transaction recorded before: its new event was rolled back.
            return exc.event_id
        return str(claimed)

    def _remember_txn(self, key: tuple[str, ...], event_id: str) -> None:
        self._known_txns[key] = event_id
        self._known_txns.move_to_end(key)
        while len(self._known_txns) > _MAX_KNOWN_TXNS:
            self._known_txns.popitem(last=False)

    async def redact(
        self,
        user_id: str,
        device_id: str,
        room_id: str,
        target_id: str,
        txn_id: str,
        reason: str | None,
    ) -> str:
        # ``redacts`` goes in content, where v11 keeps it; our readers look there first.
        content: dict[str, Any] = {"redacts": target_id}
        if reason is not None:
            content["reason"] = reason
        return await self.send(
            user_id,
            device_id,
            room_id,
            "m.room.redaction",
            content,
            txn_id,
            endpoint="redact",
            redacts=target_id,
        )

    async def _has_annotation(self, parent_id: str, sender: str, event_type: str, key: str) -> bool:
        return await self.database.read(
            lambda conn: has_annotation(conn, parent_id, sender, event_type, key)
        )

    async def _check_redaction(self, user_id: str, room_id: str, target_id: str) -> None:
        """Only the sender, or someone with the ``redact`` level, may redact (spec "Redactions")."""
        room = await self.store.get_room(room_id)
        if room is None:
            raise not_found("Unknown room")
        target = await self.store.get_event(target_id)
        if target is None or target.room_id != room_id or target.outlier:
            raise not_found("Unknown event")
        if target.sender == user_id:
            return
        version = await self.client_events.room_version(room_id)
        if version is None:
            raise not_found("Unknown room")
        state = await self.store.get_current_state(room_id)
        create = state.get(("m.room.create", ""))
        power = state.get(("m.room.power_levels", ""))
        levels = power_levels_from_state(
            version,
            {**create.pdu, "event_id": create.event_id} if create else None,
            {**power.pdu, "event_id": power.event_id} if power else None,
        )
        if levels.user_level(user_id) < levels.redact:
            raise forbidden("You may not redact other users' events")

    # -- access ---------------------------------------------------------------------

    async def require_room_access(self, user_id: str, room_id: str) -> None:
        """404 for an unknown room; 403 unless the user is or was in it, or it is world readable."""
        if await self.store.get_room(room_id) is None:
            raise not_found("Unknown room")
        own = await self.database.read(
            lambda conn: read_membership_events_of_user(conn, user_id, room_id)
        )
        if own:
            return
        state = await self.store.get_current_state(room_id)
        hv = state.get(("m.room.history_visibility", ""))
        if history_visibility_of(hv.pdu.get("content") if hv else None) != "world_readable":
            raise forbidden("You are not in this room")

    async def get_visible_event(self, user_id: str, room_id: str, event_id: str) -> StoredEvent:
        await self.require_room_access(user_id, room_id)
        event = await self.store.get_event(event_id)
        if (
            event is None
            or event.room_id != room_id
            or event.outlier
            or event.rejected_reason is not None
            or event.soft_failed
            or not await self.client_events.can_see(user_id, event)
        ):
            raise not_found("Event not found")
        return event

    # -- pagination -----------------------------------------------------------------

    async def paginate(
        self,
        user_id: str,
        room_id: str,
        *,
        start: PaginationPoint | None,
        backwards: bool,
        limit: int,
        event_filter: RoomEventFilter,
        stop: PaginationPoint | None = None,
        ignored: frozenset[str] = frozenset(),
    ) -> tuple[PaginationPoint, Page]:
        """A page of visible, filtered events from ``start``; returns the start point used."""
        if start is None:
            start = StreamPoint(self.notifier.current_token().events) if backwards else _START
        return start, await self._collect(
            user_id, room_id, start, backwards, limit, event_filter, stop, ignored
        )

    async def _collect(
        self,
        user_id: str,
        room_id: str,
        point: PaginationPoint,
        backwards: bool,
        limit: int,
        event_filter: RoomEventFilter,
        stop: PaginationPoint | None,
        ignored: frozenset[str] = frozenset(),
    ) -> Page:
        collected: list[StoredEvent] = []
        scanned = 0
        while len(collected) < limit and scanned < _MAX_SCAN:
            batch_size = max(_BATCH, limit - len(collected))
            batch = await self._read_batch(room_id, point, backwards, batch_size)
            scanned += len(batch)
            exhausted = len(batch) < batch_size
            batch, reached_stop = _cut_at(batch, stop, backwards)
            if reached_stop:
                exhausted = True
            matching = [
                e
                for e in batch
                if event_filter.matches_event(_filter_view(e))
                and (e.state_key is not None or e.sender not in ignored)
            ]
            visible = {
                e.event_id for e in await self.client_events.filter_visible(user_id, matching)
            }
            for event in batch:
                point = _point_past(event, backwards)
                if event.event_id in visible:
                    collected.append(event)
                    if len(collected) == limit:
                        more = event is not batch[-1] or not exhausted
                        return Page(collected, point if more else None)
            if exhausted:
                return Page(collected, None)
        return Page(collected, point)

    async def _read_batch(
        self, room_id: str, point: PaginationPoint, backwards: bool, limit: int
    ) -> list[StoredEvent]:
        if isinstance(point, StreamPoint):
            topological, stream, by_stream = None, point.stream, True
        else:
            topological, stream, by_stream = point.topological, point.stream, False
        ids = await self.database.read(
            lambda conn: read_page_ids(
                conn,
                room_id,
                backwards=backwards,
                topological=topological,
                stream=stream,
                by_stream_only=by_stream,
                limit=limit,
            )
        )
        found = await self.store.get_events(ids)
        return [found[event_id] for event_id in ids if event_id in found]

    async def context(
        self,
        user_id: str,
        room_id: str,
        event_id: str,
        limit: int,
        event_filter: RoomEventFilter,
    ) -> tuple[StoredEvent, Page, Page]:
        """The event, up to ``limit // 2`` events before it and the rest after (/context)."""
        event = await self.get_visible_event(user_id, room_id, event_id)
        before_limit = limit // 2
        after_limit = limit - before_limit
        here_before = TopologicalToken.before(event.topological_ordering, event.stream_ordering)
        here_after = TopologicalToken.after(event.topological_ordering, event.stream_ordering)
        before = Page([], here_before)
        after = Page([], here_after)
        if before_limit:
            before = await self._collect(
                user_id, room_id, here_before, True, before_limit, event_filter, None
            )
        if after_limit:
            after = await self._collect(
                user_id, room_id, here_after, False, after_limit, event_filter, None
            )
        return event, before, after

    async def timestamp_to_event(
        self, user_id: str, room_id: str, ts: int, forwards: bool
    ) -> StoredEvent:
        await self.require_room_access(user_id, room_id)
        upto = self.notifier.current_token().events
        found = await self.database.read(
            lambda conn: read_event_near_ts(conn, room_id, ts, forwards, upto)
        )
        # Skip over events the user may not see, a bounded number of times.
        for _ in range(50):
            if found is None:
                break
            if await self.client_events.can_see(user_id, found):
                return found
            edge = found.origin_server_ts + (1 if forwards else -1)
            found = await self.database.read(
                functools.partial(
                    read_event_near_ts, room_id=room_id, ts=edge, forwards=forwards, upto=upto
                )
            )
        raise not_found("No event found")

    async def members_for_senders(
        self, anchor: StoredEvent | None, room_id: str, senders: set[str]
    ) -> list[StoredEvent]:
        """The member events of ``senders`` at ``anchor`` (current state without one): lazy loading."""
        if anchor is not None and anchor.state_group_after is not None:
            state = await self.store.get_state_group(anchor.state_group_after)
        else:
            state = await self.store.get_current_state_ids(room_id)
        ids = [
            state[("m.room.member", s)] for s in sorted(senders) if ("m.room.member", s) in state
        ]
        found = await self.store.get_events(ids)
        return [found[i] for i in ids if i in found]

    async def state_at(self, event: StoredEvent) -> list[StoredEvent]:
        if event.state_group_after is None:
            return []
        state = await self.store.get_state_group(event.state_group_after)
        found = await self.store.get_events(state.values())
        return [found[i] for i in state.values() if i in found]


def _filter_view(event: StoredEvent) -> dict[str, Any]:
    return {
        "type": event.type,
        "sender": event.sender,
        "room_id": event.room_id,
        "content": event.pdu.get("content", {}),
    }


def _point_past(event: StoredEvent, backwards: bool) -> TopologicalToken:
    if backwards:
        return TopologicalToken.before(event.topological_ordering, event.stream_ordering)
    return TopologicalToken.after(event.topological_ordering, event.stream_ordering)


def _cut_at(
    batch: list[StoredEvent], stop: PaginationPoint | None, backwards: bool
) -> tuple[list[StoredEvent], bool]:
    """Drop the events beyond ``stop`` (the ``to`` token); say whether it was reached."""
    if stop is None:
        return batch, False
    kept: list[StoredEvent] = []
    for event in batch:
        if isinstance(stop, StreamPoint):
            beyond = (
                event.stream_ordering <= stop.stream
                if backwards
                else event.stream_ordering > stop.stream
            )
        else:
            key = (event.topological_ordering, event.stream_ordering)
            mark = (stop.topological, stop.stream)
            beyond = key <= mark if backwards else key > mark
        if beyond:
            return kept, True
        kept.append(event)
    return kept, False


def check_limit(value: str | None, default: int = DEFAULT_LIMIT) -> int:
    if value is None:
        return default
    if not (value.isascii() and value.isdigit()) or len(value) > 9:
        raise MatrixError(400, "M_INVALID_PARAM", "'limit' must be a non-negative integer")
    return max(1, min(int(value), MAX_LIMIT))
