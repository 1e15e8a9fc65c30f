"""``/login``, ``/refresh``, ``/logout``, ``/logout/all``, ``/account/whoami``.

Spec: Client-Server API, "Login", "Refreshing access tokens", "Logout". A failed
password login answers the same 403 whether or not the user exists, after the
same amount of hashing work (see ``AuthService.check_password``).
"""

from __future__ import annotations

from client_api import validation as v
from homeserver.accounts.auth import (
    MAX_DEVICE_ID_LENGTH,
    login_user_id,
    password_login_error,
    require_user,
)
from homeserver.accounts.passwords import MAX_PASSWORD_BYTES
from homeserver.errors import MatrixError
from homeserver.homeserver import HomeServer
from homeserver.http.router import Router
from homeserver.http.types import Request, Response

MAX_DISPLAY_NAME_LENGTH = 256
MAX_REFRESH_TOKEN_LENGTH = 512
PASSWORD_LOGIN = "m.login.password"


def add_routes(router: Router, hs: HomeServer) -> None:
    flows_body = Response.json({"flows": [{"type": PASSWORD_LOGIN}]}).body

    async def login_flows(request: Request) -> Response:
        return Response(headers=[("Content-Type", "application/json")], body=flows_body)

    async def login(request: Request) -> Response:
        ip = v.client_ip(request)
        hs.rate_limits.check("login", ip)
        body = request.json()
        login_type = v.string(body, "type", max_length=255, required=True)
        if login_type != PASSWORD_LOGIN:
            raise MatrixError(400, "M_UNKNOWN", f"Unknown login type; supported: {PASSWORD_LOGIN}")
        password = v.string(
            body,
            "password",
            max_length=MAX_PASSWORD_BYTES,
            max_bytes=MAX_PASSWORD_BYTES,
            required=True,
        )
        assert password is not None
        device_id = v.string(body, "device_id", max_length=MAX_DEVICE_ID_LENGTH)
        display_name = v.string(
            body, "initial_device_display_name", max_length=MAX_DISPLAY_NAME_LENGTH
        )
        want_refresh = v.boolean(body, "refresh_token", False)
        user_id = login_user_id(body, hs.server_name)
        user = await hs.auth.check_password(user_id, password)
        if user is None:
            raise password_login_error()
        result = await hs.auth.login(
            user.user_id,
            device_id=device_id or None,
            display_name=display_name,
            want_refresh=want_refresh,
            ip=ip,
        )
        return Response.json(result.to_json())

    async def refresh(request: Request) -> Response:
        hs.rate_limits.check("login", v.client_ip(request))
        body = request.json()
        token = v.string(body, "refresh_token", max_length=MAX_REFRESH_TOKEN_LENGTH, required=True)
        assert token is not None
        result = await hs.auth.refresh(token)
        out: dict[str, object] = {"access_token": result.access_token}
        if result.refresh_token is not None:
            out["refresh_token"] = result.refresh_token
        if result.expires_in_ms is not None:
            out["expires_in_ms"] = result.expires_in_ms
        return Response.json(out)

    async def logout(request: Request) -> Response:
        requester = await require_user(hs, request, rate_limited=False)
        await hs.auth.logout(requester)
        return Response.json({})

    async def logout_all(request: Request) -> Response:
        requester = await require_user(hs, request, rate_limited=False)
        await hs.auth.logout_all(requester.user_id)
        return Response.json({})

    async def whoami(request: Request) -> Response:
        requester = await require_user(hs, request)
        return Response.json(
            {
                "user_id": requester.user_id,
                "device_id": requester.device_id,
                "is_guest": requester.is_guest,
            }
        )

    for prefix in ("v3", "r0"):
        router.add("GET", f"/_matrix/client/{prefix}/login", login_flows)
        router.add("POST", f"/_matrix/client/{prefix}/login", login, max_body=v.SMALL_BODY)
        router.add("POST", f"/_matrix/client/{prefix}/logout", logout)
        router.add("POST", f"/_matrix/client/{prefix}/logout/all", logout_all)
        router.add("GET", f"/_matrix/client/{prefix}/account/whoami", whoami)
    router.add("POST", "/_matrix/client/v3/refresh", refresh, max_body=v.SMALL_BODY)
