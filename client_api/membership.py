"""Membership endpoints: join, knock, leave, forget, invite, kick, ban, unban, member lists.

Spec: Client-Server API "Room membership" (``joining.yaml``, ``knocking.yaml``,
``leaving.yaml``, ``inviting.yaml``, ``kicking.yaml``, ``banning.yaml``) and
``rooms.yaml`` / ``list_joined_rooms.yaml`` for the lists. ``via`` and
``server_name`` are accepted and ignored: only local rooms can be joined until
federation exists.
"""

from __future__ import annotations

from typing import Any

from client_api import validation as v
from homeserver.accounts.auth import require_user
from homeserver.errors import MatrixError, invalid_param, not_found
from homeserver.homeserver import HomeServer
from homeserver.http.router import Router
from homeserver.http.types import Request, Response
from homeserver.rooms.common import MAX_REASON_LENGTH, check_room_id
from homeserver.rooms.membership import MEMBERSHIPS


def add_routes(router: Router, hs: HomeServer) -> None:
    def reason_of(body: dict[str, Any]) -> str | None:
        return v.string(body, "reason", max_length=MAX_REASON_LENGTH)

    def target_of(body: dict[str, Any]) -> str:
        user_id = v.string(body, "user_id", max_length=255, required=True)
        assert user_id is not None
        return user_id

    async def resolve(room_id_or_alias: str) -> str:
        if room_id_or_alias.startswith("#"):
            return await hs.directory.resolve_alias(room_id_or_alias)
        check_room_id(room_id_or_alias)
        return room_id_or_alias

    def remote_hint(request: Request, room_id: str) -> bool:
        """Whether the client points at another server (room ID domain, ``via``, ``server_name``)."""
        servers = request.query.get("via", []) + request.query.get("server_name", [])
        _, sep, domain = room_id.partition(":")
        return any(s != hs.server_name for s in servers) or bool(sep and domain != hs.server_name)

    async def join_by_id_or_alias(request: Request) -> Response:
        requester = await require_user(hs, request)
        reason = reason_of(request.json())
        room_id = await resolve(request.path_params["roomIdOrAlias"])
        try:
            await hs.membership.join(requester.user_id, room_id, reason)
        except MatrixError as exc:
            if exc.errcode == "M_NOT_FOUND" and remote_hint(request, room_id):
                raise not_found(
                    "Joining rooms on other servers needs federation (not supported yet)"
                ) from None
            raise
        return Response.json({"room_id": room_id})

    async def join(request: Request) -> Response:
        requester = await require_user(hs, request)
        reason = reason_of(request.json())
        room_id = request.path_params["roomId"]
        await hs.membership.join(requester.user_id, room_id, reason)
        return Response.json({"room_id": room_id})

    async def knock(request: Request) -> Response:
        requester = await require_user(hs, request)
        reason = reason_of(request.json())
        room_id = await resolve(request.path_params["roomIdOrAlias"])
        await hs.membership.knock(requester.user_id, room_id, reason)
        return Response.json({"room_id": room_id})

    async def leave(request: Request) -> Response:
        requester = await require_user(hs, request)
        reason = reason_of(request.json())
        await hs.membership.leave(requester.user_id, request.path_params["roomId"], reason)
        return Response.json({})

    async def forget(request: Request) -> Response:
        requester = await require_user(hs, request)
        request.json()
        await hs.membership.forget(requester.user_id, request.path_params["roomId"])
        return Response.json({})

    def targeted(action: str) -> Any:
        async def handler(request: Request) -> Response:
            requester = await require_user(hs, request)
            body = request.json()
            target, reason = target_of(body), reason_of(body)
            method = getattr(hs.membership, action)
            await method(requester.user_id, request.path_params["roomId"], target, reason)
            return Response.json({})

        return handler

    async def joined_rooms(request: Request) -> Response:
        requester = await require_user(hs, request)
        return Response.json({"joined_rooms": await hs.membership.joined_rooms(requester.user_id)})

    def membership_param(request: Request, name: str) -> str | None:
        value = request.query_one(name)
        if value is not None and value not in MEMBERSHIPS:
            raise invalid_param(f"'{name}' must be one of {', '.join(MEMBERSHIPS)}")
        return value

    async def members(request: Request) -> Response:
        requester = await require_user(hs, request)
        at = request.query_one("at")
        events = await hs.membership.members(
            requester.user_id,
            request.path_params["roomId"],
            at=at or None,
            membership=membership_param(request, "membership"),
            not_membership=membership_param(request, "not_membership"),
        )
        chunk = await hs.messages.client_events.serialize(events)
        return Response.json({"chunk": chunk})

    async def joined_members(request: Request) -> Response:
        requester = await require_user(hs, request)
        joined = await hs.membership.joined_members(
            requester.user_id, request.path_params["roomId"]
        )
        return Response.json({"joined": joined})

    for prefix in ("v3", "r0"):
        base = f"/_matrix/client/{prefix}"
        room = f"{base}/rooms/{{roomId}}"
        router.add("POST", f"{base}/join/{{roomIdOrAlias}}", join_by_id_or_alias)
        router.add("POST", f"{base}/knock/{{roomIdOrAlias}}", knock)
        router.add("POST", f"{room}/join", join)
        router.add("POST", f"{room}/leave", leave)
        router.add("POST", f"{room}/forget", forget)
        for action in ("invite", "kick", "ban", "unban"):
            router.add("POST", f"{room}/{action}", targeted(action))
        router.add("GET", f"{base}/joined_rooms", joined_rooms)
        router.add("GET", f"{room}/members", members)
        router.add("GET", f"{room}/joined_members", joined_members)
