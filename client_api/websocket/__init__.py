"""``GET /_plait/client/v1/ws``: /sync pushed over a WebSocket, plus in-band writes.

A private extension (WebSockets are not in the Matrix spec): the frames carry
exactly the /sync bodies and tokens of ``GET /sync``, so a client can switch
between the two transports at any ``next_batch``. Protocol: spec/websocket.md.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from homeserver.homeserver import HomeServer
from homeserver.http.router import Router
from homeserver.http.types import Request

if TYPE_CHECKING:
    import trio_websocket

WS_PATH = "/_plait/client/v1/ws"


async def _serve(hs: HomeServer, request: Request, ws: trio_websocket.WebSocketConnection) -> None:
    # The session module imports trio-websocket, which the upgrade has just
    # loaded (homeserver.http.websocket.load_trio_websocket): a server that no
    # WebSocket client talks to never pays for either.
    from client_api.websocket.session import serve_websocket

    await serve_websocket(hs, request, ws)


def add_routes(router: Router, hs: HomeServer) -> None:
    router.add_websocket(WS_PATH, functools.partial(_serve, hs))
