"""``POST /user/{userId}/filter`` and ``GET /user/{userId}/filter/{filterId}``.

Only the owner may store or read their filters (403 otherwise); a filter that
does not validate against ``sync_filter.yaml`` is 400 ``M_BAD_JSON`` and is
not stored; an unknown ID is 404 ``M_NOT_FOUND`` (matrix_brief 1.1).
"""

from __future__ import annotations

from homeserver.accounts.auth import require_user
from homeserver.errors import forbidden
from homeserver.homeserver import HomeServer
from homeserver.http.router import Router
from homeserver.http.types import Request, Response

MAX_FILTER_BODY = 65536


def add_routes(router: Router, hs: HomeServer) -> None:
    sync = hs.sync

    async def create_filter(request: Request) -> Response:
        requester = await require_user(hs, request)
        if request.path_params["userId"] != requester.user_id:
            raise forbidden("You may only create filters for yourself")
        filter_id = await sync.store_filter(requester.user_id, request.json())
        return Response.json({"filter_id": filter_id})

    async def get_filter(request: Request) -> Response:
        requester = await require_user(hs, request)
        if request.path_params["userId"] != requester.user_id:
            raise forbidden("You may only read your own filters")
        return Response.json(
            await sync.get_filter(requester.user_id, request.path_params["filterId"])
        )

    for prefix in ("v3", "r0"):
        base = f"/_matrix/client/{prefix}/user/{{userId}}/filter"
        router.add("POST", base, create_filter, max_body=MAX_FILTER_BODY)
        router.add("GET", f"{base}/{{filterId}}", get_filter)
