"""Discovery: ``/versions``, ``/.well-known/matrix/client``, ``/capabilities``."""

from __future__ import annotations

from homeserver.accounts.auth import require_user
from homeserver.core.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.homeserver import HomeServer
from homeserver.http.router import Router
from homeserver.http.types import Request, Response

# Spec ``GET /_matrix/client/versions``: every version we implement, cumulative.
SUPPORTED_VERSIONS = [
    "v1.1",
    "v1.2",
    "v1.3",
    "v1.4",
    "v1.5",
    "v1.6",
    "v1.7",
    "v1.8",
    "v1.9",
    "v1.10",
    "v1.11",
]


def add_routes(router: Router, hs: HomeServer) -> None:
    versions_body = Response.json({"versions": SUPPORTED_VERSIONS, "unstable_features": {}}).body
    well_known_body = Response.json({"m.homeserver": {"base_url": hs.config.base_url}}).body

    async def versions(request: Request) -> Response:
        return Response(headers=[("Content-Type", "application/json")], body=versions_body)

    async def well_known(request: Request) -> Response:
        return Response(headers=[("Content-Type", "application/json")], body=well_known_body)

    async def capabilities(request: Request) -> Response:
        await require_user(hs, request)
        default = hs.config.default_room_version
        return Response.json(
            {
                "capabilities": {
                    "m.room_versions": {
                        "default": default,
                        "available": {v: "stable" for v in KNOWN_ROOM_VERSIONS},
                    },
                    "m.change_password": {"enabled": True},
                    "m.set_displayname": {"enabled": True},
                    "m.set_avatar_url": {"enabled": True},
                    "m.3pid_changes": {"enabled": False},
                    "m.get_login_token": {"enabled": False},
                }
            }
        )

    router.add("GET", "/_matrix/client/versions", versions)
    router.add("GET", "/.well-known/matrix/client", well_known)
    router.add("GET", "/_matrix/client/v3/capabilities", capabilities)
    router.add("GET", "/_matrix/client/r0/capabilities", capabilities)
