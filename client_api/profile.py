"""``/profile/{userId}`` and its ``displayname`` and ``avatar_url`` fields.

Spec: Client-Server API, "Profiles". Reading needs no token; writing needs the
owner's. Remote profiles need federation and answer 404 until it exists.
"""

from __future__ import annotations

from typing import Any

from client_api import validation as v
from homeserver.accounts.auth import require_user
from homeserver.accounts.profiles import MAX_AVATAR_URL_LENGTH, MAX_DISPLAYNAME_LENGTH
from homeserver.core.identifiers import parse_user_id
from homeserver.errors import invalid_param, missing_param, not_found
from homeserver.homeserver import HomeServer
from homeserver.http.router import Router
from homeserver.http.types import Request, Response
from homeserver.storage.accounts import ProfileRow


def add_routes(router: Router, hs: HomeServer) -> None:
    def local_user(request: Request) -> str:
        user_id = request.path_params["userId"]
        parsed = parse_user_id(user_id)
        if parsed is None:
            raise invalid_param("Not a valid user ID")
        if parsed[1] != hs.server_name:
            raise not_found("Profile not found")
        return user_id

    async def profile(request: Request) -> ProfileRow:
        return await hs.profiles.get_profile(local_user(request))

    async def get_profile(request: Request) -> Response:
        row = await profile(request)
        body: dict[str, Any] = {}
        if row.displayname is not None:
            body["displayname"] = row.displayname
        if row.avatar_url is not None:
            body["avatar_url"] = row.avatar_url
        return Response.json(body)

    async def get_displayname(request: Request) -> Response:
        row = await profile(request)
        return Response.json({} if row.displayname is None else {"displayname": row.displayname})

    async def get_avatar_url(request: Request) -> Response:
        row = await profile(request)
        return Response.json({} if row.avatar_url is None else {"avatar_url": row.avatar_url})

    async def set_displayname(request: Request) -> Response:
        requester = await require_user(hs, request)
        user_id = local_user(request)
        body = request.json()
        if "displayname" not in body:
            raise missing_param("'displayname' is required")
        value = v.string(body, "displayname", max_length=MAX_DISPLAYNAME_LENGTH)
        await hs.profiles.set_displayname(requester.user_id, user_id, value)
        return Response.json({})

    async def set_avatar_url(request: Request) -> Response:
        requester = await require_user(hs, request)
        user_id = local_user(request)
        body = request.json()
        if "avatar_url" not in body:
            raise missing_param("'avatar_url' is required")
        value = v.string(body, "avatar_url", max_length=MAX_AVATAR_URL_LENGTH)
        await hs.profiles.set_avatar_url(requester.user_id, user_id, value)
        return Response.json({})

    for prefix in ("v3", "r0"):
        base = f"/_matrix/client/{prefix}/profile/{{userId}}"
        router.add("GET", base, get_profile)
        router.add("GET", f"{base}/displayname", get_displayname)
        router.add("PUT", f"{base}/displayname", set_displayname, max_body=v.SMALL_BODY)
        router.add("GET", f"{base}/avatar_url", get_avatar_url)
        router.add("PUT", f"{base}/avatar_url", set_avatar_url, max_body=v.SMALL_BODY)
