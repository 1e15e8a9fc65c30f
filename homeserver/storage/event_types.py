"""The values that cross the event storage boundary: stored events and what to persist.

Kept apart from the queries so the write path (``event_persist.py``) and the
reads (``events.py``) share them without importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from sys import intern
from typing import Any, Literal

import attrs

from homeserver.storage.state import StateKey


@attrs.frozen
class RoomInfo:
    room_id: str
    room_version: str
    creator: str


# How deep compact_pdu shares dict keys: the PDU's own, and those of ``content``,
# ``hashes``, ``signatures``, ``unsigned`` and what they hold directly.
_SHARED_KEY_DEPTH = 3
_IDS_FIELDS = ("auth_events", "prev_events")
_SHARED_FIELDS = ("room_id", "sender", "type")


def _share_keys(value: Any, depth: int) -> Any:
    if type(value) is dict:
        if depth == 0:
            return value
        return {intern(k): _share_keys(v, depth - 1) for k, v in value.items()}
    if type(value) is list and depth > 0:
        return [_share_keys(v, depth - 1) for v in value]
    return value


def compact_pdu(pdu: dict[str, Any]) -> dict[str, Any]:
    """An equal PDU whose repeated strings are shared with other events' (for caches).

    Its dict keys are interned, and so are its room, sender, type and the event
    IDs it cites: an event's ``prev_events`` entry is its parent's
    ``event_id``. A PDU parsed from JSON, or built from a client's JSON body,
    otherwise holds its own copy of each ("content", "body", the room ID from
    the request path...). The dicts and lists down to ``_SHARED_KEY_DEPTH`` are
    new; ``pdu`` is left as it is.
    """
    out: dict[str, Any] = _share_keys(pdu, _SHARED_KEY_DEPTH)
    for field in _SHARED_FIELDS:
        value = out.get(field)
        if type(value) is str:
            out[field] = intern(value)
    for field in _IDS_FIELDS:
        ids = out.get(field)
        if type(ids) is list:
            out[field] = [intern(i) if type(i) is str else i for i in ids]
    return out


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
    # The prev events were read as the room's forward extremities: if any of them no
    # longer is one (another writer got there first), raise ExtremitiesChanged so the
    # caller rebuilds the event instead of forking the room.
    expect_prevs_are_extremities: bool = False


class ExtremitiesChanged(Exception):
    """The room's forward extremities moved since the event was built; nothing was written."""


@attrs.frozen
class PersistResult:
    """What a persist wrote. The maps are handed to the state cache: read them, never mutate."""

    event: StoredEvent
    # Groups written by the transaction, for the cache once it has committed.
    new_groups: dict[int, dict[StateKey, str]]
    state_after: Mapping[StateKey, str] | None
