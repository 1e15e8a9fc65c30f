"""Room queries beyond the DAG: a user's rooms, forgotten rooms, user-directory candidates.

Member lists come from ``current_state`` (indexed by type, state_key and
membership), so "which rooms is @u joined to" and "who shares a room with @u"
are single indexed reads rather than walks over events.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from homeserver.core.redaction import redact_event
from homeserver.core.room_versions import get_room_version
from homeserver.storage.accounts import profiles, users
from homeserver.storage.event_tables import current_state, events, rooms
from homeserver.storage.metadata import metadata
from homeserver.storage.timeline import read_redactions

# Rooms a user asked to forget (spec: POST /rooms/{roomId}/forget); a new
# membership in the room clears the mark.
room_forgotten = sa.Table(
    "room_forgotten",
    metadata,
    sa.Column("user_id", sa.Text, primary_key=True),
    sa.Column("room_id", sa.Text, primary_key=True),
)


def rooms_for_user(
    conn: Connection, user_id: str, membership: str | None = "join"
) -> dict[str, str]:
    """room_id -> membership for the user's current memberships (optionally one kind)."""
    query = sa.select(current_state.c.room_id, current_state.c.membership).where(
        current_state.c.type == "m.room.member", current_state.c.state_key == user_id
    )
    if membership is not None:
        query = query.where(current_state.c.membership == membership)
    return {row.room_id: row.membership for row in conn.execute(query).all()}


def forget_room(conn: Connection, user_id: str, room_id: str) -> None:
    conn.execute(
        sa.delete(room_forgotten).where(
            room_forgotten.c.user_id == user_id, room_forgotten.c.room_id == room_id
        )
    )
    conn.execute(sa.insert(room_forgotten).values(user_id=user_id, room_id=room_id))


def unforget_room(conn: Connection, user_id: str, room_id: str) -> None:
    conn.execute(
        sa.delete(room_forgotten).where(
            room_forgotten.c.user_id == user_id, room_forgotten.c.room_id == room_id
        )
    )


def forgotten_rooms(conn: Connection, user_id: str) -> set[str]:
    rows = conn.execute(
        sa.select(room_forgotten.c.room_id).where(room_forgotten.c.user_id == user_id)
    ).all()
    return {row.room_id for row in rows}


def joined_counts(conn: Connection, room_ids: Sequence[str]) -> dict[str, int]:
    if not room_ids:
        return {}
    rows = conn.execute(
        sa.select(current_state.c.room_id, sa.func.count().label("n"))
        .where(
            current_state.c.type == "m.room.member",
            current_state.c.membership == "join",
            current_state.c.room_id.in_(list(room_ids)),
        )
        .group_by(current_state.c.room_id)
    ).all()
    return {row.room_id: int(row.n) for row in rows}


@attrs.frozen
class DirectoryUser:
    user_id: str
    displayname: str | None
    avatar_url: str | None


def _like_pattern(term: str) -> str:
    escaped = term.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_users(
    conn: Connection, searcher: str, public_room_ids: Sequence[str], term: str, limit: int
) -> list[DirectoryUser]:
    """Users joined to a room the searcher is joined to, or to one of ``public_room_ids``,
    whose user ID or display name contains ``term`` (case-insensitive); ``limit`` rows at most.
    """
    shared = sa.select(current_state.c.room_id).where(
        current_state.c.type == "m.room.member",
        current_state.c.state_key == searcher,
        current_state.c.membership == "join",
    )
    room_filter: sa.ColumnElement[bool] = current_state.c.room_id.in_(shared)
    if public_room_ids:
        room_filter = sa.or_(room_filter, current_state.c.room_id.in_(list(public_room_ids)))
    candidates = (
        sa.select(current_state.c.state_key.label("user_id"))
        .where(
            current_state.c.type == "m.room.member",
            current_state.c.membership == "join",
            room_filter,
        )
        .distinct()
        .subquery()
    )
    pattern = _like_pattern(term)
    query = (
        sa.select(candidates.c.user_id, profiles.c.displayname, profiles.c.avatar_url)
        .select_from(
            candidates.outerjoin(profiles, profiles.c.user_id == candidates.c.user_id).outerjoin(
                users, users.c.user_id == candidates.c.user_id
            )
        )
        .where(
            # Deactivated accounts are not offered (their memberships may linger).
            sa.or_(users.c.deactivated.is_(None), users.c.deactivated == sa.false()),
            sa.or_(
                sa.func.lower(candidates.c.user_id).like(pattern, escape="\\"),
                sa.func.lower(profiles.c.displayname).like(pattern, escape="\\"),
            ),
        )
        .order_by(candidates.c.user_id)
        .limit(limit)
    )
    return [
        DirectoryUser(user_id=row.user_id, displayname=row.displayname, avatar_url=row.avatar_url)
        for row in conn.execute(query).all()
    ]


def last_event_at(conn: Connection, room_id: str, position: int) -> str | None:
    """The room's last accepted, non-outlier event at or before stream ``position``."""
    row = conn.execute(
        sa.select(events.c.event_id)
        .where(
            events.c.room_id == room_id,
            events.c.stream_ordering <= position,
            events.c.outlier == sa.false(),
            events.c.rejected_reason.is_(None),
        )
        .order_by(events.c.stream_ordering.desc())
        .limit(1)
    ).first()
    return None if row is None else str(row.event_id)


def public_join_rule_rooms(conn: Connection) -> set[str]:
    """Rooms whose current join rule is ``public``."""
    rows = conn.execute(
        sa.select(current_state.c.room_id, events.c.json)
        .join(events, events.c.event_id == current_state.c.event_id)
        .where(current_state.c.type == "m.room.join_rules", current_state.c.state_key == "")
    ).all()
    out = set()
    for row in rows:
        content = json.loads(row.json).get("content", {})
        if isinstance(content, dict) and content.get("join_rule") == "public":
            out.add(row.room_id)
    return out


# The state a room-directory entry is built from (spec PublishedRoomsChunk).
SUMMARY_TYPES = (
    "m.room.create",
    "m.room.name",
    "m.room.topic",
    "m.room.canonical_alias",
    "m.room.avatar",
    "m.room.join_rules",
    "m.room.history_visibility",
    "m.room.guest_access",
)


def summary_state(
    conn: Connection, room_ids: Sequence[str]
) -> dict[str, dict[str, dict[str, Any]]]:
    """room_id -> event type -> content of the rooms' current summary state, in one query.

    Redacted events contribute their redacted content (a redacted name is no name).
    """
    out: dict[str, dict[str, dict[str, Any]]] = {room_id: {} for room_id in room_ids}
    ids = list(room_ids)
    for start in range(0, len(ids), 500):
        rows = conn.execute(
            sa.select(
                current_state.c.room_id,
                current_state.c.type,
                events.c.event_id,
                events.c.json,
                rooms.c.room_version,
            )
            .join(events, events.c.event_id == current_state.c.event_id)
            .join(rooms, rooms.c.room_id == current_state.c.room_id)
            .where(
                current_state.c.room_id.in_(ids[start : start + 500]),
                current_state.c.type.in_(SUMMARY_TYPES),
                current_state.c.state_key == "",
            )
        ).all()
        redacted = read_redactions(conn, [row.event_id for row in rows])
        for row in rows:
            pdu = json.loads(row.json)
            version = get_room_version(row.room_version)
            if row.event_id in redacted and version is not None:
                pdu = redact_event(pdu, version)
            content = pdu.get("content")
            if isinstance(content, dict):
                out[row.room_id][row.type] = content
    return out
