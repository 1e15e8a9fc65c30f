"""Sync reads only up to the position the notifier announced: the "persisted up to" watermark.

An event that is committed but whose notification has not run yet (the
window in which a concurrent transaction could still hold a lower position)
must not be handed out, and ``next_batch`` must not jump over it; once it is
announced, the next sync delivers it. Also: rooms of every supported version.
"""

from __future__ import annotations

import httpx
import pytest
from plait_fixtures import RegisterUser, RunningServer
from timeline_helpers import bodies, make_room, messages, send_ok, sync

from homeserver.storage.events import StoredEvent

ALICE = "@alice:test.example"


async def test_unannounced_event_is_not_skipped(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    token = alice["access_token"]
    hs = server.hs
    room_id = await make_room(hs, ALICE)
    since = (await sync(client, token))["next_batch"]
    held: list[StoredEvent] = []
    hooks = hs.events._hooks
    hs.events._hooks = [held.append]
    try:
        await hs.events.create_and_persist_event(
            room_id, "m.room.message", ALICE, {"msgtype": "m.text", "body": "late"}
        )
    finally:
        hs.events._hooks = hooks
    early = await sync(client, token, since=since)
    assert early["rooms"]["join"] == {}
    assert early["next_batch"] == since  # not past the unannounced position
    for hook in hooks:
        hook(held[0])
    later = await sync(client, token, since=early["next_batch"])
    assert bodies(later["rooms"]["join"][room_id]["timeline"]["events"]) == ["late"]


@pytest.mark.parametrize("version", ["10", "11", "12"])
async def test_send_sync_and_history_in_each_room_version(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser, version: str
) -> None:
    alice = await register_user(client, "alice")
    token = alice["access_token"]
    room_id = await make_room(server.hs, ALICE, version=version)
    since = (await sync(client, token))["next_batch"]
    await send_ok(client, token, room_id, f"v{version}")
    body = await sync(client, token, since=since)
    assert bodies(body["rooms"]["join"][room_id]["timeline"]["events"]) == [f"v{version}"]
    chunk = (await messages(client, token, room_id, dir="b")).json()["chunk"]
    assert bodies(chunk) == [f"v{version}"]
    assert chunk[-1]["type"] == "m.room.create"
