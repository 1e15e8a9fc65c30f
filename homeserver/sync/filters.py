"""Event filters (``definitions/sync_filter.yaml``): parsing, validation, application. Pure.

A filter arrives as JSON (stored with ``POST /user/{userId}/filter``, or inline
in ``/sync?filter={...}`` and ``/messages?filter={...}``). :func:`parse_filter`
turns it into frozen values or raises 400 ``M_BAD_JSON`` naming the field; the
``matches`` methods and :func:`apply_event_fields` apply it. Unknown keys are
ignored (the spec lets filters grow), but a known key of the wrong type is
refused: a client that sends ``"limit": "10"`` has a bug it should hear about.

Type and sender patterns accept ``*`` as "any sequence of characters"
(matrix_brief 1.5), e.g. ``m.room.*``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import attrs

from homeserver.errors import MatrixError, bad_json

# Bounds that protect the server; the spec sets none.
MAX_FILTER_LIST = 1000
MAX_FILTER_STRING = 1024
MAX_LIMIT = 1000


def _list_of_strings(body: Mapping[str, Any], name: str, path: str) -> tuple[str, ...] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad_json(f"'{path}{name}' must be a list of strings")
    if len(value) > MAX_FILTER_LIST or any(len(v) > MAX_FILTER_STRING for v in value):
        raise bad_json(f"'{path}{name}' is too long")
    return tuple(value)


def _boolean(body: Mapping[str, Any], name: str, path: str) -> bool | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise bad_json(f"'{path}{name}' must be a boolean")
    return value


def _object(body: Mapping[str, Any], name: str, path: str) -> Mapping[str, Any]:
    value = body.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_json(f"'{path}{name}' must be an object")
    return value


@lru_cache(maxsize=1024)
def _pattern(glob: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in glob.split("*")), re.DOTALL)


def glob_matches(pattern: str, value: str) -> bool:
    if "*" not in pattern:
        return pattern == value
    return _pattern(pattern).fullmatch(value) is not None


def _any_matches(patterns: Sequence[str], value: str) -> bool:
    return any(glob_matches(p, value) for p in patterns)


@attrs.frozen
class EventFilter:
    """``event_filter.yaml``: limit, types/not_types, senders/not_senders."""

    limit: int | None = None
    types: tuple[str, ...] | None = None
    not_types: tuple[str, ...] = ()
    senders: tuple[str, ...] | None = None
    not_senders: tuple[str, ...] = ()

    def matches(self, event_type: str, sender: str) -> bool:
        # "not_" wins over the include lists (event_filter.yaml).
        if _any_matches(self.not_types, event_type):
            return False
        if self.types is not None and not _any_matches(self.types, event_type):
            return False
        if sender in self.not_senders:
            return False
        return self.senders is None or sender in self.senders

    def matches_event(self, event: Mapping[str, Any]) -> bool:
        return self.matches(str(event.get("type", "")), str(event.get("sender", "")))


@attrs.frozen
class RoomEventFilter(EventFilter):
    """``room_event_filter.yaml``: adds rooms, contains_url and lazy-loading switches."""

    rooms: tuple[str, ...] | None = None
    not_rooms: tuple[str, ...] = ()
    contains_url: bool | None = None
    lazy_load_members: bool = False
    include_redundant_members: bool = False
    unread_thread_notifications: bool = False

    def matches_room(self, room_id: str) -> bool:
        if room_id in self.not_rooms:
            return False
        return self.rooms is None or room_id in self.rooms

    def matches_event(self, event: Mapping[str, Any]) -> bool:
        if not super().matches_event(event):
            return False
        room_id = event.get("room_id")
        if isinstance(room_id, str) and not self.matches_room(room_id):
            return False
        if self.contains_url is not None:
            content = event.get("content")
            has_url = isinstance(content, Mapping) and isinstance(content.get("url"), str)
            if has_url != self.contains_url:
                return False
        return True


@attrs.frozen
class RoomFilter:
    rooms: tuple[str, ...] | None = None
    not_rooms: tuple[str, ...] = ()
    include_leave: bool = False
    timeline: RoomEventFilter = RoomEventFilter()
    state: RoomEventFilter = RoomEventFilter()
    ephemeral: RoomEventFilter = RoomEventFilter()
    account_data: RoomEventFilter = RoomEventFilter()

    def matches_room(self, room_id: str) -> bool:
        if room_id in self.not_rooms:
            return False
        return self.rooms is None or room_id in self.rooms


@attrs.frozen
class Filter:
    event_fields: tuple[str, ...] | None = None
    event_format: str = "client"
    presence: EventFilter = EventFilter()
    account_data: EventFilter = EventFilter()
    room: RoomFilter = RoomFilter()

    @property
    def lazy_load_members(self) -> bool:
        return self.room.state.lazy_load_members


DEFAULT_FILTER = Filter()


def _event_filter_fields(body: Mapping[str, Any], path: str) -> dict[str, Any]:
    limit = body.get("limit")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)):
        raise bad_json(f"'{path}limit' must be an integer")
    if limit is not None and limit < 0:
        raise bad_json(f"'{path}limit' must not be negative")
    return {
        "limit": min(limit, MAX_LIMIT) if limit is not None else None,
        "types": _list_of_strings(body, "types", path),
        "not_types": _list_of_strings(body, "not_types", path) or (),
        "senders": _list_of_strings(body, "senders", path),
        "not_senders": _list_of_strings(body, "not_senders", path) or (),
    }


def parse_event_filter(body: Any, path: str = "") -> EventFilter:
    if not isinstance(body, dict):
        raise bad_json(f"'{path.rstrip('.') or 'filter'}' must be an object")
    return EventFilter(**_event_filter_fields(body, path))


def parse_room_event_filter(body: Any, path: str = "") -> RoomEventFilter:
    if not isinstance(body, dict):
        raise bad_json(f"'{path.rstrip('.') or 'filter'}' must be an object")
    fields = _event_filter_fields(body, path)
    return RoomEventFilter(
        **fields,
        rooms=_list_of_strings(body, "rooms", path),
        not_rooms=_list_of_strings(body, "not_rooms", path) or (),
        contains_url=_boolean(body, "contains_url", path),
        lazy_load_members=bool(_boolean(body, "lazy_load_members", path)),
        include_redundant_members=bool(_boolean(body, "include_redundant_members", path)),
        unread_thread_notifications=bool(_boolean(body, "unread_thread_notifications", path)),
    )


def _room_ids(body: Mapping[str, Any], name: str) -> tuple[str, ...] | None:
    ids = _list_of_strings(body, name, "room.")
    if ids is not None and not all(i.startswith("!") for i in ids):
        raise bad_json(f"'room.{name}' must hold room IDs")
    return ids


def parse_filter(body: Any) -> Filter:
    """A whole filter (``sync_filter.yaml``), or 400 M_BAD_JSON naming the bad field."""
    if not isinstance(body, dict):
        raise bad_json("A filter must be a JSON object")
    event_format = body.get("event_format", "client")
    if event_format not in ("client", "federation"):
        raise bad_json("'event_format' must be 'client' or 'federation'")
    room = _object(body, "room", "")
    room_filter = RoomFilter(
        rooms=_room_ids(room, "rooms"),
        not_rooms=_room_ids(room, "not_rooms") or (),
        include_leave=bool(_boolean(room, "include_leave", "room.")),
        timeline=parse_room_event_filter(_object(room, "timeline", "room."), "room.timeline."),
        state=parse_room_event_filter(_object(room, "state", "room."), "room.state."),
        ephemeral=parse_room_event_filter(_object(room, "ephemeral", "room."), "room.ephemeral."),
        account_data=parse_room_event_filter(
            _object(room, "account_data", "room."), "room.account_data."
        ),
    )
    return Filter(
        event_fields=_list_of_strings(body, "event_fields", ""),
        event_format=event_format,
        presence=parse_event_filter(_object(body, "presence", ""), "presence."),
        account_data=parse_event_filter(_object(body, "account_data", ""), "account_data."),
        room=room_filter,
    )


def parse_filter_json(text: str, parse: Any) -> Filter:
    """Parse inline filter JSON text with ``parse`` (a strict JSON decoder); 400 M_BAD_JSON."""
    try:
        value = parse(text)
    except MatrixError:
        raise
    except (ValueError, RecursionError):
        raise bad_json("The filter is not valid JSON") from None
    return parse_filter(value)


def _split_path(path: str) -> list[str]:
    """``content.body`` -> ``["content", "body"]``; ``\\.`` escapes a dot (appendices)."""
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(path):
        char = path[i]
        if char == "\\" and i + 1 < len(path) and path[i + 1] in ".\\":
            current.append(path[i + 1])
            i += 2
            continue
        if char == ".":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    parts.append("".join(current))
    return parts


def apply_event_fields(event: Mapping[str, Any], fields: Sequence[str] | None) -> dict[str, Any]:
    """Keep only the listed dot-separated paths of ``event`` (all of it if ``fields`` is None)."""
    if fields is None:
        return dict(event)
    result: dict[str, Any] = {}
    for field in fields:
        parts = _split_path(field)
        source: Any = event
        for part in parts:
            if not isinstance(source, Mapping) or part not in source:
                break
            source = source[part]
        else:
            target = result
            for part in parts[:-1]:
                existing = target.get(part)
                if not isinstance(existing, dict):
                    existing = target[part] = {}
                target = existing
            target[parts[-1]] = source
    return result
