"""/sync with the other streams: account data, typing, receipts, presence, ignored users."""

from __future__ import annotations

from typing import Any

import httpx
import trio
from plait_fixtures import RegisterUser, RunningServer
from timeline_helpers import V3, bearer, bodies, invite, make_room, messages, send_ok, sync

ALICE = "@alice:test.example"
BOB = "@bob:test.example"


async def test_account_data_in_sync(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    token = alice["access_token"]
    room_id = await make_room(server.hs, ALICE)
    since = (await sync(client, token))["next_batch"]
    put = await client.put(
        f"{V3}/user/{ALICE}/account_data/org.example.settings", headers=bearer(token), json={"a": 1}
    )
    assert put.status_code == 200, put.text
    tagged = await client.put(
        f"{V3}/user/{ALICE}/rooms/{room_id}/tags/u.work", headers=bearer(token), json={"order": 0.5}
    )
    assert tagged.status_code == 200, tagged.text
    body = await sync(client, token, since=since, timeout=10_000)
    assert {"type": "org.example.settings", "content": {"a": 1}} in body["account_data"]["events"]
    room_data = body["rooms"]["join"][room_id]["account_data"]["events"]
    assert [e["type"] for e in room_data] == ["m.tag"]
    # Nothing new afterwards; an initial sync has everything.
    after = await sync(client, token, since=body["next_batch"])
    assert after["account_data"]["events"] == []
    initial = await sync(client, token)
    assert "org.example.settings" in {e["type"] for e in initial["account_data"]["events"]}


async def test_typing_wakes_a_waiting_sync(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    room_id = await make_room(server.hs, ALICE, joined=(BOB,))
    since = (await sync(client, bob["access_token"]))["next_batch"]
    result: dict[str, Any] = {}

    async def wait() -> None:
        result.update(await sync(client, bob["access_token"], since=since, timeout=30_000))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait)
        await trio.sleep(0.2)
        typing = await client.put(
            f"{V3}/rooms/{room_id}/typing/{ALICE}",
            headers=bearer(alice["access_token"]),
            json={"typing": True, "timeout": 20_000},
        )
        assert typing.status_code == 200, typing.text
    ephemeral = result["rooms"]["join"][room_id]["ephemeral"]["events"]
    assert {"type": "m.typing", "content": {"user_ids": [ALICE]}} in ephemeral


async def test_read_receipt_resets_unread_count(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    room_id = await make_room(server.hs, ALICE, joined=(BOB,))
    ids = [await send_ok(client, alice["access_token"], room_id, f"m{i}") for i in range(3)]
    room = (await sync(client, bob["access_token"]))["rooms"]["join"][room_id]
    assert room["unread_notifications"]["notification_count"] == 3
    receipt = await client.post(
        f"{V3}/rooms/{room_id}/receipt/m.read/{ids[1]}",
        headers=bearer(bob["access_token"]),
        json={},
    )
    assert receipt.status_code == 200, receipt.text
    body = await sync(client, bob["access_token"])
    room = body["rooms"]["join"][room_id]
    assert room["unread_notifications"]["notification_count"] == 1
    receipts = [e for e in room["ephemeral"]["events"] if e["type"] == "m.receipt"]
    assert receipts and ids[1] in receipts[0]["content"]


async def test_ignored_users_are_hidden(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    token = bob["access_token"]
    room_id = await make_room(server.hs, ALICE, joined=(BOB,))
    ignore = await client.put(
        f"{V3}/user/{BOB}/account_data/m.ignored_user_list",
        headers=bearer(token),
        json={"ignored_users": {ALICE: {}}},
    )
    assert ignore.status_code == 200, ignore.text
    await send_ok(client, alice["access_token"], room_id, "ignore me")
    await send_ok(client, token, room_id, "mine")
    timeline = (await sync(client, token))["rooms"]["join"][room_id]["timeline"]["events"]
    assert bodies(timeline) == ["mine"]
    # Alice's state events still count: the room's state must add up.
    chunk = (await messages(client, token, room_id, dir="b")).json()["chunk"]
    assert bodies(chunk) == ["mine"]
    assert any(e["type"] == "m.room.create" for e in chunk)
    # Invites from ignored users are not shown either.
    other = await make_room(server.hs, ALICE)
    await invite(server.hs, other, ALICE, BOB)
    assert other not in (await sync(client, token))["rooms"]["invite"]


async def test_set_presence_accepted(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    body = await sync(client, alice["access_token"], set_presence="unavailable")
    assert "events" in body["presence"]
