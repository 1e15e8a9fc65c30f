"""``GET``/``PUT /presence/{userId}/status``.

Spec: Client-Server API, "Presence". PUT only your own (403); GET yourself or
a user you share a room with (403 otherwise, as Synapse). ``status_msg`` is
bounded (the spec sets no limit; Plait: 512 characters). With presence
switched off, PUT is accepted and ignored and GET answers ``offline``.
"""

from __future__ import annotations

from homeserver.accounts.auth import require_user
from homeserver.core.identifiers import parse_user_id
from homeserver.errors import bad_json, invalid_param, missing_param
from homeserver.homeserver import HomeServer
from homeserver.http.router import Router
from homeserver.http.types import Request, Response
from homeserver.presence import MAX_STATUS_MSG_LENGTH, STATES

MAX_BODY = 8 * 1024


def _user_id(request: Request) -> str:
    user_id = request.path_params["userId"]
    if parse_user_id(user_id) is None:
        raise invalid_param("Not a valid user ID")
    return user_id


def add_routes(router: Router, hs: HomeServer) -> None:
    async def get_status(request: Request) -> Response:
        requester = await require_user(hs, request)
        user_id = _user_id(request)
        return Response.json(await hs.presence.get_presence(requester.user_id, user_id))

    async def put_status(request: Request) -> Response:
        requester = await require_user(hs, request)
        user_id = _user_id(request)
        body = request.json()
        if "presence" not in body:
            raise missing_param("'presence' is required")
        state = body["presence"]
        if not isinstance(state, str) or state not in STATES:
            raise bad_json(f"'presence' must be one of {', '.join(STATES)}")
        status_msg = body.get("status_msg")
        if status_msg is not None:
            if not isinstance(status_msg, str):
                raise bad_json("'status_msg' must be a string")
            if len(status_msg) > MAX_STATUS_MSG_LENGTH:
                raise invalid_param(
                    f"'status_msg' is too long (at most {MAX_STATUS_MSG_LENGTH} characters)"
                )
        await hs.presence.set_presence(requester.user_id, user_id, state, status_msg)
        return Response.json({})

    for prefix in ("v3", "r0"):
        base = f"/_matrix/client/{prefix}/presence/{{userId}}/status"
        router.add("GET", base, get_status)
        router.add("PUT", base, put_status, max_body=MAX_BODY)
