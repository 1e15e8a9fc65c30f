"""``POST /createRoom`` and room state (``GET /rooms/{roomId}/state``, ``GET``/``PUT .../state/{type}/{key}``).

Spec: ``create_room.yaml`` and ``room_state.yaml``. The request body is turned
into a :class:`~homeserver.rooms.plan.CreateRoomRequest` here, with an error
naming the offending field; the room services do the rest.
"""

from __future__ import annotations

from typing import Any

from client_api import validation as v
from homeserver.accounts.auth import require_user
from homeserver.core.room_versions import get_room_version
from homeserver.errors import MatrixError, bad_json, invalid_param
from homeserver.homeserver import HomeServer
from homeserver.http.router import Router
from homeserver.http.types import Request, Response
from homeserver.rooms.directory import alias_from_name
from homeserver.rooms.plan import PRESETS, CreateRoomRequest, PlannedEvent

MAX_INVITES = 100
MAX_INITIAL_STATE = 100
MAX_NAME_LENGTH = 255
MAX_TOPIC_LENGTH = 4096
MAX_ALIAS_NAME_LENGTH = 200
MAX_TYPE_BYTES = 255


def _object(body: dict[str, Any], name: str) -> dict[str, Any] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad_json(f"'{name}' must be an object")
    return value


def _initial_state(body: dict[str, Any]) -> list[PlannedEvent]:
    value = body.get("initial_state")
    if value is None:
        return []
    if not isinstance(value, list):
        raise bad_json("'initial_state' must be a list")
    if len(value) > MAX_INITIAL_STATE:
        raise invalid_param(f"'initial_state' has more than {MAX_INITIAL_STATE} entries")
    out = []
    for i, item in enumerate(value):
        where = f"initial_state[{i}]"
        if not isinstance(item, dict):
            raise bad_json(f"'{where}' must be an object")
        event_type, state_key = item.get("type"), item.get("state_key", "")
        content = item.get("content")
        if not isinstance(event_type, str) or not event_type:
            raise bad_json(f"'{where}.type' must be a non-empty string")
        if not isinstance(state_key, str):
            raise bad_json(f"'{where}.state_key' must be a string")
        if not isinstance(content, dict):
            raise bad_json(f"'{where}.content' must be an object")
        if len(event_type.encode()) > MAX_TYPE_BYTES or len(state_key.encode()) > MAX_TYPE_BYTES:
            raise invalid_param(f"'{where}' type or state_key is longer than 255 bytes")
        if event_type in ("m.room.create", "m.room.member"):
            raise MatrixError(400, "M_INVALID_ROOM_STATE", f"'{where}' may not set {event_type}")
        out.append(PlannedEvent(event_type, state_key, content))
    return out


def parse_create_room(hs: HomeServer, creator: str, body: dict[str, Any]) -> CreateRoomRequest:
    visibility = v.string(body, "visibility", max_length=16) or "private"
    if visibility not in ("public", "private"):
        raise bad_json("'visibility' must be 'public' or 'private'")
    preset = v.string(body, "preset", max_length=32)
    if preset is not None and preset not in PRESETS:
        raise bad_json(f"'preset' must be one of {', '.join(PRESETS)}")
    version_id = v.string(body, "room_version", max_length=32)
    if version_id is None:
        version_id = hs.config.default_room_version
    version = get_room_version(version_id)
    if version is None:
        raise MatrixError(
            400, "M_UNSUPPORTED_ROOM_VERSION", f"Room version {version_id!r} is not supported"
        )
    invite = (
        v.string_list(body, "invite", max_items=MAX_INVITES, max_length=255)
        if body.get("invite") is not None
        else []
    )
    invite_3pid = body.get("invite_3pid")
    if invite_3pid is not None and not isinstance(invite_3pid, list):
        raise bad_json("'invite_3pid' must be a list")
    if invite_3pid:
        raise MatrixError(400, "M_UNKNOWN", "Third-party invites are not supported")
    alias_name = v.string(body, "room_alias_name", max_length=MAX_ALIAS_NAME_LENGTH)
    room_alias = alias_from_name(alias_name, hs.server_name) if alias_name else None
    return CreateRoomRequest(
        creator=creator,
        room_version=version,
        preset=preset,
        visibility=visibility,
        name=v.string(body, "name", max_length=MAX_NAME_LENGTH),
        topic=v.string(body, "topic", max_length=MAX_TOPIC_LENGTH),
        invite=invite,
        is_direct=v.boolean(body, "is_direct", False),
        initial_state=_initial_state(body),
        power_level_content_override=_object(body, "power_level_content_override"),
        creation_content=_object(body, "creation_content"),
        room_alias=room_alias,
    )


def add_routes(router: Router, hs: HomeServer) -> None:
    async def create_room(request: Request) -> Response:
        requester = await require_user(hs, request)
        create = parse_create_room(hs, requester.user_id, request.json())
        room_id = await hs.rooms.create_room(create)
        body: dict[str, Any] = {"room_id": room_id}
        if create.room_alias is not None:
            body["room_alias"] = create.room_alias
        return Response.json(body)

    async def get_state(request: Request) -> Response:
        requester = await require_user(hs, request)
        events = await hs.room_state.get_state(requester.user_id, request.path_params["roomId"])
        return Response.json(await hs.messages.client_events.serialize(events))

    async def get_state_event(request: Request) -> Response:
        requester = await require_user(hs, request)
        params = request.path_params
        event = await hs.room_state.get_state_event(
            requester.user_id, params["roomId"], params["eventType"], params.get("stateKey", "")
        )
        # Serialized like every read path, so a redacted state event shows its redacted content.
        serialized = (await hs.messages.client_events.serialize([event]))[0]
        if request.query_one("format") == "event":
            return Response.json(serialized)
        content: dict[str, Any] = serialized.get("content", {})
        return Response.json(content)

    async def put_state_event(request: Request) -> Response:
        requester = await require_user(hs, request)
        params = request.path_params
        content = request.json()
        event_id = await hs.room_state.set_state(
            requester.user_id,
            params["roomId"],
            params["eventType"],
            params.get("stateKey", ""),
            content,
        )
        return Response.json({"event_id": event_id})

    for prefix in ("v3", "r0"):
        base = f"/_matrix/client/{prefix}"
        router.add("POST", f"{base}/createRoom", create_room)
        room = f"{base}/rooms/{{roomId}}"
        router.add("GET", f"{room}/state", get_state)
        router.add("GET", f"{room}/state/{{eventType}}", get_state_event)
        router.add("PUT", f"{room}/state/{{eventType}}", put_state_event)
        router.add("GET", f"{room}/state/{{eventType}}/{{stateKey}}", get_state_event)
        router.add("PUT", f"{room}/state/{{eventType}}/{{stateKey}}", put_state_event)
