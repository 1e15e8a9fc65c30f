"""``POST /register``, ``GET /register/available``, registration-token validity.

Spec: Client-Server API, "Account registration and management" and
"Token-authenticated registration". Validation of the username happens before
user-interactive auth, so a client learns ``M_USER_IN_USE`` before it spends a
registration token on a name it cannot have.
"""

from __future__ import annotations

from client_api import validation as v
from homeserver.accounts.auth import MAX_DEVICE_ID_LENGTH
from homeserver.accounts.passwords import MAX_PASSWORD_BYTES
from homeserver.accounts.registration import check_localpart
from homeserver.errors import MatrixError, forbidden, invalid_param, missing_param
from homeserver.homeserver import HomeServer
from homeserver.http.router import Router
from homeserver.http.types import Request, Response

MAX_DISPLAY_NAME_LENGTH = 256


def add_routes(router: Router, hs: HomeServer) -> None:
    async def register(request: Request) -> Response:
        kind = request.query_one("kind", "user")
        if kind == "guest":
            raise MatrixError(403, "M_GUEST_ACCESS_FORBIDDEN", "Guest access is not allowed")
        if kind != "user":
            raise invalid_param("'kind' must be 'user' or 'guest'")
        hs.registration.ensure_open()
        ip = v.client_ip(request)
        hs.rate_limits.check("register", ip)
        body = request.json()
        username = v.string(body, "username", max_length=255)
        password = v.string(
            body, "password", max_length=MAX_PASSWORD_BYTES, max_bytes=MAX_PASSWORD_BYTES
        )
        device_id = v.string(body, "device_id", max_length=MAX_DEVICE_ID_LENGTH)
        display_name = v.string(
            body, "initial_device_display_name", max_length=MAX_DISPLAY_NAME_LENGTH
        )
        inhibit_login = v.boolean(body, "inhibit_login", False)
        want_refresh = v.boolean(body, "refresh_token", False)
        localpart = None
        if username is not None:
            # Spec (Appendices, "User Identifiers"): new localparts are lower case.
            localpart = username.lower()
            await hs.registration.check_available(localpart)
        session = await hs.interactive_auth.authenticate(
            body.get("auth"), purpose="register", flows=hs.registration.flows(), user_id=None
        )
        if password is None:
            # Checked after UIA so that a bare first request still learns the flows;
            # the session stays open for a retry that includes the password.
            raise missing_param("'password' is required")
        user_id, login = await hs.registration.register(
            localpart=localpart,
            password=password,
            session=session,
            device_id=device_id or None,
            display_name=display_name,
            inhibit_login=inhibit_login,
            want_refresh=want_refresh,
            ip=ip,
        )
        hs.interactive_auth.finish(session)
        if login is None:
            return Response.json({"user_id": user_id})
        return Response.json(login.to_json())

    async def available(request: Request) -> Response:
        hs.rate_limits.check("register", v.client_ip(request))
        username = request.query_one("username")
        if not username:
            raise missing_param("'username' is required")
        check_localpart(username, hs.server_name)
        await hs.registration.check_available(username)
        return Response.json({"available": True})

    async def token_validity(request: Request) -> Response:
        if hs.registration.mode != "token":
            # Spec: the server does not use registration tokens, so none is valid.
            raise forbidden("Registration tokens are not used on this server")
        hs.rate_limits.check("register", v.client_ip(request))
        # Uses reserved by abandoned UIA sessions come back before we answer.
        await hs.interactive_auth.sweep()
        token = request.query_one("token")
        if token is None:
            raise missing_param("'token' is required")
        return Response.json({"valid": await hs.registration.token_validity(token)})

    for prefix in ("v3", "r0"):
        router.add("POST", f"/_matrix/client/{prefix}/register", register, max_body=v.SMALL_BODY)
        router.add("GET", f"/_matrix/client/{prefix}/register/available", available)
    router.add(
        "GET", "/_matrix/client/v1/register/m.login.registration_token/validity", token_validity
    )
