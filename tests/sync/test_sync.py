"""GET /sync end to end: initial, incremental, waiting, joins and leaves, invites, filters."""

from __future__ import annotations

import json
from typing import Any

import httpx
import sqlalchemy as sa
import trio
from plait_fixtures import RegisterUser, RunningServer
from timeline_helpers import (
    V3,
    assert_error,
    bearer,
    bodies,
    invite,
    join,
    leave,
    make_room,
    messages,
    send_ok,
    sync,
)

from homeserver.storage.filters import user_filters

ALICE = "@alice:test.example"
BOB = "@bob:test.example"
CAROL = "@carol:test.example"
NIO_TOP_LEVEL = (
    "next_batch",
    "rooms",
    "presence",
    "account_data",
    "to_device",
    "device_one_time_keys_count",
)


def room_of(body: dict[str, Any], room_id: str, section: str = "join") -> dict[str, Any]:
    result: dict[str, Any] = body["rooms"][section][room_id]
    return result


async def test_initial_sync_joined_room(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    room_id = await make_room(server.hs, ALICE, joined=(BOB,), name="Room")
    for i in range(3):
        await send_ok(client, bob["access_token"], room_id, f"m{i}")
    body = await sync(client, alice["access_token"])
    for key in NIO_TOP_LEVEL:
        assert key in body
    assert "device_lists" not in body  # initial syncs have none
    room = room_of(body, room_id)
    timeline = room["timeline"]
    assert bodies(timeline["events"])[-3:] == ["m0", "m1", "m2"]
    assert isinstance(timeline["limited"], bool) and isinstance(timeline["prev_batch"], str)
    state_types = {e["type"] for e in room["state"]["events"]}
    timeline_ids = {e["event_id"] for e in timeline["events"]}
    assert not timeline_ids & {e["event_id"] for e in room["state"]["events"]}
    # State plus timeline describe the whole room.
    assert state_types | {e["type"] for e in timeline["events"]} >= {
        "m.room.create",
        "m.room.member",
        "m.room.power_levels",
        "m.room.join_rules",
        "m.room.name",
    }
    assert room["summary"] == {
        "m.heroes": [BOB],
        "m.joined_member_count": 2,
        "m.invited_member_count": 0,
    }
    assert room["unread_notifications"] == {"notification_count": 3, "highlight_count": 0}
    assert room["ephemeral"] == {"events": []} or "events" in room["ephemeral"]
    assert "events" in room["account_data"]
    # Read receipts reset the count: tests/sync/test_sync_sources.py.


async def test_limited_timeline_and_prev_batch(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    token = alice["access_token"]
    room_id = await make_room(server.hs, ALICE)
    for i in range(8):
        await send_ok(client, token, room_id, f"m{i}")
    body = await sync(client, token, filter={"room": {"timeline": {"limit": 3}}})
    timeline = room_of(body, room_id)["timeline"]
    assert bodies(timeline["events"]) == ["m5", "m6", "m7"]
    assert timeline["limited"] is True
    rest = await messages(
        client, token, room_id, dir="b", limit="5", **{"from": timeline["prev_batch"]}
    )
    assert bodies(rest.json()["chunk"]) == ["m4", "m3", "m2", "m1", "m0"]
    # Incremental sync with a gap: limited, and state events from the gap arrive in "state".
    since = body["next_batch"]
    await server.hs.events.create_and_persist_event(
        room_id, "m.room.topic", ALICE, {"topic": "new"}, ""
    )
    for i in range(5):
        await send_ok(client, token, room_id, f"n{i}")
    incremental = await sync(
        client, token, since=since, filter={"room": {"timeline": {"limit": 2}}}
    )
    room = room_of(incremental, room_id)
    assert room["timeline"]["limited"] is True
    assert bodies(room["timeline"]["events"]) == ["n3", "n4"]
    assert [e["type"] for e in room["state"]["events"]] == ["m.room.topic"]


async def test_incremental_sync_delivers_each_event_once(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    room_id = await make_room(server.hs, ALICE, joined=(BOB,))
    first = await sync(client, bob["access_token"])
    since = first["next_batch"]
    nothing = await sync(client, bob["access_token"], since=since)
    assert nothing["rooms"]["join"] == {}
    assert nothing["device_lists"] == {"changed": [], "left": []}
    await send_ok(client, alice["access_token"], room_id, "one")
    await send_ok(client, alice["access_token"], room_id, "two")
    body = await sync(client, bob["access_token"], since=nothing["next_batch"])
    room = room_of(body, room_id)
    assert bodies(room["timeline"]["events"]) == ["one", "two"]
    assert room["timeline"]["limited"] is False
    assert room["state"]["events"] == []
    after = await sync(client, bob["access_token"], since=body["next_batch"])
    assert after["rooms"]["join"] == {}


async def test_waiting_sync_wakes_on_new_event(
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
        # Let the sync register before sending; correctness does not depend on it.
        await trio.sleep(0.5)
        # Nothing new yet: the sync is still waiting (pitfall 8: never return at once).
        assert result == {}
        await send_ok(client, alice["access_token"], room_id, "wake up")
    room = room_of(result, room_id)
    assert bodies(room["timeline"]["events"]) == ["wake up"]
    # Counts are recomputed for the woken sync (pitfall 7).
    assert room["unread_notifications"]["notification_count"] == 1


async def test_sync_times_out_empty(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    bob = await register_user(client, "bob")
    since = (await sync(client, bob["access_token"]))["next_batch"]
    body = await sync(client, bob["access_token"], since=since, timeout=50)
    assert body["rooms"]["join"] == {} and body["next_batch"]


async def test_invite_join_and_leave(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    hs = server.hs
    room_id = await make_room(hs, ALICE, join_rule="invite", name="Secret")
    for i in range(4):
        await send_ok(client, alice["access_token"], room_id, f"early{i}")
    since = (await sync(client, bob["access_token"]))["next_batch"]
    await invite(hs, room_id, ALICE, BOB)
    invited = await sync(client, bob["access_token"], since=since)
    stripped = room_of(invited, room_id, "invite")["invite_state"]["events"]
    by_key = {(e["type"], e["state_key"]): e for e in stripped}
    assert by_key[("m.room.member", BOB)]["sender"] == ALICE  # who invited (pitfall 5)
    assert by_key[("m.room.member", ALICE)]["content"]["membership"] == "join"
    assert ("m.room.create", "") in by_key and ("m.room.name", "") in by_key
    assert all(set(e) >= {"type", "state_key", "sender", "content"} for e in stripped)
    # Initial sync shows the invite too.
    assert room_id in (await sync(client, bob["access_token"]))["rooms"]["invite"]

    await join(hs, room_id, BOB)
    joined = await sync(client, bob["access_token"], since=invited["next_batch"])
    room = room_of(joined, room_id)
    state_types = {e["type"] for e in room["state"]["events"]} | {
        e["type"] for e in room["timeline"]["events"]
    }
    # A newly joined room comes with its full state.
    assert {
        "m.room.create",
        "m.room.power_levels",
        "m.room.join_rules",
        "m.room.name",
    } <= state_types
    assert room_id not in joined["rooms"]["invite"]

    await send_ok(client, alice["access_token"], room_id, "bye soon")
    await leave(hs, room_id, BOB)
    await send_ok(client, alice["access_token"], room_id, "after bob left")
    left = await sync(client, bob["access_token"], since=joined["next_batch"])
    assert room_id not in left["rooms"]["join"]
    gone = room_of(left, room_id, "leave")
    assert bodies(gone["timeline"]["events"]) == ["bye soon"]
    assert gone["timeline"]["events"][-1]["content"]["membership"] == "leave"
    # Initial sync: left rooms only with include_leave.
    assert room_id not in (await sync(client, bob["access_token"]))["rooms"]["leave"]
    with_leave = await sync(client, bob["access_token"], filter={"room": {"include_leave": True}})
    assert room_id in with_leave["rooms"]["leave"]
    # A forgotten room is gone from the leave section too.
    forget = await client.post(
        f"/_matrix/client/v3/rooms/{room_id}/forget",
        json={},
        headers={"Authorization": f"Bearer {bob['access_token']}"},
    )
    assert forget.status_code == 200, forget.text
    with_leave = await sync(client, bob["access_token"], filter={"room": {"include_leave": True}})
    assert room_id not in with_leave["rooms"]["leave"]


async def test_lazy_loading_members(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    await register_user(client, "carol")
    room_id = await make_room(server.hs, ALICE, joined=(BOB, CAROL))
    for i in range(3):
        await send_ok(client, bob["access_token"], room_id, f"m{i}")
    lazy = {"room": {"state": {"lazy_load_members": True}, "timeline": {"limit": 2}}}
    body = await sync(client, alice["access_token"], filter=lazy)
    room = room_of(body, room_id)
    members = {e["state_key"] for e in room["state"]["events"] if e["type"] == "m.room.member"}
    # The senders and the syncing user's own member event (pitfall 4), plus the heroes.
    assert {ALICE, BOB} <= members
    assert "m.room.create" in {e["type"] for e in room["state"]["events"]}
    assert set(room["summary"]["m.heroes"]) == {BOB, CAROL}


async def test_filters_by_id_and_rooms_and_fields(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    token = alice["access_token"]
    one = await make_room(server.hs, ALICE)
    two = await make_room(server.hs, ALICE)
    await send_ok(client, token, one, "in one")
    created = await client.post(
        f"{V3}/user/{ALICE}/filter",
        headers=bearer(token),
        json={
            "room": {"not_rooms": [two], "timeline": {"types": ["m.room.message"]}},
            "event_fields": ["type", "content.body", "event_id"],
        },
    )
    assert created.status_code == 200, created.text
    filter_id = created.json()["filter_id"]
    fetched = await client.get(f"{V3}/user/{ALICE}/filter/{filter_id}", headers=bearer(token))
    assert fetched.json()["room"]["not_rooms"] == [two]
    body = await sync(client, token, filter=filter_id)
    assert set(body["rooms"]["join"]) == {one}
    events = room_of(body, one)["timeline"]["events"]
    assert events == [
        {"type": "m.room.message", "content": {"body": "in one"}, "event_id": events[0]["event_id"]}
    ]


async def test_filter_endpoint_refusals(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    token = alice["access_token"]
    url = f"{V3}/user/{ALICE}/filter"
    bad = await client.post(url, headers=bearer(token), json={"room": {"timeline": {"limit": "x"}}})
    assert_error(bad, 400, "M_BAD_JSON")
    assert_error(
        await client.post(url, headers=bearer(bob["access_token"]), json={}), 403, "M_FORBIDDEN"
    )
    assert_error(await client.post(url, headers=bearer(token), content=b"{x"), 400, "M_NOT_JSON")

    def count(conn: sa.Connection) -> int:
        return int(conn.execute(sa.select(sa.func.count()).select_from(user_filters)).scalar_one())

    assert await server.hs.database.read(count) == 0  # refusals store nothing
    created = await client.post(url, headers=bearer(token), json={})
    filter_id = created.json()["filter_id"]
    assert_error(await client.get(f"{url}/999999", headers=bearer(token)), 404, "M_NOT_FOUND")
    assert_error(await client.get(f"{url}/abc", headers=bearer(token)), 404, "M_NOT_FOUND")
    other = await client.get(
        f"{V3}/user/{BOB}/filter/{filter_id}", headers=bearer(bob["access_token"])
    )
    assert_error(other, 404, "M_NOT_FOUND")  # Bob cannot read Alice's filter by its ID
    assert_error(
        await client.get(f"{url}/{filter_id}", headers=bearer(bob["access_token"])),
        403,
        "M_FORBIDDEN",
    )


async def test_sync_refusals(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    headers = bearer(alice["access_token"])

    async def get(**params: str) -> httpx.Response:
        return await client.get(f"{V3}/sync", headers=headers, params=params)

    assert_error(await get(since="garbage"), 400, "M_INVALID_PARAM")
    assert_error(await get(timeout="soon"), 400, "M_INVALID_PARAM")
    assert_error(await get(full_state="maybe"), 400, "M_INVALID_PARAM")
    assert_error(await get(set_presence="dancing"), 400, "M_INVALID_PARAM")
    assert_error(await get(filter="{"), 400, "M_BAD_JSON")
    assert_error(
        await get(filter=json.dumps({"room": {"timeline": {"limit": "x"}}})), 400, "M_BAD_JSON"
    )
    assert_error(await get(filter="12345"), 404, "M_NOT_FOUND")
    assert (await client.get(f"{V3}/sync")).status_code == 401


async def test_full_state(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    token = alice["access_token"]
    room_id = await make_room(server.hs, ALICE, name="Full")
    first = await sync(client, token)
    body = await sync(client, token, since=first["next_batch"], full_state="true")
    room = room_of(body, room_id)
    assert "m.room.name" in {e["type"] for e in room["state"]["events"]} | {
        e["type"] for e in room["timeline"]["events"]
    }


async def test_federation_event_format(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    room_id = await make_room(server.hs, ALICE)
    await send_ok(client, alice["access_token"], room_id, "raw")
    body = await sync(client, alice["access_token"], filter={"event_format": "federation"})
    event = room_of(body, room_id)["timeline"]["events"][-1]
    # The PDU as stored: hashes, signatures and DAG edges, no client-only "unsigned".
    assert {"hashes", "signatures", "prev_events", "auth_events", "depth"} <= set(event)
    assert event["content"]["body"] == "raw"


async def test_lazy_limited_sync_sends_gap_members(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    await register_user(client, "bob")
    token = alice["access_token"]
    room_id = await make_room(server.hs, ALICE)
    lazy = {"room": {"state": {"lazy_load_members": True}, "timeline": {"limit": 2}}}
    since = (await sync(client, token, filter=lazy))["next_batch"]
    await join(server.hs, room_id, BOB)  # in the gap, and Bob sends nothing
    for i in range(4):
        await send_ok(client, token, room_id, f"g{i}")
    room = room_of(await sync(client, token, since=since, filter=lazy), room_id)
    assert room["timeline"]["limited"] is True
    members = {e["state_key"] for e in room["state"]["events"] if e["type"] == "m.room.member"}
    assert BOB in members
