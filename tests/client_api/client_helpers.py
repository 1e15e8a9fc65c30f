"""Small helpers shared by the Client-Server API tests."""

from __future__ import annotations

from typing import Any

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


async def login(
    client: httpx.AsyncClient, user: str, password: str = "correct horse", **extra: Any
) -> httpx.Response:
    return await client.post(
        f"{V3}/login",
        json={
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user},
            "password": password,
            **extra,
        },
    )


async def whoami(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get(f"{V3}/account/whoami", headers=bearer(token))


def password_auth(
    user_id: str, session: str | None = None, password: str = "correct horse"
) -> dict[str, Any]:
    auth: dict[str, Any] = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user_id},
        "password": password,
    }
    if session is not None:
        auth["session"] = session
    return auth
