"""Checks every room service shares: the room exists, content is sendable, who may read state.

Content arrives as parsed client JSON, which may hold floats or be larger than
an event may be; both would otherwise fail deep in signing as a 500. They are
refused here as 400 ``M_BAD_JSON`` and 413 ``M_TOO_LARGE`` before any event
is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeserver.core.canonical_json import (
    CanonicalJSONError,
    EventSizeError,
    check_event_size,
    validate_canonical_value,
)
from homeserver.errors import MatrixError, bad_json, forbidden, invalid_param, not_found
from homeserver.storage.events import EventStore, RoomInfo, StoredEvent
from homeserver.storage.state import StateKey

MAX_EVENT_TYPE_BYTES = 255
MAX_STATE_KEY_BYTES = 255
MAX_REASON_LENGTH = 1024


def check_room_id(room_id: str) -> None:
    """``!opaque[:server]``: v12 room IDs carry no server name (pitfall 26), so no domain check."""
    if not room_id.startswith("!") or len(room_id) < 2 or len(room_id.encode()) > 255:
        raise invalid_param(f"{room_id!r} is not a valid room ID")


async def require_room(store: EventStore, room_id: str) -> RoomInfo:
    check_room_id(room_id)
    room = await store.get_room(room_id)
    if room is None:
        raise not_found(f"Unknown room {room_id}")
    return room


def check_event_content(
    *,
    room_id: str,
    sender: str,
    event_type: str,
    state_key: str | None,
    content: Mapping[str, Any],
    server_name: str,
) -> None:
    """Refuse content no event can carry: non-canonical values, or over the size limit."""
    if not event_type or len(event_type.encode()) > MAX_EVENT_TYPE_BYTES:
        raise invalid_param("Event type must be 1 to 255 bytes")
    if state_key is not None and len(state_key.encode()) > MAX_STATE_KEY_BYTES:
        raise invalid_param("State key must be at most 255 bytes")
    try:
        validate_canonical_value(dict(content))
    except CanonicalJSONError as exc:
        raise bad_json(f"content is not valid event content: {exc}") from None
    # A skeleton as large as the real PDU will be (hashes, signature, ~5 auth events).
    skeleton: dict[str, Any] = {
        "type": event_type,
        "sender": sender,
        "room_id": room_id,
        "content": content,
        "prev_events": ["$" + "A" * 43] * 3,
        "auth_events": ["$" + "A" * 43] * 5,
        "depth": 2**40,
        "origin_server_ts": 10**13,
        "hashes": {"sha256": "A" * 43},
        "signatures": {server_name: {"ed25519:a_AAAAAA": "A" * 86}},
    }
    if state_key is not None:
        skeleton["state_key"] = state_key
    try:
        check_event_size(skeleton)
    except EventSizeError as exc:
        raise MatrixError(413, "M_TOO_LARGE", f"Event too large: {exc}") from None


def check_reason(reason: object) -> str | None:
    if reason is None:
        return None
    if not isinstance(reason, str):
        raise bad_json("'reason' must be a string")
    if len(reason) > MAX_REASON_LENGTH:
        raise invalid_param("'reason' is too long")
    return reason


async def membership_event(store: EventStore, room_id: str, user_id: str) -> StoredEvent | None:
    """The user's current ``m.room.member`` event in the room, if any."""
    state = await store.get_current_state_ids(room_id)
    event_id = state.get(("m.room.member", user_id))
    return None if event_id is None else await store.get_event(event_id)


def membership_of(event: StoredEvent | None) -> str | None:
    if event is None:
        return None
    value = event.pdu.get("content", {}).get("membership")
    return value if isinstance(value, str) else None


async def readable_state_ids(store: EventStore, room_id: str, user_id: str) -> dict[StateKey, str]:
    """The room state ``user_id`` may see: current if joined (or the room is world
    readable), as it was when they left if they left or were banned; else 403.

    Spec GET /rooms/{roomId}/state: "If the user has left the room then the state is
    taken from the state of the room when they left."
    """
    await require_room(store, room_id)
    current = await store.get_current_state_ids(room_id)
    member_id = current.get(("m.room.member", user_id))
    member = await store.get_event(member_id) if member_id is not None else None
    membership = membership_of(member)
    if membership == "join":
        return current
    history_id = current.get(("m.room.history_visibility", ""))
    if history_id is not None:
        history = await store.get_event(history_id)
        if (
            history is not None
            and history.pdu.get("content", {}).get("history_visibility") == "world_readable"
        ):
            return current
    if member is not None and membership in ("leave", "ban"):
        state = await store.get_state_at_event(member.event_id, before=False)
        if state is not None:
            return state
    raise forbidden("You are not a member of this room")
