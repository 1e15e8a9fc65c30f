"""Discovery endpoints: /versions, /.well-known/matrix/client, /capabilities."""

from __future__ import annotations

import httpx
from plait_fixtures import RegisterUser, RunningServer


async def test_versions_lists_v1_1_to_v1_11(client: httpx.AsyncClient) -> None:
    response = await client.get("/_matrix/client/versions")
    assert response.status_code == 200
    body = response.json()
    assert body["versions"] == [f"v1.{i}" for i in range(1, 12)]
    assert body["unstable_features"] == {}
    assert response.headers["content-type"] == "application/json"


async def test_well_known_points_at_base_url(
    client: httpx.AsyncClient, server: RunningServer
) -> None:
    response = await client.get("/.well-known/matrix/client")
    assert response.status_code == 200
    assert response.json() == {"m.homeserver": {"base_url": server.config.base_url}}


async def test_capabilities_needs_a_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/_matrix/client/v3/capabilities")
    assert response.status_code == 401
    assert response.json()["errcode"] == "M_MISSING_TOKEN"


async def test_capabilities(client: httpx.AsyncClient, register_user: RegisterUser) -> None:
    alice = await register_user(client, "alice")
    response = await client.get(
        "/_matrix/client/v3/capabilities",
        headers={"Authorization": f"Bearer {alice['access_token']}"},
    )
    assert response.status_code == 200
    caps = response.json()["capabilities"]
    assert caps["m.room_versions"]["default"] == "10"
    assert caps["m.room_versions"]["available"] == {"10": "stable", "11": "stable", "12": "stable"}
    assert caps["m.change_password"] == {"enabled": True}
    assert caps["m.set_displayname"] == {"enabled": True}
    assert caps["m.set_avatar_url"] == {"enabled": True}
    assert caps["m.3pid_changes"] == {"enabled": False}
