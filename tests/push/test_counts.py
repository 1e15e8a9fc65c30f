"""Notification counts in /sync and GET /notifications, over HTTP on both databases."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import trio
from plait_fixtures import RegisterUser, RunningServer
from room_http_helpers import V3, assert_error, auth, create_room, join, send, sync


def counts(body: dict[str, Any], room_id: str) -> dict[str, int]:
    room: dict[str, Any] = body["rooms"]["join"][room_id]
    result: dict[str, int] = room["unread_notifications"]
    return result


async def receipt(
    client: httpx.AsyncClient,
    user: dict[str, Any],
    room_id: str,
    event_id: str,
    receipt_type: str = "m.read",
) -> None:
    response = await client.post(
        f"{V3}/rooms/{room_id}/receipt/{receipt_type}/{event_id}", headers=auth(user), json={}
    )
    assert response.status_code == 200, response.text


async def test_counts_highlights_and_receipts(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    carol = await register_user(client, "carol")
    room_id = await create_room(client, alice, preset="public_chat")
    await join(client, bob, room_id)
    await join(client, carol, room_id)
    await send(client, alice, room_id, "hello everyone")
    await send(client, alice, room_id, "ping", **{"m.mentions": {"user_ids": [bob["user_id"]]}})
    await send(client, alice, room_id, "hey bob, look")  # legacy: contains bob's name
    await send(client, alice, room_id, "a notice", msgtype="m.notice")
    last = await send(client, alice, room_id, "all", **{"m.mentions": {"room": True}})
    # Alice is the room's creator (power 100): her room mention highlights.
    assert counts(await sync(client, bob), room_id) == {
        "notification_count": 4,
        "highlight_count": 3,
    }
    assert counts(await sync(client, carol), room_id) == {
        "notification_count": 4,
        "highlight_count": 1,
    }
    # The sender's own messages never count.
    assert counts(await sync(client, alice), room_id) == {
        "notification_count": 0,
        "highlight_count": 0,
    }
    # A read receipt clears counts up to it; a private one counts too.
    await receipt(client, bob, room_id, last)
    assert counts(await sync(client, bob), room_id) == {
        "notification_count": 0,
        "highlight_count": 0,
    }
    after = await send(client, alice, room_id, "one more")
    assert counts(await sync(client, bob), room_id)["notification_count"] == 1
    await receipt(client, bob, room_id, after, "m.read.private")
    assert counts(await sync(client, bob), room_id)["notification_count"] == 0
    # Bob silences the room with a room rule; Carol keeps counting.
    r = await client.put(
        f"{V3}/pushrules/global/room/{room_id}", headers=auth(bob), json={"actions": []}
    )
    assert r.status_code == 200
    await send(client, alice, room_id, "quiet")
    assert counts(await sync(client, bob), room_id)["notification_count"] == 0
    assert counts(await sync(client, carol), room_id)["notification_count"] == 6
    # Replying marks the room read for the replier.
    await send(client, carol, room_id, "I am here")
    assert counts(await sync(client, carol), room_id)["notification_count"] == 0


async def test_display_name_highlight_and_notifications_endpoint(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    r = await client.put(
        f"{V3}/profile/{bob['user_id']}/displayname",
        headers=auth(bob),
        json={"displayname": "Captain Robert"},
    )
    assert r.status_code == 200
    room_id = await create_room(client, alice, preset="public_chat")
    await join(client, bob, room_id)
    first = await send(client, alice, room_id, "morning")
    named = await send(client, alice, room_id, "captain robert, are you there?")
    third = await send(client, alice, room_id, "bye")
    assert counts(await sync(client, bob), room_id) == {
        "notification_count": 3,
        "highlight_count": 1,
    }
    await receipt(client, bob, room_id, first)
    page = await client.get(f"{V3}/notifications", headers=auth(bob), params={"limit": "2"})
    assert page.status_code == 200, page.text
    body = page.json()
    assert [n["event"]["event_id"] for n in body["notifications"]] == [third, named]
    assert [n["read"] for n in body["notifications"]] == [False, False]
    assert all(n["room_id"] == room_id and isinstance(n["ts"], int) for n in body["notifications"])
    assert {"set_tweak": "highlight"} in body["notifications"][1]["actions"]
    rest = await client.get(
        f"{V3}/notifications", headers=auth(bob), params={"from": body["next_token"]}
    )
    rest_body = rest.json()
    assert [n["event"]["event_id"] for n in rest_body["notifications"]] == [first]
    assert rest_body["notifications"][0]["read"] is True
    assert "next_token" not in rest_body
    only = await client.get(f"{V3}/notifications", headers=auth(bob), params={"only": "highlight"})
    assert [n["event"]["event_id"] for n in only.json()["notifications"]] == [named]
    # Nothing for Alice (she sent everything).
    mine = await client.get(f"{V3}/notifications", headers=auth(alice))
    assert mine.json() == {"notifications": []}
    for params in ({"from": "abc"}, {"limit": "-1"}, {"only": "everything"}):
        assert_error(
            await client.get(f"{V3}/notifications", headers=auth(bob), params=params),
            400,
            "M_INVALID_PARAM",
        )
    assert_error(await client.get(f"{V3}/notifications"), 401, "M_MISSING_TOKEN")


async def test_invite_notifies_invitee(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    room_id = await create_room(client, alice, invite=[bob["user_id"]])
    await server.hs.push.wait_for(server.hs.notifier.current_token().events)
    page = await client.get(f"{V3}/notifications", headers=auth(bob))
    events = [n["event"] for n in page.json()["notifications"]]
    assert [(e["type"], e["state_key"], e["room_id"]) for e in events] == [
        ("m.room.member", bob["user_id"], room_id)
    ]


async def test_redacted_event_stops_counting(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    room_id = await create_room(client, alice, preset="public_chat")
    await join(client, bob, room_id)
    plain = await send(client, alice, room_id, "morning")
    mention = await send(client, alice, room_id, "hey bob, look")
    assert counts(await sync(client, bob), room_id) == {
        "notification_count": 2,
        "highlight_count": 1,
    }
    r = await client.put(f"{V3}/rooms/{room_id}/redact/{mention}/x1", headers=auth(alice), json={})
    assert r.status_code == 200, r.text
    # The redaction itself never notifies; its target no longer counts.
    assert counts(await sync(client, bob), room_id) == {
        "notification_count": 1,
        "highlight_count": 0,
    }
    page = await client.get(f"{V3}/notifications", headers=auth(bob))
    assert [n["event"]["event_id"] for n in page.json()["notifications"]] == [plain]


async def test_counts_use_the_state_at_the_event(
    server: RunningServer,
    client: httpx.AsyncClient,
    register_user: RegisterUser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Bob is renamed after a message naming him, before the processor reaches it:
    the message is judged by the name he had when it was sent."""
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    room_id = await create_room(client, alice, preset="public_chat")
    await join(client, bob, room_id)
    await set_displayname(client, bob, "Captain Robert")
    hs = server.hs
    assert await hs.push.wait_for(hs.notifier.current_token().events)
    gate = trio.Event()
    step = hs.push.step

    async def gated() -> bool:
        await gate.wait()
        return await step()

    monkeypatch.setattr(hs.push, "step", gated)
    await send(client, alice, room_id, "captain robert, are you there?")
    await set_displayname(client, bob, "Major Tom")
    await send(client, alice, room_id, "major tom?")
    gate.set()
    assert await hs.push.wait_for(hs.notifier.current_token().events)
    page = await client.get(f"{V3}/notifications", headers=auth(bob))
    bodies = [
        (n["event"]["content"].get("body"), {"set_tweak": "highlight"} in n["actions"])
        for n in page.json()["notifications"]
        if n["event"]["type"] == "m.room.message"
    ]
    assert bodies == [("major tom?", True), ("captain robert, are you there?", True)]


async def set_displayname(client: httpx.AsyncClient, user: dict[str, Any], name: str) -> None:
    r = await client.put(
        f"{V3}/profile/{user['user_id']}/displayname",
        headers=auth(user),
        json={"displayname": name},
    )
    assert r.status_code == 200, r.text


THREAD_FILTER = json.dumps({"room": {"timeline": {"unread_thread_notifications": True}}})


async def thread_sync(client: httpx.AsyncClient, user: dict[str, Any]) -> dict[str, Any]:
    r = await client.get(
        f"{V3}/sync", headers=auth(user), params={"timeout": "0", "filter": THREAD_FILTER}
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def threaded_receipt(
    client: httpx.AsyncClient, user: dict[str, Any], room_id: str, event_id: str, thread: str
) -> httpx.Response:
    return await client.post(
        f"{V3}/rooms/{room_id}/receipt/m.read/{event_id}",
        headers=auth(user),
        json={"thread_id": thread},
    )


async def test_thread_counts_and_threaded_receipts(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    room_id = await create_room(client, alice, preset="public_chat")
    await join(client, bob, room_id)
    root = await send(client, alice, room_id, "root")
    in_thread = {"m.relates_to": {"rel_type": "m.thread", "event_id": root}}
    reply = await send(client, alice, room_id, "in the thread, bob", **in_thread)
    main = await send(client, alice, room_id, "main again")

    def room_of(body: dict[str, Any]) -> dict[str, Any]:
        found: dict[str, Any] = body["rooms"]["join"][room_id]
        return found

    def n(count: int, highlight: int = 0) -> dict[str, int]:
        return {"notification_count": count, "highlight_count": highlight}

    # Without the filter switch: every thread counts in the room, no per-thread map.
    plain = room_of(await sync(client, bob))
    assert plain["unread_notifications"] == n(3, 1)
    assert "unread_thread_notifications" not in plain
    # With it: the main timeline in unread_notifications, each thread by its root.
    split = room_of(await thread_sync(client, bob))
    assert split["unread_notifications"] == n(2)
    assert split["unread_thread_notifications"] == {root: n(1, 1)}
    # A receipt in the thread clears only the thread.
    r = await threaded_receipt(client, bob, room_id, reply, root)
    assert r.status_code == 200, r.text
    split = room_of(await thread_sync(client, bob))
    assert split["unread_notifications"] == n(2)
    assert "unread_thread_notifications" not in split
    assert room_of(await sync(client, bob))["unread_notifications"] == n(2)
    # A main-timeline receipt clears the main timeline only.
    reply2 = await send(client, alice, room_id, "more", **in_thread)
    r = await threaded_receipt(client, bob, room_id, main, "main")
    assert r.status_code == 200, r.text
    split = room_of(await thread_sync(client, bob))
    assert split["unread_notifications"] == n(0)
    assert split["unread_thread_notifications"] == {root: n(1)}
    page = await client.get(f"{V3}/notifications", headers=auth(bob))
    read = {x["event"]["event_id"]: x["read"] for x in page.json()["notifications"]}
    assert read == {root: True, reply: True, main: True, reply2: False}
    # A receipt naming the wrong thread is refused.
    assert_error(
        await threaded_receipt(client, bob, room_id, reply2, "main"), 400, "M_INVALID_PARAM"
    )
    # An unthreaded receipt reads every thread up to its event.
    await receipt(client, bob, room_id, reply2)
    split = room_of(await thread_sync(client, bob))
    assert split["unread_notifications"] == n(0)
    assert "unread_thread_notifications" not in split


async def test_a_rule_change_reaches_the_next_evaluation(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    """The processor caches each user's rules; disabling ``.m.rule.message`` (then
    enabling it again) is seen by the very next message."""
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    carol = await register_user(client, "carol")
    room_id = await create_room(client, alice, preset="public_chat")
    await join(client, bob, room_id)
    await join(client, carol, room_id)
    await send(client, alice, room_id, "one")
    assert counts(await sync(client, bob), room_id)["notification_count"] == 1
    rule = f"{V3}/pushrules/global/underride/.m.rule.message/enabled"
    r = await client.put(rule, headers=auth(bob), json={"enabled": False})
    assert r.status_code == 200, r.text
    await send(client, alice, room_id, "two")
    assert counts(await sync(client, bob), room_id)["notification_count"] == 1
    assert counts(await sync(client, carol), room_id)["notification_count"] == 2
    r = await client.put(rule, headers=auth(bob), json={"enabled": True})
    assert r.status_code == 200, r.text
    await send(client, alice, room_id, "three")
    assert counts(await sync(client, bob), room_id)["notification_count"] == 2
