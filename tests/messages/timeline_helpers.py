"""Rooms and requests for the timeline and sync tests.

Rooms are built directly with the event-creation pipeline (``hs.events``), so
these tests do not depend on the room-management endpoints.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import trio

from homeserver.homeserver import HomeServer

V3 = "/_matrix/client/v3"
_txn = itertools.count()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_error(response: httpx.Response, status: int, errcode: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["errcode"] == errcode, body
    return body


async def make_room(
    hs: HomeServer,
    creator: str,
    *,
    joined: tuple[str, ...] = (),
    invited: tuple[str, ...] = (),
    join_rule: str = "public",
    history_visibility: str | None = None,
    version: str = "10",
    name: str | None = None,
) -> str:
    """A room with ``creator`` joined at power 100, then ``joined`` members and ``invited`` users."""
    create = await hs.events.create_room(creator, version)
    room_id = create.room_id
    await hs.events.create_and_persist_event(
        room_id, "m.room.member", creator, {"membership": "join"}, creator
    )
    # v12: creators are infinitely powerful and may not be listed in "users".
    users = {} if version == "12" else {creator: 100}
    await hs.events.create_and_persist_event(
        room_id, "m.room.power_levels", creator, {"users": users}, ""
    )
    await hs.events.create_and_persist_event(
        room_id, "m.room.join_rules", creator, {"join_rule": join_rule}, ""
    )
    if history_visibility is not None:
        await hs.events.create_and_persist_event(
            room_id,
            "m.room.history_visibility",
            creator,
            {"history_visibility": history_visibility},
            "",
        )
    if name is not None:
        await hs.events.create_and_persist_event(
            room_id, "m.room.name", creator, {"name": name}, ""
        )
    for user in joined:
        await join(hs, room_id, user, inviter=creator if join_rule != "public" else None)
    for user in invited:
        await invite(hs, room_id, creator, user)
    return room_id


async def invite(hs: HomeServer, room_id: str, inviter: str, user: str) -> None:
    await hs.events.create_and_persist_event(
        room_id, "m.room.member", inviter, {"membership": "invite"}, user
    )


async def join(hs: HomeServer, room_id: str, user: str, *, inviter: str | None = None) -> str:
    if inviter is not None:
        await invite(hs, room_id, inviter, user)
    event = await hs.events.create_and_persist_event(
        room_id, "m.room.member", user, {"membership": "join"}, user
    )
    return event.event_id


async def leave(hs: HomeServer, room_id: str, user: str) -> str:
    event = await hs.events.create_and_persist_event(
        room_id, "m.room.member", user, {"membership": "leave"}, user
    )
    return event.event_id


async def send(
    client: httpx.AsyncClient,
    token: str,
    room_id: str,
    body: str | dict[str, Any] = "hello",
    *,
    txn_id: str | None = None,
    event_type: str = "m.room.message",
) -> httpx.Response:
    content = {"msgtype": "m.text", "body": body} if isinstance(body, str) else body
    txn = txn_id if txn_id is not None else f"t{next(_txn)}"
    return await client.put(
        f"{V3}/rooms/{room_id}/send/{event_type}/{txn}", headers=bearer(token), json=content
    )


async def send_ok(client: httpx.AsyncClient, token: str, room_id: str, body: str = "hello") -> str:
    response = await send(client, token, room_id, body)
    assert response.status_code == 200, response.text
    event_id: str = response.json()["event_id"]
    return event_id


async def sync(
    client: httpx.AsyncClient,
    token: str,
    *,
    since: str | None = None,
    timeout: int = 0,
    filter: dict[str, Any] | str | None = None,
    **params: str,
) -> dict[str, Any]:
    query: dict[str, str] = {"timeout": str(timeout), **params}
    if since is not None:
        query["since"] = since
    if filter is not None:
        query["filter"] = filter if isinstance(filter, str) else json.dumps(filter)
    response = await client.get(f"{V3}/sync", headers=bearer(token), params=query, timeout=90)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def messages(
    client: httpx.AsyncClient, token: str, room_id: str, **params: str
) -> httpx.Response:
    return await client.get(f"{V3}/rooms/{room_id}/messages", headers=bearer(token), params=params)


def bodies(events: list[dict[str, Any]]) -> list[str]:
    return [e["content"]["body"] for e in events if e["type"] == "m.room.message"]


async def held_sync(
    client: httpx.AsyncClient,
    user: dict[str, Any],
    since: str,
    change: Callable[[], Awaitable[object]],
) -> dict[str, Any]:
    """A long-poll already waiting when ``change`` happens; its answer."""
    result: dict[str, Any] = {}

    async def hold() -> None:
        result["body"] = await sync(client, user["access_token"], since=since, timeout=20_000)

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(hold)
            await trio.sleep(0.3)  # the sync is waiting
            await change()
    body: dict[str, Any] = result["body"]
    return body
