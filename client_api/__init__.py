"""The Client-Server API: HTTP handlers that turn JSON into service calls and back.

``build_router(hs)`` is the one entry point the composition root uses. Each
module adds the routes of one area; handlers authenticate with
``homeserver.accounts.auth.require_user`` (re-exported here).
"""

from __future__ import annotations

from client_api import (
    account,
    account_data,
    directory,
    filters,
    keys,
    login,
    media,
    membership,
    messages,
    presence,
    profile,
    push,
    receipts,
    register,
    relations,
    room_keys,
    rooms,
    search,
    starter,
    sync,
    to_device,
    typing,
    versions,
    web,
)
from client_api import websocket as websocket_transport
from homeserver.accounts.auth import Requester, require_user
from homeserver.homeserver import HomeServer
from homeserver.http.router import Router

__all__ = ["Requester", "build_router", "require_user"]


def build_router(hs: HomeServer) -> Router:
    router = Router()
    for module in (versions, register, login, account, profile, media):
        module.add_routes(router, hs)
    for module in (typing, receipts, presence, starter):
        module.add_routes(router, hs)
    for module in (messages, relations, filters, sync):
        module.add_routes(router, hs)
    for module in (rooms, membership, directory, account_data):
        module.add_routes(router, hs)
    for module in (keys, to_device, room_keys):
        module.add_routes(router, hs)
    for module in (push, search):
        module.add_routes(router, hs)
    websocket_transport.add_routes(router, hs)
    web.add_routes(router, hs)  # last: the web client at / and its catch-all
    return router
