"""Idle subscriptions cost nothing between heartbeats: no database reads, no re-syncs.

Many sockets are held against the test server; while nothing happens, neither
the database nor the sync service is called for them, and a message wakes only
the sockets of the users it concerns.
"""

from __future__ import annotations

import contextlib
from typing import Any

import httpx
import pytest
import trio
from plait_fixtures import RegisterUser, RunningServer
from plait_ws_client import (
    WAIT,
    WsClient,
    connect,
    http_send,
    make_room,
    messages_only,
    room_timeline,
)
from test_ws_liveness import RawClient

from homeserver.ws import membership_changed

SOCKETS = 200
RECEIVER_SOCKETS = 10
IDLE_WINDOW_S = 2.0
# Background services (presence timeouts every 5 s, ...) may read now and then;
# work per idle socket would be hundreds of calls.
BACKGROUND_CALLS = 5


class DatabaseCalls:
    """Counts every call into the database gateway (each is a worker-thread transaction)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, server: RunningServer) -> None:
        self.count = 0
        database = server.hs.database
        in_thread = database._in_thread
        run_sync = database.run_sync

        async def counted_in_thread(*args: Any) -> Any:
            self.count += 1
            return await in_thread(*args)

        async def counted_run_sync(*args: Any) -> Any:
            self.count += 1
            return await run_sync(*args)

        monkeypatch.setattr(database, "_in_thread", counted_in_thread)
        monkeypatch.setattr(database, "run_sync", counted_run_sync)


async def wait_until_waiting(server: RunningServer, count: int) -> None:
    streams = server.hs.ws_streams
    with trio.fail_after(WAIT * 3):
        while streams.stats.waiting < count:
            await streams.wait_changed()


async def test_idle_sockets_cost_no_database_calls_and_wake_only_when_concerned(
    server: RunningServer,
    client: httpx.AsyncClient,
    register_user: RegisterUser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sender = await register_user(client, "sender")
    receiver = await register_user(client, "receiver")
    others = [await register_user(client, f"other{i}") for i in range(3)]
    room_id = await make_room(client, sender, receiver)
    for other in others:  # rooms of their own: news for the receiver is not news for them
        await make_room(client, other)
    owners = [receiver] * RECEIVER_SOCKETS + [
        others[i % len(others)] for i in range(SOCKETS - RECEIVER_SOCKETS)
    ]
    async with contextlib.AsyncExitStack() as stack:
        sockets: list[WsClient] = []
        for owner in owners:
            ws = await stack.enter_async_context(connect(server, owner["access_token"]))
            await ws.ok("subscribe", since=None)
            sockets.append(ws)
        await wait_until_waiting(server, SOCKETS)
        for ws in sockets:  # every socket got its initial sync
            await ws.next_sync()
        assert server.hs.websockets.statistics().open_connections == SOCKETS

        stats = server.hs.ws_streams.stats
        calls = DatabaseCalls(monkeypatch, server)
        syncs = stats.syncs
        await trio.sleep(IDLE_WINDOW_S)
        assert stats.syncs == syncs
        assert stats.waiting == SOCKETS
        assert calls.count <= BACKGROUND_CALLS

        # A message wakes the receiver's sockets (and not the 190 others).
        await http_send(client, sender, room_id, "t1", "hello")
        for ws in sockets[:RECEIVER_SOCKETS]:
            events: list[dict[str, Any]] = []
            while not messages_only(events):
                events += room_timeline(await ws.next_sync(), room_id)
            assert messages_only(events)[0]["content"]["body"] == "hello"
        await wait_until_waiting(server, SOCKETS)
        woken = stats.syncs - syncs
        assert RECEIVER_SOCKETS <= woken <= 3 * RECEIVER_SOCKETS
        for ws in sockets[RECEIVER_SOCKETS:]:
            assert not ws.pending


async def test_a_room_joined_while_subscribed_is_streamed(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    async with connect(server, bob["access_token"]) as ws:
        await ws.ok("subscribe", since=None)
        await ws.next_sync()
        await wait_until_waiting(server, 1)
        # Joined after subscribing: the stream must start listening to the new room.
        room_id = await make_room(client, alice, bob)
        await wait_until_waiting(server, 1)
        await http_send(client, alice, room_id, "t1", "after the join")
        events: list[dict[str, Any]] = []
        with trio.fail_after(WAIT):
            while not messages_only(events):
                events += room_timeline(await ws.next_sync(), room_id)
        assert messages_only(events)[0]["content"]["body"] == "after the join"


def test_membership_changed() -> None:
    rooms = frozenset({"!a:x", "!b:x"})
    assert not membership_changed({"next_batch": "s1"}, rooms)
    assert not membership_changed({"rooms": {"join": {"!a:x": {}}}}, rooms)
    assert membership_changed({"rooms": {"join": {"!c:x": {}}}}, rooms)
    assert membership_changed({"rooms": {"leave": {"!b:x": {}}}}, rooms)
    assert not membership_changed({"rooms": {"leave": {"!c:x": {}}, "invite": {"!d:x": {}}}}, rooms)


@pytest.mark.server_config(websocket={"heartbeat_interval_s": 0.05, "heartbeat_timeout_s": 0.2})
async def test_a_subscribed_peer_that_never_pongs_is_closed_with_4009(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    # Once subscribed, the heartbeat runs inside the stream's wait (no task of its own).
    alice = await register_user(client, "alice")
    silent = await RawClient.open(server, receive_buffer=65536)
    await silent.send_json({"type": "auth", "access_token": alice["access_token"]})
    await silent.send_json({"type": "subscribe", "since": None})
    assert await silent.read_until_close() == 4009
    await silent.stream.aclose()
    assert server.hs.ws_streams.stats.syncs >= 1
