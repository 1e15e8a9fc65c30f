"""Account data and room tags.

Spec: ``account-data.yaml`` (``/user/{userId}/account_data/{type}``,
``/user/{userId}/rooms/{roomId}/account_data/{type}``) and ``tags.yaml``
(``/user/{userId}/rooms/{roomId}/tags[/{tag}]``). Only the owner may read or
write; the service refuses the server-managed types.
"""

from __future__ import annotations

from homeserver.account_data import require_found, require_owner
from homeserver.accounts.auth import require_user
from homeserver.homeserver import HomeServer
from homeserver.http.router import Router
from homeserver.http.types import Request, Response
from homeserver.rooms.common import check_room_id

# Account data documents may be up to 64 KiB; leave room for JSON overhead.
MAX_BODY = 72 * 1024


def add_routes(router: Router, hs: HomeServer) -> None:
    async def owner(request: Request) -> str:
        requester = await require_user(hs, request)
        user_id = request.path_params["userId"]
        require_owner(requester.user_id, user_id)
        return user_id

    def room_param(request: Request) -> str:
        room_id = request.path_params["roomId"]
        check_room_id(room_id)
        return room_id

    async def get_global(request: Request) -> Response:
        user_id = await owner(request)
        content = await hs.account_data.get_global(user_id, request.path_params["type"])
        return Response.json(require_found(content))

    async def put_global(request: Request) -> Response:
        user_id = await owner(request)
        content = request.json()
        await hs.account_data.put_global(user_id, request.path_params["type"], content)
        return Response.json({})

    async def get_room(request: Request) -> Response:
        user_id = await owner(request)
        room_id = room_param(request)
        content = await hs.account_data.get_room(user_id, room_id, request.path_params["type"])
        return Response.json(require_found(content))

    async def put_room(request: Request) -> Response:
        user_id = await owner(request)
        room_id = room_param(request)
        content = request.json()
        await hs.account_data.put_room(user_id, room_id, request.path_params["type"], content)
        return Response.json({})

    async def get_tags(request: Request) -> Response:
        user_id = await owner(request)
        room_id = room_param(request)
        return Response.json({"tags": await hs.account_data.get_tags(user_id, room_id)})

    async def put_tag(request: Request) -> Response:
        user_id = await owner(request)
        room_id = room_param(request)
        body = request.json()
        await hs.account_data.set_tag(user_id, room_id, request.path_params["tag"], body)
        return Response.json({})

    async def delete_tag(request: Request) -> Response:
        user_id = await owner(request)
        room_id = room_param(request)
        await hs.account_data.remove_tag(user_id, room_id, request.path_params["tag"])
        return Response.json({})

    for prefix in ("v3", "r0"):
        user = f"/_matrix/client/{prefix}/user/{{userId}}"
        router.add("GET", f"{user}/account_data/{{type}}", get_global)
        router.add("PUT", f"{user}/account_data/{{type}}", put_global, max_body=MAX_BODY)
        room = f"{user}/rooms/{{roomId}}"
        router.add("GET", f"{room}/account_data/{{type}}", get_room)
        router.add("PUT", f"{room}/account_data/{{type}}", put_room, max_body=MAX_BODY)
        router.add("GET", f"{room}/tags", get_tags)
        router.add("PUT", f"{room}/tags/{{tag}}", put_tag, max_body=MAX_BODY)
        router.add("DELETE", f"{room}/tags/{{tag}}", delete_tag)
