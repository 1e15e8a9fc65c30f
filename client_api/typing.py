"""``PUT /rooms/{roomId}/typing/{userId}``: start or stop typing.

Spec: Client-Server API, "Typing Notifications". Body ``{"typing": bool,
"timeout": ms}``; only for yourself (403), only in rooms you are joined to
(403). The service caps the timeout at 30 s and expires it on its own.
"""

from __future__ import annotations

from homeserver.accounts.auth import require_user
from homeserver.core.identifiers import parse_user_id
from homeserver.errors import bad_json, invalid_param, missing_param
from homeserver.homeserver import HomeServer
from homeserver.http.router import Router
from homeserver.http.types import Request, Response

# Typing requests are tiny; anything larger is not a typing request.
MAX_BODY = 4096


def add_routes(router: Router, hs: HomeServer) -> None:
    async def put_typing(request: Request) -> Response:
        requester = await require_user(hs, request)
        room_id = request.path_params["roomId"]
        user_id = request.path_params["userId"]
        if not room_id.startswith("!"):
            raise invalid_param("Not a valid room ID")
        if parse_user_id(user_id) is None:
            raise invalid_param("Not a valid user ID")
        body = request.json()
        if "typing" not in body:
            raise missing_param("'typing' is required")
        typing = body["typing"]
        if not isinstance(typing, bool):
            raise bad_json("'typing' must be a boolean")
        timeout = body.get("timeout")
        if timeout is not None and (
            not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 0
        ):
            raise bad_json("'timeout' must be a non-negative integer (milliseconds)")
        await hs.typing.set_typing(requester.user_id, user_id, room_id, typing, timeout)
        if typing:
            await hs.presence.bump_active(requester.user_id)
        return Response.json({})

    for prefix in ("v3", "r0"):
        router.add(
            "PUT",
            f"/_matrix/client/{prefix}/rooms/{{roomId}}/typing/{{userId}}",
            put_typing,
            max_body=MAX_BODY,
        )
