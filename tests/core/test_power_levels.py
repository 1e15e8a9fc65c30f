"""Effective power levels: spec defaults, creators, strict integers, the infinite level."""

from __future__ import annotations

from typing import Any

import pytest

from homeserver.core.power_levels import (
    CREATOR_POWER_LEVEL,
    InfinitePowerLevel,
    parse_level,
    power_levels_from_state,
    room_creators,
)
from homeserver.core.room_versions import V10, V11, V12

ALICE, BOB, CAROL = "@alice:a.example", "@bob:b.example", "@carol:c.example"


def create(version_content: dict[str, Any], sender: str = ALICE) -> dict[str, Any]:
    return {"type": "m.room.create", "sender": sender, "state_key": "", "content": version_content}


def pl(content: Any) -> dict[str, Any]:
    return {"type": "m.room.power_levels", "sender": ALICE, "state_key": "", "content": content}


def test_defaults_with_an_empty_power_levels_event() -> None:
    levels = power_levels_from_state(V11, create({}), pl({}))
    assert (levels.ban, levels.kick, levels.redact, levels.invite) == (50, 50, 50, 0)
    assert (levels.state_default, levels.events_default, levels.users_default) == (50, 0, 0)
    assert levels.user_level(ALICE) == 0  # a power levels event exists: no implicit 100
    assert levels.required_level("m.room.topic", is_state=True) == 50
    assert levels.required_level("m.room.message", is_state=False) == 0
    assert levels.notification_level("room") == 50
    assert levels.notification_level("other") is None


def test_values_from_content() -> None:
    content = {
        "ban": 10,
        "kick": 11,
        "redact": 12,
        "invite": 13,
        "state_default": 14,
        "events_default": 15,
        "users_default": 16,
        "users": {BOB: 70},
        "events": {"m.room.topic": 5, "m.custom": 90},
        "notifications": {"room": 1},
    }
    levels = power_levels_from_state(V10, create({"creator": ALICE}), pl(content))
    assert (levels.ban, levels.kick, levels.redact, levels.invite) == (10, 11, 12, 13)
    assert levels.user_level(BOB) == 70
    assert levels.user_level(CAROL) == 16
    assert levels.required_level("m.room.topic", is_state=True) == 5
    assert levels.required_level("m.custom", is_state=False) == 90
    assert levels.required_level("m.room.name", is_state=True) == 14
    assert levels.required_level("m.room.message", is_state=False) == 15
    assert levels.notification_level("room") == 1


def test_v10_without_power_levels_the_content_creator_has_100() -> None:
    levels = power_levels_from_state(V10, create({"creator": BOB}), None)
    assert levels.user_level(BOB) == 100
    assert levels.user_level(ALICE) == 0
    assert levels.required_level("m.room.name", is_state=True) == 50


def test_v11_without_power_levels_the_create_sender_has_100() -> None:
    levels = power_levels_from_state(V11, create({"creator": BOB}), None)
    assert levels.user_level(ALICE) == 100
    assert levels.user_level(BOB) == 0


def test_v12_creators_are_infinite_with_or_without_power_levels() -> None:
    create_event = create({"additional_creators": [BOB, 7]})
    for power_levels_event in (None, pl({"users": {CAROL: 2**53 - 1}, "users_default": 10})):
        levels = power_levels_from_state(V12, create_event, power_levels_event)
        assert levels.user_level(ALICE) is CREATOR_POWER_LEVEL
        assert levels.user_level(BOB) is CREATOR_POWER_LEVEL
    assert levels.user_level(CAROL) == 2**53 - 1
    assert power_levels_from_state(V12, create_event, None).user_level(CAROL) == 0


def test_room_creators_per_version() -> None:
    event = create({"creator": CAROL, "additional_creators": [BOB]})
    assert room_creators(V10, event) == {CAROL}
    assert room_creators(V11, event) == {ALICE}
    assert room_creators(V12, event) == {ALICE, BOB}
    assert room_creators(V12, None) == frozenset()


def test_infinite_level_compares_above_every_int() -> None:
    infinite = CREATOR_POWER_LEVEL
    for value in (0, -1, 2**53 - 1, 10**100):
        assert value < infinite and infinite > value
        assert value <= infinite and infinite >= value
        assert not (infinite < value) and not (infinite <= value)
        assert infinite != value
    assert infinite == InfinitePowerLevel() and infinite >= infinite and infinite <= infinite
    assert not infinite > infinite


@pytest.mark.parametrize(
    ("value", "strict", "expected"),
    [
        (50, True, 50),
        (-3, True, -3),
        ("50", True, None),
        (True, True, None),
        (1.0, True, None),
        ("50", False, 50),
        (" -7 ", False, -7),
        ("5x", False, None),
        (None, False, None),
    ],
)
def test_parse_level(value: Any, strict: bool, expected: int | None) -> None:
    assert parse_level(value, strict_integers=strict) == expected


@pytest.mark.parametrize(
    "content",
    [
        {"ban": "60", "users": {BOB: "70"}, "events": {"m.x": True}},
        {"users": [BOB], "events": "x", "notifications": 3},
        "not an object",
    ],
)
def test_malformed_content_falls_back_to_defaults(content: Any) -> None:
    levels = power_levels_from_state(V10, create({"creator": ALICE}), pl(content))
    assert levels.ban == 50
    assert levels.user_level(BOB) == 0
    assert levels.required_level("m.x", is_state=False) == 0
