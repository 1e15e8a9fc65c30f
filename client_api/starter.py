"""What Element calls while starting that has no fuller home yet.

js-sdk's sync loop begins with ``GET /pushrules/`` and retries it forever on
failure (matrix_brief.md §1.2, pitfall 1: "Unable to connect to Homeserver.
Retrying..."), so the server-default rule set is served here. The rest are
best-effort calls whose spec-valid empty answers keep clients' logs and
settings pages clean:

* (push rules and pushers moved to ``client_api/push.py``);
* ``GET /voip/turnServer``: no TURN server is configured, so the answer has
  the fields the spec's schema requires with no ``uris`` (Synapse answers
  ``{}``; both leave js-sdk calling without relays, but only this one is
  schema-valid);
* ``GET /thirdparty/protocols``: ``{}`` (no bridges);
* ``GET /account/3pid``: ``{"threepids": []}`` (Plait holds no third-party IDs).

(``GET /room_keys/version`` lives in ``client_api/room_keys.py``, key backup.)
"""

from __future__ import annotations

from typing import Any

from homeserver.accounts.auth import require_user
from homeserver.homeserver import HomeServer
from homeserver.http.router import Router
from homeserver.http.types import Request, Response

# voip.yaml requires username, password, uris and ttl; ttl: ask again in a day.
NO_TURN_SERVER: dict[str, Any] = {"username": "", "password": "", "uris": [], "ttl": 86400}


def add_routes(router: Router, hs: HomeServer) -> None:
    async def turn_server(request: Request) -> Response:
        await require_user(hs, request)
        return Response.json(NO_TURN_SERVER)

    async def protocols(request: Request) -> Response:
        await require_user(hs, request)
        return Response.json({})

    async def threepids(request: Request) -> Response:
        await require_user(hs, request)
        return Response.json({"threepids": []})

    for prefix in ("v3", "r0"):
        base = f"/_matrix/client/{prefix}"
        router.add("GET", f"{base}/voip/turnServer", turn_server)
        router.add("GET", f"{base}/thirdparty/protocols", protocols)
        router.add("GET", f"{base}/account/3pid", threepids)
