"""Push rules, push actions (the notification counts), pushers and stream followers.

* ``push_rules`` holds a user's own rules; ``priority`` orders them inside a
  kind (0 is highest), renumbered on every insert so ``before``/``after`` is a
  list insertion. ``push_rule_overrides`` holds a user's changes to the
  server-default rules (enabled, actions), which are never copied: the
  defaults stay data in ``homeserver/push/default_rules.py``.
* ``event_push_actions``: one row per (user, event) whose actions notify,
  written by the push processor. Unread counts are a range count after the
  user's read receipt, so a receipt clears them without touching this table.
* ``pushers``: one row per (user, app_id, pushkey); ``last_stream_ordering``
  is how far the sender has delivered.
* ``stream_followers``: how far a follower of the event stream (the push
  processor, the search indexer) has processed, so a restart resumes there
  and no event is skipped or counted twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from homeserver.storage.event_tables import current_state, events
from homeserver.storage.events import StoredEvent, _row_to_event
from homeserver.storage.metadata import metadata
from homeserver.storage.receipts import receipts

_CHUNK = 500
MAIN_THREAD = "main"

push_rules = sa.Table(
    "push_rules",
    metadata,
    sa.Column("user_id", sa.Text, primary_key=True),
    sa.Column("kind", sa.Text, primary_key=True),
    sa.Column("rule_id", sa.Text, primary_key=True),
    sa.Column("priority", sa.BigInteger, nullable=False),
    sa.Column("rule_json", sa.Text, nullable=False),
    sa.Column("actions_json", sa.Text, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
)

push_rule_overrides = sa.Table(
    "push_rule_overrides",
    metadata,
    sa.Column("user_id", sa.Text, primary_key=True),
    sa.Column("rule_id", sa.Text, primary_key=True),
    sa.Column("enabled", sa.Boolean, nullable=True),
    sa.Column("actions_json", sa.Text, nullable=True),
)

event_push_actions = sa.Table(
    "event_push_actions",
    metadata,
    sa.Column("user_id", sa.Text, primary_key=True),
    sa.Column("event_id", sa.Text, primary_key=True),
    sa.Column("room_id", sa.Text, nullable=False),
    sa.Column("stream_ordering", sa.BigInteger, nullable=False),
    sa.Column("notify", sa.Boolean, nullable=False),
    sa.Column("highlight", sa.Boolean, nullable=False),
    sa.Column("actions_json", sa.Text, nullable=False),
    sa.Column("ts", sa.BigInteger, nullable=False),
    # "main" or the thread root's event ID (receipts.thread_of), for threaded receipts.
    sa.Column("thread_id", sa.Text, nullable=False, server_default=MAIN_THREAD),
)

pushers = sa.Table(
    "pushers",
    metadata,
    sa.Column("user_id", sa.Text, primary_key=True),
    sa.Column("app_id", sa.Text, primary_key=True),
    sa.Column("pushkey", sa.Text, primary_key=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("body_json", sa.Text, nullable=False),
    sa.Column("device_id", sa.Text, nullable=True),
    sa.Column("last_stream_ordering", sa.BigInteger, nullable=False),
    sa.Column("failing_since", sa.BigInteger, nullable=True),
)

stream_followers = sa.Table(
    "stream_followers",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
)


# -- push rules ------------------------------------------------------------------------


@attrs.frozen
class UserRule:
    kind: str
    rule_id: str
    priority: int
    rule: dict[str, Any]  # conditions / pattern
    actions: list[Any]
    enabled: bool


@attrs.frozen
class Override:
    enabled: bool | None
    actions: list[Any] | None


def read_user_rules(conn: Connection, user_ids: Sequence[str]) -> dict[str, list[UserRule]]:
    out: dict[str, list[UserRule]] = {}
    for start in range(0, len(user_ids), _CHUNK):
        chunk = list(user_ids[start : start + _CHUNK])
        rows = conn.execute(
            sa.select(push_rules)
            .where(push_rules.c.user_id.in_(chunk))
            .order_by(push_rules.c.user_id, push_rules.c.kind, push_rules.c.priority)
        ).all()
        for row in rows:
            out.setdefault(row.user_id, []).append(
                UserRule(
                    kind=row.kind,
                    rule_id=row.rule_id,
                    priority=int(row.priority),
                    rule=json.loads(row.rule_json),
                    actions=json.loads(row.actions_json),
                    enabled=bool(row.enabled),
                )
            )
    return out


def read_overrides(conn: Connection, user_ids: Sequence[str]) -> dict[str, dict[str, Override]]:
    out: dict[str, dict[str, Override]] = {}
    for start in range(0, len(user_ids), _CHUNK):
        chunk = list(user_ids[start : start + _CHUNK])
        rows = conn.execute(
            sa.select(push_rule_overrides).where(push_rule_overrides.c.user_id.in_(chunk))
        ).all()
        for row in rows:
            actions = json.loads(row.actions_json) if row.actions_json is not None else None
            enabled = None if row.enabled is None else bool(row.enabled)
            out.setdefault(row.user_id, {})[row.rule_id] = Override(enabled, actions)
    return out


def write_kind(conn: Connection, user_id: str, kind: str, rules: Sequence[UserRule]) -> None:
    """Replace the user's rules of one kind with ``rules``, in this order."""
    conn.execute(
        sa.delete(push_rules).where(push_rules.c.user_id == user_id, push_rules.c.kind == kind)
    )
    if rules:
        conn.execute(
            sa.insert(push_rules),
            [
                {
                    "user_id": user_id,
                    "kind": kind,
                    "rule_id": r.rule_id,
                    "priority": i,
                    "rule_json": json.dumps(r.rule),
                    "actions_json": json.dumps(r.actions),
                    "enabled": r.enabled,
                }
                for i, r in enumerate(rules)
            ],
        )


def write_override(conn: Connection, user_id: str, rule_id: str, override: Override) -> None:
    conn.execute(
        sa.delete(push_rule_overrides).where(
            push_rule_overrides.c.user_id == user_id, push_rule_overrides.c.rule_id == rule_id
        )
    )
    conn.execute(
        sa.insert(push_rule_overrides).values(
            user_id=user_id,
            rule_id=rule_id,
            enabled=override.enabled,
            actions_json=None if override.actions is None else json.dumps(override.actions),
        )
    )


# -- stream followers ------------------------------------------------------------------------


def read_follower(conn: Connection, name: str) -> int | None:
    row = conn.execute(
        sa.select(stream_followers.c.position).where(stream_followers.c.name == name)
    ).first()
    return None if row is None else int(row.position)


def write_follower(conn: Connection, name: str, position: int) -> None:
    updated = conn.execute(
        sa.update(stream_followers).where(stream_followers.c.name == name).values(position=position)
    ).rowcount
    if not updated:
        conn.execute(sa.insert(stream_followers).values(name=name, position=position))


# -- push actions ----------------------------------------------------------------------------


@attrs.frozen
class PushAction:
    user_id: str
    event_id: str
    room_id: str
    stream_ordering: int
    notify: bool
    highlight: bool
    actions: list[Any]
    ts: int
    thread_id: str = MAIN_THREAD


def insert_push_actions(conn: Connection, actions: Iterable[PushAction]) -> None:
    rows = [
        {
            **attrs.asdict(a, filter=lambda at, _: at.name != "actions"),
            "actions_json": json.dumps(a.actions),
        }
        for a in actions
    ]
    if rows:
        conn.execute(sa.insert(event_push_actions), rows)


def count_unread_by_thread(
    conn: Connection,
    user_id: str,
    room_id: str,
    unthreaded: int,
    threads: Mapping[str, int],
    upto: int | None = None,
) -> dict[str, tuple[int, int]]:
    """``{thread_id: (notifications, highlights)}`` of the actions in the room after the
    read mark of their thread (``threads[thread_id]``, else ``unthreaded``), up to ``upto``.

    One grouped range read on ``(user_id, room_id, stream_ordering)``; the
    per-thread marks are a CASE on the row's thread.
    """
    t = event_push_actions.c
    mark: Any = sa.literal(unthreaded)
    if threads:
        mark = sa.case(dict(threads), value=t.thread_id, else_=unthreaded)
    where = [t.user_id == user_id, t.room_id == room_id]
    where.append(t.stream_ordering > unthreaded)  # every mark is at least this
    where.append(t.stream_ordering > mark)
    if upto is not None:
        where.append(t.stream_ordering <= upto)
    rows = conn.execute(
        sa.select(
            t.thread_id,
            sa.func.count().filter(t.notify == sa.true()),
            sa.func.count().filter(t.highlight == sa.true()),
        )
        .where(*where)
        .group_by(t.thread_id)
    ).all()
    return {row[0]: (int(row[1] or 0), int(row[2] or 0)) for row in rows}


def unread_actions_between(
    conn: Connection,
    user_id: str,
    room_id: str,
    unthreaded: int,
    threads: Mapping[str, int],
    after: int,
    upto: int,
    limit: int,
) -> list[tuple[int, str, bool, bool]]:
    """``(position, thread_id, notify, highlight)`` of the actions in the room in
    ``(after, upto]`` after their thread's read mark, oldest first, at most ``limit``."""
    t = event_push_actions.c
    mark: Any = sa.literal(unthreaded)
    if threads:
        mark = sa.case(dict(threads), value=t.thread_id, else_=unthreaded)
    rows = conn.execute(
        sa.select(t.stream_ordering, t.thread_id, t.notify, t.highlight)
        .where(
            t.user_id == user_id,
            t.room_id == room_id,
            t.stream_ordering > max(after, unthreaded),
            t.stream_ordering <= upto,
            t.stream_ordering > mark,
        )
        .order_by(t.stream_ordering)
        .limit(limit)
    ).all()
    return [(int(r[0]), r[1], bool(r[2]), bool(r[3])) for r in rows]


def rooms_with_recent_actions(conn: Connection, user_id: str, scan: int) -> list[str]:
    """Rooms of the user's ``scan`` latest notifying actions that they are still joined to."""
    t = event_push_actions.c
    recent = (
        sa.select(t.room_id)
        .where(t.user_id == user_id, t.notify == sa.true())
        .order_by(t.stream_ordering.desc())
        .limit(scan)
        .subquery()
    )
    rows = conn.execute(
        sa.select(recent.c.room_id)
        .distinct()
        .join(
            current_state,
            sa.and_(
                current_state.c.room_id == recent.c.room_id,
                current_state.c.type == "m.room.member",
                current_state.c.state_key == user_id,
                current_state.c.membership == "join",
            ),
        )
    ).scalars()
    return sorted(rows)


def receipts_in_rooms(
    conn: Connection, user_id: str, room_ids: Sequence[str], types: Sequence[str]
) -> list[tuple[str, str, int]]:
    """``(room_id, thread_id, event position)`` of the user's receipts of these types."""
    r = receipts.c
    out: list[tuple[str, str, int]] = []
    for start in range(0, len(room_ids), _CHUNK):
        rows = conn.execute(
            sa.select(r.room_id, r.thread_id, r.event_stream_ordering).where(
                r.room_id.in_(room_ids[start : start + _CHUNK]),
                r.user_id == user_id,
                r.receipt_type.in_(list(types)),
            )
        ).all()
        out.extend((row[0], row[1], int(row[2])) for row in rows)
    return out


def last_events_of_sender(
    conn: Connection, sender: str, room_ids: Sequence[str], upto: int
) -> dict[str, StoredEvent]:
    """The sender's latest event at or before ``upto`` in each of these rooms."""
    out: dict[str, StoredEvent] = {}
    for start in range(0, len(room_ids), _CHUNK):
        latest = (
            sa.select(sa.func.max(events.c.stream_ordering).label("so"))
            .where(
                events.c.room_id.in_(room_ids[start : start + _CHUNK]),
                events.c.sender == sender,
                events.c.stream_ordering <= upto,
            )
            .group_by(events.c.room_id)
            .subquery()
        )
        rows = conn.execute(
            sa.select(events).join(latest, events.c.stream_ordering == latest.c.so)
        ).all()
        for row in rows:
            event = _row_to_event(row)
            out[event.room_id] = event
    return out


def count_notifications_in_rooms(
    conn: Connection, user_id: str, marks: Mapping[str, tuple[int, Mapping[str, int]]]
) -> int:
    """Notifying actions after each room's read marks (``room -> (unthreaded, threads)``)."""
    t = event_push_actions.c
    total = 0
    rooms = list(marks)
    for start in range(0, len(rooms), 100):
        clauses = []
        for room_id in rooms[start : start + 100]:
            unthreaded, threads = marks[room_id]
            mark: Any = sa.literal(unthreaded)
            if threads:
                mark = sa.case(dict(threads), value=t.thread_id, else_=unthreaded)
            clauses.append(
                sa.and_(
                    t.room_id == room_id, t.stream_ordering > unthreaded, t.stream_ordering > mark
                )
            )
        total += int(
            conn.execute(
                sa.select(sa.func.count()).where(
                    t.user_id == user_id, t.notify == sa.true(), sa.or_(*clauses)
                )
            ).scalar_one()
        )
    return total


def delete_push_actions_of(conn: Connection, targets: Sequence[tuple[str, str]]) -> None:
    """Forget the push actions of redacted events (``(room_id, event_id)`` pairs)."""
    by_room: dict[str, list[str]] = {}
    for room_id, event_id in targets:
        by_room.setdefault(room_id, []).append(event_id)
    t = event_push_actions.c
    for room_id, ids in by_room.items():
        for start in range(0, len(ids), _CHUNK):
            conn.execute(
                sa.delete(event_push_actions).where(
                    t.event_id.in_(ids[start : start + _CHUNK]), t.room_id == room_id
                )
            )


def last_event_of_sender(
    conn: Connection, room_id: str, sender: str, upto: int
) -> StoredEvent | None:
    """The sender's latest event in the room at or before ``upto`` (their own read mark)."""
    row = conn.execute(
        sa.select(events)
        .where(
            events.c.room_id == room_id,
            events.c.sender == sender,
            events.c.stream_ordering <= upto,
        )
        .order_by(events.c.stream_ordering.desc())
        .limit(1)
    ).first()
    return None if row is None else _row_to_event(row)


def read_notifications(
    conn: Connection, user_id: str, before: int | None, limit: int, only_highlight: bool
) -> list[PushAction]:
    """The user's push actions, newest first, strictly before ``before``."""
    t = event_push_actions.c
    query = sa.select(event_push_actions).where(t.user_id == user_id, t.notify == sa.true())
    if before is not None:
        query = query.where(t.stream_ordering < before)
    if only_highlight:
        query = query.where(t.highlight == sa.true())
    rows = conn.execute(query.order_by(t.stream_ordering.desc()).limit(limit)).all()
    return [_action(row) for row in rows]


def read_actions_after(conn: Connection, user_id: str, after: int, limit: int) -> list[PushAction]:
    """The user's notifying actions after ``after``, oldest first (the pusher's queue)."""
    t = event_push_actions.c
    rows = conn.execute(
        sa.select(event_push_actions)
        .where(t.user_id == user_id, t.notify == sa.true(), t.stream_ordering > after)
        .order_by(t.stream_ordering)
        .limit(limit)
    ).all()
    return [_action(row) for row in rows]


def _action(row: sa.Row[Any]) -> PushAction:
    return PushAction(
        user_id=row.user_id,
        event_id=row.event_id,
        room_id=row.room_id,
        stream_ordering=int(row.stream_ordering),
        notify=bool(row.notify),
        highlight=bool(row.highlight),
        actions=json.loads(row.actions_json),
        ts=int(row.ts),
        thread_id=row.thread_id,
    )


# -- pushers -----------------------------------------------------------------------------------


@attrs.frozen
class PusherRow:
    user_id: str
    app_id: str
    pushkey: str
    kind: str
    body: dict[str, Any]
    last_stream_ordering: int


def _pusher(row: sa.Row[Any]) -> PusherRow:
    return PusherRow(
        user_id=row.user_id,
        app_id=row.app_id,
        pushkey=row.pushkey,
        kind=row.kind,
        body=json.loads(row.body_json),
        last_stream_ordering=int(row.last_stream_ordering),
    )


def read_pushers(conn: Connection, user_id: str | None = None) -> list[PusherRow]:
    query = sa.select(pushers).order_by(pushers.c.user_id, pushers.c.app_id, pushers.c.pushkey)
    if user_id is not None:
        query = query.where(pushers.c.user_id == user_id)
    return [_pusher(row) for row in conn.execute(query).all()]


def read_pushers_of(conn: Connection, user_ids: Sequence[str]) -> list[PusherRow]:
    """The pushers of any of ``user_ids`` (chunked under SQLite's parameter limit)."""
    out: list[PusherRow] = []
    ids = sorted(set(user_ids))
    for start in range(0, len(ids), 500):
        query = (
            sa.select(pushers)
            .where(pushers.c.user_id.in_(ids[start : start + 500]))
            .order_by(pushers.c.user_id, pushers.c.app_id, pushers.c.pushkey)
        )
        out += [_pusher(row) for row in conn.execute(query).all()]
    return out


def delete_pushers(
    conn: Connection, app_id: str, pushkey: str, *, user_id: str | None = None
) -> int:
    query = sa.delete(pushers).where(pushers.c.app_id == app_id, pushers.c.pushkey == pushkey)
    if user_id is not None:
        query = query.where(pushers.c.user_id == user_id)
    return int(conn.execute(query).rowcount or 0)


def insert_pusher(conn: Connection, row: PusherRow, device_id: str | None) -> None:
    conn.execute(
        sa.insert(pushers).values(
            user_id=row.user_id,
            app_id=row.app_id,
            pushkey=row.pushkey,
            kind=row.kind,
            body_json=json.dumps(row.body),
            device_id=device_id,
            last_stream_ordering=row.last_stream_ordering,
        )
    )


def count_pushers(conn: Connection, user_id: str) -> int:
    return int(
        conn.execute(
            sa.select(sa.func.count()).select_from(pushers).where(pushers.c.user_id == user_id)
        ).scalar_one()
    )


def advance_pusher(
    conn: Connection, user_id: str, app_id: str, pushkey: str, position: int
) -> None:
    conn.execute(
        sa.update(pushers)
        .where(
            pushers.c.user_id == user_id,
            pushers.c.app_id == app_id,
            pushers.c.pushkey == pushkey,
            pushers.c.last_stream_ordering < position,
        )
        .values(last_stream_ordering=position)
    )
