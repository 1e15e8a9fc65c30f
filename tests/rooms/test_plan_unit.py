"""The pure /createRoom plan: order, presets, versions, overrides, and the auth dry run."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from homeserver.core.room_versions import V10, V11, V12, RoomVersion
from homeserver.errors import MatrixError
from homeserver.rooms.plan import (
    CreateRoomRequest,
    PlannedEvent,
    check_plan,
    plan_room,
)

ALICE = "@alice:test.example"
BOB = "@bob:test.example"
SERVER = "test.example"


def keys(plan_events: list[PlannedEvent]) -> list[tuple[str, str]]:
    return [(e.type, e.state_key) for e in plan_events]


def content(plan_events: list[PlannedEvent], event_type: str, state_key: str = "") -> dict:
    for e in plan_events:
        if (e.type, e.state_key) == (event_type, state_key):
            return e.content
    raise KeyError((event_type, state_key))


@pytest.mark.parametrize("version", [V10, V11, V12])
def test_order_follows_the_spec(version: RoomVersion) -> None:
    request = CreateRoomRequest(
        creator=ALICE,
        room_version=version,
        name="n",
        topic="t",
        invite=[BOB],
        room_alias="#a:test.example",
        initial_state=[
            PlannedEvent("m.room.encryption", "", {"algorithm": "m.megolm.v1.aes-sha2"})
        ],
    )
    plan = plan_room(request)
    assert keys(plan.events) == [
        ("m.room.member", ALICE),
        ("m.room.power_levels", ""),
        ("m.room.canonical_alias", ""),
        ("m.room.join_rules", ""),
        ("m.room.history_visibility", ""),
        ("m.room.guest_access", ""),
        ("m.room.encryption", ""),
        ("m.room.name", ""),
        ("m.room.topic", ""),
        ("m.room.member", BOB),
    ]
    check_plan(request, plan, SERVER)


@pytest.mark.parametrize(
    ("preset", "visibility", "join_rule", "guest"),
    [
        ("private_chat", "private", "invite", "can_join"),
        ("trusted_private_chat", "private", "invite", "can_join"),
        ("public_chat", "private", "public", "forbidden"),
        (None, "public", "public", "forbidden"),
        (None, "private", "invite", "can_join"),
    ],
)
def test_presets(preset: str | None, visibility: str, join_rule: str, guest: str) -> None:
    plan = plan_room(
        CreateRoomRequest(creator=ALICE, room_version=V11, preset=preset, visibility=visibility)
    )
    assert content(plan.events, "m.room.join_rules") == {"join_rule": join_rule}
    assert content(plan.events, "m.room.guest_access") == {"guest_access": guest}
    assert content(plan.events, "m.room.history_visibility") == {"history_visibility": "shared"}
    levels = content(plan.events, "m.room.power_levels")
    assert levels["invite"] == (50 if join_rule == "public" else 0)
    if join_rule == "public":
        assert levels["events"]["m.call.invite"] == 50


def test_trusted_private_chat_v11_gives_invitees_100() -> None:
    plan = plan_room(
        CreateRoomRequest(
            creator=ALICE, room_version=V11, preset="trusted_private_chat", invite=[BOB]
        )
    )
    assert content(plan.events, "m.room.power_levels")["users"] == {ALICE: 100, BOB: 100}
    assert "additional_creators" not in plan.create_content


def test_v12_creators_are_not_in_power_levels() -> None:
    request = CreateRoomRequest(
        creator=ALICE,
        room_version=V12,
        preset="trusted_private_chat",
        invite=[BOB],
        power_level_content_override={"users": {ALICE: 100, "@carol:test.example": 50}},
    )
    plan = plan_room(request)
    assert plan.create_content["additional_creators"] == [BOB]
    levels = content(plan.events, "m.room.power_levels")
    assert levels["users"] == {"@carol:test.example": 50}
    assert levels["events"]["m.room.tombstone"] == 150
    check_plan(request, plan, SERVER)


def test_v10_v11_tombstone_level() -> None:
    levels = content(
        plan_room(CreateRoomRequest(creator=ALICE, room_version=V10)).events, "m.room.power_levels"
    )
    assert levels["events"]["m.room.tombstone"] == 100
    assert levels["users"] == {ALICE: 100}


def test_initial_state_overrides_preset() -> None:
    plan = plan_room(
        CreateRoomRequest(
            creator=ALICE,
            room_version=V11,
            preset="private_chat",
            initial_state=[
                PlannedEvent("m.room.join_rules", "", {"join_rule": "public"}),
                PlannedEvent("m.room.history_visibility", "", {"history_visibility": "joined"}),
            ],
        )
    )
    assert keys(plan.events).count(("m.room.join_rules", "")) == 1
    assert content(plan.events, "m.room.join_rules") == {"join_rule": "public"}
    assert content(plan.events, "m.room.history_visibility") == {"history_visibility": "joined"}


def test_initial_power_levels_replace_defaults_and_override_applies() -> None:
    plan = plan_room(
        CreateRoomRequest(
            creator=ALICE,
            room_version=V11,
            initial_state=[
                PlannedEvent("m.room.power_levels", "", {"users": {ALICE: 100}, "ban": 10})
            ],
            power_level_content_override={"kick": 20},
        )
    )
    levels = content(plan.events, "m.room.power_levels")
    assert levels == {"users": {ALICE: 100}, "ban": 10, "kick": 20}
    assert keys(plan.events).count(("m.room.power_levels", "")) == 1


def test_is_direct_and_profiles_on_members() -> None:
    plan = plan_room(
        CreateRoomRequest(creator=ALICE, room_version=V11, invite=[BOB], is_direct=True),
        {ALICE: {"displayname": "Alice", "avatar_url": None}, BOB: {"displayname": "Bob"}},
    )
    assert content(plan.events, "m.room.member", ALICE) == {
        "membership": "join",
        "displayname": "Alice",
    }
    assert content(plan.events, "m.room.member", BOB) == {
        "membership": "invite",
        "displayname": "Bob",
        "is_direct": True,
    }


def test_creation_content_cannot_override_version_or_creator() -> None:
    plan = plan_room(
        CreateRoomRequest(
            creator=ALICE,
            room_version=V10,
            creation_content={"room_version": "1", "creator": BOB, "m.federate": False},
        )
    )
    assert plan.create_content == {"m.federate": False}


def test_topic_has_text_representation() -> None:
    plan = plan_room(CreateRoomRequest(creator=ALICE, room_version=V11, topic="hi"))
    assert content(plan.events, "m.room.topic") == {
        "topic": "hi",
        "m.topic": {"m.text": [{"body": "hi", "mimetype": "text/plain"}]},
    }


def test_creator_invited_is_ignored() -> None:
    plan = plan_room(CreateRoomRequest(creator=ALICE, room_version=V11, invite=[ALICE, BOB, BOB]))
    members = [e.state_key for e in plan.events if e.type == "m.room.member"]
    assert members == [ALICE, BOB]


def test_override_removing_own_power_is_invalid_room_state() -> None:
    request = CreateRoomRequest(
        creator=ALICE,
        room_version=V11,
        name="x",
        power_level_content_override={"users": {ALICE: 0}},
    )
    with pytest.raises(MatrixError) as info:
        check_plan(request, plan_room(request), SERVER)
    assert (info.value.status, info.value.errcode) == (400, "M_INVALID_ROOM_STATE")


def test_string_power_levels_are_refused_in_v10() -> None:
    request = CreateRoomRequest(
        creator=ALICE, room_version=V10, power_level_content_override={"ban": "50"}
    )
    with pytest.raises(MatrixError) as info:
        check_plan(request, plan_room(request), SERVER)
    assert info.value.errcode == "M_INVALID_ROOM_STATE"


def test_floats_are_bad_json() -> None:
    request = CreateRoomRequest(
        creator=ALICE,
        room_version=V11,
        initial_state=[PlannedEvent("org.example", "", {"x": 1.5})],
    )
    with pytest.raises(MatrixError) as info:
        check_plan(request, plan_room(request), SERVER)
    assert info.value.errcode == "M_BAD_JSON"


def test_oversized_state_is_too_large() -> None:
    request = CreateRoomRequest(
        creator=ALICE,
        room_version=V11,
        initial_state=[PlannedEvent("org.example", "", {"x": "a" * 70000})],
    )
    with pytest.raises(MatrixError) as info:
        check_plan(request, plan_room(request), SERVER)
    assert (info.value.status, info.value.errcode) == (413, "M_TOO_LARGE")


def test_plan_does_not_share_mutable_input() -> None:
    override = {"events": {"m.room.name": 10}}
    request = CreateRoomRequest(
        creator=ALICE, room_version=V11, power_level_content_override=override
    )
    levels = content(plan_room(request).events, "m.room.power_levels")
    levels["events"]["m.room.name"] = 99
    assert override == {"events": {"m.room.name": 10}}


_users = st.sampled_from([BOB, "@carol:test.example", "@dave:test.example", ALICE])
_state = st.builds(
    PlannedEvent,
    st.sampled_from(
        ["m.room.join_rules", "m.room.encryption", "m.room.history_visibility", "org.example.x"]
    ),
    st.sampled_from(["", "k"]),
    st.fixed_dictionaries({"v": st.integers(0, 10)}),
)


@settings(max_examples=200, deadline=None)
@given(
    version=st.sampled_from([V10, V11, V12]),
    preset=st.sampled_from([None, "private_chat", "public_chat", "trusted_private_chat"]),
    visibility=st.sampled_from(["public", "private"]),
    invite=st.lists(_users, max_size=4),
    initial_state=st.lists(_state, max_size=5),
    name=st.none() | st.text(max_size=20),
    is_direct=st.booleans(),
)
def test_every_plan_without_override_passes_its_own_checks(
    version: RoomVersion,
    preset: str | None,
    visibility: str,
    invite: list[str],
    initial_state: list[PlannedEvent],
    name: str | None,
    is_direct: bool,
) -> None:
    """Whatever the options, a plan the client could not break (no override) is sendable,
    starts with the creator's join and power levels, and ends with one invite per invitee."""
    request = CreateRoomRequest(
        creator=ALICE,
        room_version=version,
        preset=preset,
        visibility=visibility,
        invite=invite,
        initial_state=initial_state,
        name=name,
        is_direct=is_direct,
    )
    plan = plan_room(request)
    check_plan(request, plan, SERVER)
    assert keys(plan.events)[:2] == [("m.room.member", ALICE), ("m.room.power_levels", "")]
    invited = [e.state_key for e in plan.events if e.content.get("membership") == "invite"]
    assert invited == list(dict.fromkeys(u for u in invite if u != ALICE))
    for event in plan.events:
        if event.content.get("membership") == "invite":
            assert event.content.get("is_direct", False) is is_direct
    assert len(set(keys(plan.events))) == len(plan.events)
