"""``POST /search`` (spec ``search.yaml``): the room_events category; see homeserver/search."""

from __future__ import annotations

from homeserver.accounts.auth import require_user
from homeserver.homeserver import HomeServer
from homeserver.http.router import Router
from homeserver.http.types import Request, Response

MAX_BODY = 64 * 1024


def add_routes(router: Router, hs: HomeServer) -> None:
    async def search(request: Request) -> Response:
        requester = await require_user(hs, request)
        body = request.json()
        result = await hs.search.search(requester.user_id, body, request.query_one("next_batch"))
        return Response.json(result)

    for prefix in ("v3", "r0"):
        router.add("POST", f"/_matrix/client/{prefix}/search", search, max_body=MAX_BODY)
