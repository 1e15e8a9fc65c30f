"""``/room_keys/*`` (``key_backup.yaml``): server-side key backup.

Limits: at most 1000 sessions per request; room and session IDs at most 255
characters; each ``session_data`` at most 64 KiB; ``auth_data`` at most 64 KiB.
"""

from __future__ import annotations

from typing import Any

from homeserver.accounts.auth import require_user
from homeserver.e2e import validation as val
from homeserver.e2e.backup import Keys, parse_version
from homeserver.errors import bad_json, invalid_param, missing_param, not_found
from homeserver.homeserver import HomeServer
from homeserver.http.router import Router
from homeserver.http.types import Request, Response
from homeserver.storage.key_backup import RoomKey

ALGORITHMS = ("m.megolm_backup.v1.curve25519-aes-sha2",)
MAX_SESSIONS = 1000
MAX_ID_LENGTH = 255
MAX_DATA_BYTES = 64 * 1024


def _int(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**53:
        raise bad_json(f"'{name}' must be a non-negative integer")
    return value


def parse_key(body: Any) -> RoomKey:
    if not isinstance(body, dict):
        raise bad_json("A key backup entry must be an object")
    is_verified = body.get("is_verified")
    if not isinstance(is_verified, bool):
        raise bad_json("'is_verified' must be a boolean")
    session_data = body.get("session_data")
    if not isinstance(session_data, dict):
        raise bad_json("'session_data' must be an object")
    if val.encoded_size(session_data, "session_data") > MAX_DATA_BYTES:
        raise invalid_param("'session_data' is too large")
    return RoomKey(
        first_message_index=_int(body, "first_message_index"),
        forwarded_count=_int(body, "forwarded_count"),
        is_verified=is_verified,
        session_data=session_data,
    )


def _check_id(value: str, what: str) -> str:
    if not value or len(value) > MAX_ID_LENGTH:
        raise invalid_param(f"The {what} must be 1 to {MAX_ID_LENGTH} characters")
    return value


def parse_sessions(body: Any, counter: list[int]) -> dict[str, RoomKey]:
    sessions = body.get("sessions") if isinstance(body, dict) else None
    if not isinstance(sessions, dict):
        raise bad_json("'sessions' must be an object")
    counter[0] += len(sessions)
    if counter[0] > MAX_SESSIONS:
        raise invalid_param(f"Too many sessions in one request (at most {MAX_SESSIONS})")
    return {_check_id(sid, "session ID"): parse_key(key) for sid, key in sessions.items()}


def _auth_data(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    algorithm = body.get("algorithm")
    if algorithm is None:
        raise missing_param("'algorithm' is required")
    if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
        raise invalid_param(f"'algorithm' must be one of {', '.join(ALGORITHMS)}")
    auth_data = body.get("auth_data")
    if not isinstance(auth_data, dict):
        raise bad_json("'auth_data' must be an object")
    if val.encoded_size(auth_data, "auth_data") > MAX_DATA_BYTES:
        raise invalid_param("'auth_data' is too large")
    return algorithm, auth_data


def add_routes(router: Router, hs: HomeServer) -> None:
    backup = hs.key_backup

    async def create_version(request: Request) -> Response:
        requester = await require_user(hs, request)
        algorithm, auth_data = _auth_data(request.json())
        version = await backup.create_version(requester.user_id, algorithm, auth_data)
        return Response.json({"version": version})

    async def current_version(request: Request) -> Response:
        requester = await require_user(hs, request)
        return Response.json(await backup.get_version(requester.user_id, None))

    async def get_version(request: Request) -> Response:
        requester = await require_user(hs, request)
        version = parse_version(request.path_params["version"])
        return Response.json(await backup.get_version(requester.user_id, version))

    async def update_version(request: Request) -> Response:
        requester = await require_user(hs, request)
        raw = request.path_params["version"]
        body = request.json()
        algorithm, auth_data = _auth_data(body)
        if "version" in body and body["version"] != raw:
            raise invalid_param("'version' does not match the version in the path")
        await backup.update_version(requester.user_id, parse_version(raw), algorithm, auth_data)
        return Response.json({})

    async def delete_version(request: Request) -> Response:
        requester = await require_user(hs, request)
        version = parse_version(request.path_params["version"])
        await backup.delete_version(requester.user_id, version)
        return Response.json({})

    def _version_query(request: Request) -> int:
        return parse_version(request.query_one("version"))

    async def put_keys(request: Request) -> Response:
        requester = await require_user(hs, request)
        version = _version_query(request)
        body = request.json()
        room_id = request.path_params.get("roomId")
        session_id = request.path_params.get("sessionId")
        counter = [0]
        keys: Keys
        if room_id is not None and session_id is not None:
            keys = {
                _check_id(room_id, "room ID"): {
                    _check_id(session_id, "session ID"): parse_key(body)
                }
            }
        elif room_id is not None:
            keys = {_check_id(room_id, "room ID"): parse_sessions(body, counter)}
        else:
            rooms = body.get("rooms")
            if not isinstance(rooms, dict):
                raise bad_json("'rooms' must be an object")
            keys = {_check_id(r, "room ID"): parse_sessions(s, counter) for r, s in rooms.items()}
        return Response.json(await backup.put_keys(requester.user_id, version, keys))

    async def get_keys(request: Request) -> Response:
        requester = await require_user(hs, request)
        version = _version_query(request)
        room_id = request.path_params.get("roomId")
        session_id = request.path_params.get("sessionId")
        keys = await backup.get_keys(requester.user_id, version, room_id, session_id)
        if room_id is not None and session_id is not None:
            found = keys.get(room_id, {}).get(session_id)
            if found is None:
                raise not_found("Key not found")
            return Response.json(found.to_json())
        if room_id is not None:
            sessions = keys.get(room_id, {})
            return Response.json({"sessions": {s: k.to_json() for s, k in sessions.items()}})
        return Response.json(
            {
                "rooms": {
                    r: {"sessions": {s: k.to_json() for s, k in sessions.items()}}
                    for r, sessions in keys.items()
                }
            }
        )

    async def delete_keys(request: Request) -> Response:
        requester = await require_user(hs, request)
        version = _version_query(request)
        room_id = request.path_params.get("roomId")
        session_id = request.path_params.get("sessionId")
        return Response.json(
            await backup.delete_keys(requester.user_id, version, room_id, session_id)
        )

    for prefix in ("v3", "r0", "unstable"):
        base = f"/_matrix/client/{prefix}/room_keys"
        router.add("POST", f"{base}/version", create_version)
        router.add("GET", f"{base}/version", current_version)
        router.add("GET", f"{base}/version/{{version}}", get_version)
        router.add("PUT", f"{base}/version/{{version}}", update_version)
        router.add("DELETE", f"{base}/version/{{version}}", delete_version)
        for path in ("keys", "keys/{roomId}", "keys/{roomId}/{sessionId}"):
            router.add("PUT", f"{base}/{path}", put_keys)
            router.add("GET", f"{base}/{path}", get_keys)
            router.add("DELETE", f"{base}/{path}", delete_keys)
