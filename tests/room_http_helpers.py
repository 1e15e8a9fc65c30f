"""Rooms, messages and requests over HTTP, shared by the push and search tests."""

from __future__ import annotations

import itertools
from typing import Any

import httpx

V3 = "/_matrix/client/v3"
_txn = itertools.count()


def auth(user: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {user['access_token']}"}


def assert_error(response: httpx.Response, status: int, errcode: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["errcode"] == errcode, body
    return body


async def create_room(client: httpx.AsyncClient, user: dict[str, Any], **body: Any) -> str:
    response = await client.post(f"{V3}/createRoom", headers=auth(user), json=body)
    assert response.status_code == 200, response.text
    room_id: str = response.json()["room_id"]
    return room_id


async def join(client: httpx.AsyncClient, user: dict[str, Any], room_id: str) -> None:
    response = await client.post(f"{V3}/join/{room_id}", headers=auth(user), json={})
    assert response.status_code == 200, response.text


async def send(
    client: httpx.AsyncClient,
    user: dict[str, Any],
    room_id: str,
    body: str = "hello",
    *,
    type_: str = "m.room.message",
    **content: Any,
) -> str:
    payload = {"msgtype": "m.text", "body": body, **content}
    response = await client.put(
        f"{V3}/rooms/{room_id}/send/{type_}/t{next(_txn)}", headers=auth(user), json=payload
    )
    assert response.status_code == 200, response.text
    event_id: str = response.json()["event_id"]
    return event_id


async def sync(client: httpx.AsyncClient, user: dict[str, Any]) -> dict[str, Any]:
    response = await client.get(f"{V3}/sync", headers=auth(user), params={"timeout": "0"})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
