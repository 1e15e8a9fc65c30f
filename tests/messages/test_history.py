"""/messages, /context, /event and /timestamp_to_event end to end, with history visibility."""

from __future__ import annotations

import json
from typing import Any

import httpx
from plait_fixtures import RegisterUser, RunningServer
from timeline_helpers import (
    V3,
    assert_error,
    bearer,
    bodies,
    join,
    leave,
    make_room,
    messages,
    send,
    send_ok,
)

ALICE = "@alice:test.example"
BOB = "@bob:test.example"


async def page_all(
    client: httpx.AsyncClient, token: str, room_id: str, direction: str, limit: int, **extra: str
) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    token_from: str | None = None
    for _ in range(200):
        params = {"dir": direction, "limit": str(limit), **extra}
        if token_from is not None:
            params["from"] = token_from
        response = await messages(client, token, room_id, **params)
        assert response.status_code == 200, response.text
        body = response.json()
        if token_from is not None:
            assert body["start"] == token_from  # matrix_brief 6 #10
        seen.extend(body["chunk"])
        if "end" not in body:
            return seen
        token_from = body["end"]
    raise AssertionError("pagination did not end")


async def test_paging_back_and_forth_returns_every_event_once(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    token = alice["access_token"]
    room_id = await make_room(server.hs, ALICE)
    sent = [await send_ok(client, token, room_id, f"m{i}") for i in range(23)]
    for limit in (1, 5, 7, 100):
        back = await page_all(client, token, room_id, "b", limit)
        ids = [e["event_id"] for e in back]
        assert len(ids) == len(set(ids))
        assert [i for i in ids if i in sent] == list(reversed(sent))
        assert back[-1]["type"] == "m.room.create"
        forward = await page_all(client, token, room_id, "f", limit)
        assert [e["event_id"] for e in forward] == list(reversed(ids))
    # Client event format.
    event = back[0]
    for key in ("event_id", "type", "content", "sender", "origin_server_ts", "room_id"):
        assert key in event
    assert isinstance(event["unsigned"]["age"], int)
    member = next(e for e in back if e["type"] == "m.room.member")
    assert member["state_key"] == ALICE
    power = next(e for e in back if e["type"] == "m.room.power_levels")
    assert "state_key" in power


async def test_messages_filters_and_lazy_members(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    room_id = await make_room(server.hs, ALICE, joined=(BOB,))
    await send_ok(client, alice["access_token"], room_id, "from alice")
    await send_ok(client, bob["access_token"], room_id, "from bob")
    await send(
        client,
        bob["access_token"],
        room_id,
        {"msgtype": "m.image", "body": "i", "url": "mxc://a/b"},
    )
    token = alice["access_token"]

    async def chunk(f: dict[str, Any]) -> list[dict[str, Any]]:
        response = await messages(client, token, room_id, dir="b", filter=json.dumps(f))
        assert response.status_code == 200, response.text
        result: list[dict[str, Any]] = response.json()["chunk"]
        return result

    assert {e["type"] for e in await chunk({"types": ["m.room.message"]})} == {"m.room.message"}
    assert all(e["sender"] == BOB for e in await chunk({"senders": [BOB]}))
    assert all(e["sender"] != BOB for e in await chunk({"not_senders": [BOB]}))
    assert all(
        not e["type"].startswith("m.room.m") for e in await chunk({"not_types": ["m.room.m*"]})
    )
    with_url = await chunk({"contains_url": True})
    assert [e["content"]["body"] for e in with_url] == ["i"]
    assert "i" not in bodies(await chunk({"contains_url": False}))
    response = await messages(
        client,
        token,
        room_id,
        dir="b",
        limit="2",
        filter=json.dumps({"lazy_load_members": True, "types": ["m.room.message"]}),
    )
    body = response.json()
    assert {e["state_key"] for e in body["state"]} == {BOB}
    assert all(e["type"] == "m.room.member" for e in body["state"])


async def test_messages_from_optional_and_to(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    token = alice["access_token"]
    room_id = await make_room(server.hs, ALICE)
    for i in range(6):
        await send_ok(client, token, room_id, f"m{i}")
    first = (await messages(client, token, room_id, dir="b", limit="2")).json()
    assert bodies(first["chunk"]) == ["m5", "m4"]
    assert "start" in first and "end" in first
    # Forward from the first page's end, stopping at its start: nothing in between.
    second = (
        await messages(client, token, room_id, dir="b", limit="2", **{"from": first["end"]})
    ).json()
    assert bodies(second["chunk"]) == ["m3", "m2"]
    back_up = await messages(
        client, token, room_id, dir="f", limit="10", **{"from": second["end"], "to": first["start"]}
    )
    assert bodies(back_up.json()["chunk"]) == ["m2", "m3", "m4", "m5"]


async def test_messages_refusals(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    token = alice["access_token"]
    room_id = await make_room(server.hs, ALICE)
    assert_error(await messages(client, token, "!nope:test.example", dir="b"), 404, "M_NOT_FOUND")
    assert_error(await messages(client, bob["access_token"], room_id, dir="b"), 403, "M_FORBIDDEN")
    assert_error(await messages(client, token, room_id), 400, "M_MISSING_PARAM")
    assert_error(await messages(client, token, room_id, dir="x"), 400, "M_INVALID_PARAM")
    assert_error(
        await messages(client, token, room_id, dir="b", limit="-1"), 400, "M_INVALID_PARAM"
    )
    # "²" passes str.isdigit() but int() refuses it: a 400, not a 500.
    assert_error(await messages(client, token, room_id, dir="b", limit="²"), 400, "M_INVALID_PARAM")
    bad_from = await messages(client, token, room_id, dir="b", **{"from": "garbage"})
    assert_error(bad_from, 400, "M_INVALID_PARAM")
    assert_error(await messages(client, token, room_id, dir="b", filter="{"), 400, "M_BAD_JSON")
    bad_filter = await messages(client, token, room_id, dir="b", filter='{"types": "x"}')
    assert_error(bad_filter, 400, "M_BAD_JSON")
    assert_error(await messages(client, token, "bad", dir="b"), 400, "M_INVALID_PARAM")


async def test_history_visibility_joined_and_shared(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    await register_user(client, "carol")
    hs = server.hs
    joined_room = await make_room(hs, ALICE, history_visibility="joined")
    shared_room = await make_room(hs, ALICE, history_visibility="shared")
    for room_id in (joined_room, shared_room):
        await send_ok(client, alice["access_token"], room_id, "before bob")
        await join(hs, room_id, BOB)
        await send_ok(client, alice["access_token"], room_id, "while bob")
        await leave(hs, room_id, BOB)
        await send_ok(client, alice["access_token"], room_id, "after bob")
    seen = {}
    for room_id in (joined_room, shared_room):
        response = await messages(client, bob["access_token"], room_id, dir="b", limit="50")
        assert response.status_code == 200, response.text
        seen[room_id] = bodies(response.json()["chunk"])
    assert seen[joined_room] == ["while bob"]
    assert seen[shared_room] == ["while bob", "before bob"]
    # /event follows the same rule.
    before_event = await messages(client, alice["access_token"], joined_room, dir="b", limit="50")
    hidden = next(
        e for e in before_event.json()["chunk"] if e.get("content", {}).get("body") == "before bob"
    )
    fetched = await client.get(
        f"{V3}/rooms/{joined_room}/event/{hidden['event_id']}", headers=bearer(bob["access_token"])
    )
    assert_error(fetched, 404, "M_NOT_FOUND")


async def test_world_readable_room_readable_by_anyone(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    carol = await register_user(client, "carol")
    room_id = await make_room(server.hs, ALICE, history_visibility="world_readable")
    await send_ok(client, alice["access_token"], room_id, "public words")
    response = await messages(client, carol["access_token"], room_id, dir="b")
    assert response.status_code == 200
    assert "public words" in bodies(response.json()["chunk"])


async def test_context_and_event(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    token = alice["access_token"]
    room_id = await make_room(server.hs, ALICE)
    ids = [await send_ok(client, token, room_id, f"m{i}") for i in range(9)]
    response = await client.get(
        f"{V3}/rooms/{room_id}/context/{ids[4]}", headers=bearer(token), params={"limit": "4"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["event"]["event_id"] == ids[4]
    assert [e["event_id"] for e in body["events_before"]] == [ids[3], ids[2]]
    assert [e["event_id"] for e in body["events_after"]] == [ids[5], ids[6]]
    assert {e["type"] for e in body["state"]} >= {"m.room.create", "m.room.member"}
    more_before = (
        await messages(client, token, room_id, dir="b", limit="2", **{"from": body["start"]})
    ).json()
    assert [e["event_id"] for e in more_before["chunk"]] == [ids[1], ids[0]]
    more_after = (
        await messages(client, token, room_id, dir="f", limit="5", **{"from": body["end"]})
    ).json()
    assert [e["event_id"] for e in more_after["chunk"]] == [ids[7], ids[8]]
    event = await client.get(f"{V3}/rooms/{room_id}/event/{ids[0]}", headers=bearer(token))
    assert event.status_code == 200 and event.json()["content"]["body"] == "m0"
    assert_error(
        await client.get(f"{V3}/rooms/{room_id}/event/$missing", headers=bearer(token)),
        404,
        "M_NOT_FOUND",
    )
    assert_error(
        await client.get(
            f"{V3}/rooms/{room_id}/event/{ids[0]}", headers=bearer(bob["access_token"])
        ),
        403,
        "M_FORBIDDEN",
    )
    assert_error(
        await client.get(f"{V3}/rooms/{room_id}/context/$missing", headers=bearer(token)),
        404,
        "M_NOT_FOUND",
    )
    assert_error(
        await client.get(f"{V3}/rooms/{room_id}/context/bad", headers=bearer(token)),
        400,
        "M_INVALID_PARAM",
    )


async def test_timestamp_to_event(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    token = alice["access_token"]
    room_id = await make_room(server.hs, ALICE)
    ids = [await send_ok(client, token, room_id, f"m{i}") for i in range(3)]
    fetched = [
        (await client.get(f"{V3}/rooms/{room_id}/event/{i}", headers=bearer(token))).json()
        for i in ids
    ]
    url = f"/_matrix/client/v1/rooms/{room_id}/timestamp_to_event"
    last_ts = fetched[-1]["origin_server_ts"]
    backwards = await client.get(
        url, headers=bearer(token), params={"ts": str(last_ts + 10_000), "dir": "b"}
    )
    assert backwards.status_code == 200, backwards.text
    assert backwards.json() == {"event_id": ids[-1], "origin_server_ts": last_ts}
    forwards = await client.get(url, headers=bearer(token), params={"ts": "0", "dir": "f"})
    assert forwards.json()["event_id"].startswith("$")
    none = await client.get(
        url, headers=bearer(token), params={"ts": str(last_ts + 10_000), "dir": "f"}
    )
    assert_error(none, 404, "M_NOT_FOUND")
    assert_error(
        await client.get(url, headers=bearer(token), params={"ts": "x", "dir": "f"}),
        400,
        "M_INVALID_PARAM",
    )
    assert_error(
        await client.get(url, headers=bearer(token), params={"ts": "1"}), 400, "M_INVALID_PARAM"
    )


async def test_unsigned_membership(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    room_id = await make_room(server.hs, ALICE, history_visibility="shared")
    await send_ok(client, alice["access_token"], room_id, "before")
    await join(server.hs, room_id, BOB)
    await send_ok(client, alice["access_token"], room_id, "after")
    chunk = (await messages(client, bob["access_token"], room_id, dir="b")).json()["chunk"]
    by_body = {e["content"].get("body"): e for e in chunk if e["type"] == "m.room.message"}
    assert by_body["after"]["unsigned"]["membership"] == "join"
    assert by_body["before"]["unsigned"]["membership"] == "leave"


async def test_paging_reads_cached_events_from_the_cache_and_the_rest_from_the_database(
    server: RunningServer,
    client: httpx.AsyncClient,
    register_user: RegisterUser,
    monkeypatch: Any,
) -> None:
    from homeserver.storage import events as events_module

    alice = await register_user(client, "alice")
    token = alice["access_token"]
    room_id = await make_room(server.hs, ALICE)
    sent = [await send_ok(client, token, room_id, f"m{i}") for i in range(12)]
    read: list[str] = []
    real_read_events = events_module.read_events

    def counting_read_events(conn: Any, event_ids: Any) -> Any:
        ids = list(event_ids)
        read.extend(ids)
        return real_read_events(conn, ids)

    monkeypatch.setattr(events_module, "read_events", counting_read_events)
    hot = [e["event_id"] for e in await page_all(client, token, room_id, "b", 5)]
    assert [i for i in hot if i in sent] == list(reversed(sent))
    assert not set(sent) & set(read)  # just sent: every one came from the cache
    # Evicted, they are read from the database, and the pages are the same.
    store = server.hs.event_store
    for event_id in sent:
        store.invalidate_event(event_id)
    cold = [e["event_id"] for e in await page_all(client, token, room_id, "b", 5)]
    assert cold == hot
    assert set(sent) <= set(read)
