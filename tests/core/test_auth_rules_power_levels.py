"""m.room.power_levels authorisation (rule 9 in v10/v11, rule 10 in v12)."""

from __future__ import annotations

from typing import Any

import pytest
from test_auth_rules_support import (
    ALICE,
    BOB,
    CAROL,
    VERSION_IDS,
    VERSIONS,
    Room,
    admin_users,
    public_room,
)

from homeserver.core.auth_rules import AuthError, check_auth
from homeserver.core.room_versions import V12, RoomVersion

versions = pytest.mark.parametrize("version", VERSIONS, ids=VERSION_IDS)

# Rule 9.k (v10/v11) is 10.k in v12 for k <= 3 and 10.(k+1) for k >= 4 (10.4 was inserted).
V12_NUMBERS = {
    "9.1": "10.1",
    "9.2": "10.2",
    "9.3": "10.3",
    "9.5.1": "10.6.1",
    "9.5.2": "10.6.2",
    "9.6.1": "10.7.1",
    "9.7.1": "10.8.1",
    "9.8.1": "10.9.1",
    "9.9.1": "10.10.1",
}


def current(room: Room) -> dict[str, Any]:
    return dict(room.state[("m.room.power_levels", "")]["content"])


def pl_event(room: Room, sender: str, content: dict[str, Any]) -> dict[str, Any]:
    return room.event("m.room.power_levels", sender, content, state_key="")


def assert_rejected(room: Room, sender: str, content: dict[str, Any], v11_number: str) -> None:
    with pytest.raises(AuthError) as info:
        check_auth(room.version, pl_event(room, sender, content), room.state)
    expected = V12_NUMBERS[v11_number] if room.version is V12 else v11_number
    assert info.value.rule == expected, info.value.reason


def moderator_room(version: RoomVersion) -> Room:
    """Bob is a moderator (50) who may send power levels (state_default 50)."""
    return public_room(version, users=admin_users(version, **{BOB: 50}))


# --- 9.1 - 9.3: shape -----------------------------------------------------------------------


@versions
@pytest.mark.parametrize(
    "key", ["users_default", "events_default", "state_default", "ban", "redact", "kick", "invite"]
)
@pytest.mark.parametrize("value", ["50", True, 1.5, None, [50], {"a": 1}])
def test_top_level_levels_must_be_integers(version: RoomVersion, key: str, value: Any) -> None:
    room = public_room(version)
    assert_rejected(room, ALICE, {**current(room), key: value}, "9.1")


@versions
@pytest.mark.parametrize("key", ["events", "notifications"])
@pytest.mark.parametrize("value", [[], "x", 5, {"m.room.name": "50"}, {"m.room.name": False}])
def test_events_and_notifications_must_map_to_integers(
    version: RoomVersion, key: str, value: Any
) -> None:
    room = public_room(version)
    assert_rejected(room, ALICE, {**current(room), key: value}, "9.2")


@versions
@pytest.mark.parametrize(
    "users",
    [[ALICE], {"not-a-user": 10}, {"@nocolon": 10}, {CAROL: "10"}, {CAROL: None}, {CAROL: True}],
)
def test_users_must_map_user_ids_to_integers(version: RoomVersion, users: Any) -> None:
    room = public_room(version)
    content = current(room)
    if isinstance(users, dict):
        users = {**content["users"], **users}
    assert_rejected(room, ALICE, {**content, "users": users}, "9.3")


@versions
def test_valid_levels_are_accepted(version: RoomVersion) -> None:
    room = public_room(version)
    content = {
        **current(room),
        "ban": 60,
        "events": {"m.room.name": 60},
        "notifications": {"room": 20},
        "users": {**current(room)["users"], CAROL: 10},
        "users_default": -5,
    }
    room.check(pl_event(room, ALICE, content))


def test_v12_users_must_not_contain_creators() -> None:
    room = Room(V12, create_content={"additional_creators": [BOB]})
    room.send(room.member(ALICE, "join"))
    for creator in (ALICE, BOB):
        with pytest.raises(AuthError, match=r"^10\.4:"):
            room.check(pl_event(room, ALICE, {"users": {creator: 100}}))
    room.check(pl_event(room, ALICE, {"users": {CAROL: 100}}))


# --- 9.4: the first power levels event --------------------------------------------------------


@versions
def test_first_power_levels_event_may_set_anything(version: RoomVersion) -> None:
    room = Room(version)
    room.send(room.member(ALICE, "join"))
    room.check(
        pl_event(room, ALICE, {"users": admin_users(version, **{BOB: 2**53 - 1}), "ban": 10**9})
    )


# --- 9.5: top-level levels --------------------------------------------------------------------


@versions
def test_top_level_change_within_own_level_is_allowed(version: RoomVersion) -> None:
    room = moderator_room(version)
    room.check(pl_event(room, BOB, {**current(room), "kick": 40}))
    room.check(pl_event(room, BOB, {**current(room), "invite": 50}))


@versions
def test_cannot_raise_a_level_above_own(version: RoomVersion) -> None:
    room = moderator_room(version)
    assert_rejected(room, BOB, {**current(room), "kick": 51}, "9.5.2")


@versions
def test_cannot_change_a_level_currently_above_own(version: RoomVersion) -> None:
    room = moderator_room(version)
    room.set_power_levels(ALICE, {**current(room), "ban": 80})
    assert_rejected(room, BOB, {**current(room), "ban": 10}, "9.5.1")
    without_ban = {k: v for k, v in current(room).items() if k != "ban"}
    assert_rejected(room, BOB, without_ban, "9.5.1")  # removal is an alteration too


@versions
def test_adding_a_previously_default_level_is_checked(version: RoomVersion) -> None:
    room = moderator_room(version)
    room.check(pl_event(room, BOB, {**current(room), "redact": 50}))
    assert_rejected(room, BOB, {**current(room), "redact": 60}, "9.5.2")


# --- 9.6 / 9.7: events and notifications -----------------------------------------------------


@versions
@pytest.mark.parametrize("key", ["events", "notifications"])
def test_map_entries(version: RoomVersion, key: str) -> None:
    room = moderator_room(version)
    room.set_power_levels(ALICE, {**current(room), key: {"high": 90, "low": 10}})
    room.check(pl_event(room, BOB, {**current(room), key: {"high": 90, "low": 50, "new": 20}}))
    assert_rejected(room, BOB, {**current(room), key: {"high": 50, "low": 10}}, "9.6.1")
    assert_rejected(room, BOB, {**current(room), key: {"low": 10}}, "9.6.1")
    assert_rejected(room, BOB, {**current(room), key: {"high": 90, "low": 51}}, "9.7.1")
    assert_rejected(room, BOB, {**current(room), key: {"high": 90, "low": 10, "new": 60}}, "9.7.1")


# --- 9.8 / 9.9: users -------------------------------------------------------------------------


@versions
def test_users_entries(version: RoomVersion) -> None:
    room = public_room(
        version, users=admin_users(version, **{BOB: 50, CAROL: 50, "@erin:e.example": 20})
    )
    users = current(room)["users"]
    room.check(pl_event(room, BOB, {**current(room), "users": {**users, "@erin:e.example": 50}}))
    room.check(pl_event(room, BOB, {**current(room), "users": {**users, "@new:e.example": 50}}))
    room.check(pl_event(room, BOB, {**current(room), "users": {**users, BOB: 10}}))  # self-demotion
    peer_demoted = {**users, CAROL: 10}
    assert_rejected(room, BOB, {**current(room), "users": peer_demoted}, "9.8.1")
    peer_removed = {k: v for k, v in users.items() if k != CAROL}
    assert_rejected(room, BOB, {**current(room), "users": peer_removed}, "9.8.1")
    assert_rejected(room, BOB, {**current(room), "users": {**users, "@new:e.example": 51}}, "9.9.1")
    assert_rejected(room, BOB, {**current(room), "users": {**users, BOB: 51}}, "9.9.1")


@versions
def test_unchanged_entries_above_own_level_are_fine(version: RoomVersion) -> None:
    room = moderator_room(version)
    room.set_power_levels(ALICE, {**current(room), "events": {"m.room.tombstone": 90}})
    content = current(room)
    room.check(pl_event(room, BOB, {**content, "users": {**content["users"], CAROL: 10}}))


def test_v12_creator_may_change_anything() -> None:
    room = public_room(V12, users={BOB: 2**53 - 1}, ban=2**53 - 1)
    room.check(pl_event(room, ALICE, {"users": {BOB: 0}, "ban": -(2**53 - 1)}))


def test_v12_non_creator_cannot_touch_equal_peer() -> None:
    room = public_room(V12, users={BOB: 100, CAROL: 100})
    assert_rejected(room, BOB, {"users": {BOB: 100, CAROL: 99}}, "9.8.1")
