"""``GET /sync`` (``sync.yaml``): query parameters in, the sync service's answer out."""

from __future__ import annotations

from homeserver.accounts.auth import require_user
from homeserver.errors import invalid_param
from homeserver.homeserver import HomeServer
from homeserver.http.router import Router
from homeserver.http.types import Request, Response
from homeserver.sync.service import SyncRequest, parse_since, parse_timeout

PRESENCE_STATES = ("online", "offline", "unavailable")


def add_routes(router: Router, hs: HomeServer) -> None:
    sync = hs.sync

    async def get_sync(request: Request) -> Response:
        requester = await require_user(hs, request)
        since = parse_since(request.query_one("since"))
        timeout_ms = parse_timeout(request.query_one("timeout"))
        full_state_raw = request.query_one("full_state", "false")
        if full_state_raw not in ("true", "false"):
            raise invalid_param("'full_state' must be 'true' or 'false'")
        set_presence = request.query_one("set_presence")
        if set_presence is not None and set_presence not in PRESENCE_STATES:
            raise invalid_param("'set_presence' must be online, offline or unavailable")
        sync_filter = await sync.resolve_filter(requester.user_id, request.query_one("filter"))
        body = await sync.sync(
            SyncRequest(
                user_id=requester.user_id,
                device_id=requester.device_id,
                since=since,
                timeout_ms=timeout_ms,
                full_state=full_state_raw == "true",
                filter=sync_filter,
                set_presence=set_presence,
            )
        )
        return Response.json(body)

    for prefix in ("v3", "r0"):
        router.add("GET", f"/_matrix/client/{prefix}/sync", get_sync)
