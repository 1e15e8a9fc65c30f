"""Room creation as a pure plan: which state events ``/createRoom`` sends, in which order.

Spec: ``create_room.yaml`` and matrix_brief 1.7. The order is fixed:
create, the creator's join, power levels (with ``power_level_content_override``),
canonical alias, the preset's join rules / history visibility / guest access,
``initial_state`` (which overrides the preset), name, topic, invites.

:func:`plan_room` only computes; :func:`check_plan` runs the real auth rules
over the planned events against a simulated state, so a request whose initial
state would be refused half-way (e.g. an override that takes away the power
needed to set the name) is answered 400 ``M_INVALID_ROOM_STATE`` before
anything is stored.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from homeserver.core.auth_rules import AuthError, check_auth
from homeserver.core.canonical_json import (
    CanonicalJSONError,
    EventSizeError,
    check_event_size,
    validate_canonical_value,
)
from homeserver.core.room_versions import RoomVersion
from homeserver.errors import MatrixError, bad_json

PRESETS = ("private_chat", "public_chat", "trusted_private_chat")

# Per preset: join_rule, history_visibility, guest_access (spec create_room.yaml "preset").
_PRESET_STATE = {
    "private_chat": ("invite", "shared", "can_join"),
    "trusted_private_chat": ("invite", "shared", "can_join"),
    "public_chat": ("public", "shared", "forbidden"),
}


@attrs.frozen
class PlannedEvent:
    type: str
    state_key: str
    content: dict[str, Any]


@attrs.frozen
class CreateRoomRequest:
    """``/createRoom`` after shape validation; contents are plain JSON values."""

    creator: str
    room_version: RoomVersion
    preset: str | None = None
    visibility: str = "private"
    name: str | None = None
    topic: str | None = None
    invite: Sequence[str] = ()
    is_direct: bool = False
    initial_state: Sequence[PlannedEvent] = ()
    power_level_content_override: Mapping[str, Any] | None = None
    creation_content: Mapping[str, Any] | None = None
    room_alias: str | None = None  # full alias, e.g. "#room:server"


@attrs.frozen
class RoomPlan:
    # Content for the m.room.create event, without room_version / creator (the
    # event-creation service adds those by version).
    create_content: dict[str, Any]
    # Every event after the create event, in order (the creator's join first).
    events: list[PlannedEvent]


def invalid_room_state(error: str) -> MatrixError:
    return MatrixError(400, "M_INVALID_ROOM_STATE", error)


def effective_preset(request: CreateRoomRequest) -> str:
    if request.preset is not None:
        return request.preset
    return "public_chat" if request.visibility == "public" else "private_chat"


def default_power_levels(version: RoomVersion, creator: str, preset: str) -> dict[str, Any]:
    """Synapse's defaults (matrix_brief 1.7), tweaked by preset; v12 lists no creators."""
    content: dict[str, Any] = {
        "users": {} if version.privileged_creators else {creator: 100},
        "users_default": 0,
        "events": {
            "m.room.name": 50,
            "m.room.power_levels": 100,
            "m.room.history_visibility": 100,
            "m.room.canonical_alias": 50,
            "m.room.avatar": 50,
            # v12: must exceed what a (non-creator) admin has, so only creators upgrade.
            "m.room.tombstone": 150 if version.privileged_creators else 100,
            "m.room.server_acl": 100,
            "m.room.encryption": 100,
        },
        "events_default": 0,
        "state_default": 50,
        "ban": 50,
        "kick": 50,
        "redact": 50,
        "invite": 50,
        "historical": 100,
    }
    if preset in ("private_chat", "trusted_private_chat"):
        content["invite"] = 0
    if preset == "public_chat":
        content["events"]["m.call.invite"] = 50
    return content


def _topic_content(topic: str) -> dict[str, Any]:
    # v1.15: the m.topic block carries the text representation alongside the plain topic.
    return {"topic": topic, "m.topic": {"m.text": [{"body": topic, "mimetype": "text/plain"}]}}


def plan_room(
    request: CreateRoomRequest, profiles: Mapping[str, Mapping[str, Any]] | None = None
) -> RoomPlan:
    """The events ``request`` creates. ``profiles`` adds displayname/avatar_url to members."""
    version = request.room_version
    creator = request.creator
    preset = effective_preset(request)
    profiles = profiles or {}

    create_content = {
        k: copy.deepcopy(v)
        for k, v in (request.creation_content or {}).items()
        if k not in ("room_version", "creator")
    }
    trusted = preset == "trusted_private_chat"
    invitees = list(dict.fromkeys(u for u in request.invite if u != creator))
    if trusted and version.privileged_creators and invitees:
        # v12 (MSC4289): trusted invitees become creators instead of 100s in power levels.
        extra = create_content.get("additional_creators")
        existing = list(extra) if isinstance(extra, list) else []
        create_content["additional_creators"] = list(dict.fromkeys([*existing, *invitees]))
    creators = {creator}
    if version.privileged_creators:
        additional = create_content.get("additional_creators")
        if isinstance(additional, list):
            creators.update(u for u in additional if isinstance(u, str))

    initial: dict[tuple[str, str], dict[str, Any]] = {}
    for event in request.initial_state:
        initial[(event.type, event.state_key)] = copy.deepcopy(event.content)

    events: list[PlannedEvent] = [
        PlannedEvent("m.room.member", creator, _member_content("join", profiles.get(creator)))
    ]

    power_levels = initial.pop(("m.room.power_levels", ""), None)
    if power_levels is None:
        power_levels = default_power_levels(version, creator, preset)
        if trusted and not version.privileged_creators:
            for user in invitees:
                power_levels["users"][user] = 100
    if request.power_level_content_override:
        power_levels.update(copy.deepcopy(dict(request.power_level_content_override)))
    if version.privileged_creators and isinstance(power_levels.get("users"), dict):
        # v12 creators have infinite power and may not be listed (auth rule 10.x).
        power_levels["users"] = {
            u: level for u, level in power_levels["users"].items() if u not in creators
        }
    events.append(PlannedEvent("m.room.power_levels", "", power_levels))

    if request.room_alias is not None and ("m.room.canonical_alias", "") not in initial:
        events.append(PlannedEvent("m.room.canonical_alias", "", {"alias": request.room_alias}))

    join_rule, history_visibility, guest_access = _PRESET_STATE[preset]
    for event_type, content in (
        ("m.room.join_rules", {"join_rule": join_rule}),
        ("m.room.history_visibility", {"history_visibility": history_visibility}),
        ("m.room.guest_access", {"guest_access": guest_access}),
    ):
        if (event_type, "") not in initial:
            events.append(PlannedEvent(event_type, "", content))

    for (event_type, state_key), content in initial.items():
        events.append(PlannedEvent(event_type, state_key, content))

    if request.name is not None:
        events.append(PlannedEvent("m.room.name", "", {"name": request.name}))
    if request.topic is not None:
        events.append(PlannedEvent("m.room.topic", "", _topic_content(request.topic)))

    for user in invitees:
        invite_content: dict[str, Any] = _member_content("invite", profiles.get(user))
        if request.is_direct:
            invite_content["is_direct"] = True
        events.append(PlannedEvent("m.room.member", user, invite_content))
    return RoomPlan(create_content=create_content, events=events)


def _member_content(membership: str, profile: Mapping[str, Any] | None) -> dict[str, Any]:
    content: dict[str, Any] = {"membership": membership}
    for key in ("displayname", "avatar_url"):
        value = (profile or {}).get(key)
        if isinstance(value, str):
            content[key] = value
    return content


# Room and event IDs used only while simulating; long enough that size checks are realistic.
_SIM_ID = "$" + "A" * 43


def check_plan(request: CreateRoomRequest, plan: RoomPlan, server_name: str) -> None:
    """Run the auth rules and size limits over the plan; raise the Matrix error it deserves.

    Every event is checked against the state the previous planned events build, exactly
    as the event-creation pipeline will check them, so a plan that passes is stored whole.
    """
    version = request.room_version
    create_content = {**plan.create_content, "room_version": version.identifier}
    if not version.implicit_room_creator:
        create_content["creator"] = request.creator
    if version.room_id_from_create_event:
        room_id = "!" + _SIM_ID[1:]
    else:
        room_id = f"!{'A' * 18}:{server_name}"
    create: dict[str, Any] = {
        "type": "m.room.create",
        "state_key": "",
        "sender": request.creator,
        "content": create_content,
        "prev_events": [],
        "auth_events": [],
        "event_id": _SIM_ID,
    }
    if not version.room_id_from_create_event:
        create["room_id"] = room_id
    _check_one(version, create, {}, "m.room.create")
    state: dict[tuple[str, str], dict[str, Any]] = {("m.room.create", ""): create}
    for index, planned in enumerate(plan.events):
        event = {
            "type": planned.type,
            "state_key": planned.state_key,
            "sender": request.creator,
            "content": planned.content,
            "room_id": room_id,
            "prev_events": [_SIM_ID],
            # Up to five auth events and a signature, so the size check is not optimistic.
            "auth_events": [_SIM_ID] * 5,
            "depth": index + 2,
            "origin_server_ts": 10**13,
            "hashes": {"sha256": "A" * 43},
            "signatures": {server_name: {"ed25519:a_AAAAAA": "A" * 86}},
            "event_id": f"$sim{index}",
        }
        _check_one(version, event, state, planned.type)
        state[(planned.type, planned.state_key)] = event


def _check_one(
    version: RoomVersion,
    event: dict[str, Any],
    state: Mapping[tuple[str, str], Mapping[str, Any]],
    what: str,
) -> None:
    try:
        validate_canonical_value(event["content"])
    except CanonicalJSONError as exc:
        raise bad_json(f"content of {what} is not valid: {exc}") from None
    try:
        check_event_size({k: v for k, v in event.items() if k != "event_id"})
    except EventSizeError as exc:
        raise MatrixError(413, "M_TOO_LARGE", f"{what}: {exc}") from None
    try:
        check_auth(version, event, state)
    except AuthError as exc:
        raise invalid_room_state(f"{what} would be refused: {exc}") from None
