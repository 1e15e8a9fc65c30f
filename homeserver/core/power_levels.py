"""Effective power levels of a room: who may do what, with the spec's defaults filled in.

The authorisation rules, state resolution (sender power for the topological sort) and the
services (may this user redact, may they ``@room``) all ask the same questions, so the
answers live here once. Input is plain event dicts; parsing is lenient because the content
of an *accepted* power levels event was already validated by auth rule 9 (v10/v11) / 10
(v12), and anything odd that reaches us anyway (a caller passing garbage) must degrade to
the defaults instead of raising.

Spec: ``m.room.power_levels`` schema (client-server API) for the defaults; room versions
10-12 "Authorisation rules" for integer-only values (v10) and privileged creators (v12).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeAlias

import attrs

from homeserver.core.room_versions import RoomVersion


class InfinitePowerLevel:
    """The power level of a v12 room creator: above every integer (spec v12, MSC4289).

    A dedicated value rather than a large int so that no power levels content, however
    large its numbers, can ever equal or outrank a creator.
    """

    _instance: InfinitePowerLevel | None = None

    def __new__(cls) -> InfinitePowerLevel:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "CREATOR_POWER_LEVEL"

    def __eq__(self, other: object) -> bool:
        return other is self

    def __hash__(self) -> int:
        return hash("InfinitePowerLevel")

    def __lt__(self, other: int | InfinitePowerLevel) -> bool:
        return False

    def __le__(self, other: int | InfinitePowerLevel) -> bool:
        return other is self

    def __gt__(self, other: int | InfinitePowerLevel) -> bool:
        return other is not self

    def __ge__(self, other: int | InfinitePowerLevel) -> bool:
        return True


CREATOR_POWER_LEVEL = InfinitePowerLevel()
PowerLevel: TypeAlias = int | InfinitePowerLevel

# Defaults from the m.room.power_levels schema; they apply both when a key is absent and
# when the room has no power levels event at all.
DEFAULT_USERS_DEFAULT = 0
DEFAULT_EVENTS_DEFAULT = 0
DEFAULT_STATE_DEFAULT = 50
DEFAULT_BAN = 50
DEFAULT_KICK = 50
DEFAULT_REDACT = 50
DEFAULT_INVITE = 0
DEFAULT_NOTIFICATIONS_ROOM = 50
# Rooms v1-v11 without a power levels event: the creator has 100 (m.room.power_levels schema).
NO_POWER_LEVELS_CREATOR_LEVEL = 100

# The top-level integer properties the auth rules compare (rule 9.5 in v10/v11).
LEVEL_KEYS = ("users_default", "events_default", "state_default", "ban", "redact", "kick", "invite")

_STRINGY_INT = re.compile(r"^\s*[+-]?[0-9]+\s*$")


def parse_level(value: object, *, strict_integers: bool) -> int | None:
    """An integer power level, or None if ``value`` is not one.

    ``bool`` is excluded although Python makes it an ``int``: JSON ``true`` is not a power
    level. Before v10, stringy integers like ``"50"`` were accepted (v1 "stringy power
    levels" fragment); ``strict_integers`` turns that off.
    """
    if type(value) is int:
        return value
    if not strict_integers and isinstance(value, str) and _STRINGY_INT.match(value):
        return int(value)
    return None


def _content(event: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if event is None:
        return {}
    content = event.get("content")
    return content if isinstance(content, Mapping) else {}


def parse_level_map(value: object, *, strict_integers: bool) -> dict[str, int]:
    """Lenient ``{str: int}``: entries that are not levels are dropped, as if absent."""
    if not isinstance(value, Mapping):
        return {}
    out: dict[str, int] = {}
    for key, raw in value.items():
        level = parse_level(raw, strict_integers=strict_integers)
        if isinstance(key, str) and level is not None:
            out[key] = level
    return out


def room_creators(
    room_version: RoomVersion, create_event: Mapping[str, Any] | None
) -> frozenset[str]:
    """The users the room version treats as creators.

    v12: the create event's sender plus ``content.additional_creators`` (MSC4289). v11: the
    sender (MSC2175). v10: ``content.creator``. Non-string entries are ignored; auth rule 1
    rejects a v12 create event that has any, so they only appear in garbage input.
    """
    if create_event is None:
        return frozenset()
    content = _content(create_event)
    creators: set[str] = set()
    if room_version.implicit_room_creator:
        sender = create_event.get("sender")
        if isinstance(sender, str):
            creators.add(sender)
    else:
        creator = content.get("creator")
        if isinstance(creator, str):
            creators.add(creator)
    if room_version.privileged_creators:
        additional = content.get("additional_creators")
        if isinstance(additional, list):
            creators.update(c for c in additional if isinstance(c, str))
    return frozenset(creators)


def _raw_map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


@attrs.frozen
class PowerLevels:
    """The effective levels of a room, defaults applied (see :func:`power_levels_from_state`).

    The ``users``, ``events`` and ``notifications`` maps stay as the event has them and
    each lookup parses one entry: a big room's ``users`` map has thousands of entries and
    the auth rules (run for every event during state resolution) ask about one or two.
    An entry that is not a level counts as absent.
    """

    users_raw: Mapping[str, Any]
    users_default: int
    events_raw: Mapping[str, Any]
    events_default: int
    state_default: int
    ban: int
    kick: int
    redact: int
    invite: int
    notifications_raw: Mapping[str, Any]
    strict_integers: bool = True
    # v12 privileged creators: infinite power whatever ``users`` says.
    privileged_creators: frozenset[str] = frozenset()
    # Whether the room has an m.room.power_levels event (the auth rules ask, rule 9.4).
    has_power_levels_event: bool = True

    def _entry(self, raw: Mapping[str, Any], key: str) -> int | None:
        return parse_level(raw.get(key), strict_integers=self.strict_integers)

    def user_level(self, user_id: str) -> PowerLevel:
        if user_id in self.privileged_creators:
            return CREATOR_POWER_LEVEL
        level = self._entry(self.users_raw, user_id)
        return self.users_default if level is None else level

    def required_level(self, event_type: str, *, is_state: bool) -> int:
        """The *required power level* to send an event (auth rule 7 in v10/v11).

        Membership changes are governed by ``invite``/``kick``/``ban`` instead, and redacting
        another user's event additionally needs ``redact``; those are separate questions.
        """
        level = self._entry(self.events_raw, event_type)
        if level is not None:
            return level
        return self.state_default if is_state else self.events_default

    def notification_level(self, key: str) -> int | None:
        """Level needed to trigger a notification of type ``key`` (``room`` for ``@room``).

        Only ``room`` has a spec default (50); other keys are None when unset.
        """
        level = self._entry(self.notifications_raw, key)
        if level is not None:
            return level
        return DEFAULT_NOTIFICATIONS_ROOM if key == "room" else None


def power_levels_from_content(
    room_version: RoomVersion,
    content: Mapping[str, Any],
    *,
    privileged_creators: frozenset[str] = frozenset(),
) -> PowerLevels:
    """Effective levels from an ``m.room.power_levels`` content, spec defaults for gaps."""
    strict = room_version.strict_integer_power_levels

    def top(key: str, default: int) -> int:
        level = parse_level(content.get(key), strict_integers=strict)
        return default if level is None else level

    return PowerLevels(
        users_raw=_raw_map(content.get("users")),
        users_default=top("users_default", DEFAULT_USERS_DEFAULT),
        events_raw=_raw_map(content.get("events")),
        events_default=top("events_default", DEFAULT_EVENTS_DEFAULT),
        state_default=top("state_default", DEFAULT_STATE_DEFAULT),
        ban=top("ban", DEFAULT_BAN),
        kick=top("kick", DEFAULT_KICK),
        redact=top("redact", DEFAULT_REDACT),
        invite=top("invite", DEFAULT_INVITE),
        notifications_raw=_raw_map(content.get("notifications")),
        strict_integers=strict,
        privileged_creators=privileged_creators,
        has_power_levels_event=True,
    )


def power_levels_from_state(
    room_version: RoomVersion,
    create_event: Mapping[str, Any] | None,
    power_levels_event: Mapping[str, Any] | None,
) -> PowerLevels:
    """Effective levels given the room's create and power levels events (either may be None).

    Without a power levels event every level takes its default and, before v12, the
    creator has 100 and everyone else 0; in v12 the creators are infinite with or without
    one (m.room.power_levels schema, ``users_default`` notes).
    """
    creators = room_creators(room_version, create_event)
    privileged = creators if room_version.privileged_creators else frozenset()
    if power_levels_event is not None:
        return power_levels_from_content(
            room_version, _content(power_levels_event), privileged_creators=privileged
        )
    users = (
        {}
        if room_version.privileged_creators
        else dict.fromkeys(creators, NO_POWER_LEVELS_CREATOR_LEVEL)
    )
    return PowerLevels(
        users_raw=users,
        users_default=DEFAULT_USERS_DEFAULT,
        events_raw={},
        events_default=DEFAULT_EVENTS_DEFAULT,
        state_default=DEFAULT_STATE_DEFAULT,
        ban=DEFAULT_BAN,
        kick=DEFAULT_KICK,
        redact=DEFAULT_REDACT,
        invite=DEFAULT_INVITE,
        notifications_raw={},
        privileged_creators=privileged,
        has_power_levels_event=False,
    )
