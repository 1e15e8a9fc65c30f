"""Writes ``spec/openapi.json``: the OpenAPI 3.1 description of Plait's Client-Server API.

Run ``python spec/build_openapi.py`` after changing this file; the tests in
``tests/spec/`` check that openapi.json matches this file, that it lists exactly
the routes the server serves, and that real answers validate against it.

Schemas copy the *structure* of the Matrix v1.11 OpenAPI files
(``data/api/client-server/*.yaml`` of matrix-org/matrix-spec); each operation's
``externalDocs`` names the Matrix section it follows. Only stdlib: no YAML.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

SPEC_URL = "https://spec.matrix.org/v1.11/client-server-api/"
HERE = Path(__file__).resolve().parent

# -- shared schemas -------------------------------------------------------------------


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


OBJ: dict[str, Any] = {"type": "object"}
STR: dict[str, Any] = {"type": "string"}
INT: dict[str, Any] = {"type": "integer"}
BOOL: dict[str, Any] = {"type": "boolean"}
EMPTY = {"type": "object", "description": "An empty JSON object `{}`."}


def obj(required: list[str] | None = None, **props: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        out["required"] = required
    return out


def array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "description": "The standard error body (Matrix: API Standards, Standard error response).",
        "required": ["errcode", "error"],
        "properties": {
            "errcode": {"type": "string", "pattern": "^M_[A-Z_]+$"},
            "error": STR,
            "retry_after_ms": {**INT, "description": "Only with M_LIMIT_EXCEEDED."},
            "soft_logout": {
                **BOOL,
                "description": "Only with M_UNKNOWN_TOKEN for an expired token.",
            },
        },
    },
    "AuthenticationResponse": {
        "type": "object",
        "description": "401 of user-interactive auth (Matrix: User-Interactive Authentication API). "
        "`errcode`/`error` appear only when the last stage failed.",
        "required": ["flows", "params", "session"],
        "properties": {
            "flows": array(obj(["stages"], stages=array(STR))),
            "params": OBJ,
            "session": STR,
            "completed": array(STR),
            "errcode": STR,
            "error": STR,
        },
    },
    "AuthenticationData": obj(
        None,
        type={
            "type": "string",
            "enum": ["m.login.dummy", "m.login.password", "m.login.registration_token"],
        },
        session=STR,
        token={**STR, "description": "m.login.registration_token only"},
        password={**STR, "description": "m.login.password only"},
        identifier={**OBJ, "description": "m.login.password only: {type: m.id.user, user}"},
    ),
    "LoginResponse": obj(
        ["user_id", "access_token", "device_id"],
        user_id=STR,
        access_token=STR,
        device_id=STR,
        refresh_token=STR,
        expires_in_ms=INT,
    ),
    "UnsignedData": obj(None, age=INT, transaction_id=STR, redacted_because=OBJ, prev_content=OBJ),
    "ClientEvent": {
        "type": "object",
        "description": "Matrix: Room Event Format, ClientEvent.",
        "required": ["content", "event_id", "origin_server_ts", "room_id", "sender", "type"],
        "properties": {
            "content": OBJ,
            "event_id": {"type": "string", "pattern": "^\\$"},
            "origin_server_ts": INT,
            "room_id": {"type": "string", "pattern": "^!"},
            "sender": {"type": "string", "pattern": "^@"},
            "state_key": STR,
            "type": STR,
            "unsigned": ref("UnsignedData"),
        },
    },
    "ClientEventWithoutRoomID": {
        "type": "object",
        "description": "Matrix: ClientEventWithoutRoomID (as in /sync).",
        "required": ["content", "event_id", "origin_server_ts", "sender", "type"],
        "properties": {
            "content": OBJ,
            "event_id": {"type": "string", "pattern": "^\\$"},
            "origin_server_ts": INT,
            "room_id": STR,
            "sender": STR,
            "state_key": STR,
            "type": STR,
            "unsigned": ref("UnsignedData"),
        },
    },
    "StrippedStateEvent": obj(
        ["content", "state_key", "type", "sender"], content=OBJ, state_key=STR, type=STR, sender=STR
    ),
    "BasicEvent": obj(["type", "content"], type=STR, content=OBJ),
    "EventList": obj(None, events=array(ref("BasicEvent"))),
    "Timeline": obj(
        ["events"],
        events=array(ref("ClientEventWithoutRoomID")),
        limited=BOOL,
        prev_batch=STR,
    ),
    "StateList": obj(None, events=array(ref("ClientEventWithoutRoomID"))),
    "JoinedRoom": obj(
        None,
        timeline=ref("Timeline"),
        state=ref("StateList"),
        ephemeral=ref("EventList"),
        account_data=ref("EventList"),
        summary=obj(
            None,
            **{"m.heroes": array(STR), "m.joined_member_count": INT, "m.invited_member_count": INT},
        ),
        unread_notifications=obj(None, notification_count=INT, highlight_count=INT),
    ),
    "InvitedRoom": obj(None, invite_state=obj(None, events=array(ref("StrippedStateEvent")))),
    "LeftRoom": obj(
        None, timeline=ref("Timeline"), state=ref("StateList"), account_data=ref("EventList")
    ),
    "SyncResponse": {
        "type": "object",
        "description": "Matrix: GET /sync response (sync.yaml).",
        "required": ["next_batch"],
        "properties": {
            "next_batch": {"type": "string", "pattern": "^s[0-9_]+$"},
            "rooms": obj(
                None,
                join={"type": "object", "additionalProperties": ref("JoinedRoom")},
                invite={"type": "object", "additionalProperties": ref("InvitedRoom")},
                leave={"type": "object", "additionalProperties": ref("LeftRoom")},
                knock={"type": "object", "additionalProperties": OBJ},
            ),
            "account_data": ref("EventList"),
            "presence": ref("EventList"),
            "to_device": obj(None, events=array(OBJ)),
            "device_lists": obj(None, changed=array(STR), left=array(STR)),
            "device_one_time_keys_count": {"type": "object", "additionalProperties": INT},
            "device_unused_fallback_key_types": array(STR),
        },
    },
    "MessagesResponse": obj(
        ["start", "chunk"],
        start=STR,
        end=STR,
        chunk=array(ref("ClientEvent")),
        state=array(ref("ClientEvent")),
    ),
    "ContextResponse": obj(
        ["event", "events_before", "events_after", "state", "start", "end"],
        event=ref("ClientEvent"),
        events_before=array(ref("ClientEvent")),
        events_after=array(ref("ClientEvent")),
        state=array(ref("ClientEvent")),
        start=STR,
        end=STR,
    ),
    "EventIdResponse": obj(["event_id"], event_id={"type": "string", "pattern": "^\\$"}),
    "RoomIdResponse": obj(["room_id"], room_id={"type": "string", "pattern": "^!"}),
    "CreateRoomRequest": obj(
        None,
        visibility={"type": "string", "enum": ["public", "private"]},
        room_alias_name=STR,
        name=STR,
        topic=STR,
        invite=array(STR),
        invite_3pid=array(OBJ),
        room_version=STR,
        creation_content=OBJ,
        initial_state=array(obj(["type", "content"], type=STR, state_key=STR, content=OBJ)),
        preset={"type": "string", "enum": ["private_chat", "public_chat", "trusted_private_chat"]},
        is_direct=BOOL,
        power_level_content_override=OBJ,
    ),
    "CreateRoomResponse": obj(["room_id"], room_id=STR, room_alias=STR),
    "RegisterRequest": obj(
        None,
        auth=ref("AuthenticationData"),
        username=STR,
        password=STR,
        device_id=STR,
        initial_device_display_name=STR,
        inhibit_login=BOOL,
        refresh_token=BOOL,
    ),
    "RegisterResponse": obj(
        ["user_id"],
        user_id=STR,
        access_token=STR,
        device_id=STR,
        refresh_token=STR,
        expires_in_ms=INT,
    ),
    "LoginRequest": obj(
        ["type", "password"],
        type={"type": "string", "enum": ["m.login.password"]},
        identifier=obj(["type"], type={"type": "string", "enum": ["m.id.user"]}, user=STR),
        user={**STR, "deprecated": True},
        password=STR,
        device_id=STR,
        initial_device_display_name=STR,
        refresh_token=BOOL,
    ),
    "RefreshResponse": obj(
        ["access_token"], access_token=STR, refresh_token=STR, expires_in_ms=INT
    ),
    "WhoamiResponse": obj(["user_id"], user_id=STR, device_id=STR, is_guest=BOOL),
    "VersionsResponse": obj(
        ["versions"],
        versions=array(STR),
        unstable_features={"type": "object", "additionalProperties": BOOL},
    ),
    "Device": obj(
        ["device_id"],
        device_id=STR,
        display_name={"type": ["string", "null"]},
        last_seen_ip={"type": ["string", "null"]},
        last_seen_ts={"type": ["integer", "null"]},
    ),
    "Profile": obj(None, displayname=STR, avatar_url=STR),
    # Plait answers null for an unset name or avatar (Matrix omits the key).
    "RoomMember": obj(
        None, display_name={"type": ["string", "null"]}, avatar_url={"type": ["string", "null"]}
    ),
    "PublicRoomsResponse": obj(
        ["chunk"], chunk=array(OBJ), next_batch=STR, prev_batch=STR, total_room_count_estimate=INT
    ),
    "ContentUri": obj(["content_uri"], content_uri={"type": "string", "pattern": "^mxc://"}),
    "CreateContentResponse": obj(
        ["content_uri"], content_uri={"type": "string", "pattern": "^mxc://"}, unused_expires_at=INT
    ),
    "MediaConfig": obj(None, **{"m.upload.size": INT}),
    "PushRule": obj(
        ["rule_id", "default", "enabled", "actions"],
        rule_id=STR,
        default=BOOL,
        enabled=BOOL,
        actions=array({}),
        conditions=array(OBJ),
        pattern=STR,
    ),
    "PushRuleset": obj(
        None,
        content=array(ref("PushRule")),
        override=array(ref("PushRule")),
        room=array(ref("PushRule")),
        sender=array(ref("PushRule")),
        underride=array(ref("PushRule")),
    ),
    "Presence": obj(
        ["presence"],
        presence={"type": "string", "enum": ["online", "offline", "unavailable"]},
        last_active_ago=INT,
        status_msg={"type": ["string", "null"]},
        currently_active=BOOL,
    ),
    "Capabilities": obj(["capabilities"], capabilities=OBJ),
    "BackupVersion": obj(
        ["algorithm", "auth_data", "count", "etag", "version"],
        algorithm=STR,
        auth_data=OBJ,
        count=INT,
        etag=STR,
        version=STR,
    ),
    "BackupCounts": obj(["etag", "count"], etag=STR, count=INT),
    "KeyBackupData": obj(
        ["first_message_index", "forwarded_count", "is_verified", "session_data"],
        first_message_index=INT,
        forwarded_count=INT,
        is_verified=BOOL,
        session_data=OBJ,
    ),
}

# -- operations -----------------------------------------------------------------------

ERROR_TEXT = {
    400: "Bad request (M_BAD_JSON, M_NOT_JSON, M_INVALID_PARAM, M_MISSING_PARAM, ...)",
    401: "Missing or unknown access token (M_MISSING_TOKEN, M_UNKNOWN_TOKEN)",
    403: "Forbidden (M_FORBIDDEN)",
    404: "Not found (M_NOT_FOUND)",
    409: "Conflict",
    405: "Not allowed (M_BAD_JSON for server-managed account data; M_UNRECOGNIZED for a wrong method)",
    413: "Too large (M_TOO_LARGE)",
    416: "Range not satisfiable (M_INVALID_PARAM)",
    429: "Rate limited (M_LIMIT_EXCEEDED)",
    502: "Upstream failure",
    504: "Timed out (M_NOT_YET_UPLOADED, M_UNKNOWN)",
}


def op(
    summary: str,
    section: str,
    *,
    auth: bool = True,
    body: dict[str, Any] | None = None,
    ok: dict[str, Any] | None = None,
    errors: tuple[int, ...] = (),
    query: dict[str, dict[str, Any]] | None = None,
    uia: bool = False,
    raw_ok: str | None = None,
    raw_body: bool = False,
    r0: bool = True,
    aliases: tuple[str, ...] | None = None,
    note: str = "",
    raw_ok_type: str = "application/octet-stream",
    websocket: bool = False,
) -> dict[str, Any]:
    """One operation. ``aliases``: the other prefixes (``r0``, ``unstable``) that serve
    the same v3 route; ``r0=False`` is shorthand for none."""
    out: dict[str, Any] = {
        "summary": summary,
        "externalDocs": {"description": f"Matrix v1.11: {section}", "url": SPEC_URL},
        "security": [{"accessToken": []}, {"accessTokenQuery": []}] if auth else [],
    }
    if note:
        out["description"] = note
    params = [
        {"name": name, "in": "query", "required": bool(s.pop("required", False)), "schema": s}
        for name, s in (query or {}).items()
    ]
    if params:
        out["parameters"] = params
    if raw_body:
        out["requestBody"] = {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    elif body is not None:
        out["requestBody"] = {"content": {"application/json": {"schema": body}}}
    responses: dict[str, Any] = {}
    if raw_ok is not None:
        responses["200"] = {
            "description": raw_ok,
            "content": {raw_ok_type: {"schema": {"type": "string", "format": "binary"}}},
        }
    else:
        responses["200"] = {
            "description": "Success",
            "content": {"application/json": {"schema": ok if ok is not None else EMPTY}},
        }
    codes = set(errors) | {400, 429}
    if auth:
        codes.add(401)
    for code in sorted(codes):
        if code == 401 and uia:
            responses["401"] = {
                "description": "User-interactive auth required or a stage failed, "
                "or the access token is missing or unknown",
                "content": {
                    "application/json": {
                        "schema": {"anyOf": [ref("AuthenticationResponse"), ref("Error")]}
                    }
                },
            }
            continue
        responses[str(code)] = {"$ref": f"#/components/responses/E{code}"}
    if websocket:
        responses = {
            "101": {"description": "Switching Protocols: the WebSocket session starts"},
            "400": {"$ref": "#/components/responses/E400"},
        }
    out["responses"] = responses
    out["x-aliases"] = list(aliases if aliases is not None else (("r0",) if r0 else ()))
    return out


def string_param(**extra: Any) -> dict[str, Any]:
    return {"type": "string", **extra}


C = "/_matrix/client/v3"
ROOM = C + "/rooms/{roomId}"
RELATIONS_RESPONSE = obj(
    ["chunk"],
    chunk=array(ref("ClientEvent")),
    next_batch=STR,
    prev_batch=STR,
    recursion_depth=INT,
)
USER = C + "/user/{userId}"
MEDIA_V1 = "/_matrix/client/v1/media"
MEDIA_V3 = "/_matrix/media/v3"

RELATIONS_QUERY = {
    "from": STR,
    "to": STR,
    "limit": {"type": "integer", "minimum": 1},
    "dir": string_param(enum=["b", "f"]),
    "recurse": {"type": "boolean"},
}


OPERATIONS: list[tuple[str, str, dict[str, Any]]] = [
    # discovery
    (
        "GET",
        "/_matrix/client/versions",
        op(
            "Supported spec versions",
            "GET /_matrix/client/versions",
            auth=False,
            ok=ref("VersionsResponse"),
            r0=False,
        ),
    ),
    (
        "GET",
        "/.well-known/matrix/client",
        op(
            "Client discovery",
            "GET /.well-known/matrix/client",
            auth=False,
            ok=obj(["m.homeserver"], **{"m.homeserver": obj(["base_url"], base_url=STR)}),
            r0=False,
        ),
    ),
    (
        "GET",
        C + "/capabilities",
        op("Server capabilities", "GET /_matrix/client/v3/capabilities", ok=ref("Capabilities")),
    ),
    # registration
    (
        "POST",
        C + "/register",
        op(
            "Register an account",
            "POST /_matrix/client/v3/register",
            auth=False,
            uia=True,
            body=ref("RegisterRequest"),
            ok=ref("RegisterResponse"),
            errors=(401, 403),
            query={"kind": string_param(enum=["user", "guest"])},
        ),
    ),
    (
        "GET",
        C + "/register/available",
        op(
            "Is a username free",
            "GET /_matrix/client/v3/register/available",
            auth=False,
            ok=obj(["available"], available=BOOL),
            query={"username": string_param(required=True)},
        ),
    ),
    (
        "GET",
        "/_matrix/client/v1/register/m.login.registration_token/validity",
        op(
            "Is a registration token valid",
            "GET /_matrix/client/v1/register/m.login.registration_token/validity",
            auth=False,
            ok=obj(["valid"], valid=BOOL),
            errors=(403,),
            query={"token": string_param(required=True)},
            r0=False,
        ),
    ),
    # login
    (
        "GET",
        C + "/login",
        op(
            "Login flows",
            "GET /_matrix/client/v3/login",
            auth=False,
            ok=obj(["flows"], flows=array(obj(["type"], type=STR))),
        ),
    ),
    (
        "POST",
        C + "/login",
        op(
            "Log in with a password",
            "POST /_matrix/client/v3/login",
            auth=False,
            body=ref("LoginRequest"),
            ok=ref("LoginResponse"),
            errors=(403,),
        ),
    ),
    (
        "POST",
        C + "/refresh",
        op(
            "Rotate the refresh token",
            "POST /_matrix/client/v3/refresh",
            auth=False,
            body=obj(["refresh_token"], refresh_token=STR),
            ok=ref("RefreshResponse"),
            errors=(401,),
            r0=False,
        ),
    ),
    ("POST", C + "/logout", op("Log out this device", "POST /_matrix/client/v3/logout")),
    ("POST", C + "/logout/all", op("Log out every device", "POST /_matrix/client/v3/logout/all")),
    (
        "GET",
        C + "/account/whoami",
        op("Who am I", "GET /_matrix/client/v3/account/whoami", ok=ref("WhoamiResponse")),
    ),
    # account
    (
        "POST",
        C + "/account/password",
        op(
            "Change password",
            "POST /_matrix/client/v3/account/password",
            uia=True,
            body=obj(
                ["new_password"],
                new_password=STR,
                logout_devices=BOOL,
                auth=ref("AuthenticationData"),
            ),
        ),
    ),
    (
        "POST",
        C + "/account/deactivate",
        op(
            "Deactivate the account",
            "POST /_matrix/client/v3/account/deactivate",
            uia=True,
            body=obj(None, erase=BOOL, auth=ref("AuthenticationData")),
            ok=obj(
                ["id_server_unbind_result"],
                id_server_unbind_result={"type": "string", "enum": ["no-support"]},
            ),
        ),
    ),
    (
        "GET",
        C + "/account/3pid",
        op(
            "Third-party identifiers (always empty)",
            "GET /_matrix/client/v3/account/3pid",
            ok=obj(["threepids"], threepids=array(OBJ)),
        ),
    ),
    # devices
    (
        "GET",
        C + "/devices",
        op(
            "List devices",
            "GET /_matrix/client/v3/devices",
            ok=obj(["devices"], devices=array(ref("Device"))),
        ),
    ),
    (
        "GET",
        C + "/devices/{deviceId}",
        op(
            "One device",
            "GET /_matrix/client/v3/devices/{deviceId}",
            ok=ref("Device"),
            errors=(404,),
        ),
    ),
    (
        "PUT",
        C + "/devices/{deviceId}",
        op(
            "Rename a device",
            "PUT /_matrix/client/v3/devices/{deviceId}",
            body=obj(None, display_name=STR),
            errors=(404,),
        ),
    ),
    (
        "DELETE",
        C + "/devices/{deviceId}",
        op(
            "Delete a device",
            "DELETE /_matrix/client/v3/devices/{deviceId}",
            uia=True,
            body=obj(None, auth=ref("AuthenticationData")),
            errors=(404,),
        ),
    ),
    (
        "POST",
        C + "/delete_devices",
        op(
            "Delete devices",
            "POST /_matrix/client/v3/delete_devices",
            uia=True,
            body=obj(["devices"], devices=array(STR), auth=ref("AuthenticationData")),
        ),
    ),
    # profiles
    (
        "GET",
        C + "/profile/{userId}",
        op(
            "Profile",
            "GET /_matrix/client/v3/profile/{userId}",
            auth=False,
            ok=ref("Profile"),
            errors=(404,),
        ),
    ),
    (
        "GET",
        C + "/profile/{userId}/displayname",
        op(
            "Display name",
            "GET /_matrix/client/v3/profile/{userId}/displayname",
            auth=False,
            ok=obj(None, displayname=STR),
            errors=(404,),
        ),
    ),
    (
        "PUT",
        C + "/profile/{userId}/displayname",
        op(
            "Set display name",
            "PUT /_matrix/client/v3/profile/{userId}/displayname",
            body=obj(["displayname"], displayname={"type": ["string", "null"]}),
            errors=(403, 404),
        ),
    ),
    (
        "GET",
        C + "/profile/{userId}/avatar_url",
        op(
            "Avatar URL",
            "GET /_matrix/client/v3/profile/{userId}/avatar_url",
            auth=False,
            ok=obj(None, avatar_url=STR),
            errors=(404,),
        ),
    ),
    (
        "PUT",
        C + "/profile/{userId}/avatar_url",
        op(
            "Set avatar URL",
            "PUT /_matrix/client/v3/profile/{userId}/avatar_url",
            body=obj(["avatar_url"], avatar_url={"type": ["string", "null"]}),
            errors=(403, 404),
        ),
    ),
    # rooms
    (
        "POST",
        C + "/createRoom",
        op(
            "Create a room",
            "POST /_matrix/client/v3/createRoom",
            body=ref("CreateRoomRequest"),
            ok=ref("CreateRoomResponse"),
            errors=(403, 413),
        ),
    ),
    (
        "GET",
        ROOM + "/state",
        op(
            "Current state",
            "GET /_matrix/client/v3/rooms/{roomId}/state",
            ok=array(ref("ClientEvent")),
            errors=(403, 404),
        ),
    ),
    (
        "GET",
        ROOM + "/state/{eventType}",
        op(
            "State event (empty state key): content",
            "GET /_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}",
            ok=OBJ,
            errors=(403, 404),
            query={"format": string_param(enum=["content", "event"])},
        ),
    ),
    (
        "PUT",
        ROOM + "/state/{eventType}",
        op(
            "Send state (empty state key)",
            "PUT /_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}",
            body=OBJ,
            ok=ref("EventIdResponse"),
            errors=(403, 404, 413),
        ),
    ),
    (
        "GET",
        ROOM + "/state/{eventType}/{stateKey}",
        op(
            "State event: content",
            "GET /_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}",
            ok=OBJ,
            errors=(403, 404),
            query={"format": string_param(enum=["content", "event"])},
        ),
    ),
    (
        "PUT",
        ROOM + "/state/{eventType}/{stateKey}",
        op(
            "Send state",
            "PUT /_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}",
            body=OBJ,
            ok=ref("EventIdResponse"),
            errors=(403, 404, 413),
        ),
    ),
    # membership
    (
        "POST",
        C + "/join/{roomIdOrAlias}",
        op(
            "Join by ID or alias",
            "POST /_matrix/client/v3/join/{roomIdOrAlias}",
            body=obj(None, reason=STR),
            ok=ref("RoomIdResponse"),
            errors=(403, 404),
        ),
    ),
    (
        "POST",
        C + "/knock/{roomIdOrAlias}",
        op(
            "Knock",
            "POST /_matrix/client/v3/knock/{roomIdOrAlias}",
            body=obj(None, reason=STR),
            ok=ref("RoomIdResponse"),
            errors=(403, 404),
        ),
    ),
    (
        "POST",
        ROOM + "/join",
        op(
            "Join",
            "POST /_matrix/client/v3/rooms/{roomId}/join",
            body=obj(None, reason=STR),
            ok=ref("RoomIdResponse"),
            errors=(403, 404),
        ),
    ),
    (
        "POST",
        ROOM + "/leave",
        op(
            "Leave",
            "POST /_matrix/client/v3/rooms/{roomId}/leave",
            body=obj(None, reason=STR),
            errors=(403, 404),
        ),
    ),
    (
        "POST",
        ROOM + "/forget",
        op("Forget", "POST /_matrix/client/v3/rooms/{roomId}/forget", errors=(404,)),
    ),
    *[
        (
            "POST",
            ROOM + f"/{action}",
            op(
                action.capitalize(),
                f"POST /_matrix/client/v3/rooms/{{roomId}}/{action}",
                body=obj(["user_id"], user_id=STR, reason=STR),
                errors=(403, 404),
            ),
        )
        for action in ("invite", "kick", "ban", "unban")
    ],
    (
        "GET",
        C + "/joined_rooms",
        op(
            "Joined rooms",
            "GET /_matrix/client/v3/joined_rooms",
            ok=obj(["joined_rooms"], joined_rooms=array(STR)),
        ),
    ),
    (
        "GET",
        ROOM + "/members",
        op(
            "Member events",
            "GET /_matrix/client/v3/rooms/{roomId}/members",
            ok=obj(["chunk"], chunk=array(ref("ClientEvent"))),
            errors=(403, 404),
            query={"at": STR, "membership": STR, "not_membership": STR},
        ),
    ),
    (
        "GET",
        ROOM + "/joined_members",
        op(
            "Joined members",
            "GET /_matrix/client/v3/rooms/{roomId}/joined_members",
            ok=obj(
                ["joined"], joined={"type": "object", "additionalProperties": ref("RoomMember")}
            ),
            errors=(403, 404),
        ),
    ),
    # directory
    (
        "PUT",
        C + "/directory/room/{roomAlias}",
        op(
            "Create an alias",
            "PUT /_matrix/client/v3/directory/room/{roomAlias}",
            body=obj(["room_id"], room_id=STR),
            errors=(403, 409),
        ),
    ),
    (
        "GET",
        C + "/directory/room/{roomAlias}",
        op(
            "Resolve an alias",
            "GET /_matrix/client/v3/directory/room/{roomAlias}",
            auth=False,
            ok=obj(["room_id", "servers"], room_id=STR, servers=array(STR)),
            errors=(404,),
        ),
    ),
    (
        "DELETE",
        C + "/directory/room/{roomAlias}",
        op(
            "Delete an alias",
            "DELETE /_matrix/client/v3/directory/room/{roomAlias}",
            errors=(403, 404),
        ),
    ),
    (
        "GET",
        ROOM + "/aliases",
        op(
            "A room's aliases",
            "GET /_matrix/client/v3/rooms/{roomId}/aliases",
            ok=obj(["aliases"], aliases=array(STR)),
            errors=(403, 404),
        ),
    ),
    (
        "GET",
        C + "/directory/list/room/{roomId}",
        op(
            "Directory visibility",
            "GET /_matrix/client/v3/directory/list/room/{roomId}",
            auth=False,
            ok=obj(["visibility"], visibility={"type": "string", "enum": ["public", "private"]}),
            errors=(404,),
        ),
    ),
    (
        "PUT",
        C + "/directory/list/room/{roomId}",
        op(
            "Set directory visibility",
            "PUT /_matrix/client/v3/directory/list/room/{roomId}",
            body=obj(None, visibility={"type": "string", "enum": ["public", "private"]}),
            errors=(403, 404),
        ),
    ),
    (
        "GET",
        C + "/publicRooms",
        op(
            "Public rooms",
            "GET /_matrix/client/v3/publicRooms",
            auth=False,
            ok=ref("PublicRoomsResponse"),
            errors=(404,),
            query={"limit": INT, "since": STR, "server": STR},
        ),
    ),
    (
        "POST",
        C + "/publicRooms",
        op(
            "Search public rooms",
            "POST /_matrix/client/v3/publicRooms",
            ok=ref("PublicRoomsResponse"),
            body=obj(
                None,
                limit=INT,
                since=STR,
                filter=obj(None, generic_search_term=STR, room_types=array({})),
            ),
            errors=(404,),
            query={"server": STR},
        ),
    ),
    (
        "POST",
        C + "/user_directory/search",
        op(
            "Search users",
            "POST /_matrix/client/v3/user_directory/search",
            body=obj(["search_term"], search_term=STR, limit=INT),
            ok=obj(
                ["results", "limited"],
                results=array(obj(["user_id"], user_id=STR, display_name=STR, avatar_url=STR)),
                limited=BOOL,
            ),
        ),
    ),
    # account data and tags
    (
        "GET",
        USER + "/account_data/{type}",
        op(
            "Global account data",
            "GET /_matrix/client/v3/user/{userId}/account_data/{type}",
            ok=OBJ,
            errors=(403, 404),
        ),
    ),
    (
        "PUT",
        USER + "/account_data/{type}",
        op(
            "Set global account data",
            "PUT /_matrix/client/v3/user/{userId}/account_data/{type}",
            body=OBJ,
            errors=(403, 405, 413),
        ),
    ),
    (
        "GET",
        USER + "/rooms/{roomId}/account_data/{type}",
        op(
            "Room account data",
            "GET /_matrix/client/v3/user/{userId}/rooms/{roomId}/account_data/{type}",
            ok=OBJ,
            errors=(403, 404),
        ),
    ),
    (
        "PUT",
        USER + "/rooms/{roomId}/account_data/{type}",
        op(
            "Set room account data",
            "PUT /_matrix/client/v3/user/{userId}/rooms/{roomId}/account_data/{type}",
            body=OBJ,
            errors=(403, 405, 413),
        ),
    ),
    (
        "GET",
        USER + "/rooms/{roomId}/tags",
        op(
            "Room tags",
            "GET /_matrix/client/v3/user/{userId}/rooms/{roomId}/tags",
            ok=obj(
                ["tags"],
                tags={
                    "type": "object",
                    "additionalProperties": obj(None, order={"type": "number"}),
                },
            ),
            errors=(403,),
        ),
    ),
    (
        "PUT",
        USER + "/rooms/{roomId}/tags/{tag}",
        op(
            "Add a tag",
            "PUT /_matrix/client/v3/user/{userId}/rooms/{roomId}/tags/{tag}",
            body=obj(None, order={"type": "number"}),
            errors=(403, 413),
        ),
    ),
    (
        "DELETE",
        USER + "/rooms/{roomId}/tags/{tag}",
        op(
            "Remove a tag",
            "DELETE /_matrix/client/v3/user/{userId}/rooms/{roomId}/tags/{tag}",
            errors=(403,),
        ),
    ),
    # timeline
    (
        "PUT",
        ROOM + "/send/{eventType}/{txnId}",
        op(
            "Send a message event",
            "PUT /_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}",
            body=OBJ,
            ok=ref("EventIdResponse"),
            errors=(403, 404, 413),
            note="Idempotent per (access token's device, txnId): a retry answers the same event_id.",
        ),
    ),
    (
        "PUT",
        ROOM + "/redact/{eventId}/{txnId}",
        op(
            "Redact an event",
            "PUT /_matrix/client/v3/rooms/{roomId}/redact/{eventId}/{txnId}",
            body=obj(None, reason=STR),
            ok=ref("EventIdResponse"),
            errors=(403, 404),
        ),
    ),
    (
        "GET",
        ROOM + "/messages",
        op(
            "Paginate the timeline",
            "GET /_matrix/client/v3/rooms/{roomId}/messages",
            ok=ref("MessagesResponse"),
            errors=(403, 404),
            query={
                "dir": string_param(enum=["b", "f"], required=True),
                "from": STR,
                "to": STR,
                "limit": {"type": "integer", "minimum": 0, "maximum": 1000},
                "filter": STR,
            },
        ),
    ),
    (
        "GET",
        ROOM + "/context/{eventId}",
        op(
            "Events around an event",
            "GET /_matrix/client/v3/rooms/{roomId}/context/{eventId}",
            ok=ref("ContextResponse"),
            errors=(403, 404),
            query={"limit": INT, "filter": STR},
        ),
    ),
    (
        "GET",
        ROOM + "/event/{eventId}",
        op(
            "One event",
            "GET /_matrix/client/v3/rooms/{roomId}/event/{eventId}",
            ok=ref("ClientEvent"),
            errors=(404,),
        ),
    ),
    (
        "GET",
        "/_matrix/client/v1/rooms/{roomId}/timestamp_to_event",
        op(
            "Event closest to a time",
            "GET /_matrix/client/v1/rooms/{roomId}/timestamp_to_event",
            ok=obj(["event_id", "origin_server_ts"], event_id=STR, origin_server_ts=INT),
            errors=(403, 404),
            query={
                "ts": {"type": "integer", "required": True},
                "dir": string_param(enum=["b", "f"], required=True),
            },
            r0=False,
        ),
    ),
    # relations and threads (relations.md)
    (
        "GET",
        "/_matrix/client/v1/rooms/{roomId}/relations/{eventId}",
        op(
            "Child events of an event",
            "GET /_matrix/client/v1/rooms/{roomId}/relations/{eventId}",
            ok=RELATIONS_RESPONSE,
            errors=(404,),
            query=RELATIONS_QUERY,
            r0=False,
        ),
    ),
    (
        "GET",
        "/_matrix/client/v1/rooms/{roomId}/relations/{eventId}/{relType}",
        op(
            "Child events of an event, of one relation type",
            "GET /_matrix/client/v1/rooms/{roomId}/relations/{eventId}/{relType}",
            ok=RELATIONS_RESPONSE,
            errors=(404,),
            query=RELATIONS_QUERY,
            r0=False,
        ),
    ),
    (
        "GET",
        "/_matrix/client/v1/rooms/{roomId}/relations/{eventId}/{relType}/{eventType}",
        op(
            "Child events of an event, of one relation and event type",
            "GET /_matrix/client/v1/rooms/{roomId}/relations/{eventId}/{relType}/{eventType}",
            ok=RELATIONS_RESPONSE,
            errors=(404,),
            query=RELATIONS_QUERY,
            r0=False,
        ),
    ),
    (
        "GET",
        "/_matrix/client/v1/rooms/{roomId}/threads",
        op(
            "Thread roots of a room",
            "GET /_matrix/client/v1/rooms/{roomId}/threads",
            ok=obj(["chunk"], chunk=array(ref("ClientEvent")), next_batch=STR),
            errors=(403, 404),
            query={
                "include": string_param(enum=["all", "participated"]),
                "from": STR,
                "limit": {"type": "integer", "minimum": 1},
            },
            r0=False,
        ),
    ),
    # sync and filters
    (
        "GET",
        C + "/sync",
        op(
            "Synchronise (long-poll)",
            "GET /_matrix/client/v3/sync",
            ok=ref("SyncResponse"),
            errors=(404,),
            query={
                "since": STR,
                "timeout": {"type": "integer", "minimum": 0},
                "filter": STR,
                "full_state": {"type": "boolean"},
                "set_presence": string_param(enum=["online", "offline", "unavailable"]),
            },
        ),
    ),
    (
        "POST",
        USER + "/filter",
        op(
            "Store a filter",
            "POST /_matrix/client/v3/user/{userId}/filter",
            body=OBJ,
            ok=obj(["filter_id"], filter_id=STR),
            errors=(403,),
        ),
    ),
    (
        "GET",
        USER + "/filter/{filterId}",
        op(
            "Read a filter",
            "GET /_matrix/client/v3/user/{userId}/filter/{filterId}",
            ok=OBJ,
            errors=(403, 404),
        ),
    ),
    # ephemeral
    (
        "PUT",
        ROOM + "/typing/{userId}",
        op(
            "Typing notification",
            "PUT /_matrix/client/v3/rooms/{roomId}/typing/{userId}",
            body=obj(["typing"], typing=BOOL, timeout=INT),
            errors=(403,),
        ),
    ),
    (
        "POST",
        ROOM + "/receipt/{receiptType}/{eventId}",
        op(
            "Send a receipt",
            "POST /_matrix/client/v3/rooms/{roomId}/receipt/{receiptType}/{eventId}",
            body=obj(None, thread_id=STR),
            errors=(403, 404),
        ),
    ),
    (
        "POST",
        ROOM + "/read_markers",
        op(
            "Set read markers",
            "POST /_matrix/client/v3/rooms/{roomId}/read_markers",
            body=obj(None, **{"m.fully_read": STR, "m.read": STR, "m.read.private": STR}),
            errors=(403, 404),
        ),
    ),
    (
        "GET",
        C + "/presence/{userId}/status",
        op(
            "Presence",
            "GET /_matrix/client/v3/presence/{userId}/status",
            ok=ref("Presence"),
            errors=(403,),
        ),
    ),
    (
        "PUT",
        C + "/presence/{userId}/status",
        op(
            "Set presence",
            "PUT /_matrix/client/v3/presence/{userId}/status",
            body=obj(
                ["presence"],
                presence={"type": "string", "enum": ["online", "offline", "unavailable"]},
                status_msg=STR,
            ),
            errors=(403,),
        ),
    ),
    # starter endpoints
    (
        "GET",
        C + "/pushrules/",
        op(
            "Push rules (defaults)",
            "GET /_matrix/client/v3/pushrules/",
            ok=obj(["global"], **{"global": ref("PushRuleset")}),
        ),
    ),
    (
        "GET",
        C + "/pushrules",
        op(
            "Push rules (defaults), without the slash",
            "GET /_matrix/client/v3/pushrules/",
            ok=obj(["global"], **{"global": ref("PushRuleset")}),
        ),
    ),
    (
        "GET",
        C + "/pushrules/global/",
        op("Global push rules", "GET /_matrix/client/v3/pushrules/global/", ok=ref("PushRuleset")),
    ),
    (
        "GET",
        C + "/pushrules/{scope}/{kind}/{ruleId}",
        op(
            "One push rule",
            "GET /_matrix/client/v3/pushrules/global/{kind}/{ruleId}",
            ok=ref("PushRule"),
            errors=(404,),
        ),
    ),
    (
        "GET",
        C + "/pushrules/{scope}/{kind}/{ruleId}/enabled",
        op(
            "Is a push rule enabled",
            "GET /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/enabled",
            ok=obj(["enabled"], enabled=BOOL),
            errors=(404,),
        ),
    ),
    (
        "GET",
        C + "/pushrules/{scope}/{kind}/{ruleId}/actions",
        op(
            "A push rule's actions",
            "GET /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/actions",
            ok=obj(["actions"], actions=array({})),
            errors=(404,),
        ),
    ),
    (
        "GET",
        C + "/voip/turnServer",
        op(
            "TURN server (none configured)",
            "GET /_matrix/client/v3/voip/turnServer",
            ok=obj(
                ["username", "password", "uris", "ttl"],
                username=STR,
                password=STR,
                uris=array(STR),
                ttl=INT,
            ),
        ),
    ),
    (
        "GET",
        C + "/thirdparty/protocols",
        op("Bridged protocols (none)", "GET /_matrix/client/v3/thirdparty/protocols", ok=OBJ),
    ),
    (
        "GET",
        C + "/pushers",
        op(
            "Pushers (none)",
            "GET /_matrix/client/v3/pushers",
            ok=obj(["pushers"], pushers=array(OBJ)),
        ),
    ),
    # end-to-end encryption: keys, cross-signing, to-device, key backup
    (
        "POST",
        C + "/keys/upload",
        op(
            "Upload device and one-time keys",
            "POST /_matrix/client/v3/keys/upload",
            body=obj(None, device_keys=OBJ, one_time_keys=OBJ, fallback_keys=OBJ),
            ok=obj(
                ["one_time_key_counts"],
                one_time_key_counts={"type": "object", "additionalProperties": INT},
            ),
        ),
    ),
    (
        "POST",
        C + "/keys/query",
        op(
            "Download device and cross-signing keys",
            "POST /_matrix/client/v3/keys/query",
            body=obj(
                ["device_keys"],
                device_keys={"type": "object", "additionalProperties": array(STR)},
                timeout=INT,
            ),
            ok=obj(
                ["device_keys"],
                device_keys=OBJ,
                failures=OBJ,
                master_keys=OBJ,
                self_signing_keys=OBJ,
                user_signing_keys=OBJ,
            ),
        ),
    ),
    (
        "POST",
        C + "/keys/claim",
        op(
            "Claim one-time keys",
            "POST /_matrix/client/v3/keys/claim",
            body=obj(["one_time_keys"], one_time_keys=OBJ, timeout=INT),
            ok=obj(["one_time_keys"], one_time_keys=OBJ, failures=OBJ),
        ),
    ),
    (
        "GET",
        C + "/keys/changes",
        op(
            "Users whose devices changed between two sync tokens",
            "GET /_matrix/client/v3/keys/changes",
            ok=obj(["changed", "left"], changed=array(STR), left=array(STR)),
            query={"from": string_param(required=True), "to": string_param(required=True)},
        ),
    ),
    (
        "POST",
        C + "/keys/signatures/upload",
        op(
            "Upload cross-signing signatures",
            "POST /_matrix/client/v3/keys/signatures/upload",
            body=OBJ,
            ok=obj(None, failures=OBJ),
        ),
    ),
    (
        "POST",
        C + "/keys/device_signing/upload",
        op(
            "Upload cross-signing keys",
            "POST /_matrix/client/v3/keys/device_signing/upload",
            uia=True,
            body=obj(
                None,
                master_key=OBJ,
                self_signing_key=OBJ,
                user_signing_key=OBJ,
                auth=ref("AuthenticationData"),
            ),
            aliases=("unstable",),
        ),
    ),
    (
        "PUT",
        C + "/sendToDevice/{eventType}/{txnId}",
        op(
            "Send to-device messages",
            "PUT /_matrix/client/v3/sendToDevice/{eventType}/{txnId}",
            body=obj(["messages"], messages={"type": "object", "additionalProperties": OBJ}),
        ),
    ),
    (
        "POST",
        C + "/room_keys/version",
        op(
            "Create a key backup version",
            "POST /_matrix/client/v3/room_keys/version",
            body=obj(["algorithm", "auth_data"], algorithm=STR, auth_data=OBJ),
            ok=obj(["version"], version=STR),
            aliases=("r0", "unstable"),
        ),
    ),
    (
        "GET",
        C + "/room_keys/version",
        op(
            "Current key backup version",
            "GET /_matrix/client/v3/room_keys/version",
            ok=ref("BackupVersion"),
            errors=(404,),
            aliases=("r0", "unstable"),
        ),
    ),
    (
        "GET",
        C + "/room_keys/version/{version}",
        op(
            "A key backup version",
            "GET /_matrix/client/v3/room_keys/version/{version}",
            ok=ref("BackupVersion"),
            errors=(404,),
            aliases=("r0", "unstable"),
        ),
    ),
    (
        "PUT",
        C + "/room_keys/version/{version}",
        op(
            "Update a key backup version's auth data",
            "PUT /_matrix/client/v3/room_keys/version/{version}",
            body=obj(["algorithm", "auth_data"], algorithm=STR, auth_data=OBJ, version=STR),
            errors=(404,),
            aliases=("r0", "unstable"),
        ),
    ),
    (
        "DELETE",
        C + "/room_keys/version/{version}",
        op(
            "Delete a key backup version",
            "DELETE /_matrix/client/v3/room_keys/version/{version}",
            errors=(404,),
            aliases=("r0", "unstable"),
        ),
    ),
    *[
        (
            method,
            C + "/room_keys/keys" + suffix,
            op(
                f"{verb} backed-up keys"
                + (" of a room" if suffix == "/{roomId}" else " of a session" if suffix else ""),
                f"{method} /_matrix/client/v3/room_keys/keys" + suffix,
                body=(
                    None
                    if method != "PUT"
                    else ref("KeyBackupData")
                    if "session" in suffix
                    else obj(["sessions"], sessions=OBJ)
                    if suffix
                    else obj(["rooms"], rooms=OBJ)
                ),
                ok=(
                    ref("BackupCounts")
                    if method != "GET"
                    else ref("KeyBackupData")
                    if "session" in suffix
                    else obj(["sessions"], sessions=OBJ)
                    if suffix
                    else obj(["rooms"], rooms=OBJ)
                ),
                errors=(403, 404),
                query={"version": string_param(required=True)},
                aliases=("r0", "unstable"),
            ),
        )
        for method, verb in (("PUT", "Store"), ("GET", "Read"), ("DELETE", "Delete"))
        for suffix in ("", "/{roomId}", "/{roomId}/{sessionId}")
    ],
    # the reference web client (not part of the Matrix API)
    (
        "GET",
        "/",
        op(
            "The web client's index.html",
            "not Matrix: Plait's reference web client",
            auth=False,
            raw_ok="HTML",
            raw_ok_type="text/html",
            r0=False,
        ),
    ),
    (
        "GET",
        "/{path}",
        op(
            "Web client files; any other path not under /_matrix/ or /.well-known/ answers index.html",
            "not Matrix: Plait's reference web client",
            auth=False,
            raw_ok="A file of the web client",
            # index.html, scripts, styles, images: whatever type the file has.
            raw_ok_type="*/*",
            errors=(404,),
            r0=False,
            note="`{path}` spans any number of segments. Paths under /_matrix/, /.well-known/, /_synapse/ "
            "and /_plait/ that no endpoint serves answer 404 M_UNRECOGNIZED.",
        ),
    ),
    *[
        (
            method,
            "/{path}",
            op(
                "No endpoint: always 404 M_UNRECOGNIZED",
                "API Standards: unknown endpoints",
                auth=False,
                errors=(404,),
                r0=False,
                note="Routed so that unknown paths answer 404, not 405.",
            ),
        )
        for method in ("POST", "PUT", "DELETE", "PATCH")
    ],
    # Plait's WebSocket sync transport (not Matrix)
    (
        "GET",
        "/_plait/client/v1/ws",
        op(
            "Sync over a WebSocket (Plait extension; authenticates in its first frame)",
            "not Matrix: Plait's WebSocket transport for /sync (spec/websocket.md)",
            auth=False,
            r0=False,
            websocket=True,
        ),
    ),
    # media
    (
        "POST",
        MEDIA_V3 + "/upload",
        op(
            "Upload content",
            "POST /_matrix/media/v3/upload",
            raw_body=True,
            ok=ref("ContentUri"),
            errors=(403, 413),
            query={"filename": STR},
            r0=False,
        ),
    ),
    (
        "PUT",
        MEDIA_V3 + "/upload/{serverName}/{mediaId}",
        op(
            "Upload to a created media ID",
            "PUT /_matrix/media/v3/upload/{serverName}/{mediaId}",
            raw_body=True,
            errors=(403, 404, 409, 413),
            query={"filename": STR},
            r0=False,
        ),
    ),
    (
        "POST",
        "/_matrix/media/v1/create",
        op(
            "Create a media ID to upload later",
            "POST /_matrix/media/v1/create",
            ok=ref("CreateContentResponse"),
            errors=(403,),
            r0=False,
        ),
    ),
    (
        "GET",
        MEDIA_V1 + "/config",
        op("Media limits", "GET /_matrix/client/v1/media/config", ok=ref("MediaConfig"), r0=False),
    ),
    *[
        (
            "GET",
            MEDIA_V1 + "/download/{serverName}/{mediaId}" + suffix,
            op(
                "Download content" + (" (nio's trailing slash)" if suffix == "/" else ""),
                "GET /_matrix/client/v1/media/download/{serverName}/{mediaId}"
                + ("/{fileName}" if "{" in suffix else ""),
                raw_ok="The content; 206 with a Range header",
                raw_ok_type="*/*",  # the type it was uploaded with
                errors=(404, 416, 504),
                query={"timeout_ms": INT},
                r0=False,
            ),
        )
        for suffix in ("", "/", "/{fileName}")
    ],
    (
        "GET",
        MEDIA_V1 + "/thumbnail/{serverName}/{mediaId}",
        op(
            "Thumbnail",
            "GET /_matrix/client/v1/media/thumbnail/{serverName}/{mediaId}",
            raw_ok="The thumbnail image",
            raw_ok_type="image/*",  # image/png, image/jpeg or (animated) image/webp
            errors=(404, 413, 504),
            query={
                "width": {"type": "integer", "required": True},
                "height": {"type": "integer", "required": True},
                "method": string_param(enum=["crop", "scale"]),
                "animated": BOOL,
                "timeout_ms": INT,
            },
            r0=False,
        ),
    ),
    (
        "GET",
        MEDIA_V1 + "/preview_url",
        op(
            "URL preview",
            "GET /_matrix/client/v1/media/preview_url",
            ok=OBJ,
            errors=(403, 404, 502, 504),
            query={"url": string_param(required=True), "ts": INT},
            r0=False,
            note="404 M_UNRECOGNIZED while `media.url_preview_enabled` is off (the default).",
        ),
    ),
    (
        "GET",
        MEDIA_V3 + "/config",
        op(
            "Media limits (deprecated, unauthenticated)",
            "GET /_matrix/media/v3/config",
            auth=False,
            ok=ref("MediaConfig"),
            errors=(404,),
            r0=False,
            note="404 M_NOT_FOUND unless `media.enable_legacy_unauthenticated` is on.",
        ),
    ),
    *[
        (
            "GET",
            MEDIA_V3 + "/download/{serverName}/{mediaId}" + suffix,
            op(
                "Download (deprecated, unauthenticated)",
                "GET /_matrix/media/v3/download/{serverName}/{mediaId}",
                auth=False,
                raw_ok="The content",
                raw_ok_type="*/*",  # the type it was uploaded with
                errors=(404, 416, 504),
                r0=False,
                note="404 M_NOT_FOUND unless `media.enable_legacy_unauthenticated` is on.",
            ),
        )
        for suffix in ("", "/", "/{fileName}")
    ],
    (
        "GET",
        MEDIA_V3 + "/thumbnail/{serverName}/{mediaId}",
        op(
            "Thumbnail (deprecated, unauthenticated)",
            "GET /_matrix/media/v3/thumbnail/{serverName}/{mediaId}",
            auth=False,
            raw_ok="The thumbnail",
            raw_ok_type="image/*",  # image/png, image/jpeg or (animated) image/webp
            errors=(404, 413, 504),
            r0=False,
            note="404 M_NOT_FOUND unless `media.enable_legacy_unauthenticated` is on.",
        ),
    ),
    (
        "GET",
        MEDIA_V3 + "/preview_url",
        op(
            "URL preview (deprecated path, still authenticated)",
            "GET /_matrix/media/v3/preview_url",
            ok=OBJ,
            errors=(403, 404, 502, 504),
            query={"url": string_param(required=True)},
            r0=False,
            note="404 M_UNRECOGNIZED while `media.url_preview_enabled` is off (the default).",
        ),
    ),
    # push rules (changes), pushers, notifications, search (push_search.md)
    (
        "PUT",
        C + "/pushrules/{scope}/{kind}/{ruleId}",
        op(
            "Create or update a user-defined push rule",
            "PUT /_matrix/client/v3/pushrules/global/{kind}/{ruleId}",
            body=obj(["actions"], actions=array({}), conditions=array(OBJ), pattern=STR),
            query={"before": string_param(), "after": string_param()},
            errors=(404,),
        ),
    ),
    (
        "DELETE",
        C + "/pushrules/{scope}/{kind}/{ruleId}",
        op(
            "Delete a user-defined push rule",
            "DELETE /_matrix/client/v3/pushrules/global/{kind}/{ruleId}",
            errors=(404,),
        ),
    ),
    (
        "PUT",
        C + "/pushrules/{scope}/{kind}/{ruleId}/enabled",
        op(
            "Enable or disable a push rule",
            "PUT /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/enabled",
            body=obj(["enabled"], enabled=BOOL),
            errors=(404,),
        ),
    ),
    (
        "PUT",
        C + "/pushrules/{scope}/{kind}/{ruleId}/actions",
        op(
            "Set a push rule's actions",
            "PUT /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/actions",
            body=obj(["actions"], actions=array({})),
            errors=(404,),
        ),
    ),
    (
        "POST",
        C + "/pushers/set",
        op(
            "Create, replace or delete a pusher",
            "POST /_matrix/client/v3/pushers/set",
            body=obj(["pushkey", "app_id", "kind"], pushkey=STR, app_id=STR, kind=STR, data=OBJ),
        ),
    ),
    (
        "GET",
        C + "/notifications",
        op(
            "Notifications, newest first",
            "GET /_matrix/client/v3/notifications",
            query={"from": string_param(), "limit": {"type": "integer"}, "only": string_param()},
            ok=obj(["notifications"], notifications=array(OBJ), next_token=STR),
        ),
    ),
    (
        "POST",
        C + "/search",
        op(
            "Search room events",
            "POST /_matrix/client/v3/search",
            body=obj(["search_categories"], search_categories=OBJ),
            query={"next_batch": string_param()},
            ok=obj(["search_categories"], search_categories=OBJ),
        ),
    ),
]


# Request body limits in bytes where a route sets its own (limits.md); every other
# route takes the server default ``http.max_json_body``. A string names the config key.
SMALL = 64 * 1024
MAX_BODY: dict[tuple[str, str], int | str] = {
    ("POST", C + "/register"): SMALL,
    ("POST", C + "/login"): SMALL,
    ("POST", C + "/refresh"): SMALL,
    ("POST", C + "/account/password"): SMALL,
    ("POST", C + "/account/deactivate"): SMALL,
    ("PUT", C + "/devices/{deviceId}"): SMALL,
    ("DELETE", C + "/devices/{deviceId}"): SMALL,
    ("PUT", C + "/profile/{userId}/displayname"): SMALL,
    ("PUT", C + "/profile/{userId}/avatar_url"): SMALL,
    ("PUT", ROOM + "/send/{eventType}/{txnId}"): 65536,
    ("PUT", ROOM + "/redact/{eventId}/{txnId}"): 65536,
    ("POST", USER + "/filter"): 65536,
    ("PUT", USER + "/account_data/{type}"): 72 * 1024,
    ("PUT", USER + "/rooms/{roomId}/account_data/{type}"): 72 * 1024,
    ("PUT", USER + "/rooms/{roomId}/tags/{tag}"): 72 * 1024,
    ("POST", ROOM + "/receipt/{receiptType}/{eventId}"): 16 * 1024,
    ("POST", ROOM + "/read_markers"): 16 * 1024,
    ("PUT", C + "/presence/{userId}/status"): 8 * 1024,
    ("PUT", C + "/pushrules/{scope}/{kind}/{ruleId}"): 16 * 1024,
    ("PUT", C + "/pushrules/{scope}/{kind}/{ruleId}/enabled"): 16 * 1024,
    ("PUT", C + "/pushrules/{scope}/{kind}/{ruleId}/actions"): 16 * 1024,
    ("POST", C + "/pushers/set"): 16 * 1024,
    ("POST", C + "/search"): 65536,
    ("PUT", ROOM + "/typing/{userId}"): 4096,
    ("GET", "/_plait/client/v1/ws"): 0,
    ("POST", MEDIA_V3 + "/upload"): "media.max_upload_size",
    ("PUT", MEDIA_V3 + "/upload/{serverName}/{mediaId}"): "media.max_upload_size",
}


def path_parameters(path: str) -> list[dict[str, Any]]:
    names = [seg[1:-1] for seg in path.split("/") if seg.startswith("{") and seg.endswith("}")]
    return [{"name": n, "in": "path", "required": True, "schema": STR} for n in names]


def build() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for method, path, operation in OPERATIONS:
        operation = json.loads(json.dumps(operation))
        limit = MAX_BODY.get((method, path))
        if limit is not None:
            operation["x-max-body"] = limit
        responses = operation["responses"]
        if "requestBody" in operation and "413" not in responses:
            # Every body has a limit (x-max-body, else http.max_json_body): over it, 413.
            responses["413"] = {"$ref": "#/components/responses/E413"}
            operation["responses"] = dict(sorted(responses.items()))
        aliases = operation.pop("x-aliases")
        variants = [(path, False)]
        if path.startswith(C):
            variants += [(f"/_matrix/client/{a}" + path[len(C) :], True) for a in aliases]
        for p, deprecated in variants:
            entry = paths.setdefault(p, {})
            params = path_parameters(p)
            if params and "parameters" not in entry:
                entry["parameters"] = params
            o = dict(operation)
            if deprecated:
                o["deprecated"] = True
                o["description"] = (o.get("description", "") + " Alias of the v3 endpoint.").strip()
            o["operationId"] = (
                f"{method.lower()}_{p.strip('/').replace('/', '_').replace('{', '').replace('}', '')}"
            )
            if method.lower() in entry:
                raise ValueError(f"duplicate operation {method} {p}")
            entry[method.lower()] = o
    responses = {
        f"E{code}": {
            "description": text,
            "content": {"application/json": {"schema": ref("Error")}},
        }
        for code, text in ERROR_TEXT.items()
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Plait Client-Server API",
            "version": "0.1",
            "description": "The subset of the Matrix v1.11 Client-Server API that Plait serves, "
            "and where it differs. Prose: spec/*.md. Every error body is the shared Error schema.",
        },
        "servers": [{"url": "http://127.0.0.1:8008"}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": SCHEMAS,
            "responses": responses,
            "securitySchemes": {
                "accessToken": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "accessTokenQuery": {
                    "type": "apiKey",
                    "in": "query",
                    "name": "access_token",
                    "description": "Deprecated by Matrix; still accepted.",
                },
            },
        },
    }


def render() -> str:
    return json.dumps(build(), indent=1, sort_keys=False) + "\n"


if __name__ == "__main__":
    out = HERE / "openapi.json"
    out.write_text(render())
    print(f"wrote {out} ({len(build()['paths'])} paths)", file=sys.stderr)
