"""Events: persisting an event with its edges, state, stream position and extremities.

Everything an event changes lands in one transaction (:func:`persist_event_txn`):
its row, its prev/auth edges, the state groups before and after it, its stream
ordering, the room's forward extremities and ``current_state``. Either all of it
is visible or none of it is, so a crash never leaves a half-written event.

Callers decide *what* the state is (the event-creation service resolves it with
the pure core); this module only stores and reads it. The :class:`EventStore`
wraps the transaction functions behind the database gateway and owns the
in-process cache of committed state groups.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from homeserver.core.canonical_json import encode_canonical_json
from homeserver.storage.database import Database
from homeserver.storage.event_tables import (
    event_auth_edges,
    event_edges,
    event_forward_extremities,
    event_stream_position,
    events,
    rooms,
)
from homeserver.storage.state import (
    StateGroupCache,
    StateKey,
    apply_current_state_delta,
    load_state_group,
    read_current_state_ids,
    read_members,
    replace_current_state,
    store_state_group,
)

# IN (...) lists are split so no query carries more parameters than SQLite allows.
_CHUNK = 500


@attrs.frozen
class RoomInfo:
    room_id: str
    room_version: str
    creator: str


@attrs.frozen
class StoredEvent:
    """A persisted event: its PDU (federation form, no ``event_id``) and our bookkeeping."""

    event_id: str
    room_id: str
    type: str
    state_key: str | None
    sender: str
    depth: int
    topological_ordering: int
    stream_ordering: int
    origin_server_ts: int
    rejected_reason: str | None
    soft_failed: bool
    outlier: bool
    state_group_before: int | None
    state_group_after: int | None
    pdu: dict[str, Any]

    @property
    def is_state(self) -> bool:
        return self.state_key is not None

    @property
    def prev_event_ids(self) -> list[str]:
        return list(self.pdu.get("prev_events", []))

    @property
    def auth_event_ids(self) -> list[str]:
        return list(self.pdu.get("auth_events", []))


@attrs.frozen
class StateBefore:
    """The state before an event, and how to store it.

    ``group`` names a committed group holding exactly ``state`` (the usual case:
    one prev event, its state after). Otherwise a new group is written, as a
    delta over ``base_group`` (whose full state is ``base_state``) when given.
    """

    state: Mapping[StateKey, str]
    group: int | None = None
    base_group: int | None = None
    base_state: Mapping[StateKey, str] | None = None


# "after": the event is the room's only forward extremity, so the room's current
# state becomes the state after it. A map: the resolved state across the room's
# extremities. None: current state does not change.
NewCurrentState = Literal["after"] | Mapping[StateKey, str] | None


@attrs.frozen
class EventToPersist:
    event_id: str
    pdu: dict[str, Any]
    # None: an outlier (no known place in the DAG, no state).
    state_before: StateBefore | None
    rejected_reason: str | None = None
    soft_failed: bool = False
    new_current_state: NewCurrentState = None
    # Set for a room's create event: the ``rooms`` row is written in the same transaction.
    new_room: RoomInfo | None = None
    # Created here just now: no stored event can cite it yet, so no child check is needed.
    local: bool = False


@attrs.frozen
class PersistResult:
    event: StoredEvent
    # Groups written by the transaction, for the cache once it has committed.
    new_groups: dict[int, dict[StateKey, str]]
    state_after: Mapping[StateKey, str] | None


def _state_after(event: EventToPersist) -> Mapping[StateKey, str] | None:
    """The state after the event; the very ``state_before`` mapping when it changes nothing."""
    if event.state_before is None:
        return None
    state_key = event.pdu.get("state_key")
    # Rejected events are never applied to state (s2s "Rejection").
    if state_key is None or event.rejected_reason is not None:
        return event.state_before.state
    key = (event.pdu["type"], state_key)
    if event.state_before.state.get(key) == event.event_id:
        return event.state_before.state
    return {**event.state_before.state, key: event.event_id}


def allocate_stream_ordering(conn: Connection) -> int:
    """The next global stream ordering, taken inside the caller's transaction.

    On PostgreSQL the UPDATE locks the counter row until commit, so events
    commit in stream order and sync never skips over a position still in flight.
    """
    position = conn.execute(
        sa.update(event_stream_position)
        .where(event_stream_position.c.id == 1)
        .values(position=event_stream_position.c.position + 1)
        .returning(event_stream_position.c.position)
    ).scalar_one()
    return int(position)


def persist_event_txn(
    conn: Connection, event: EventToPersist, cache: StateGroupCache | None = None
) -> PersistResult:
    """Write ``event`` and everything it changes; runs inside one transaction."""
    pdu = event.pdu
    room_id: str = pdu["room_id"] if "room_id" in pdu else _room_id_of(event)
    new_groups: dict[int, dict[StateKey, str]] = {}

    if event.new_room is not None:
        conn.execute(
            sa.insert(rooms).values(
                room_id=event.new_room.room_id,
                room_version=event.new_room.room_version,
                creator=event.new_room.creator,
            )
        )

    group_before: int | None = None
    group_after: int | None = None
    event_delta: dict[StateKey, str | None] = {}
    state_after = _state_after(event)
    if event.state_before is not None and state_after is not None:
        before = event.state_before
        group_before = before.group
        if group_before is None:
            group_before = store_state_group(
                conn,
                room_id,
                before.state,
                prev_group=before.base_group,
                prev_state=before.base_state,
            )
            new_groups[group_before] = dict(before.state)
        if state_after is before.state:
            group_after = group_before
        else:
            event_delta = {(pdu["type"], pdu["state_key"]): event.event_id}
            group_after = store_state_group(
                conn,
                room_id,
                state_after,
                prev_group=group_before,
                prev_state=before.state,
                delta=event_delta,
            )
            new_groups[group_after] = dict(state_after)

    stream_ordering = allocate_stream_ordering(conn)
    content = pdu.get("content", {})
    membership = content.get("membership") if pdu["type"] == "m.room.member" else None
    depth = int(pdu.get("depth", 0))
    conn.execute(
        sa.insert(events).values(
            event_id=event.event_id,
            room_id=room_id,
            type=pdu["type"],
            state_key=pdu.get("state_key"),
            sender=pdu["sender"],
            membership=membership if isinstance(membership, str) else None,
            depth=depth,
            topological_ordering=depth,
            stream_ordering=stream_ordering,
            origin_server_ts=int(pdu.get("origin_server_ts", 0)),
            json=encode_canonical_json(pdu).decode("utf-8"),
            rejected_reason=event.rejected_reason,
            soft_failed=event.soft_failed,
            outlier=event.state_before is None,
            state_group_before=group_before,
            state_group_after=group_after,
        )
    )
    insert_edges(
        conn, room_id, event.event_id, pdu.get("prev_events", []), pdu.get("auth_events", [])
    )

    accepted = event.rejected_reason is None and not event.soft_failed
    if event.state_before is not None and accepted:
        _update_forward_extremities(
            conn,
            room_id,
            event.event_id,
            pdu.get("prev_events", []),
            may_have_children=not event.local,
        )

    if event.new_current_state is not None and state_after is not None and group_after is not None:
        old_group = conn.execute(
            sa.select(rooms.c.current_state_group).where(rooms.c.room_id == room_id)
        ).scalar_one_or_none()
        if isinstance(event.new_current_state, str) and group_after == old_group:
            pass  # A message on the room's only extremity: current state is unchanged.
        elif isinstance(event.new_current_state, str) and group_before == old_group:
            # The usual state event: current state was the state before it.
            apply_current_state_delta(conn, room_id, event_delta, group_after)
        else:
            old_state = load_state_group(conn, old_group, cache) if old_group is not None else {}
            if isinstance(event.new_current_state, str):
                new_state, new_group = state_after, group_after
            else:
                new_state = dict(event.new_current_state)
                new_group = store_state_group(
                    conn, room_id, new_state, prev_group=group_after, prev_state=state_after
                )
                new_groups[new_group] = new_state
            replace_current_state(conn, room_id, old_state, new_state, new_group)

    stored = StoredEvent(
        event_id=event.event_id,
        room_id=room_id,
        type=pdu["type"],
        state_key=pdu.get("state_key"),
        sender=pdu["sender"],
        depth=depth,
        topological_ordering=depth,
        stream_ordering=stream_ordering,
        origin_server_ts=int(pdu.get("origin_server_ts", 0)),
        rejected_reason=event.rejected_reason,
        soft_failed=event.soft_failed,
        outlier=event.state_before is None,
        state_group_before=group_before,
        state_group_after=group_after,
        pdu=pdu,
    )
    return PersistResult(event=stored, new_groups=new_groups, state_after=state_after)


def _room_id_of(event: EventToPersist) -> str:
    # v12 create events carry no room_id; the room is the one being created.
    if event.new_room is None:
        raise ValueError(f"event {event.event_id} has no room_id")
    return event.new_room.room_id


def insert_edges(
    conn: Connection,
    room_id: str,
    event_id: str,
    prev_event_ids: Sequence[str],
    auth_event_ids: Sequence[str],
) -> None:
    if prev_event_ids:
        conn.execute(
            sa.insert(event_edges),
            [
                {"event_id": event_id, "prev_event_id": p, "room_id": room_id}
                for p in dict.fromkeys(prev_event_ids)
            ],
        )
    if auth_event_ids:
        conn.execute(
            sa.insert(event_auth_edges),
            [
                {"event_id": event_id, "auth_event_id": a, "room_id": room_id}
                for a in dict.fromkeys(auth_event_ids)
            ],
        )


def _update_forward_extremities(
    conn: Connection,
    room_id: str,
    event_id: str,
    prev_event_ids: Sequence[str],
    *,
    may_have_children: bool,
) -> None:
    """The event replaces its prev events as an extremity, unless it already has a child.

    A forward extremity is an event with no accepted child (s2s brief, "DAG bookkeeping");
    a child can arrive first over federation, hence the check.
    """
    prevs = list(dict.fromkeys(prev_event_ids))
    if not may_have_children and len(prevs) == 1:
        # The common case, one statement: the new event takes its parent's place.
        moved = conn.execute(
            sa.update(event_forward_extremities)
            .where(
                event_forward_extremities.c.room_id == room_id,
                event_forward_extremities.c.event_id == prevs[0],
            )
            .values(event_id=event_id)
        )
        if moved.rowcount == 1:
            return
    elif prevs:
        conn.execute(
            sa.delete(event_forward_extremities).where(
                event_forward_extremities.c.room_id == room_id,
                event_forward_extremities.c.event_id.in_(prevs),
            )
        )
    if may_have_children:
        child = (
            sa.select(events.c.event_id)
            .join(event_edges, event_edges.c.event_id == events.c.event_id)
            .where(
                event_edges.c.prev_event_id == event_id,
                events.c.rejected_reason.is_(None),
                events.c.soft_failed == sa.false(),
                events.c.outlier == sa.false(),
            )
        )
        if conn.execute(child.limit(1)).first() is not None:
            return
    conn.execute(sa.insert(event_forward_extremities).values(room_id=room_id, event_id=event_id))


def _row_to_event(row: sa.Row[Any]) -> StoredEvent:
    return StoredEvent(
        event_id=row.event_id,
        room_id=row.room_id,
        type=row.type,
        state_key=row.state_key,
        sender=row.sender,
        depth=int(row.depth),
        topological_ordering=int(row.topological_ordering),
        stream_ordering=int(row.stream_ordering),
        origin_server_ts=int(row.origin_server_ts),
        rejected_reason=row.rejected_reason,
        soft_failed=bool(row.soft_failed),
        outlier=bool(row.outlier),
        state_group_before=row.state_group_before,
        state_group_after=row.state_group_after,
        pdu=json.loads(row.json),
    )


def read_events(conn: Connection, event_ids: Iterable[str]) -> dict[str, StoredEvent]:
    ids = list(dict.fromkeys(event_ids))
    found: dict[str, StoredEvent] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        for row in conn.execute(sa.select(events).where(events.c.event_id.in_(chunk))).all():
            found[row.event_id] = _row_to_event(row)
    return found


def read_forward_extremities(conn: Connection, room_id: str) -> list[tuple[str, int]]:
    """(event_id, depth) of the room's forward extremities, deepest first."""
    rows = conn.execute(
        sa.select(events.c.event_id, events.c.depth)
        .join(event_forward_extremities, event_forward_extremities.c.event_id == events.c.event_id)
        .where(event_forward_extremities.c.room_id == room_id)
        .order_by(events.c.depth.desc(), events.c.stream_ordering.desc())
    ).all()
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
        self._event_cache.put_many([result.event])
        return result

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
