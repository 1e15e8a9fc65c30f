"""Helpers for the room tests: users with tokens, and short calls to the room endpoints."""

from __future__ import annotations

from typing import Any

import attrs
import httpx

V3 = "/_matrix/client/v3"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_error(response: httpx.Response, status: int, errcode: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["errcode"] == errcode, body
    assert isinstance(body["error"], str)
    return body


@attrs.define
class User:
    """A registered user and a client speaking as them."""

    client: httpx.AsyncClient
    user_id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return await self.client.get(V3 + path, headers=self.headers, **kw)

    async def post(self, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        return await self.client.post(
            V3 + path, headers=self.headers, json={} if body is None else body, **kw
        )

    async def put(self, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        return await self.client.put(
            V3 + path, headers=self.headers, json={} if body is None else body, **kw
        )

    async def delete(self, path: str, **kw: Any) -> httpx.Response:
        return await self.client.delete(V3 + path, headers=self.headers, **kw)

    async def create_room(self, **body: Any) -> str:
        response = await self.post("/createRoom", body)
        assert response.status_code == 200, response.text
        room_id: str = response.json()["room_id"]
        return room_id

    async def join(self, room: str) -> httpx.Response:
        return await self.post(f"/join/{quote(room)}")

    async def state(self, room_id: str) -> dict[tuple[str, str], dict[str, Any]]:
        response = await self.get(f"/rooms/{quote(room_id)}/state")
        assert response.status_code == 200, response.text
        return {(e["type"], e["state_key"]): e for e in response.json()}

    async def membership(self, room_id: str, user_id: str) -> str | None:
        response = await self.get(f"/rooms/{quote(room_id)}/state/m.room.member/{quote(user_id)}")
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        value: str = response.json()["membership"]
        return value


def quote(value: str) -> str:
    from urllib.parse import quote as _quote

    return _quote(value, safe="")


async def make_user(client: httpx.AsyncClient, register_user: Any, name: str) -> User:
    result = await register_user(client, name)
    return User(client, result["user_id"], result["access_token"])
