"""State groups: the state of a room at an event, stored as snapshots and deltas.

A group is immutable once committed, so reading one is a pure function of its
id and the in-process :class:`StateGroupCache` can keep them without ever
invalidating. Writes happen only inside the event-persistence transaction
(``events.py``); a group id is put in the cache only after that transaction
committed, because a rolled-back group id may be reused by the database.

Layout (see ``event_tables.py``): ``state_groups`` has one row per group with
``prev_group`` (null for a snapshot) and ``delta_depth``; ``state_group_entries``
holds the full map of a snapshot, or only the changed keys of a delta (a null
``event_id`` removes a key). Every ``SNAPSHOT_INTERVAL`` deltas a snapshot is
written instead, so reading a group reads at most ``SNAPSHOT_INTERVAL + 1``
groups, in two queries.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from homeserver.storage.event_tables import (
    current_state,
    events,
    rooms,
    state_group_entries,
    state_groups,
)

StateKey = tuple[str, str]
StateMap = Mapping[StateKey, str]

# A snapshot after this many deltas bounds the cost of reading any group.
SNAPSHOT_INTERVAL = 100
# Above this many changed keys a delta is no cheaper than a snapshot.
_MAX_DELTA_FRACTION = 0.5


class StateGroupCache:
    """An LRU of committed state groups: group id -> full state map.

    Groups never change once committed, so entries never go stale; the cache
    only bounds memory, by groups and by the total number of (type, state_key)
    entries: in a large room every state event adds a group as large as the
    room's state, and a count of groups alone would not bound memory.
    """

    def __init__(self, max_entries: int = 2000, max_keys: int = 1_000_000) -> None:
        self._max = max_entries
        self._max_keys = max_keys
        self._keys = 0
        self._entries: OrderedDict[int, dict[StateKey, str]] = OrderedDict()
        # Read from database worker threads as well as the trio thread.
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, group: int) -> dict[StateKey, str] | None:
        """The cached map itself: callers must not mutate it."""
        with self._lock:
            state = self._entries.get(group)
            if state is None:
                self.misses += 1
                return None
            self.hits += 1
            self._entries.move_to_end(group)
            return state

    def put(self, group: int, state: Mapping[StateKey, str], *, copy: bool = True) -> None:
        """Cache ``state``; ``copy=False`` hands over a dict nobody else will mutate."""
        owned = dict(state) if copy or not isinstance(state, dict) else state
        with self._lock:
            old = self._entries.pop(group, None)
            if old is not None:
                self._keys -= len(old)
            self._entries[group] = owned
            self._keys += len(state)
            # The newest entry always stays, however large.
            while len(self._entries) > 1 and (
                len(self._entries) > self._max or self._keys > self._max_keys
            ):
                _, evicted = self._entries.popitem(last=False)
                self._keys -= len(evicted)

    def statistics(self) -> dict[str, int]:
        with self._lock:
            return {
                "groups": len(self._entries),
                "keys": self._keys,
                "hits": self.hits,
                "misses": self.misses,
            }


def diff_state(old: StateMap, new: StateMap) -> dict[StateKey, str | None]:
    """The changes taking ``old`` to ``new``; ``None`` marks a removed key."""
    delta: dict[StateKey, str | None] = {k: v for k, v in new.items() if old.get(k) != v}
    for key in old.keys() - new.keys():
        delta[key] = None
    return delta


# Prebuilt statements: these run for every state event (see event_persist.py).
_SELECT_DELTA_DEPTH = sa.select(state_groups.c.delta_depth).where(
    state_groups.c.id == sa.bindparam("group_id")
)
_INSERT_GROUP = sa.insert(state_groups).returning(state_groups.c.id)
_INSERT_ENTRIES = sa.insert(state_group_entries)
_DELETE_CURRENT = sa.delete(current_state).where(
    current_state.c.room_id == sa.bindparam("c_room_id"),
    current_state.c.type == sa.bindparam("c_type"),
    current_state.c.state_key == sa.bindparam("c_state_key"),
)
_INSERT_CURRENT = sa.insert(current_state)
_SET_CURRENT_GROUP = (
    sa.update(rooms)
    .where(rooms.c.room_id == sa.bindparam("c_room_id"))
    .values(current_state_group=sa.bindparam("c_group"))
)


def store_state_group(
    conn: Connection,
    room_id: str,
    state: StateMap,
    *,
    prev_group: int | None = None,
    prev_state: StateMap | None = None,
    delta: Mapping[StateKey, str | None] | None = None,
) -> int:
    """Write ``state`` as a new group, as a delta over ``prev_group`` when that pays.

    ``prev_state`` must be the full state of ``prev_group`` (callers have it,
    usually from the cache). A snapshot is written when there is no previous
    group, when the chain already holds ``SNAPSHOT_INTERVAL`` deltas, or when the
    delta would be larger than half the state. ``delta``, when the caller knows it
    (one new state event), spares diffing two full maps.
    """
    delta_depth = 0
    rows: Mapping[StateKey, str | None] = state
    if prev_group is not None and prev_state is not None:
        prev_depth = conn.execute(_SELECT_DELTA_DEPTH, {"group_id": prev_group}).scalar_one()
        if delta is None:
            delta = diff_state(prev_state, state)
        if prev_depth < SNAPSHOT_INTERVAL and len(delta) <= max(
            1, len(state) * _MAX_DELTA_FRACTION
        ):
            delta_depth = prev_depth + 1
            rows = delta
    group = conn.execute(
        _INSERT_GROUP,
        {
            "room_id": room_id,
            "prev_group": prev_group if delta_depth else None,
            "delta_depth": delta_depth,
        },
    ).scalar_one()
    if rows:
        conn.execute(
            _INSERT_ENTRIES,
            [
                {"state_group": group, "type": t, "state_key": sk, "event_id": eid}
                for (t, sk), eid in rows.items()
            ],
        )
    return int(group)


def load_state_group(
    conn: Connection, group: int, cache: StateGroupCache | None = None
) -> dict[StateKey, str]:
    """The full state map of ``group``: its snapshot with the deltas applied in order."""
    if cache is not None:
        cached = cache.get(group)
        if cached is not None:
            return dict(cached)
    # Walk prev_group links up to the snapshot (bounded by SNAPSHOT_INTERVAL).
    chain_cte = (
        sa.select(state_groups.c.id, state_groups.c.prev_group, state_groups.c.delta_depth)
        .where(state_groups.c.id == group)
        .cte("chain", recursive=True)
    )
    parent = state_groups.alias("parent")
    chain_cte = chain_cte.union_all(
        sa.select(parent.c.id, parent.c.prev_group, parent.c.delta_depth).join(
            chain_cte, parent.c.id == chain_cte.c.prev_group
        )
    )
    chain = conn.execute(sa.select(chain_cte.c.id, chain_cte.c.delta_depth)).all()
    if not chain:
        raise KeyError(f"unknown state group {group}")
    # Oldest (the snapshot, depth 0) first; a cached ancestor shortens the read.
    ordered = sorted(chain, key=lambda row: row.delta_depth)
    state: dict[StateKey, str] = {}
    start = 0
    if cache is not None:
        for index in range(len(ordered) - 1, -1, -1):
            ancestor = cache.get(int(ordered[index].id))
            if ancestor is not None:
                state = dict(ancestor)
                start = index + 1
                break
    needed = [int(row.id) for row in ordered[start:]]
    if needed:
        rows = conn.execute(
            sa.select(
                state_group_entries.c.state_group,
                state_group_entries.c.type,
                state_group_entries.c.state_key,
                state_group_entries.c.event_id,
            ).where(state_group_entries.c.state_group.in_(needed))
        ).all()
        by_group: dict[int, list[tuple[str, str, str | None]]] = {}
        for row in rows:
            by_group.setdefault(int(row.state_group), []).append(
                (row.type, row.state_key, row.event_id)
            )
        for gid in needed:
            for etype, state_key, event_id in by_group.get(gid, ()):
                if event_id is None:
                    state.pop((etype, state_key), None)
                else:
                    state[(etype, state_key)] = event_id
    return state


def replace_current_state(
    conn: Connection, room_id: str, old: StateMap, new: StateMap, new_group: int
) -> None:
    """Move the room's ``current_state`` rows from ``old`` to ``new`` by their diff."""
    apply_current_state_delta(conn, room_id, diff_state(old, new), new_group)


def apply_current_state_delta(
    conn: Connection, room_id: str, delta: Mapping[StateKey, str | None], new_group: int
) -> None:
    """Apply ``delta`` (None removes a key) to ``current_state``; ``new_group`` is the result."""
    removed = [key for key, eid in delta.items() if eid is None]
    changed = {key: eid for key, eid in delta.items() if eid is not None}
    # Changed keys are deleted and re-inserted: one portable statement each way.
    stale = [*removed, *changed]
    if stale:
        conn.execute(
            _DELETE_CURRENT,
            [{"c_room_id": room_id, "c_type": t, "c_state_key": sk} for t, sk in stale],
        )
    if changed:
        memberships = _memberships(conn, changed.values())
        conn.execute(
            _INSERT_CURRENT,
            [
                {
                    "room_id": room_id,
                    "type": etype,
                    "state_key": state_key,
                    "event_id": eid,
                    "membership": memberships.get(eid),
                }
                for (etype, state_key), eid in changed.items()
            ],
        )
    conn.execute(_SET_CURRENT_GROUP, {"c_room_id": room_id, "c_group": new_group})


def _memberships(conn: Connection, event_ids: Iterable[str]) -> dict[str, str]:
    ids = list(event_ids)
    rows = conn.execute(
        sa.select(events.c.event_id, events.c.membership).where(
            events.c.event_id.in_(ids), events.c.membership.is_not(None)
        )
    ).all()
    return {row.event_id: row.membership for row in rows}


def read_current_state_ids(conn: Connection, room_id: str) -> dict[StateKey, str]:
    rows = conn.execute(
        sa.select(current_state.c.type, current_state.c.state_key, current_state.c.event_id).where(
            current_state.c.room_id == room_id
        )
    ).all()
    return {(row.type, row.state_key): row.event_id for row in rows}


def read_members(conn: Connection, room_id: str, membership: str | None = None) -> dict[str, str]:
    """user_id -> membership from ``current_state`` (optionally one membership only)."""
    query = sa.select(current_state.c.state_key, current_state.c.membership).where(
        current_state.c.room_id == room_id, current_state.c.type == "m.room.member"
    )
    if membership is not None:
        query = query.where(current_state.c.membership == membership)
    return {row.state_key: row.membership for row in conn.execute(query).all()}
