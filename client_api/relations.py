"""Relations over HTTP: /relations (child events of an event) and /threads (a room's threads).

Client-Server API v1.12+, "Relationships API" and "Querying threads in a room".
Thin handlers: parse and bound the parameters (400 ``M_INVALID_PARAM``), call
:class:`homeserver.timeline.relation_pages.RelationPages`, serialize with
bundled aggregations through ``ClientEvents``.
"""

from __future__ import annotations

from typing import Any

from client_api.messages import MAX_ID_BYTES, event_id_param, room_id_param
from homeserver.accounts.auth import require_user
from homeserver.errors import invalid_param
from homeserver.homeserver import HomeServer
from homeserver.http.router import Router
from homeserver.http.types import Request, Response
from homeserver.timeline.relation_pages import (
    RECURSION_DEPTH,
    RelationPages,
    parse_limit,
    parse_thread_token,
)
from homeserver.timeline.tokens import parse_pagination_token


def _name_param(request: Request, name: str) -> str | None:
    value = request.path_params.get(name)
    if value is None:
        return None
    if not value or len(value.encode()) > MAX_ID_BYTES:
        raise invalid_param(f"Malformed {name}")
    return value


def add_routes(router: Router, hs: HomeServer) -> None:
    pages = RelationPages(hs.messages)
    client_events = hs.messages.client_events

    async def relations(request: Request) -> Response:
        requester = await require_user(hs, request)
        room_id = room_id_param(request)
        event_id = event_id_param(request)
        rel_type = _name_param(request, "relType")
        event_type = _name_param(request, "eventType")
        direction = request.query_one("dir") or "b"
        if direction not in ("b", "f"):
            raise invalid_param("'dir' must be 'b' or 'f'")
        from_raw = request.query_one("from") or None
        to_raw = request.query_one("to") or None
        start = parse_pagination_token(from_raw) if from_raw else None
        stop = parse_pagination_token(to_raw) if to_raw else None
        limit = parse_limit(request.query_one("limit"))
        recurse_raw = request.query_one("recurse")
        if recurse_raw not in (None, "true", "false"):
            raise invalid_param("'recurse' must be 'true' or 'false'")
        recurse = recurse_raw == "true"
        page = await pages.relations(
            requester.user_id,
            room_id,
            event_id,
            rel_type=rel_type,
            event_type=event_type,
            start=start,
            stop=stop,
            backwards=direction == "b",
            limit=limit,
            recurse=recurse,
        )
        body: dict[str, Any] = {
            "chunk": await client_events.serialize(
                page.events, user_id=requester.user_id, device_id=requester.device_id
            )
        }
        if page.next_point is not None:
            body["next_batch"] = page.next_point.to_string()
        if from_raw is not None:
            body["prev_batch"] = from_raw
        if recurse_raw is not None:
            body["recursion_depth"] = RECURSION_DEPTH if recurse else 1
        return Response.json(body)

    async def threads(request: Request) -> Response:
        requester = await require_user(hs, request)
        room_id = room_id_param(request)
        include = request.query_one("include") or "all"
        if include not in ("all", "participated"):
            raise invalid_param("'include' must be 'all' or 'participated'")
        from_raw = request.query_one("from") or None
        before = parse_thread_token(from_raw) if from_raw else None
        limit = parse_limit(request.query_one("limit"))
        page = await pages.threads(
            requester.user_id,
            room_id,
            participated_only=include == "participated",
            before_stream=before,
            limit=limit,
        )
        body: dict[str, Any] = {
            "chunk": await client_events.serialize(
                page.roots, user_id=requester.user_id, device_id=requester.device_id
            )
        }
        if page.next_token is not None:
            body["next_batch"] = page.next_token
        return Response.json(body)

    base = "/_matrix/client/v1/rooms/{roomId}"
    router.add("GET", f"{base}/relations/{{eventId}}", relations)
    router.add("GET", f"{base}/relations/{{eventId}}/{{relType}}", relations)
    router.add("GET", f"{base}/relations/{{eventId}}/{{relType}}/{{eventType}}", relations)
    router.add("GET", f"{base}/threads", threads)
