"""Events: reading the DAG, and the :class:`EventStore` that fronts it for services.

The write path is ``event_persist.py`` (one transaction per event); the values
are in ``event_types.py`` and re-exported here, where callers have always
found them. The :class:`EventStore` wraps both behind the database gateway and
owns the in-process caches of things that never change once committed.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from sys import intern
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from homeserver.storage.database import Database
from homeserver.storage.event_persist import (
    is_chain_message,
    persist_event_txn,
    persist_message_chain_txn,
)
from homeserver.storage.event_tables import (
    event_auth_edges,
    event_forward_extremities,
    event_stream_position,
    events,
    rooms,
)
from homeserver.storage.event_types import EventToPersist as EventToPersist
from homeserver.storage.event_types import ExtremitiesChanged as ExtremitiesChanged
from homeserver.storage.event_types import NewCurrentState as NewCurrentState
from homeserver.storage.event_types import PersistResult as PersistResult
from homeserver.storage.event_types import RoomInfo as RoomInfo
from homeserver.storage.event_types import StateBefore as StateBefore
from homeserver.storage.event_types import StoredEvent as StoredEvent
from homeserver.storage.event_types import compact_pdu
from homeserver.storage.state import (
    StateGroupCache,
    StateKey,
    load_state_group,
    read_current_state_ids,
    read_members,
)

# Work a caller adds to an event's own transaction, run once the event is written
# (e.g. recording the client's transaction ID); its result is handed back.
InTxnHook = Callable[[Connection, StoredEvent], Any]

# IN (...) lists are split so no query carries more parameters than SQLite allows.
_CHUNK = 500


def load_pdu(text: str | bytes) -> dict[str, Any]:
    """A stored PDU, parsed, with its repeated strings shared between events.

    ``json.loads`` gives every event its own copy of every key ("content",
    "auth_events", "sha256", ...) and of the room, sender and event IDs it
    cites: about 1 KB of a cached message's 3.3 KB (see :func:`compact_pdu`).
    """
    return compact_pdu(json.loads(text))


def _row_to_event(row: sa.Row[Any]) -> StoredEvent:
    return StoredEvent(
        event_id=intern(row.event_id),
        room_id=intern(row.room_id),
        type=intern(row.type),
        state_key=row.state_key,
        sender=intern(row.sender),
        depth=int(row.depth),
        topological_ordering=int(row.topological_ordering),
        stream_ordering=int(row.stream_ordering),
        origin_server_ts=int(row.origin_server_ts),
        rejected_reason=row.rejected_reason,
        soft_failed=bool(row.soft_failed),
        outlier=bool(row.outlier),
        state_group_before=row.state_group_before,
        state_group_after=row.state_group_after,
        pdu=load_pdu(row.json),
    )


def read_events(conn: Connection, event_ids: Iterable[str]) -> dict[str, StoredEvent]:
    ids = list(dict.fromkeys(event_ids))
    found: dict[str, StoredEvent] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        for row in conn.execute(sa.select(events).where(events.c.event_id.in_(chunk))).all():
            found[row.event_id] = _row_to_event(row)
    return found


# Prebuilt: read before every local event.
_SELECT_EXTREMITIES = (
    sa.select(events.c.event_id, events.c.depth)
    .join(event_forward_extremities, event_forward_extremities.c.event_id == events.c.event_id)
    .where(event_forward_extremities.c.room_id == sa.bindparam("room_id"))
    .order_by(events.c.depth.desc(), events.c.stream_ordering.desc())
)


def read_forward_extremities(conn: Connection, room_id: str) -> list[tuple[str, int]]:
    """(event_id, depth) of the room's forward extremities, deepest first."""
    rows = conn.execute(_SELECT_EXTREMITIES, {"room_id": room_id}).all()
    return [(row.event_id, int(row.depth)) for row in rows]


def read_auth_chain(conn: Connection, event_ids: Iterable[str]) -> set[str]:
    """Every event reachable from ``event_ids`` over auth_events edges (not the events themselves).

    State resolution needs the full auth chains of the states it resolves (the
    "auth difference", rooms/fragments/v2-state-res.md).
    """
    ids = list(dict.fromkeys(event_ids))
    if not ids:
        return set()
    chain = (
        sa.select(event_auth_edges.c.auth_event_id.label("event_id"))
        .where(event_auth_edges.c.event_id.in_(ids))
        .cte("auth_chain", recursive=True)
    )
    step = event_auth_edges.alias("step")
    # UNION (not UNION ALL) stops the walk at events already seen.
    chain = chain.union(
        sa.select(step.c.auth_event_id).join(chain, step.c.event_id == chain.c.event_id)
    )
    return {row.event_id for row in conn.execute(sa.select(chain.c.event_id)).all()}


def read_room(conn: Connection, room_id: str) -> RoomInfo | None:
    row = conn.execute(sa.select(rooms).where(rooms.c.room_id == room_id)).first()
    if row is None:
        return None
    return RoomInfo(room_id=row.room_id, room_version=row.room_version, creator=row.creator)


def persist_batch_txn(
    conn: Connection,
    batch: Sequence[tuple[EventToPersist, InTxnHook | None]],
    cache: StateGroupCache | None = None,
) -> list[tuple[PersistResult, Any]]:
    """Write ``batch`` in order inside the caller's transaction.

    An event whose state before is exactly the state after the previous event
    of the batch (a chain of local events) reuses that event's state group,
    which did not exist when the event was built. Consecutive messages of such a
    chain are written together (:func:`persist_message_chain_txn`: one statement
    per table for all of them); each hook runs once its event is written.
    """
    items = list(batch)
    results: list[tuple[PersistResult, Any]] = []
    index = 0
    while index < len(items):
        run: list[tuple[EventToPersist, int]] = []
        after = results[-1][0].state_after if results else None
        group = results[-1][0].event.state_group_after if results else None
        while index + len(run) < len(items):
            event, _ = items[index + len(run)]
            before_group = _group_before(event, after, group)
            if not is_chain_message(event, before_group) or (
                run and event.pdu["prev_events"] != [run[-1][0].event_id]
            ):
                break
            assert before_group is not None and event.state_before is not None
            run.append((event, before_group))
            after, group = event.state_before.state, before_group
        if run:
            written = persist_message_chain_txn(conn, run)
            hooks = [hook for _, hook in items[index : index + len(run)]]
            index += len(run)
        else:
            event, hook = items[index]
            before_group = _group_before(event, after, group)
            before = event.state_before
            if before is not None and before.group is None and before_group is not None:
                event = attrs.evolve(event, state_before=attrs.evolve(before, group=before_group))
            written = [persist_event_txn(conn, event, cache)]
            hooks = [hook]
            index += 1
        results.extend(zip(written, _run_hooks(conn, written, hooks), strict=True))
    return results


def _run_hooks(
    conn: Connection, written: Sequence[PersistResult], hooks: Sequence[InTxnHook | None]
) -> list[Any]:
    """Each written event's hook, in order; consecutive hooks sharing a ``run_batch`` run as one.

    ``run_batch(conn, [(hook, event), ...])`` returns the hooks' results in order:
    e.g. the transaction IDs of a batch of sends are recorded in one statement.
    """
    out: list[Any] = []
    index = 0
    while index < len(hooks):
        hook = hooks[index]
        run_batch = getattr(hook, "run_batch", None)
        if hook is None or run_batch is None:
            out.append(hook(conn, written[index].event) if hook is not None else None)
            index += 1
            continue
        end = index + 1
        while end < len(hooks) and getattr(hooks[end], "run_batch", None) == run_batch:
            end += 1
        items = [(hooks[k], written[k].event) for k in range(index, end)]
        results = run_batch(conn, items)
        if len(results) != len(items):
            raise RuntimeError("a batched hook returned the wrong number of results")
        out.extend(results)
        index = end
    return out


def _group_before(
    event: EventToPersist,
    previous_after: Mapping[StateKey, str] | None,
    previous_group: int | None,
) -> int | None:
    """The committed state group holding the state before ``event``, if known.

    Its own, or that of the state after the previous event of the batch when the
    event was built on it (a chain: the group did not exist at build time).
    """
    before = event.state_before
    if before is None:
        return None
    if before.group is not None:
        return before.group
    if (
        previous_group is not None
        and previous_after is not None
        and (before.state is previous_after or before.state == previous_after)
    ):
        return previous_group
    return None


class _EventCache:
    """LRU of committed events by ID. Events are immutable once stored, so entries never go stale."""

    def __init__(self, max_entries: int) -> None:
        self._max = max_entries
        self._entries: OrderedDict[str, StoredEvent] = OrderedDict()
        self._lock = threading.Lock()

    def get_many(self, event_ids: Iterable[str]) -> dict[str, StoredEvent]:
        found: dict[str, StoredEvent] = {}
        with self._lock:
            for event_id in event_ids:
                event = self._entries.get(event_id)
                if event is not None:
                    self._entries.move_to_end(event_id)
                    found[event_id] = event
        return found

    def put_many(self, found: Iterable[StoredEvent]) -> None:
        with self._lock:
            for event in found:
                self._entries[event.event_id] = event
                self._entries.move_to_end(event.event_id)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def invalidate(self, event_id: str) -> None:
        with self._lock:
            self._entries.pop(event_id, None)

    def shared(self, loaded: list[StoredEvent]) -> list[StoredEvent]:
        """``loaded``, with each event the cache holds an equal copy of replaced by that copy."""
        out = []
        with self._lock:
            for event in loaded:
                cached = self._entries.get(event.event_id)
                out.append(cached if cached is not None and cached == event else event)
        return out


class EventStore:
    """Async reads and writes of events through the database gateway.

    Holds three in-process caches of things that never change once committed:
    state groups, events and room versions; entries are added only after their
    transaction committed (see ``state.py``). Returned events are shared with
    the cache: treat ``StoredEvent.pdu`` as read-only.
    """

    def __init__(
        self,
        database: Database,
        *,
        state_cache: StateGroupCache | None = None,
        event_cache_size: int = 20_000,
    ) -> None:
        self.database = database
        self.state_cache = state_cache if state_cache is not None else StateGroupCache()
        self._event_cache = _EventCache(event_cache_size)
        self._rooms: dict[str, RoomInfo] = {}

    async def persist(self, event: EventToPersist) -> PersistResult:
        cache = self.state_cache
        result = await self.database.run(lambda conn: persist_event_txn(conn, event, cache))
        for group, state in result.new_groups.items():
            cache.put(group, state)
        # put_many replaces any cached outlier copy of the event.
        self._event_cache.put_many([result.event])
        return result

    async def persist_batch(
        self, batch: Sequence[tuple[EventToPersist, InTxnHook | None]]
    ) -> list[tuple[PersistResult, Any]]:
        """Persist several events, in order, in one transaction (group commit).

        Each event's hook runs right after it is written. If any event or hook
        fails, nothing of the batch is written and the exception propagates: the
        caller retries the events one by one to isolate the bad one.
        """
        cache = self.state_cache
        items = list(batch)
        results = await self.database.run(lambda conn: persist_batch_txn(conn, items, cache))
        for result, _ in results:
            for group, state in result.new_groups.items():
                cache.put(group, state)
        self._event_cache.put_many([result.event for result, _ in results])
        return results

    def share_cached(self, loaded: list[StoredEvent]) -> list[StoredEvent]:
        """``loaded`` (events read by another path, e.g. a stream range), with every
        event the cache holds an equal copy of replaced by that copy, so a caller
        that keeps them does not hold a second copy. A cached copy that differs
        (a redaction not yet invalidated) is left alone. The cache is not changed.
        """
        return self._event_cache.shared(loaded)

    def invalidate_event(self, event_id: str) -> None:
        """Drop a cached event whose row was changed (e.g. by redaction)."""
        self._event_cache.invalidate(event_id)

    async def get_events(self, event_ids: Iterable[str]) -> dict[str, StoredEvent]:
        """The stored events among ``event_ids`` (unknown IDs are left out)."""
        ids = list(event_ids)
        found = self._event_cache.get_many(ids)
        missing = [eid for eid in ids if eid not in found]
        if missing:
            loaded = await self.database.read(lambda conn: read_events(conn, missing))
            self._event_cache.put_many(loaded.values())
            found.update(loaded)
        return found

    async def get_event(self, event_id: str) -> StoredEvent | None:
        return (await self.get_events([event_id])).get(event_id)

    async def get_auth_chain_ids(self, event_ids: Iterable[str]) -> set[str]:
        ids = list(event_ids)
        return await self.database.read(lambda conn: read_auth_chain(conn, ids))

    async def get_room(self, room_id: str) -> RoomInfo | None:
        room = self._rooms.get(room_id)
        if room is None:
            room = await self.database.read(lambda conn: read_room(conn, room_id))
            # A room's version and creator never change; unknown rooms are not cached.
            if room is not None:
                self._rooms[room_id] = room
        return room

    async def get_forward_extremities(self, room_id: str) -> list[str]:
        """The room's forward extremities, deepest first."""
        return [eid for eid, _ in await self.get_forward_extremities_with_depth(room_id)]

    async def get_forward_extremities_with_depth(self, room_id: str) -> list[tuple[str, int]]:
        return await self.database.read(lambda conn: read_forward_extremities(conn, room_id))

    async def get_state_group_shared(self, group: int) -> Mapping[StateKey, str]:
        """The state of ``group`` without a copy: the cached map itself, never to be mutated.

        The pipeline reads the state of the room's tip for every event; copying a
        large room's state each time would cost more than everything else.
        """
        cached = self.state_cache.get(group)
        if cached is not None:
            return cached
        return await self.get_state_group(group)

    async def get_state_group(self, group: int) -> dict[StateKey, str]:
        cached = self.state_cache.get(group)
        if cached is not None:
            return dict(cached)
        cache = self.state_cache
        state = await self.database.read(lambda conn: load_state_group(conn, group, cache))
        cache.put(group, state)
        return state

    async def get_state_at_event(
        self, event_id: str, *, before: bool = True
    ) -> dict[StateKey, str] | None:
        """State ids before (or after) the event; None for an unknown event or an outlier."""
        event = await self.get_event(event_id)
        if event is None:
            return None
        group = event.state_group_before if before else event.state_group_after
        if group is None:
            return None
        return await self.get_state_group(group)

    async def get_current_state_ids(self, room_id: str) -> dict[StateKey, str]:
        return await self.database.read(lambda conn: read_current_state_ids(conn, room_id))

    async def get_current_state(self, room_id: str) -> dict[StateKey, StoredEvent]:
        ids = await self.get_current_state_ids(room_id)
        found = await self.get_events(ids.values())
        return {key: found[eid] for key, eid in ids.items() if eid in found}

    async def get_members(self, room_id: str, membership: str | None = None) -> dict[str, str]:
        """user_id -> membership, from the room's current state."""
        return await self.database.read(lambda conn: read_members(conn, room_id, membership))

    async def get_stream_position(self) -> int:
        """The highest committed stream ordering."""

        def _read(conn: Connection) -> int:
            return int(
                conn.execute(
                    sa.select(event_stream_position.c.position).where(
                        event_stream_position.c.id == 1
                    )
                ).scalar_one()
            )

        return await self.database.read(_read)
