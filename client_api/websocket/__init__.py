"""``GET /_plait/client/v1/ws``: /sync pushed over a WebSocket, plus in-band writes.

A private extension (WebSockets are not in the Matrix spec): the frames carry
exactly the /sync bodies and tokens of ``GET /sync``, so a client can switch
between the two transports at any ``next_batch``. Protocol: spec/websocket.md.
"""

from __future__ import annotations

import functools

from client_api.websocket.session import serve_websocket
from homeserver.homeserver import HomeServer
from homeserver.http.router import Router

WS_PATH = "/_plait/client/v1/ws"


def add_routes(router: Router, hs: HomeServer) -> None:
    router.add_websocket(WS_PATH, functools.partial(serve_websocket, hs))
