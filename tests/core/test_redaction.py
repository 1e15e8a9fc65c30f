"""Redaction per room version: every kept and every dropped key, and idempotence."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from homeserver.core.redaction import redact_event
from homeserver.core.room_versions import V10, V11, V12, RoomVersion

ALL_VERSIONS = [V10, V11, V12]
V11_RULES = [V11, V12]

# Every top-level key the spec lists as kept in all of v10, v11 and v12.
ALWAYS_KEPT_TOP_LEVEL = {
    "event_id": "$e",
    "type": "m.room.message",
    "room_id": "!r:example.org",
    "sender": "@a:example.org",
    "state_key": "",
    "hashes": {"sha256": "abc"},
    "signatures": {"example.org": {"ed25519:a": "sig"}},
    "depth": 7,
    "prev_events": ["$p"],
    "auth_events": ["$a"],
    "origin_server_ts": 1234,
}
# Kept by v9-redactions.md (room version 10), dropped by v11-redactions.md.
PRE_V11_TOP_LEVEL = {"origin": "example.org", "membership": "join", "prev_state": ["$s"]}
NEVER_KEPT_TOP_LEVEL = {"unsigned": {"age": 1}, "redacts": "$x", "age_ts": 5, "custom": {"a": 1}}


def full_event(**content: Any) -> dict[str, Any]:
    return {
        **ALWAYS_KEPT_TOP_LEVEL,
        **PRE_V11_TOP_LEVEL,
        **NEVER_KEPT_TOP_LEVEL,
        "content": content,
    }


@pytest.mark.parametrize("room_version", ALL_VERSIONS, ids=lambda v: f"v{v.identifier}")
def test_top_level_keys_kept_in_every_version(room_version: RoomVersion) -> None:
    redacted = redact_event(full_event(body="hi"), room_version)
    for key, value in ALWAYS_KEPT_TOP_LEVEL.items():
        assert redacted[key] == value
    for key in NEVER_KEPT_TOP_LEVEL:
        assert key not in redacted


def test_v10_keeps_origin_membership_prev_state() -> None:
    redacted = redact_event(full_event(), V10)
    for key, value in PRE_V11_TOP_LEVEL.items():
        assert redacted[key] == value


@pytest.mark.parametrize("room_version", V11_RULES, ids=lambda v: f"v{v.identifier}")
def test_v11_drops_origin_membership_prev_state(room_version: RoomVersion) -> None:
    redacted = redact_event(full_event(), room_version)
    for key in PRE_V11_TOP_LEVEL:
        assert key not in redacted
    assert set(redacted) == set(ALWAYS_KEPT_TOP_LEVEL) | {"content"}


def redacted_content(event_type: str, content: dict[str, Any], room_version: RoomVersion) -> Any:
    event = {"type": event_type, "content": content, "sender": "@a:example.org"}
    return redact_event(event, room_version)["content"]


@pytest.mark.parametrize("room_version", ALL_VERSIONS, ids=lambda v: f"v{v.identifier}")
def test_message_content_is_emptied(room_version: RoomVersion) -> None:
    assert (
        redacted_content("m.room.message", {"body": "x", "msgtype": "m.text"}, room_version) == {}
    )


@pytest.mark.parametrize("room_version", ALL_VERSIONS, ids=lambda v: f"v{v.identifier}")
def test_member_keeps_membership_and_authorising_user(room_version: RoomVersion) -> None:
    content = {
        "membership": "join",
        "join_authorised_via_users_server": "@b:example.org",
        "displayname": "A",
        "avatar_url": "mxc://x/y",
        "reason": "r",
        "is_direct": True,
    }
    assert redacted_content("m.room.member", content, room_version) == {
        "membership": "join",
        "join_authorised_via_users_server": "@b:example.org",
    }


THIRD_PARTY_INVITE = {
    "display_name": "alice",
    "signed": {
        "mxid": "@alice:example.org",
        "token": "t",
        "signatures": {"id": {"ed25519:0": "s"}},
    },
}


def test_v10_member_drops_third_party_invite() -> None:
    content = {"membership": "invite", "third_party_invite": THIRD_PARTY_INVITE}
    assert redacted_content("m.room.member", content, V10) == {"membership": "invite"}


@pytest.mark.parametrize("room_version", V11_RULES, ids=lambda v: f"v{v.identifier}")
def test_v11_member_keeps_only_signed_of_third_party_invite(room_version: RoomVersion) -> None:
    content = {"membership": "invite", "third_party_invite": THIRD_PARTY_INVITE}
    assert redacted_content("m.room.member", content, room_version) == {
        "membership": "invite",
        "third_party_invite": {"signed": THIRD_PARTY_INVITE["signed"]},
    }


@pytest.mark.parametrize("room_version", V11_RULES, ids=lambda v: f"v{v.identifier}")
def test_v11_member_third_party_invite_edge_cases_match_synapse(room_version: RoomVersion) -> None:
    # An object without "signed" survives as {} (Synapse); a non-object is dropped.
    no_signed = {"membership": "invite", "third_party_invite": {"display_name": "x"}}
    assert redacted_content("m.room.member", no_signed, room_version) == {
        "membership": "invite",
        "third_party_invite": {},
    }
    not_object = {"membership": "invite", "third_party_invite": "x"}
    assert redacted_content("m.room.member", not_object, room_version) == {"membership": "invite"}


CREATE_CONTENT = {
    "creator": "@a:example.org",
    "room_version": "10",
    "m.federate": False,
    "predecessor": {"room_id": "!old:example.org"},
    "type": "m.space",
    "additional_creators": ["@b:example.org"],
}


def test_v10_create_keeps_only_creator() -> None:
    assert redacted_content("m.room.create", CREATE_CONTENT, V10) == {"creator": "@a:example.org"}


@pytest.mark.parametrize("room_version", V11_RULES, ids=lambda v: f"v{v.identifier}")
def test_v11_create_keeps_all_content(room_version: RoomVersion) -> None:
    assert redacted_content("m.room.create", CREATE_CONTENT, room_version) == CREATE_CONTENT


@pytest.mark.parametrize("room_version", ALL_VERSIONS, ids=lambda v: f"v{v.identifier}")
def test_join_rules_keep_join_rule_and_allow(room_version: RoomVersion) -> None:
    allow = [{"type": "m.room_membership", "room_id": "!s:example.org"}]
    content = {"join_rule": "restricted", "allow": allow, "other": 1}
    assert redacted_content("m.room.join_rules", content, room_version) == {
        "join_rule": "restricted",
        "allow": allow,
    }


POWER_LEVELS = {
    "ban": 50,
    "events": {"m.room.name": 100},
    "events_default": 0,
    "invite": 0,
    "kick": 50,
    "redact": 50,
    "state_default": 50,
    "users": {"@a:example.org": 100},
    "users_default": 0,
    "notifications": {"room": 50},
    "other": 1,
}
PL_KEPT_V10 = {
    "ban",
    "events",
    "events_default",
    "kick",
    "redact",
    "state_default",
    "users",
    "users_default",
}


def test_v10_power_levels_drop_invite() -> None:
    redacted = redacted_content("m.room.power_levels", POWER_LEVELS, V10)
    assert redacted == {key: POWER_LEVELS[key] for key in PL_KEPT_V10}


@pytest.mark.parametrize("room_version", V11_RULES, ids=lambda v: f"v{v.identifier}")
def test_v11_power_levels_keep_invite(room_version: RoomVersion) -> None:
    redacted = redacted_content("m.room.power_levels", POWER_LEVELS, room_version)
    assert redacted == {key: POWER_LEVELS[key] for key in PL_KEPT_V10 | {"invite"}}


@pytest.mark.parametrize("room_version", ALL_VERSIONS, ids=lambda v: f"v{v.identifier}")
def test_history_visibility_kept(room_version: RoomVersion) -> None:
    content = {"history_visibility": "shared", "other": 1}
    assert redacted_content("m.room.history_visibility", content, room_version) == {
        "history_visibility": "shared"
    }


def test_v10_redaction_content_emptied() -> None:
    assert redacted_content("m.room.redaction", {"redacts": "$x", "reason": "spam"}, V10) == {}


@pytest.mark.parametrize("room_version", V11_RULES, ids=lambda v: f"v{v.identifier}")
def test_v11_redaction_keeps_redacts(room_version: RoomVersion) -> None:
    content = {"redacts": "$x", "reason": "spam"}
    assert redacted_content("m.room.redaction", content, room_version) == {"redacts": "$x"}


@pytest.mark.parametrize(
    "event_type",
    ["m.room.name", "m.room.topic", "m.room.aliases", "m.room.server_acl", "m.room.encryption"],
)
@pytest.mark.parametrize("room_version", ALL_VERSIONS, ids=lambda v: f"v{v.identifier}")
def test_other_state_content_is_emptied(event_type: str, room_version: RoomVersion) -> None:
    content = {"name": "n", "topic": "t", "aliases": ["#a:b"], "allow": ["*"], "algorithm": "x"}
    assert redacted_content(event_type, content, room_version) == {}


@pytest.mark.parametrize("room_version", ALL_VERSIONS, ids=lambda v: f"v{v.identifier}")
def test_missing_or_malformed_content_becomes_empty(room_version: RoomVersion) -> None:
    assert redact_event({"type": "m.room.member"}, room_version)["content"] == {}
    assert redact_event({"type": "m.room.create", "content": [1]}, room_version)["content"] == {}


# -- properties -------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)
content_keys = st.sampled_from(
    [
        "membership",
        "join_authorised_via_users_server",
        "third_party_invite",
        "creator",
        "join_rule",
        "allow",
        "ban",
        "invite",
        "users",
        "history_visibility",
        "redacts",
        "body",
    ]
) | st.text(max_size=5)
top_level_keys = st.sampled_from(
    [*ALWAYS_KEPT_TOP_LEVEL, *PRE_V11_TOP_LEVEL, *NEVER_KEPT_TOP_LEVEL]
) | st.text(max_size=5)
event_types = st.sampled_from(
    [
        "m.room.member",
        "m.room.create",
        "m.room.join_rules",
        "m.room.power_levels",
        "m.room.history_visibility",
        "m.room.redaction",
        "m.room.message",
    ]
)
events = st.builds(
    lambda top, event_type, content: {**top, "type": event_type, "content": content},
    st.dictionaries(top_level_keys, json_values, max_size=8),
    event_types,
    st.dictionaries(
        content_keys, json_values | st.fixed_dictionaries({"signed": json_values}), max_size=6
    ),
)


@settings(max_examples=300, deadline=None)
@given(events, st.sampled_from(ALL_VERSIONS))
def test_redaction_is_idempotent_and_pure(event: dict[str, Any], room_version: RoomVersion) -> None:
    before = copy.deepcopy(event)
    once = redact_event(event, room_version)
    assert event == before
    assert redact_event(once, room_version) == once


@settings(max_examples=100, deadline=None)
@given(events, st.sampled_from(ALL_VERSIONS))
def test_redacted_copy_shares_no_mutable_state(
    event: dict[str, Any], room_version: RoomVersion
) -> None:
    before = copy.deepcopy(event)
    redacted = redact_event(event, room_version)

    def scribble(value: Any) -> None:
        if isinstance(value, dict):
            for item in list(value.values()):
                scribble(item)
            value["scribbled"] = True
        elif isinstance(value, list):
            for item in value:
                scribble(item)
            value.append("scribbled")

    scribble(redacted)
    assert event == before
