"""Slow consumers, missed heartbeats and expiring tokens (spec/websocket.md "Close codes")."""

from __future__ import annotations

import json
import socket
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import trio
from plait_fixtures import RegisterUser, RunningServer
from plait_ws_client import (
    WAIT,
    close_code,
    connect,
    http_send,
    make_room,
    messages_only,
    room_timeline,
)
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Message, Ping, Request

from client_api.websocket import WS_PATH


class RawClient:
    """A WebSocket client that reads only when told to (a stalled consumer)."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.events: list[Any] = []

    @classmethod
    async def open(cls, server: RunningServer, receive_buffer: int = 4096) -> RawClient:
        url = urlsplit(server.base_url)
        sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # A small receive window, so the server's writes block soon.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        await sock.connect((url.hostname, url.port))
        client = cls(trio.SocketStream(sock))
        await client.write(Request(host=f"{url.hostname}:{url.port}", target=WS_PATH))
        while not any(isinstance(e, AcceptConnection) for e in client.events):
            await client.read_some()
        return client

    async def write(self, event: Any) -> None:
        await self.stream.send_all(self.ws.send(event))

    async def send_json(self, frame: dict[str, Any]) -> None:
        await self.write(Message(data=json.dumps(frame)))

    async def read_some(self) -> None:
        data = await self.stream.receive_some(65536)
        self.ws.receive_data(data or None)
        self.events += list(self.ws.events())

    async def read_until_close(self, answer_pings: bool = False) -> int:
        """Read (ignoring pings unless asked) until the close frame; its code."""
        with trio.fail_after(WAIT):
            while True:
                for event in self.events:
                    if isinstance(event, CloseConnection):
                        return event.code
                    if isinstance(event, Ping) and answer_pings:
                        await self.write(event.response())
                self.events.clear()
                await self.read_some()


async def wait_for_close_code(server: RunningServer, code: int) -> None:
    hub = server.hs.websockets
    with trio.fail_after(WAIT * 3):
        while code not in hub.statistics().closes:
            await hub.wait_changed()


@pytest.mark.server_config(
    websocket={"queue_frames": 4, "queue_bytes": 128 * 1024, "send_timeout_s": 60.0}
)
async def test_a_stalled_consumer_is_closed_with_4008_and_buffers_stay_bounded(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    room_id = await make_room(client, alice, bob)
    stalled = await RawClient.open(server)
    await stalled.send_json({"type": "auth", "access_token": bob["access_token"]})
    await stalled.send_json({"type": "subscribe", "since": None})
    hub = server.hs.websockets

    async def flood() -> None:
        # Big messages until the server gives up on bob (well beyond socket buffers).
        for i in range(2000):
            await http_send(client, alice, room_id, f"big{i}", f"{i} " + "x" * 40_000)
            if 4008 in hub.statistics().closes:
                return

    async with trio.open_nursery() as nursery:
        nursery.start_soon(flood)
        await wait_for_close_code(server, 4008)
    stats = hub.statistics()
    assert stats.peak_queued_frames <= 4
    assert stats.peak_queued_bytes <= 128 * 1024
    # Once it reads again, the consumer finds the documented close code after its data.
    assert await stalled.read_until_close() == 4008
    await stalled.stream.aclose()
    # Everyone else is still served.
    async with connect(server, alice["access_token"]) as ws:
        await ws.ok("subscribe", since=None)
        await ws.next_sync()


# The timeout leaves a loaded CI machine room to answer (0.2 s once closed a
# live client there); the live client below stays past several timeouts.
@pytest.mark.server_config(websocket={"heartbeat_interval_s": 0.05, "heartbeat_timeout_s": 0.5})
async def test_a_peer_that_never_pongs_is_closed_with_4009(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    silent = await RawClient.open(server, receive_buffer=65536)
    await silent.send_json({"type": "auth", "access_token": alice["access_token"]})
    assert await silent.read_until_close() == 4009
    await silent.stream.aclose()
    # trio-websocket answers pings by itself: a live client stays connected across beats.
    async with connect(server, alice["access_token"]) as ws:
        for _ in range(6):
            await trio.sleep(0.25)
            assert (await ws.command("ping"))["type"] == "pong"


@pytest.mark.server_config(
    auth={"access_token_lifetime_s": 60},
    websocket={"heartbeat_interval_s": 0.05, "token_grace_s": 300.0},
)
async def test_in_band_refresh_keeps_the_stream(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob", refresh_token=True)
    room_id = await make_room(client, alice, bob)
    async with connect(server, bob["access_token"]) as ws:
        await ws.ok("subscribe", since=None)
        await ws.next_sync()
        first = await http_send(client, alice, room_id, "m1", "before expiry")
        assert [e["event_id"] for e in messages_only(await ws.timeline_until(room_id, 1))] == [
            first
        ]
        server.hs.clock.advance(61)
        expired = await ws.expect(lambda f: f["type"] == "error")
        assert expired["errcode"] == "M_UNKNOWN_TOKEN"
        assert expired["soft_logout"] is True
        refused = await ws.command("typing", room_id=room_id, typing=False)
        assert refused["errcode"] == "M_UNKNOWN_TOKEN"
        tokens = await ws.ok("refresh", refresh_token=bob["refresh_token"])
        assert tokens["access_token"] != bob["access_token"]
        assert tokens["refresh_token"] != bob["refresh_token"]
        assert tokens["expires_in_ms"] == 60_000
        # Same socket, same stream: the next message arrives without a resubscribe.
        second = await http_send(client, alice, room_id, "m2", "after refresh")
        events = messages_only(await ws.timeline_until(room_id, 1))
        assert [e["event_id"] for e in events] == [second]
        assert await ws.ok("typing", room_id=room_id, typing=False) == {}
        # Reusing the old refresh token revokes the session (spec): the socket ends.
        reused = await ws.command("refresh", refresh_token=bob["refresh_token"])
        assert reused["errcode"] == "M_UNKNOWN_TOKEN"
        assert await close_code(ws.ws) == 4003


@pytest.mark.server_config(
    auth={"access_token_lifetime_s": 60},
    websocket={"heartbeat_interval_s": 0.05, "token_grace_s": 0.2},
)
async def test_no_refresh_within_the_grace_window_closes_with_4003(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    bob = await register_user(client, "bob", refresh_token=True)
    async with connect(server, bob["access_token"]) as ws:
        server.hs.clock.advance(61)
        expired = await ws.expect(lambda f: f["type"] == "error")
        assert expired["soft_logout"] is True
        assert await close_code(ws.ws) == 4003


async def test_initial_sync_frame_is_a_sync_body(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    room_id = await make_room(client, alice)
    async with connect(server, alice["access_token"]) as ws:
        await ws.ok("subscribe", since=None, full_state=True, set_presence="online")
        body = await ws.next_sync()
        assert body["next_batch"].startswith("s")
        assert room_timeline(body, room_id)
        assert (await ws.command("subscribe", since=None))["errcode"] == "M_INVALID_PARAM"
