"""Helpers for the typing, receipts and presence tests: users, rooms, requests.

Rooms are built directly through ``hs.events`` (creator join, power levels,
public join rule, then other joins), so these tests do not depend on
``/createRoom``.
"""

from __future__ import annotations

from typing import Any

import attrs
import httpx

from homeserver.homeserver import HomeServer

V3 = "/_matrix/client/v3"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_error(response: httpx.Response, status: int, errcode: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["errcode"] == errcode, body
    assert isinstance(body["error"], str)
    return body


@attrs.frozen
class User:
    user_id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)


async def make_user(client: httpx.AsyncClient, register_user: Any, name: str) -> User:
    body = await register_user(client, name)
    return User(body["user_id"], body["access_token"])


async def make_room(hs: HomeServer, creator: str, *members: str) -> str:
    """A public room with ``creator`` and ``members`` joined; returns its ID."""
    create = await hs.events.create_room(creator, "10")
    room_id = create.room_id
    await hs.events.create_and_persist_event(
        room_id, "m.room.member", creator, {"membership": "join"}, creator
    )
    await hs.events.create_and_persist_event(
        room_id, "m.room.power_levels", creator, {"users": {creator: 100}}, ""
    )
    await hs.events.create_and_persist_event(
        room_id, "m.room.join_rules", creator, {"join_rule": "public"}, ""
    )
    for member in members:
        await join(hs, room_id, member)
    return room_id


async def join(hs: HomeServer, room_id: str, user_id: str) -> None:
    await hs.events.create_and_persist_event(
        room_id, "m.room.member", user_id, {"membership": "join"}, user_id
    )


async def leave(hs: HomeServer, room_id: str, user_id: str) -> None:
    await hs.events.create_and_persist_event(
        room_id, "m.room.member", user_id, {"membership": "leave"}, user_id
    )


async def send_message(
    hs: HomeServer, room_id: str, sender: str, body: str = "hi", **content: Any
) -> str:
    event = await hs.events.create_and_persist_event(
        room_id, "m.room.message", sender, {"msgtype": "m.text", "body": body, **content}
    )
    return event.event_id
