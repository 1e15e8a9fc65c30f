"""Parsed sync filters are kept (``SyncService.resolve_filter``) without mixing them up:
an inline filter by its text, a stored one by its owner and ID."""

from __future__ import annotations

import json

import httpx
from plait_fixtures import RegisterUser, RunningServer
from timeline_helpers import V3, bearer, make_room, send_ok, sync


async def test_kept_filters_stay_apart(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    room_id = await make_room(server.hs, alice["user_id"], joined=(bob["user_id"],))
    sent = [await send_ok(client, alice["access_token"], room_id, f"m{i}") for i in range(3)]

    def timeline(body: dict[str, object]) -> list[str]:
        rooms = body["rooms"]
        assert isinstance(rooms, dict)
        return [e["event_id"] for e in rooms["join"][room_id]["timeline"]["events"]]

    for limit in (1, 2, 1, 2):
        inline = json.dumps({"room": {"timeline": {"limit": limit}}})
        body = await sync(client, bob["access_token"], filter=inline)
        assert timeline(body) == sent[-limit:]

    response = await client.post(
        f"{V3}/user/{alice['user_id']}/filter",
        headers=bearer(alice["access_token"]),
        json={"room": {"timeline": {"limit": 1}}},
    )
    assert response.status_code == 200, response.text
    filter_id = response.json()["filter_id"]
    for _ in range(2):
        body = await sync(client, alice["access_token"], filter=filter_id)
        assert timeline(body) == sent[-1:]
    # Alice's filter ID is not Bob's, even once kept for her.
    response = await client.get(
        f"{V3}/sync", headers=bearer(bob["access_token"]), params={"filter": filter_id}
    )
    assert response.status_code == 404, response.text
    # Bob's own filter with the same ID-space: his own content.
    response = await client.post(
        f"{V3}/user/{bob['user_id']}/filter",
        headers=bearer(bob["access_token"]),
        json={"room": {"timeline": {"limit": 2}}},
    )
    bob_filter = response.json()["filter_id"]
    body = await sync(client, bob["access_token"], filter=bob_filter)
    assert timeline(body) == sent[-2:]
    # A malformed inline filter is refused every time (errors are not kept).
    for _ in range(2):
        response = await client.get(
            f"{V3}/sync", headers=bearer(bob["access_token"]), params={"filter": "{nope"}
        )
        assert response.status_code == 400, response.text
