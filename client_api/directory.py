"""Aliases, the public room directory and the user directory.

Spec: ``directory.yaml`` (``/directory/room/{roomAlias}``, ``/rooms/{roomId}/aliases``),
``list_public_rooms.yaml`` (``/directory/list/room/{roomId}``, ``/publicRooms``)
and ``users.yaml`` (``/user_directory/search``). Reading an alias, a room's
visibility and ``GET /publicRooms`` need no access token (the spec lists no
security for them).
"""

from __future__ import annotations

from typing import Any

from client_api import validation as v
from homeserver.accounts.auth import require_user
from homeserver.errors import bad_json, invalid_param, not_found
from homeserver.homeserver import HomeServer
from homeserver.http.router import Router
from homeserver.http.types import Request, Response
from homeserver.rooms.common import check_room_id, readable_state_ids
from homeserver.rooms.directory import (
    MAX_SEARCH_TERM_LENGTH,
    PublicRoomsQuery,
    parse_room_alias,
)
from homeserver.rooms.user_directory import MAX_SEARCH_TERM_LENGTH as MAX_USER_TERM

MAX_SINCE_LENGTH = 32
MAX_ROOM_TYPES = 20


def _limit(value: object, name: str = "limit") -> int | None:
    if value is None:
        return None
    if isinstance(value, str):
        if not value.isdigit() or len(value) > 9:
            raise invalid_param(f"'{name}' must be a non-negative integer")
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise bad_json(f"'{name}' must be a non-negative integer")
    return value


def add_routes(router: Router, hs: HomeServer) -> None:
    def alias_param(request: Request) -> str:
        alias = request.path_params["roomAlias"]
        parse_room_alias(alias)
        return alias

    async def put_alias(request: Request) -> Response:
        requester = await require_user(hs, request)
        alias = alias_param(request)
        room_id = v.string(request.json(), "room_id", max_length=255, required=True)
        assert room_id is not None
        check_room_id(room_id)
        await hs.directory.put_alias(requester.user_id, alias, room_id)
        return Response.json({})

    async def get_alias(request: Request) -> Response:
        room_id = await hs.directory.resolve_alias(alias_param(request))
        return Response.json({"room_id": room_id, "servers": [hs.server_name]})

    async def delete_alias(request: Request) -> Response:
        requester = await require_user(hs, request)
        await hs.directory.delete_alias(requester.user_id, alias_param(request))
        return Response.json({})

    async def room_aliases(request: Request) -> Response:
        requester = await require_user(hs, request)
        room_id = request.path_params["roomId"]
        await readable_state_ids(hs.event_store, room_id, requester.user_id)
        return Response.json({"aliases": await hs.directory.aliases_of_room(room_id)})

    async def get_visibility(request: Request) -> Response:
        room_id = request.path_params["roomId"]
        check_room_id(room_id)
        return Response.json({"visibility": await hs.directory.get_visibility(room_id)})

    async def set_visibility(request: Request) -> Response:
        requester = await require_user(hs, request)
        room_id = request.path_params["roomId"]
        check_room_id(room_id)
        visibility = v.string(request.json(), "visibility", max_length=16) or "public"
        if visibility not in ("public", "private"):
            raise bad_json("'visibility' must be 'public' or 'private'")
        await hs.directory.set_visibility(requester.user_id, room_id, visibility)
        return Response.json({})

    def check_server(request: Request) -> None:
        server = request.query_one("server")
        if server is not None and server != hs.server_name:
            raise not_found("Listing other servers' rooms needs federation (not supported yet)")

    async def public_rooms_get(request: Request) -> Response:
        check_server(request)
        since = request.query_one("since")
        if since is not None and len(since) > MAX_SINCE_LENGTH:
            raise invalid_param("Invalid 'since' token")
        query = PublicRoomsQuery(limit=_limit(request.query_one("limit")), since=since)
        return Response.json(await hs.directory.public_rooms(query))

    async def public_rooms_post(request: Request) -> Response:
        await require_user(hs, request)
        check_server(request)
        body = request.json()
        since = v.string(body, "since", max_length=MAX_SINCE_LENGTH)
        search_term: str | None = None
        room_types: list[str | None] | None = None
        filter_ = body.get("filter")
        if filter_ is not None:
            if not isinstance(filter_, dict):
                raise bad_json("'filter' must be an object")
            search_term = v.string(
                filter_, "generic_search_term", max_length=MAX_SEARCH_TERM_LENGTH
            )
            types = filter_.get("room_types")
            if types is not None:
                if not isinstance(types, list) or not all(
                    t is None or isinstance(t, str) for t in types
                ):
                    raise bad_json("'filter.room_types' must be a list of strings or nulls")
                if len(types) > MAX_ROOM_TYPES:
                    raise invalid_param("'filter.room_types' has too many entries")
                room_types = list(types)
        query = PublicRoomsQuery(
            limit=_limit(body.get("limit")),
            since=since,
            search_term=search_term,
            room_types=room_types,
        )
        return Response.json(await hs.directory.public_rooms(query))

    async def user_directory_search(request: Request) -> Response:
        requester = await require_user(hs, request)
        body = request.json()
        term = v.string(body, "search_term", max_length=MAX_USER_TERM, required=True)
        assert term is not None
        limit = _limit(body.get("limit"))
        result: dict[str, Any] = await hs.user_directory.search(
            requester.user_id, term, 10 if limit is None else limit
        )
        return Response.json(result)

    for prefix in ("v3", "r0"):
        base = f"/_matrix/client/{prefix}"
        router.add("PUT", f"{base}/directory/room/{{roomAlias}}", put_alias)
        router.add("GET", f"{base}/directory/room/{{roomAlias}}", get_alias)
        router.add("DELETE", f"{base}/directory/room/{{roomAlias}}", delete_alias)
        router.add("GET", f"{base}/rooms/{{roomId}}/aliases", room_aliases)
        router.add("GET", f"{base}/directory/list/room/{{roomId}}", get_visibility)
        router.add("PUT", f"{base}/directory/list/room/{{roomId}}", set_visibility)
        router.add("GET", f"{base}/publicRooms", public_rooms_get)
        router.add("POST", f"{base}/publicRooms", public_rooms_post)
        router.add("POST", f"{base}/user_directory/search", user_directory_search)
