"""m.room.member authorisation (rule 4 in v10/v11, rule 5 in v12), including third-party invites."""

from __future__ import annotations

import base64
from typing import Any

import nacl.signing
import pytest
from test_auth_rules_support import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    VERSION_IDS,
    VERSIONS,
    Room,
    admin_users,
    public_room,
)

from homeserver.core.auth_rules import AuthError, check_auth
from homeserver.core.auth_rules_third_party import verify_third_party_signed
from homeserver.core.canonical_json import encode_canonical_json
from homeserver.core.room_versions import V10, V12, RoomVersion

versions = pytest.mark.parametrize("version", VERSIONS, ids=VERSION_IDS)


def rule(version: RoomVersion, v11_number: str) -> str:
    """The spec's number for a member rule: v12 inserted rule 2, so 4.x became 5.x."""
    return "5" + v11_number[1:] if version is V12 else v11_number


def assert_rejected(room: Room, event: dict[str, Any], v11_number: str) -> None:
    with pytest.raises(AuthError) as info:
        check_auth(room.version, event, room.state)
    assert info.value.rule == rule(room.version, v11_number), info.value.reason


def room_with_join_rule(version: RoomVersion, join_rule: str, **pl: Any) -> Room:
    room = public_room(version, **pl)
    room.set_join_rule(ALICE, join_rule)
    return room


# --- 4.1 ------------------------------------------------------------------------------------


@versions
def test_member_needs_state_key_and_membership(version: RoomVersion) -> None:
    room = public_room(version)
    no_membership = room.event("m.room.member", CAROL, {"displayname": "c"}, state_key=CAROL)
    assert_rejected(room, no_membership, "4.1")
    no_state_key = room.event("m.room.member", CAROL, {"membership": "join"})
    assert_rejected(room, no_state_key, "4.1")
    not_an_object = room.event("m.room.member", CAROL, "join", state_key=CAROL)  # type: ignore[arg-type]
    assert_rejected(room, not_an_object, "4.1")


@versions
def test_unknown_membership_is_rejected(version: RoomVersion) -> None:
    room = public_room(version)
    assert_rejected(room, room.member(CAROL, "visit"), "4.8")
    assert_rejected(room, room.member(CAROL, ["join"]), "4.8")  # type: ignore[arg-type]


# --- 4.3 join -------------------------------------------------------------------------------


@versions
def test_creator_first_join_is_allowed(version: RoomVersion) -> None:
    room = Room(version)
    room.check(room.member(ALICE, "join"))


@versions
def test_non_creator_first_join_is_rejected(version: RoomVersion) -> None:
    room = Room(version)
    assert_rejected(room, room.member(BOB, "join"), "4.3.7")


def test_v10_first_join_follows_content_creator_not_sender() -> None:
    room = Room(V10, create_content={"creator": BOB})
    room.check(room.member(BOB, "join"))
    assert_rejected(room, room.member(ALICE, "join"), "4.3.7")


def test_v12_additional_creator_is_not_the_first_joiner() -> None:
    room = Room(V12, create_content={"additional_creators": [BOB]})
    assert_rejected(room, room.member(BOB, "join"), "4.3.7")


@versions
def test_creator_join_needs_create_as_only_prev_event(version: RoomVersion) -> None:
    room = Room(version)
    event = room.member(ALICE, "join")
    event["prev_events"] = [room.create["event_id"], "$other"]
    assert_rejected(room, event, "4.3.7")


@versions
def test_join_on_behalf_of_another_user_is_rejected(version: RoomVersion) -> None:
    room = public_room(version)
    assert_rejected(room, room.member(BOB, "join", CAROL), "4.3.2")


@versions
def test_banned_user_cannot_join(version: RoomVersion) -> None:
    room = public_room(version)
    room.send(room.member(ALICE, "ban", CAROL))
    assert_rejected(room, room.member(CAROL, "join"), "4.3.3")


@versions
def test_public_join_is_allowed(version: RoomVersion) -> None:
    room = public_room(version)
    room.check(room.member(CAROL, "join"))


@versions
@pytest.mark.parametrize("join_rule", ["invite", "knock"])
def test_invite_and_knock_rooms_need_an_invite(version: RoomVersion, join_rule: str) -> None:
    room = room_with_join_rule(version, join_rule)
    assert_rejected(room, room.member(CAROL, "join"), "4.3.7")
    room.send(room.member(ALICE, "invite", CAROL))
    room.check(room.member(CAROL, "join"))
    room.check(room.member(BOB, "join"))  # already joined: a profile change


@versions
def test_room_without_join_rules_behaves_as_invite(version: RoomVersion) -> None:
    room = Room(version)
    room.send(room.member(ALICE, "join"))
    assert_rejected(room, room.member(CAROL, "join"), "4.3.7")
    room.send(room.member(ALICE, "invite", CAROL))
    room.check(room.member(CAROL, "join"))


@versions
@pytest.mark.parametrize("join_rule", ["private", "secret", ""])
def test_other_join_rules_reject_joins(version: RoomVersion, join_rule: str) -> None:
    room = room_with_join_rule(version, join_rule)
    assert_rejected(room, room.member(CAROL, "join"), "4.3.7")


@versions
def test_non_string_join_rule_rejects_joins(version: RoomVersion) -> None:
    room = public_room(version)
    room.apply(room.event("m.room.join_rules", ALICE, {"join_rule": ["public"]}, state_key=""))
    assert_rejected(room, room.member(CAROL, "join"), "4.3.7")


@versions
@pytest.mark.parametrize("join_rule", ["restricted", "knock_restricted"])
def test_restricted_join(version: RoomVersion, join_rule: str) -> None:
    room = public_room(version, invite=50, users=admin_users(version, **{DAVE: 10}))
    room.send(room.member(DAVE, "join"))
    room.set_join_rule(ALICE, join_rule, allow=[{"type": "m.room_membership", "room_id": "!x"}])
    authorised_by_alice = room.member(CAROL, "join", join_authorised_via_users_server=ALICE)
    room.check(authorised_by_alice)
    assert_rejected(room, room.member(CAROL, "join"), "4.3.5.2")
    # Dave is joined but below the invite level.
    assert_rejected(
        room, room.member(CAROL, "join", join_authorised_via_users_server=DAVE), "4.3.5.2"
    )
    # An authoriser who may invite but is not joined does not count.
    room.send(room.member(ALICE, "leave"))
    assert_rejected(
        room, room.member(CAROL, "join", join_authorised_via_users_server=ALICE), "4.3.5.2"
    )
    assert_rejected(room, room.member(CAROL, "join", join_authorised_via_users_server=5), "4.3.5.2")


@versions
@pytest.mark.parametrize("join_rule", ["restricted", "knock_restricted"])
def test_restricted_join_allows_invited_users_without_authoriser(
    version: RoomVersion, join_rule: str
) -> None:
    room = room_with_join_rule(version, join_rule)
    room.send(room.member(ALICE, "invite", CAROL))
    room.check(room.member(CAROL, "join"))


# --- 4.4 invite -----------------------------------------------------------------------------


@versions
def test_invite(version: RoomVersion) -> None:
    room = public_room(version)
    room.check(room.member(BOB, "invite", CAROL))  # invite level defaults to 0


@versions
def test_invite_needs_joined_sender(version: RoomVersion) -> None:
    room = public_room(version)
    assert_rejected(room, room.member(DAVE, "invite", CAROL), "4.4.2")


@versions
def test_cannot_invite_joined_or_banned_user(version: RoomVersion) -> None:
    room = public_room(version)
    assert_rejected(room, room.member(ALICE, "invite", BOB), "4.4.3")
    room.send(room.member(ALICE, "ban", CAROL))
    assert_rejected(room, room.member(ALICE, "invite", CAROL), "4.4.3")


@versions
def test_invite_needs_invite_level(version: RoomVersion) -> None:
    room = public_room(version, invite=50)
    assert_rejected(room, room.member(BOB, "invite", CAROL), "4.4.5")
    room.check(room.member(ALICE, "invite", CAROL))


# --- 4.4.1 third-party invites ---------------------------------------------------------------

IDENTITY_KEY = nacl.signing.SigningKey(b"\x01" * 32)
OTHER_KEY = nacl.signing.SigningKey(b"\x02" * 32)


def b64(data: bytes, *, urlsafe: bool = False) -> str:
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    return encode(data).decode().rstrip("=")


def signed_block(
    mxid: str, token: str = "tok", key: nacl.signing.SigningKey = IDENTITY_KEY
) -> dict[str, Any]:
    signed: dict[str, Any] = {"mxid": mxid, "sender": ALICE, "token": token}
    signature = key.sign(encode_canonical_json(signed)).signature
    signed["signatures"] = {"id.example": {"ed25519:0": b64(signature)}}
    return signed


def third_party_room(version: RoomVersion, **invite_content: Any) -> Room:
    room = public_room(version)
    content = invite_content or {"public_key": b64(bytes(IDENTITY_KEY.verify_key))}
    room.send(room.event("m.room.third_party_invite", ALICE, content, state_key="tok"))
    return room


def third_party_member(
    room: Room, sender: str, target: str, third_party_invite: Any
) -> dict[str, Any]:
    return room.member(sender, "invite", target, third_party_invite=third_party_invite)


@versions
def test_third_party_invite_with_valid_signature(version: RoomVersion) -> None:
    room = third_party_room(version)
    room.check(
        third_party_member(room, ALICE, CAROL, {"display_name": "c", "signed": signed_block(CAROL)})
    )


@versions
def test_third_party_invite_with_public_keys_list_and_urlsafe_key(version: RoomVersion) -> None:
    keys = [
        {"public_key": b64(bytes(OTHER_KEY.verify_key))},
        {"public_key": b64(bytes(IDENTITY_KEY.verify_key), urlsafe=True)},
    ]
    room = third_party_room(version, public_key="not base64!", public_keys=keys)
    room.check(third_party_member(room, ALICE, CAROL, {"signed": signed_block(CAROL)}))


@versions
def test_third_party_invite_rules(version: RoomVersion) -> None:
    """Pitfall: third-party invite auth was wrong in two places (ruma-state-res 0.9, 0.14)."""
    room = third_party_room(version)
    good = signed_block(CAROL)
    cases: list[tuple[Any, str]] = [
        ({}, "4.4.1.2"),
        ("junk", "4.4.1.2"),
        ({"signed": "junk"}, "4.4.1.2"),
        ({"signed": {k: v for k, v in good.items() if k != "mxid"}}, "4.4.1.3"),
        ({"signed": {k: v for k, v in good.items() if k != "token"}}, "4.4.1.3"),
        ({"signed": signed_block(DAVE)}, "4.4.1.4"),
        ({"signed": signed_block(CAROL, token="other")}, "4.4.1.5"),
        ({"signed": {**good, "token": ["tok"]}}, "4.4.1.5"),
        ({"signed": signed_block(CAROL, key=OTHER_KEY)}, "4.4.1.8"),
        ({"signed": {**good, "mxid": CAROL, "extra": 1}}, "4.4.1.8"),  # signature no longer matches
        ({"signed": {k: v for k, v in good.items() if k != "signatures"}}, "4.4.1.8"),
    ]
    for third_party_invite, expected in cases:
        assert_rejected(room, third_party_member(room, ALICE, CAROL, third_party_invite), expected)


@versions
def test_third_party_invite_sender_must_match(version: RoomVersion) -> None:
    room = third_party_room(version)
    assert_rejected(
        room, third_party_member(room, BOB, CAROL, {"signed": signed_block(CAROL)}), "4.4.1.6"
    )


@versions
def test_third_party_invite_to_banned_user_is_rejected(version: RoomVersion) -> None:
    room = third_party_room(version)
    room.send(room.member(ALICE, "ban", CAROL))
    assert_rejected(
        room, third_party_member(room, ALICE, CAROL, {"signed": signed_block(CAROL)}), "4.4.1.1"
    )


def test_verify_third_party_signed_ignores_non_ed25519_and_garbage() -> None:
    key = b64(bytes(IDENTITY_KEY.verify_key))
    signed = signed_block(CAROL)
    assert verify_third_party_signed(signed, [key])
    sig = signed["signatures"]["id.example"]["ed25519:0"]
    assert not verify_third_party_signed(
        {**signed, "signatures": {"id.example": {"curve25519:0": sig}}}, [key]
    )
    assert not verify_third_party_signed(
        {**signed, "signatures": {"id.example": {"ed25519:0": 5}}}, [key]
    )
    assert not verify_third_party_signed({**signed, "signatures": {"id.example": "x"}}, [key])
    assert not verify_third_party_signed({**signed, "value": 1.5}, [key])  # not canonical JSON
    assert not verify_third_party_signed(signed, ["short"])


# --- 4.5 leave ------------------------------------------------------------------------------


@versions
@pytest.mark.parametrize("membership", ["join", "invite", "knock"])
def test_self_leave_allowed_from_join_invite_knock(version: RoomVersion, membership: str) -> None:
    room = room_with_join_rule(version, "knock")
    if membership == "join":
        target = BOB
    else:
        target = CAROL
        room.send(
            room.member(ALICE, "invite", CAROL)
            if membership == "invite"
            else room.member(CAROL, "knock")
        )
    room.check(room.member(target, "leave"))


@versions
def test_self_leave_rejected_when_not_in_room_or_banned(version: RoomVersion) -> None:
    room = public_room(version)
    assert_rejected(room, room.member(CAROL, "leave"), "4.5.1")
    room.send(room.member(ALICE, "ban", CAROL))
    assert_rejected(room, room.member(CAROL, "leave"), "4.5.1")


@versions
def test_kick(version: RoomVersion) -> None:
    room = public_room(version)
    room.check(room.member(ALICE, "leave", BOB))
    assert_rejected(room, room.member(BOB, "leave", ALICE), "4.5.5")
    assert_rejected(room, room.member(DAVE, "leave", BOB), "4.5.2")


@versions
def test_kick_needs_more_power_than_target(version: RoomVersion) -> None:
    room = public_room(version, users=admin_users(version, **{BOB: 50, CAROL: 50}))
    room.send(room.member(CAROL, "join"))
    assert_rejected(room, room.member(BOB, "leave", CAROL), "4.5.5")


@versions
def test_unban_needs_ban_and_kick_level(version: RoomVersion) -> None:
    room = public_room(version, users=admin_users(version, **{BOB: 60}), ban=70, kick=50)
    room.send(room.member(ALICE, "ban", CAROL))
    assert_rejected(room, room.member(BOB, "leave", CAROL), "4.5.3")
    room.check(room.member(ALICE, "leave", CAROL))
    room2 = public_room(version, users=admin_users(version, **{BOB: 60}), ban=50, kick=70)
    room2.send(room2.member(ALICE, "ban", CAROL))
    assert_rejected(room2, room2.member(BOB, "leave", CAROL), "4.5.5")


# --- 4.6 ban --------------------------------------------------------------------------------


@versions
def test_ban(version: RoomVersion) -> None:
    room = public_room(version)
    room.check(room.member(ALICE, "ban", CAROL))
    assert_rejected(room, room.member(BOB, "ban", CAROL), "4.6.3")  # level 0 < ban 50
    assert_rejected(room, room.member(DAVE, "ban", CAROL), "4.6.1")


@versions
def test_ban_needs_more_power_than_target(version: RoomVersion) -> None:
    room = public_room(version, users=admin_users(version, **{BOB: 50, CAROL: 50}))
    assert_rejected(room, room.member(BOB, "ban", CAROL), "4.6.3")
    room.check(room.member(BOB, "ban", DAVE))


def test_v12_nobody_can_ban_a_creator() -> None:
    room = public_room(V12, users={BOB: 2**53 - 1})
    assert_rejected(room, room.member(BOB, "ban", ALICE), "4.6.3")


# --- 4.7 knock ------------------------------------------------------------------------------


@versions
@pytest.mark.parametrize("join_rule", ["knock", "knock_restricted"])
def test_knock_allowed_on_knock_rooms(version: RoomVersion, join_rule: str) -> None:
    room = room_with_join_rule(version, join_rule)
    room.check(room.member(CAROL, "knock"))


@versions
@pytest.mark.parametrize("join_rule", ["public", "invite", "restricted", "private"])
def test_knock_needs_a_knock_join_rule(version: RoomVersion, join_rule: str) -> None:
    """Pitfall: ruma once let any join rule through (ruma-state-res 0.17)."""
    room = room_with_join_rule(version, join_rule)
    assert_rejected(room, room.member(CAROL, "knock"), "4.7.1")


@versions
def test_knock_on_behalf_of_another_user_is_rejected(version: RoomVersion) -> None:
    room = room_with_join_rule(version, "knock")
    assert_rejected(room, room.member(BOB, "knock", CAROL), "4.7.2")


@versions
def test_invite_to_knock_is_not_allowed(version: RoomVersion) -> None:
    """Pitfall: invite -> knock is rejected (ruma-state-res 0.11, matrix-spec#1717)."""
    room = room_with_join_rule(version, "knock")
    room.send(room.member(ALICE, "invite", CAROL))
    assert_rejected(room, room.member(CAROL, "knock"), "4.7.4")


@versions
def test_banned_or_joined_user_cannot_knock(version: RoomVersion) -> None:
    room = room_with_join_rule(version, "knock")
    assert_rejected(room, room.member(BOB, "knock"), "4.7.4")
    room.send(room.member(ALICE, "ban", CAROL))
    assert_rejected(room, room.member(CAROL, "knock"), "4.7.4")


@versions
def test_knock_after_leave_is_allowed(version: RoomVersion) -> None:
    room = room_with_join_rule(version, "knock")
    room.send(room.member(BOB, "leave"))
    room.check(room.member(BOB, "knock"))


# --- lenient parsing ------------------------------------------------------------------------


@versions
def test_fields_the_rules_never_read_are_not_validated(version: RoomVersion) -> None:
    """Pitfall: rejecting a join over a bad displayname split rooms (dendrite#2681)."""
    room = public_room(version)
    weird = {
        "displayname": {"not": "a string"},
        "avatar_url": 12,
        "reason": ["x"],
        "is_direct": "yes",
        "join_authorised_via_users_server": None,
    }
    room.check(room.member(CAROL, "join", **weird))
    room.check(room.event("m.room.message", BOB, {"body": None, "msgtype": 3, "m.mentions": "x"}))


@versions
def test_third_party_invite_does_not_need_a_joined_sender(version: RoomVersion) -> None:
    """Rule 4.4.1 allows before rule 4.4.2 is reached: the signed block is the authority."""
    room = third_party_room(version)
    room.send(room.member(ALICE, "leave"))
    room.check(third_party_member(room, ALICE, CAROL, {"signed": signed_block(CAROL)}))
