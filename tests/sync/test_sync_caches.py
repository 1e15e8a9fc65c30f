"""The woken-sync caches (``homeserver/sync/caches.py``) never hide a change.

Each test first warms the caches with a sync, then changes something the
caches hold (members, state, a redaction, the ignore list) and checks that
the next sync sees it; and that receivers woken by one event each get it
exactly once. Over SQLite and PostgreSQL (the ``server`` fixture).
"""

from __future__ import annotations

from typing import Any

import httpx
import trio
from plait_fixtures import RegisterUser, RunningServer
from timeline_helpers import V3, bearer, join, leave, make_room, send_ok, sync


def _timeline(body: dict[str, Any], room_id: str) -> list[dict[str, Any]]:
    room = body["rooms"]["join"].get(room_id)
    return [] if room is None else list(room["timeline"]["events"])


def _ids(events: list[dict[str, Any]]) -> list[str]:
    return [e["event_id"] for e in events]


async def test_receivers_woken_by_one_event_each_get_it_once(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    receivers = [await register_user(client, f"recv{i}") for i in range(4)]
    room_id = await make_room(
        server.hs, alice["user_id"], joined=tuple(r["user_id"] for r in receivers)
    )
    starts = [(await sync(client, r["access_token"]))["next_batch"] for r in receivers]
    got: list[list[str]] = [[] for _ in receivers]
    tokens: list[str] = list(starts)

    async def hold(index: int, want: int) -> None:
        while len([e for e in got[index] if e]) < want:
            body = await sync(
                client, receivers[index]["access_token"], since=tokens[index], timeout=20_000
            )
            got[index].extend(_ids(_timeline(body, room_id)))
            tokens[index] = body["next_batch"]

    sent: list[str] = []
    with trio.fail_after(60):
        for round_ in range(3):
            async with trio.open_nursery() as nursery:
                for i in range(len(receivers)):
                    nursery.start_soon(hold, i, len(sent) + 1)
                await trio.sleep(0.2)  # the receivers are waiting
                sent.append(await send_ok(client, alice["access_token"], room_id, f"m{round_}"))
    for i, receiver in enumerate(receivers):
        assert got[i] == sent
        # Nothing comes again.
        body = await sync(client, receiver["access_token"], since=tokens[i])
        assert _timeline(body, room_id) == []


async def test_membership_changes_reach_the_summary_after_a_cached_sync(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    carol = await register_user(client, "carol")
    room_id = await make_room(server.hs, alice["user_id"], joined=(bob["user_id"],))
    first = await sync(client, bob["access_token"])
    assert first["rooms"]["join"][room_id]["summary"]["m.joined_member_count"] == 2
    await send_ok(client, alice["access_token"], room_id, "warm")
    warm = await sync(client, bob["access_token"], since=first["next_batch"])
    assert warm["rooms"]["join"][room_id]["summary"]["m.joined_member_count"] == 2

    await join(server.hs, room_id, carol["user_id"])
    after_join = await sync(client, bob["access_token"], since=warm["next_batch"])
    section = after_join["rooms"]["join"][room_id]
    assert section["summary"]["m.joined_member_count"] == 3
    assert carol["user_id"] in section["summary"]["m.heroes"]
    assert [e["state_key"] for e in section["timeline"]["events"]] == [carol["user_id"]]

    await leave(server.hs, room_id, carol["user_id"])
    after_leave = await sync(client, bob["access_token"], since=after_join["next_batch"])
    section = after_leave["rooms"]["join"][room_id]
    assert section["summary"]["m.joined_member_count"] == 2
    assert carol["user_id"] not in section["summary"]["m.heroes"]

    # Bob leaves: the room moves to his leave section, and a new room shows up.
    await leave(server.hs, room_id, bob["user_id"])
    other = await make_room(server.hs, alice["user_id"], joined=(bob["user_id"],))
    moved = await sync(client, bob["access_token"], since=after_leave["next_batch"])
    assert room_id in moved["rooms"]["leave"]
    assert room_id not in moved["rooms"]["join"]
    assert other in moved["rooms"]["join"]


async def test_state_change_after_a_cached_sync(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    room_id = await make_room(server.hs, alice["user_id"], joined=(bob["user_id"],), name="old")
    first = await sync(client, bob["access_token"])
    await send_ok(client, alice["access_token"], room_id, "warm")
    warm = await sync(client, bob["access_token"], since=first["next_batch"])
    await server.hs.events.create_and_persist_event(
        room_id, "m.room.name", alice["user_id"], {"name": "new"}, ""
    )
    body = await sync(client, bob["access_token"], since=warm["next_batch"])
    events = _timeline(body, room_id)
    assert [(e["type"], e["content"]) for e in events] == [("m.room.name", {"name": "new"})]
    assert events[0]["unsigned"]["prev_content"] == {"name": "old"}
    # A full sync after it sees the new state too.
    full = await sync(client, bob["access_token"], full_state="true", since=warm["next_batch"])
    state = full["rooms"]["join"][room_id]["state"]["events"]
    timeline = full["rooms"]["join"][room_id]["timeline"]["events"]
    names = [e["content"] for e in state + timeline if e["type"] == "m.room.name"]
    assert names[-1] == {"name": "new"}


async def test_redaction_after_a_cached_sync(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    room_id = await make_room(server.hs, alice["user_id"], joined=(bob["user_id"],))
    first = await sync(client, bob["access_token"])
    target = await send_ok(client, alice["access_token"], room_id, "secret")
    warm = await sync(client, bob["access_token"], since=first["next_batch"])
    assert _ids(_timeline(warm, room_id)) == [target]
    response = await client.put(
        f"{V3}/rooms/{room_id}/redact/{target}/r1",
        headers=bearer(alice["access_token"]),
        json={"reason": "oops"},
    )
    assert response.status_code == 200, response.text
    redaction = response.json()["event_id"]
    body = await sync(client, bob["access_token"], since=warm["next_batch"])
    assert _ids(_timeline(body, room_id)) == [redaction]
    # The cached original is served redacted from now on.
    again = await sync(client, bob["access_token"], since=first["next_batch"])
    events = {e["event_id"]: e for e in _timeline(again, room_id)}
    assert events[target]["content"] == {}
    assert events[target]["unsigned"]["redacted_because"]["event_id"] == redaction


async def test_ignore_list_change_after_a_cached_sync(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    room_id = await make_room(server.hs, alice["user_id"], joined=(bob["user_id"],))
    first = await sync(client, bob["access_token"])
    await send_ok(client, alice["access_token"], room_id, "before")
    warm = await sync(client, bob["access_token"], since=first["next_batch"])
    assert [e["content"]["body"] for e in _timeline(warm, room_id)] == ["before"]
    response = await client.put(
        f"{V3}/user/{bob['user_id']}/account_data/m.ignored_user_list",
        headers=bearer(bob["access_token"]),
        json={"ignored_users": {alice["user_id"]: {}}},
    )
    assert response.status_code == 200, response.text
    await send_ok(client, alice["access_token"], room_id, "after")
    body = await sync(client, bob["access_token"], since=warm["next_batch"])
    assert _timeline(body, room_id) == []
    types = [e["type"] for e in body["account_data"]["events"]]
    assert "m.ignored_user_list" in types


async def test_a_gap_longer_than_the_kept_events_is_limited(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    room_id = await make_room(server.hs, alice["user_id"], joined=(bob["user_id"],))
    first = await sync(client, bob["access_token"])
    sent = [await send_ok(client, alice["access_token"], room_id, f"m{i}") for i in range(60)]
    # Default limit: the newest ten, limited.
    body = await sync(client, bob["access_token"], since=first["next_batch"])
    section = body["rooms"]["join"][room_id]
    assert _ids(section["timeline"]["events"]) == sent[-10:]
    assert section["timeline"]["limited"] is True
    # A bigger limit than the cache keeps per room still gets everything.
    wide = {"room": {"timeline": {"limit": 100}}}
    body = await sync(client, bob["access_token"], since=first["next_batch"], filter=wide)
    section = body["rooms"]["join"][room_id]
    assert _ids(section["timeline"]["events"]) == sent
    assert section["timeline"]["limited"] is False


async def test_device_lists_name_a_new_member_after_a_cached_sync(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    carol = await register_user(client, "carol")
    room_id = await make_room(server.hs, alice["user_id"], joined=(bob["user_id"],))
    first = await sync(client, bob["access_token"])
    await send_ok(client, alice["access_token"], room_id, "warm")
    warm = await sync(client, bob["access_token"], since=first["next_batch"])
    assert warm["device_lists"]["changed"] == []
    await send_ok(client, alice["access_token"], room_id, "quiet")
    quiet = await sync(client, bob["access_token"], since=warm["next_batch"])
    assert quiet["device_lists"] == {"changed": [], "left": []}
    await join(server.hs, room_id, carol["user_id"])
    body = await sync(client, bob["access_token"], since=quiet["next_batch"])
    assert carol["user_id"] in body["device_lists"]["changed"]
    await leave(server.hs, room_id, carol["user_id"])
    body = await sync(client, bob["access_token"], since=body["next_batch"])
    assert carol["user_id"] in body["device_lists"]["left"]
