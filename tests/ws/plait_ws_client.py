"""A small client of the WebSocket sync transport for tests (spec/websocket.md).

Frames that a test is not waiting for yet are kept in order, so a test can wait
for an ack while sync frames arrive, and read the sync frames afterwards.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import trio
import trio_websocket
from plait_fixtures import RunningServer

from client_api.websocket import WS_PATH

Frame = dict[str, Any]
WAIT = 20  # seconds any single wait in a test may take before it fails


def ws_url(server: RunningServer) -> str:
    return server.base_url.replace("http://", "ws://", 1) + WS_PATH


class WsClient:
    def __init__(self, ws: trio_websocket.WebSocketConnection) -> None:
        self.ws = ws
        self.pending: list[Frame] = []
        self.next_batch: str | None = None
        self._ids = 0

    async def send(self, frame: Frame) -> None:
        await self.ws.send_message(json.dumps(frame))

    async def _receive(self) -> Frame:
        frame: Frame = json.loads(await self.ws.get_message())
        return frame

    async def expect(self, match: Callable[[Frame], bool]) -> Frame:
        """The first frame (already received or not) that ``match`` accepts."""
        for i, frame in enumerate(self.pending):
            if match(frame):
                return self.pending.pop(i)
        with trio.fail_after(WAIT):
            while True:
                frame = await self._receive()
                if match(frame):
                    return frame
                self.pending.append(frame)

    async def command(self, kind: str, **fields: Any) -> Frame:
        """Send a command and return its ack or error frame."""
        self._ids += 1
        frame_id = f"c{self._ids}"
        await self.send({"type": kind, "id": frame_id, **fields})
        return await self.expect(
            lambda f: f.get("id") == frame_id and f["type"] in ("ack", "error", "pong")
        )

    async def ok(self, kind: str, **fields: Any) -> dict[str, Any]:
        reply = await self.command(kind, **fields)
        assert reply["type"] == "ack", reply
        result: dict[str, Any] = reply["result"]
        return result

    async def next_sync(self) -> dict[str, Any]:
        frame = await self.expect(lambda f: f["type"] == "sync")
        body: dict[str, Any] = frame["body"]
        self.next_batch = body["next_batch"]
        return body

    async def timeline_until(self, room_id: str, count: int) -> list[Frame]:
        """Timeline events of ``room_id`` from successive sync frames until ``count`` arrived."""
        events: list[Frame] = []
        while len(events) < count:
            body = await self.next_sync()
            events += room_timeline(body, room_id)
        return events


def room_timeline(body: dict[str, Any], room_id: str) -> list[Frame]:
    room = body.get("rooms", {}).get("join", {}).get(room_id, {})
    events: list[Frame] = room.get("timeline", {}).get("events", [])
    return events


def messages_only(events: list[Frame]) -> list[Frame]:
    return [e for e in events if e["type"] == "m.room.message"]


@asynccontextmanager
async def connect(
    server: RunningServer, access_token: str | None = None
) -> AsyncIterator[WsClient]:
    """A connection, authenticated first when ``access_token`` is given."""
    async with trio_websocket.open_websocket_url(ws_url(server)) as ws:
        client = WsClient(ws)
        if access_token is not None:
            await client.send({"type": "auth", "access_token": access_token})
            ok = await client.expect(lambda f: True)
            assert ok["type"] == "auth_ok", ok
        yield client


async def close_code(ws: trio_websocket.WebSocketConnection) -> int | None:
    """Read until the server closes; the close code it sent."""
    with trio.fail_after(WAIT):
        try:
            while True:
                await ws.get_message()
        except trio_websocket.ConnectionClosed as closed:
            return closed.reason.code


async def make_room(
    client: httpx.AsyncClient, creator: dict[str, Any], *members: dict[str, Any]
) -> str:
    response = await client.post(
        "/_matrix/client/v3/createRoom",
        json={"preset": "private_chat", "invite": [m["user_id"] for m in members]},
        headers=auth(creator),
    )
    assert response.status_code == 200, response.text
    room_id: str = response.json()["room_id"]
    for member in members:
        joined = await client.post(f"/_matrix/client/v3/rooms/{room_id}/join", headers=auth(member))
        assert joined.status_code == 200, joined.text
    return room_id


def auth(user: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {user['access_token']}"}


async def http_send(
    client: httpx.AsyncClient, user: dict[str, Any], room_id: str, txn_id: str, body: str
) -> str:
    response = await client.put(
        f"/_matrix/client/v3/rooms/{room_id}/send/m.room.message/{txn_id}",
        json={"msgtype": "m.text", "body": body},
        headers=auth(user),
    )
    assert response.status_code == 200, response.text
    event_id: str = response.json()["event_id"]
    return event_id
