"""Persisting an event: its row, edges, state groups, stream ordering, extremities, current state.

Everything an event changes lands in one transaction (:func:`persist_event_txn`):
either all of it is visible or none of it is, so a crash never leaves a
half-written event. Callers decide *what* the state is (the event-creation
service resolves it with the pure core); this module only stores it.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from sys import intern

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from homeserver.core.canonical_json import encode_canonical_json
from homeserver.storage.event_tables import (
    event_auth_edges,
    event_edges,
    event_forward_extremities,
    event_stream_position,
    events,
    rooms,
)
from homeserver.storage.event_types import (
    EventToPersist,
    ExtremitiesChanged,
    PersistResult,
    StoredEvent,
    compact_pdu,
)
from homeserver.storage.multi_insert import insert_rows
from homeserver.storage.relations import insert_relation
from homeserver.storage.state import (
    StateGroupCache,
    StateKey,
    apply_current_state_delta,
    load_state_group,
    replace_current_state,
    store_state_group,
)

# Prebuilt statements for the per-event hot path: building a construct per call,
# and computing its cache key, costs more than executing it on SQLite.
_ALLOCATE_STREAM = (
    sa.update(event_stream_position)
    .where(event_stream_position.c.id == 1)
    .values(position=event_stream_position.c.position + 1)
    .returning(event_stream_position.c.position)
)
# n positions at once, for a chain of events written together (the last one is returned).
_ALLOCATE_STREAMS = (
    sa.update(event_stream_position)
    .where(event_stream_position.c.id == 1)
    .values(position=event_stream_position.c.position + sa.bindparam("n"))
    .returning(event_stream_position.c.position)
)
_INSERT_EVENT = sa.insert(events)
# Columns of the rows built below (_event_row and the edge dicts), for insert_rows.
_EVENT_COLUMNS = (
    "event_id",
    "room_id",
    "type",
    "state_key",
    "sender",
    "membership",
    "depth",
    "topological_ordering",
    "stream_ordering",
    "origin_server_ts",
    "json",
    "rejected_reason",
    "soft_failed",
    "outlier",
    "state_group_before",
    "state_group_after",
)
_EDGE_COLUMNS = ("event_id", "prev_event_id", "room_id")
_AUTH_EDGE_COLUMNS = ("event_id", "auth_event_id", "room_id")
_INSERT_EDGE = sa.insert(event_edges)
_INSERT_AUTH_EDGE = sa.insert(event_auth_edges)
_MOVE_EXTREMITY = (
    sa.update(event_forward_extremities)
    .where(
        event_forward_extremities.c.room_id == sa.bindparam("r_room_id"),
        event_forward_extremities.c.event_id == sa.bindparam("r_prev_id"),
    )
    .values(event_id=sa.bindparam("r_event_id"))
)
_INSERT_EXTREMITY = sa.insert(event_forward_extremities)
_SELECT_CURRENT_GROUP = sa.select(rooms.c.current_state_group).where(
    rooms.c.room_id == sa.bindparam("room_id")
)


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
    position = conn.execute(_ALLOCATE_STREAM).scalar_one()
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

    if not event.local and event.state_before is not None:
        _drop_outlier(conn, event.event_id)

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
            # _state_after built a fresh map for this state event: no need to copy it.
            assert isinstance(state_after, dict)
            new_groups[group_after] = state_after

    stream_ordering = allocate_stream_ordering(conn)
    conn.execute(
        _INSERT_EVENT,
        _event_row(event, room_id, stream_ordering, group_before, group_after),
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
            expect_extremities=event.expect_prevs_are_extremities,
        )

    if event.new_current_state is not None and state_after is not None and group_after is not None:
        old_group = conn.execute(_SELECT_CURRENT_GROUP, {"room_id": room_id}).scalar_one_or_none()
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

    stored = _stored_event(event, room_id, stream_ordering, group_before, group_after)
    insert_relation(conn, stored)
    return PersistResult(event=stored, new_groups=new_groups, state_after=state_after)


def _event_row(
    event: EventToPersist,
    room_id: str,
    stream_ordering: int,
    group_before: int | None,
    group_after: int | None,
) -> dict[str, object]:
    """The ``events`` row of ``event``."""
    pdu = event.pdu
    content = pdu.get("content", {})
    membership = content.get("membership") if pdu["type"] == "m.room.member" else None
    depth = int(pdu.get("depth", 0))
    return dict(
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


def _stored_event(
    event: EventToPersist,
    room_id: str,
    stream_ordering: int,
    group_before: int | None,
    group_after: int | None,
) -> StoredEvent:
    # The event cache keeps this copy, for as long as the event stays hot.
    pdu = compact_pdu(event.pdu)
    depth = int(pdu.get("depth", 0))
    return StoredEvent(
        event_id=intern(event.event_id),
        room_id=intern(room_id),
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


def is_chain_message(event: EventToPersist, group: int | None) -> bool:
    """Whether :func:`persist_message_chain_txn` can write ``event`` (before state in ``group``).

    A local, accepted message event (no state key, no current-state change)
    citing exactly one prev event, whose state before is a committed group.
    """
    return (
        group is not None
        and event.local
        and event.state_before is not None
        and event.new_room is None
        and event.new_current_state is None
        and event.rejected_reason is None
        and not event.soft_failed
        and "room_id" in event.pdu
        and event.pdu.get("state_key") is None
        and len(set(event.pdu.get("prev_events", []))) == 1
    )


def persist_message_chain_txn(
    conn: Connection, chain: Sequence[tuple[EventToPersist, int]]
) -> list[PersistResult]:
    """Write a chain of messages, each citing the one before, in a few statements in all.

    Every ``(event, state group before)`` must pass :func:`is_chain_message`, and
    every event after the first cites the one before it. That is the steady
    state of a busy room (group commit): the events change no state, so each
    one's state group before and after is the group it was built on; they take
    consecutive stream orderings in chain order, and the first event's prev
    event hands its place as forward extremity to the last event, which is what
    writing them one by one does, with one statement per table instead of one
    per event and table.
    """
    first, _ = chain[0]
    room_id: str = first.pdu["room_id"]
    for (previous, _), (event, _) in itertools.pairwise(chain):
        if event.pdu["prev_events"] != [previous.event_id] or event.pdu["room_id"] != room_id:
            raise ValueError(f"{event.event_id} does not continue the chain")
    last_position = int(conn.execute(_ALLOCATE_STREAMS, {"n": len(chain)}).scalar_one())
    first_position = last_position - len(chain) + 1
    rows: list[dict[str, object]] = []
    edges: list[dict[str, str]] = []
    auth_edges: list[dict[str, str]] = []
    stored: list[StoredEvent] = []
    for offset, (event, group) in enumerate(chain):
        position = first_position + offset
        rows.append(_event_row(event, room_id, position, group, group))
        edges.append(
            {
                "event_id": event.event_id,
                "prev_event_id": event.pdu["prev_events"][0],
                "room_id": room_id,
            }
        )
        auth_edges.extend(
            {"event_id": event.event_id, "auth_event_id": a, "room_id": room_id}
            for a in dict.fromkeys(event.pdu.get("auth_events", []))
        )
        stored.append(_stored_event(event, room_id, position, group, group))
    # One multi-row statement per table (multi_insert.py says why not executemany).
    insert_rows(conn, events, _EVENT_COLUMNS, [_values(row, _EVENT_COLUMNS) for row in rows])
    insert_rows(conn, event_edges, _EDGE_COLUMNS, [_values(e, _EDGE_COLUMNS) for e in edges])
    if auth_edges:
        insert_rows(
            conn,
            event_auth_edges,
            _AUTH_EDGE_COLUMNS,
            [_values(a, _AUTH_EDGE_COLUMNS) for a in auth_edges],
        )
    _update_forward_extremities(
        conn,
        room_id,
        chain[-1][0].event_id,
        first.pdu["prev_events"][:1],
        may_have_children=False,
        expect_extremities=first.expect_prevs_are_extremities,
    )
    results = []
    for (event, _), event_stored in zip(chain, stored, strict=True):
        insert_relation(conn, event_stored)
        assert event.state_before is not None  # is_chain_message
        results.append(
            PersistResult(event=event_stored, new_groups={}, state_after=event.state_before.state)
        )
    return results


def _values(row: Mapping[str, object], columns: Sequence[str]) -> tuple[object, ...]:
    return tuple(row[column] for column in columns)


def _drop_outlier(conn: Connection, event_id: str) -> None:
    """Remove an outlier copy of an event that now arrives with its place in the DAG.

    The event is then stored afresh, with a new stream ordering so sync sees it.
    """
    dropped = conn.execute(
        sa.delete(events).where(events.c.event_id == event_id, events.c.outlier == sa.true())
    ).rowcount
    if dropped:
        conn.execute(sa.delete(event_edges).where(event_edges.c.event_id == event_id))
        conn.execute(sa.delete(event_auth_edges).where(event_auth_edges.c.event_id == event_id))


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
            _INSERT_EDGE,
            [
                {"event_id": event_id, "prev_event_id": p, "room_id": room_id}
                for p in dict.fromkeys(prev_event_ids)
            ],
        )
    if auth_event_ids:
        conn.execute(
            _INSERT_AUTH_EDGE,
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
    expect_extremities: bool = False,
) -> None:
    """The event replaces its prev events as an extremity, unless it already has a child.

    A forward extremity is an event with no accepted child (s2s brief, "DAG bookkeeping");
    a child can arrive first over federation, hence the check. With
    ``expect_extremities`` every prev event must still be an extremity: the row
    counts of the statements we run anyway tell, at no extra cost.
    """
    prevs = list(dict.fromkeys(prev_event_ids))
    if not may_have_children and len(prevs) == 1:
        # The common case, one statement: the new event takes its parent's place.
        moved = conn.execute(
            _MOVE_EXTREMITY,
            {"r_room_id": room_id, "r_prev_id": prevs[0], "r_event_id": event_id},
        )
        if moved.rowcount == 1:
            return
        if expect_extremities:
            raise ExtremitiesChanged(f"{prevs[0]} is no longer a forward extremity")
    elif prevs:
        removed = conn.execute(
            sa.delete(event_forward_extremities).where(
                event_forward_extremities.c.room_id == room_id,
                event_forward_extremities.c.event_id.in_(prevs),
            )
        )
        if expect_extremities and removed.rowcount != len(prevs):
            raise ExtremitiesChanged("some prev events are no longer forward extremities")
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
    conn.execute(_INSERT_EXTREMITY, {"room_id": room_id, "event_id": event_id})
