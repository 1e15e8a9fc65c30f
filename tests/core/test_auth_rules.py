"""Authorisation rules outside m.room.member and m.room.power_levels, per room version.

Each rule has an accepting and a rejecting case; rejections must name the rule as the
spec numbers it for that version (v12 inserted rule 2, shifting later numbers by one).
"""

from __future__ import annotations

from typing import Any

import pytest
from test_auth_rules_support import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    VERSION_IDS,
    VERSIONS,
    Room,
    public_room,
)

from homeserver.core.auth_rules import (
    AuthError,
    auth_types_for_event,
    check_auth,
    check_auth_against_auth_events,
    check_auth_events,
    required_signers,
)
from homeserver.core.room_versions import V10, V11, V12, RoomVersion

versions = pytest.mark.parametrize("version", VERSIONS, ids=VERSION_IDS)


def assert_rejected(
    version: RoomVersion, room: Room, event: dict[str, Any], v11: str, v12: str
) -> None:
    with pytest.raises(AuthError) as info:
        check_auth(version, event, room.state)
    assert info.value.rule == (v12 if version is V12 else v11), info.value.reason


# --- rule 1: m.room.create -----------------------------------------------------------------


def create_event(version: RoomVersion, **overrides: Any) -> dict[str, Any]:
    content: dict[str, Any] = {"room_version": version.identifier}
    if version is V10:
        content["creator"] = ALICE
    event: dict[str, Any] = {
        "event_id": "$create",
        "type": "m.room.create",
        "sender": ALICE,
        "state_key": "",
        "content": content,
        "prev_events": [],
        "auth_events": [],
        "origin_server_ts": 0,
    }
    if version is not V12:
        event["room_id"] = "!room:a.example"
    event.update(overrides)
    return event


def check_create(version: RoomVersion, event: dict[str, Any]) -> None:
    check_auth(version, event, {})


@versions
def test_create_is_allowed(version: RoomVersion) -> None:
    check_create(version, create_event(version))


@versions
def test_create_with_prev_events_is_rejected(version: RoomVersion) -> None:
    with pytest.raises(AuthError, match=r"^1\.1:"):
        check_create(version, create_event(version, prev_events=["$x"]))


@pytest.mark.parametrize("version", [V10, V11], ids=["v10", "v11"])
def test_create_room_id_domain_must_match_sender(version: RoomVersion) -> None:
    with pytest.raises(AuthError, match=r"^1\.2:"):
        check_create(version, create_event(version, room_id="!room:b.example"))


def test_v12_create_must_not_have_a_room_id() -> None:
    with pytest.raises(AuthError, match=r"^1\.2:"):
        check_create(V12, create_event(V12, room_id="!room:a.example"))


@versions
@pytest.mark.parametrize("room_version", ["9000", 12, None, ["12"]])
def test_create_with_unknown_room_version_is_rejected(
    version: RoomVersion, room_version: Any
) -> None:
    event = create_event(version)
    event["content"]["room_version"] = room_version
    with pytest.raises(AuthError, match=r"^1\.3:"):
        check_create(version, event)


@versions
def test_create_without_room_version_is_allowed(version: RoomVersion) -> None:
    event = create_event(version)
    del event["content"]["room_version"]
    check_create(version, event)


def test_v10_create_needs_a_creator() -> None:
    event = create_event(V10)
    del event["content"]["creator"]
    with pytest.raises(AuthError, match=r"^1\.4:"):
        check_create(V10, event)


@pytest.mark.parametrize("version", [V11, V12], ids=["v11", "v12"])
def test_v11_create_needs_no_creator(version: RoomVersion) -> None:
    check_create(version, create_event(version))


def test_v12_additional_creators_must_be_user_ids() -> None:
    ok = create_event(V12)
    ok["content"]["additional_creators"] = [BOB, CAROL]
    check_create(V12, ok)
    for bad in ("@bob:b.example", [BOB, 5], ["bob"], ["@bob"], [None], {"@bob:b.example": 1}):
        event = create_event(V12)
        event["content"]["additional_creators"] = bad
        with pytest.raises(AuthError, match=r"^1\.4:"):
            check_create(V12, event)


def test_before_v12_additional_creators_is_not_read() -> None:
    event = create_event(V11)
    event["content"]["additional_creators"] = "not a list"
    check_create(V11, event)


# --- rule 2 (v12): room_id derives from the create event ------------------------------------


def test_v12_room_id_must_be_the_create_event_id() -> None:
    room = public_room(V12)
    good = room.event("m.room.message", BOB, {"body": "hi"})
    room.check(good)
    bad = room.event("m.room.message", BOB, {"body": "hi"}, room_id="!other")
    assert_rejected(V12, room, bad, "n/a", "2")


def test_v12_without_create_event_in_state_is_rejected() -> None:
    room = public_room(V12)
    event = room.event("m.room.message", BOB, {"body": "hi"})
    del room.state[("m.room.create", "")]
    assert_rejected(V12, room, event, "n/a", "2")


# --- rule 2 / 3: the auth_events list -------------------------------------------------------


def listed_auth_events(room: Room, event: dict[str, Any]) -> list[dict[str, Any]]:
    return [room.events[e] for e in event["auth_events"]]


@versions
def test_correct_auth_events_list_is_accepted(version: RoomVersion) -> None:
    room = public_room(version)
    event = room.member(CAROL, "join")
    auth_events = listed_auth_events(room, event)
    check_auth_events(version, event, auth_events)
    check_auth_against_auth_events(version, event, auth_events, create_event=room.create)


@versions
def test_duplicate_auth_events_are_rejected(version: RoomVersion) -> None:
    room = public_room(version)
    event = room.member(CAROL, "join")
    old_pl = room.state[("m.room.power_levels", "")]
    room.set_power_levels(ALICE, {**old_pl["content"], "ban": 60})
    auth_events = [*listed_auth_events(room, event), room.state[("m.room.power_levels", "")]]
    with pytest.raises(AuthError, match=r"^3\.1:" if version is V12 else r"^2\.1:"):
        check_auth_events(version, event, auth_events)


@versions
def test_unexpected_auth_event_is_rejected(version: RoomVersion) -> None:
    room = public_room(version)
    event = room.event("m.room.message", BOB, {"body": "hi"})
    auth_events = [*listed_auth_events(room, event), room.state[("m.room.join_rules", "")]]
    with pytest.raises(AuthError, match=r"^3\.2:" if version is V12 else r"^2\.2:"):
        check_auth_events(version, event, auth_events)


def test_v12_create_event_in_auth_events_is_rejected() -> None:
    room = public_room(V12)
    event = room.event("m.room.message", BOB, {"body": "hi"})
    with pytest.raises(AuthError, match=r"^3\.2:"):
        check_auth_events(V12, event, [*listed_auth_events(room, event), room.create])


@versions
def test_rejected_auth_event_is_rejected(version: RoomVersion) -> None:
    room = public_room(version)
    event = room.event("m.room.message", BOB, {"body": "hi"})
    member_id = room.state[("m.room.member", BOB)]["event_id"]
    with pytest.raises(AuthError, match=r"^3\.3:" if version is V12 else r"^2\.3:"):
        check_auth_events(
            version, event, listed_auth_events(room, event), rejected_event_ids={member_id}
        )


@pytest.mark.parametrize("version", [V10, V11], ids=["v10", "v11"])
def test_missing_create_in_auth_events_is_rejected(version: RoomVersion) -> None:
    room = public_room(version)
    event = room.event("m.room.message", BOB, {"body": "hi"})
    without_create = [e for e in listed_auth_events(room, event) if e["type"] != "m.room.create"]
    with pytest.raises(AuthError, match=r"^2\.4:"):
        check_auth_events(version, event, without_create)


@versions
def test_auth_event_from_another_room_is_rejected(version: RoomVersion) -> None:
    room = public_room(version)
    event = room.event("m.room.message", BOB, {"body": "hi"})
    auth_events = [
        {**e, "room_id": "!elsewhere:b.example"} if e["type"] == "m.room.member" else e
        for e in listed_auth_events(room, event)
    ]
    with pytest.raises(AuthError, match=r"^3\.5:" if version is V12 else r"^2\.5:"):
        check_auth_events(version, event, auth_events)


# --- auth events selection ------------------------------------------------------------------


@versions
def test_auth_types_for_a_message(version: RoomVersion) -> None:
    event = {"type": "m.room.message", "sender": BOB, "content": {}}
    expected = {("m.room.power_levels", ""), ("m.room.member", BOB)}
    if version is not V12:
        expected.add(("m.room.create", ""))
    assert auth_types_for_event(version, event) == expected


@versions
def test_auth_types_for_the_create_event_are_empty(version: RoomVersion) -> None:
    assert auth_types_for_event(version, {"type": "m.room.create", "sender": ALICE}) == set()


@pytest.mark.parametrize(
    ("content", "extra"),
    [
        ({"membership": "join"}, {("m.room.join_rules", "")}),
        ({"membership": "knock"}, {("m.room.join_rules", "")}),
        ({"membership": "leave"}, set()),
        ({"membership": "ban"}, set()),
        (
            {"membership": "join", "join_authorised_via_users_server": DAVE},
            {("m.room.join_rules", ""), ("m.room.member", DAVE)},
        ),
        (
            {"membership": "invite", "third_party_invite": {"signed": {"token": "tok"}}},
            {("m.room.join_rules", ""), ("m.room.third_party_invite", "tok")},
        ),
        (
            {"membership": "invite", "third_party_invite": {"signed": "junk"}},
            {("m.room.join_rules", "")},
        ),
        ({"membership": 7}, set()),
    ],
)
def test_auth_types_for_membership(content: dict[str, Any], extra: set[tuple[str, str]]) -> None:
    event = {"type": "m.room.member", "sender": BOB, "state_key": CAROL, "content": content}
    base = {
        ("m.room.power_levels", ""),
        ("m.room.member", BOB),
        ("m.room.member", CAROL),
        ("m.room.create", ""),
    }
    assert auth_types_for_event(V11, event) == base | extra


def test_required_signers_include_the_authorising_server() -> None:
    join = {
        "type": "m.room.member",
        "sender": CAROL,
        "state_key": CAROL,
        "content": {"membership": "join", "join_authorised_via_users_server": ALICE},
    }
    assert required_signers(V11, join) == {"c.example", "a.example"}
    message = {"type": "m.room.message", "sender": CAROL, "content": {}}
    assert required_signers(V11, message) == {"c.example"}


# --- rule 3: m.federate ---------------------------------------------------------------------


@versions
def test_m_federate_false_rejects_remote_senders(version: RoomVersion) -> None:
    """Pitfall: m.federate is part of auth (matrix-spec#1103)."""
    room = Room(version, create_content={"m.federate": False})
    room.send(room.member(ALICE, "join"))
    room.set_join_rule(ALICE, "public")
    room.send(room.member(DAVE, "join"))  # same server as the creator
    assert_rejected(version, room, room.member(BOB, "join"), "3", "4")


@versions
def test_m_federate_only_a_literal_false_restricts(version: RoomVersion) -> None:
    room = Room(version, create_content={"m.federate": "false"})
    room.send(room.member(ALICE, "join"))
    room.set_join_rule(ALICE, "public")
    room.send(room.member(BOB, "join"))


# --- rules 5 to 8 ---------------------------------------------------------------------------


@versions
def test_sender_must_be_joined(version: RoomVersion) -> None:
    room = public_room(version)
    room.check(room.event("m.room.message", BOB, {"body": "hi"}))
    assert_rejected(version, room, room.event("m.room.message", CAROL, {"body": "hi"}), "5", "6")
    room.send(room.member(BOB, "leave"))
    assert_rejected(version, room, room.event("m.room.message", BOB, {"body": "hi"}), "5", "6")


@versions
def test_third_party_invite_event_needs_invite_level(version: RoomVersion) -> None:
    room = public_room(version, invite=50)
    tpi = {"display_name": "c...", "public_key": "abc", "key_validity_url": "https://id.example"}
    room.check(room.event("m.room.third_party_invite", ALICE, tpi, state_key="tok"))
    assert_rejected(
        version,
        room,
        room.event("m.room.third_party_invite", BOB, tpi, state_key="tok"),
        "6.1",
        "7.1",
    )


@versions
def test_third_party_invite_event_skips_the_state_default(version: RoomVersion) -> None:
    """Rule 6 allows at the invite level even though state_default (50) is higher."""
    room = public_room(version)
    room.check(room.event("m.room.third_party_invite", BOB, {"public_key": "abc"}, state_key="tok"))


@versions
def test_required_power_level(version: RoomVersion) -> None:
    room = public_room(version, events={"m.room.topic": 0, "m.custom": 10})
    room.check(room.event("m.room.topic", BOB, {"topic": "x"}, state_key=""))
    room.check(room.event("m.room.message", BOB, {"body": "x"}))
    assert_rejected(
        version, room, room.event("m.room.name", BOB, {"name": "x"}, state_key=""), "7", "8"
    )
    assert_rejected(version, room, room.event("m.custom", BOB, {}), "7", "8")
    room.check(room.event("m.room.name", ALICE, {"name": "x"}, state_key=""))


@versions
def test_events_default_applies_to_messages(version: RoomVersion) -> None:
    room = public_room(version, events_default=20)
    assert_rejected(version, room, room.event("m.room.message", BOB, {"body": "x"}), "7", "8")


@versions
def test_state_key_of_another_user_is_rejected(version: RoomVersion) -> None:
    room = public_room(version, state_default=0)
    room.check(room.event("m.custom.state", BOB, {}, state_key=BOB))
    room.check(room.event("m.custom.state", BOB, {}, state_key="plain"))
    assert_rejected(version, room, room.event("m.custom.state", BOB, {}, state_key=ALICE), "8", "9")


@versions
def test_redaction_ignores_the_redact_level(version: RoomVersion) -> None:
    """The redact level is not an auth rule; only events/events_default gate m.room.redaction."""
    room = public_room(version, redact=100)
    target = room.send(room.event("m.room.message", ALICE, {"body": "x"}))
    redaction = room.event("m.room.redaction", BOB, {"redacts": target["event_id"]})
    room.check(redaction)
    room.set_power_levels(
        ALICE,
        {**room.state[("m.room.power_levels", "")]["content"], "events": {"m.room.redaction": 50}},
    )
    assert_rejected(version, room, room.event("m.room.redaction", BOB, {"redacts": "$x"}), "7", "8")


@versions
def test_no_create_event_in_state_is_rejected(version: RoomVersion) -> None:
    room = public_room(version)
    event = room.event("m.room.message", BOB, {"body": "x"})
    del room.state[("m.room.create", "")]
    with pytest.raises(AuthError):
        room.check(event)


@versions
def test_non_string_sender_or_type_is_an_auth_error(version: RoomVersion) -> None:
    room = public_room(version)
    for field, value in (("sender", 5), ("type", None), ("state_key", 3)):
        event = room.event("m.room.message", BOB, {"body": "x"})
        event[field] = value
        with pytest.raises(AuthError, match=r"^format:"):
            room.check(event)


@pytest.mark.parametrize("version", [V10, V11], ids=["v10", "v11"])
@pytest.mark.parametrize("room_id", ["!room", "room:a.example", None])
def test_create_room_id_without_domain_is_rejected(version: RoomVersion, room_id: Any) -> None:
    with pytest.raises(AuthError, match=r"^1\.2:"):
        check_create(version, create_event(version, room_id=room_id, sender="@alice"))


def test_v12_check_against_auth_events_needs_the_create_event() -> None:
    room = public_room(V12)
    event = room.event("m.room.message", BOB, {"body": "hi"})
    auth_events = listed_auth_events(room, event)
    check_auth_against_auth_events(V12, event, auth_events, create_event=room.create)
    with pytest.raises(AuthError, match=r"^2:"):
        check_auth_against_auth_events(V12, event, auth_events)
