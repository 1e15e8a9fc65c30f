"""Stream followers group their writes; a reader that needs the written results gets them."""

from __future__ import annotations

import httpx
import pytest
from plait_fixtures import RegisterUser, RunningServer
from room_http_helpers import V3, auth, create_room, join, send, sync


async def test_counts_before_the_write_and_readers_that_need_it(
    server: RunningServer,
    client: httpx.AsyncClient,
    register_user: RegisterUser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    room_id = await create_room(client, alice, preset="public_chat")
    await join(client, bob, room_id)
    hs = server.hs
    assert await hs.push.wait_for(hs.notifier.current_token().events)
    assert await hs.search.indexer.wait_for(hs.notifier.current_token().events)
    await sync(client, bob)  # Bob's counts are in memory
    # Writes would otherwise wait for a long time.
    monkeypatch.setattr(hs.push, "write_interval", 3600.0)
    monkeypatch.setattr(hs.search.indexer, "write_interval", 3600.0)
    written = hs.push.position
    first = await send(client, alice, room_id, "first lighthouse")
    second = await send(client, alice, room_id, "second lighthouse")
    # /sync counts what was evaluated, though nothing was written yet.
    body = await sync(client, bob)
    assert body["rooms"]["join"][room_id]["unread_notifications"]["notification_count"] == 2
    assert await hs.push.wait_for_evaluated(hs.notifier.current_token().events)
    assert hs.push.position == written
    # /notifications needs the written actions: it asks for the write, and both
    # batches go in it.
    page = await client.get(f"{V3}/notifications", headers=auth(bob))
    assert [n["event"]["event_id"] for n in page.json()["notifications"]][:2] == [second, first]
    assert hs.push.position >= hs.notifier.current_token().events
    # So does a search.
    r = await client.post(
        f"{V3}/search",
        headers=auth(bob),
        json={"search_categories": {"room_events": {"search_term": "lighthouse"}}},
    )
    assert r.status_code == 200, r.text
    assert r.json()["search_categories"]["room_events"]["count"] == 2
