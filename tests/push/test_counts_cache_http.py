"""Unread counts served from the in-memory cache stay exact: each test warms it with a
/sync, changes the underlying data over HTTP, and checks the very next /sync."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from plait_fixtures import RegisterUser, RunningServer
from room_http_helpers import V3, auth, create_room, join, send, sync

THREAD_FILTER = json.dumps({"room": {"timeline": {"unread_thread_notifications": True}}})


def n(count: int, highlight: int = 0) -> dict[str, int]:
    return {"notification_count": count, "highlight_count": highlight}


async def room_sync(
    server: RunningServer,
    client: httpx.AsyncClient,
    user: dict[str, Any],
    room_id: str,
    *,
    threads: bool = False,
) -> dict[str, Any]:
    params = {"timeout": "0"}
    if threads:
        params["filter"] = THREAD_FILTER
    r = await client.get(f"{V3}/sync", headers=auth(user), params=params)
    assert r.status_code == 200, r.text
    room: dict[str, Any] = r.json()["rooms"]["join"][room_id]
    return room


async def counts(
    server: RunningServer, client: httpx.AsyncClient, user: dict[str, Any], room_id: str
) -> dict[str, int]:
    room = await room_sync(server, client, user, room_id)
    found: dict[str, int] = room["unread_notifications"]
    return found


async def receipt(
    client: httpx.AsyncClient,
    user: dict[str, Any],
    room_id: str,
    event_id: str,
    receipt_type: str = "m.read",
    thread: str | None = None,
) -> None:
    body = {} if thread is None else {"thread_id": thread}
    r = await client.post(
        f"{V3}/rooms/{room_id}/receipt/{receipt_type}/{event_id}", headers=auth(user), json=body
    )
    assert r.status_code == 200, r.text


async def setup(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> tuple[dict[str, Any], dict[str, Any], str]:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    room_id = await create_room(client, alice, preset="public_chat")
    await join(client, bob, room_id)
    return alice, bob, room_id


async def test_new_messages_and_receipts_with_a_warm_cache(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice, bob, room_id = await setup(client, register_user)
    cache = server.hs.push.counts_cache
    await send(client, alice, room_id, "one")
    assert await counts(server, client, bob, room_id) == n(1)
    hits = cache.hits
    # New actions reach the cached entry; the next sync is answered from memory.
    await send(client, alice, room_id, "two")
    mention = await send(client, alice, room_id, "bob, look")
    assert await counts(server, client, bob, room_id) == n(3, 1)
    assert cache.hits > hits
    # An unthreaded receipt clears up to its event.
    await receipt(client, bob, room_id, mention)
    assert await counts(server, client, bob, room_id) == n(0)
    later = await send(client, alice, room_id, "three")
    await send(client, alice, room_id, "four")
    assert await counts(server, client, bob, room_id) == n(2)
    # A private receipt counts as much as a public one, here half-way.
    await receipt(client, bob, room_id, later, "m.read.private")
    assert await counts(server, client, bob, room_id) == n(1)
    # Alice's own counts never include her messages.
    assert await counts(server, client, alice, room_id) == n(0)


async def test_threaded_receipts_with_a_warm_cache(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice, bob, room_id = await setup(client, register_user)
    root = await send(client, alice, room_id, "root")
    in_thread = {"m.relates_to": {"rel_type": "m.thread", "event_id": root}}
    reply = await send(client, alice, room_id, "in the thread, bob", **in_thread)
    main = await send(client, alice, room_id, "main")
    split = await room_sync(server, client, bob, room_id, threads=True)
    assert split["unread_notifications"] == n(2)
    assert split["unread_thread_notifications"] == {root: n(1, 1)}
    # Warm: a new threaded message lands in the cached entry.
    reply2 = await send(client, alice, room_id, "more", **in_thread)
    split = await room_sync(server, client, bob, room_id, threads=True)
    assert split["unread_thread_notifications"] == {root: n(2, 1)}
    # A receipt in the thread clears only the thread, up to its event.
    await receipt(client, bob, room_id, reply, thread=root)
    split = await room_sync(server, client, bob, room_id, threads=True)
    assert split["unread_notifications"] == n(2)
    assert split["unread_thread_notifications"] == {root: n(1)}
    # A main-timeline receipt clears the main timeline only.
    await receipt(client, bob, room_id, main, thread="main")
    split = await room_sync(server, client, bob, room_id, threads=True)
    assert split["unread_notifications"] == n(0)
    assert split["unread_thread_notifications"] == {root: n(1)}
    assert await counts(server, client, bob, room_id) == n(1)
    # An unthreaded receipt reads every thread.
    await receipt(client, bob, room_id, reply2)
    split = await room_sync(server, client, bob, room_id, threads=True)
    assert split["unread_notifications"] == n(0)
    assert "unread_thread_notifications" not in split


async def test_own_messages_are_read_marks_with_a_warm_cache(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice, bob, room_id = await setup(client, register_user)
    root = await send(client, alice, room_id, "root")
    in_thread = {"m.relates_to": {"rel_type": "m.thread", "event_id": root}}
    await send(client, alice, room_id, "threaded", **in_thread)
    await send(client, alice, room_id, "main")
    assert await counts(server, client, bob, room_id) == n(3)
    # Bob's message in the main timeline reads the main timeline, not the thread.
    await send(client, bob, room_id, "hi")
    split = await room_sync(server, client, bob, room_id, threads=True)
    assert split["unread_notifications"] == n(0)
    assert split["unread_thread_notifications"] == {root: n(1)}
    await send(client, alice, room_id, "main again")
    assert await counts(server, client, bob, room_id) == n(2)
    await send(client, bob, room_id, "and again")
    assert await counts(server, client, bob, room_id) == n(1)
    # His reply in the thread reads the thread; only his latest own event is a mark,
    # so the main timeline falls back to his receipts (none): all three count again.
    await send(client, bob, room_id, "reply", **in_thread)
    split = await room_sync(server, client, bob, room_id, threads=True)
    assert split["unread_notifications"] == n(3)
    assert "unread_thread_notifications" not in split
    await send(client, alice, room_id, "main, once more")
    assert await counts(server, client, bob, room_id) == n(4)
    # Back in the main timeline: now the thread's mark is his receipts again (none).
    await send(client, bob, room_id, "back in main")
    split = await room_sync(server, client, bob, room_id, threads=True)
    assert split["unread_notifications"] == n(0)
    assert split["unread_thread_notifications"] == {root: n(1)}


async def test_redaction_with_a_warm_cache(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice, bob, room_id = await setup(client, register_user)
    await send(client, alice, room_id, "morning")
    mention = await send(client, alice, room_id, "hey bob, look")
    assert await counts(server, client, bob, room_id) == n(2, 1)
    await send(client, alice, room_id, "third")
    assert await counts(server, client, bob, room_id) == n(3, 1)
    r = await client.put(f"{V3}/rooms/{room_id}/redact/{mention}/r1", headers=auth(alice), json={})
    assert r.status_code == 200, r.text
    assert await counts(server, client, bob, room_id) == n(2)
    await send(client, alice, room_id, "fourth")
    assert await counts(server, client, bob, room_id) == n(3)


async def test_rule_changes_and_highlights_with_a_warm_cache(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice, bob, room_id = await setup(client, register_user)
    await send(client, alice, room_id, "hello")
    assert await counts(server, client, bob, room_id) == n(1)
    # A keyword rule that highlights: the next matching message highlights.
    r = await client.put(
        f"{V3}/pushrules/global/content/fruit",
        headers=auth(bob),
        json={"pattern": "pineapple", "actions": ["notify", {"set_tweak": "highlight"}]},
    )
    assert r.status_code == 200, r.text
    await send(client, alice, room_id, "pineapple pizza")
    assert await counts(server, client, bob, room_id) == n(2, 1)
    # Silencing the room: later messages do not count, earlier ones still do.
    r = await client.put(
        f"{V3}/pushrules/global/room/{room_id}", headers=auth(bob), json={"actions": []}
    )
    assert r.status_code == 200, r.text
    await send(client, alice, room_id, "quiet")
    assert await counts(server, client, bob, room_id) == n(2, 1)
    r = await client.delete(f"{V3}/pushrules/global/room/{room_id}", headers=auth(bob))
    assert r.status_code == 200, r.text
    await send(client, alice, room_id, "loud again")
    assert await counts(server, client, bob, room_id) == n(3, 1)
    # /notifications and its read flags agree with the counts.
    page = await client.get(f"{V3}/notifications", headers=auth(bob))
    bodies = [x["event"]["content"]["body"] for x in page.json()["notifications"]]
    assert bodies[:3] == ["loud again", "pineapple pizza", "hello"]


async def test_follower_takes_announced_events_from_memory(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice, bob, room_id = await setup(client, register_user)
    push = server.hs.push
    search = server.hs.search.indexer
    before = (push.batches_from_memory, search.batches_from_memory)
    for text in ("findable words", "more findable words"):
        await send(client, alice, room_id, text)
        assert await counts(server, client, bob, room_id) != n(0)
    assert await push.wait_for(server.hs.notifier.current_token().events)
    assert push.batches_from_memory > before[0]
    assert await search.wait_for(server.hs.notifier.current_token().events)
    assert search.batches_from_memory > before[1]
    r = await client.post(
        f"{V3}/search",
        headers=auth(bob),
        json={"search_categories": {"room_events": {"search_term": "findable"}}},
    )
    assert r.status_code == 200, r.text
    assert r.json()["search_categories"]["room_events"]["count"] == 2
    assert await counts(server, client, bob, room_id) == n(2)
    await sync(client, alice)


async def test_a_failed_write_of_counted_actions_is_not_counted_twice(
    server: RunningServer,
    client: httpx.AsyncClient,
    register_user: RegisterUser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The cache counts a batch before its write commits; when the write fails the
    batch is redone, and each message still counts once."""
    alice, bob, room_id = await setup(client, register_user)
    push = server.hs.push
    await send(client, alice, room_id, "one")
    assert await counts(server, client, bob, room_id) == n(1)
    write = push.write
    failures = []

    def failing(conn: Any, batch: Any, prepared: Any) -> None:
        if not failures:
            failures.append(batch)
            raise RuntimeError("the disk is full")
        write(conn, batch, prepared)

    monkeypatch.setattr(push, "write", failing)
    await send(client, alice, room_id, "two")
    assert await counts(server, client, bob, room_id) == n(2)
    # Waiting for the written position asks for the write: it fails once, then is redone.
    assert await push.wait_for(server.hs.notifier.current_token().events)
    assert failures
    assert await counts(server, client, bob, room_id) == n(2)
    await send(client, alice, room_id, "three")
    assert await counts(server, client, bob, room_id) == n(3)
    page = await client.get(f"{V3}/notifications", headers=auth(bob))
    bodies = [x["event"]["content"]["body"] for x in page.json()["notifications"]]
    assert bodies[:3] == ["three", "two", "one"]
