"""Commands over the WebSocket: the same services, errors and idempotency as HTTP."""

from __future__ import annotations

import json

import httpx
import pytest
import trio
import trio_websocket
from plait_fixtures import RegisterUser, RunningServer
from plait_ws_client import (
    WAIT,
    auth,
    close_code,
    connect,
    http_send,
    make_room,
    room_timeline,
)

from homeserver.accounts.auth import Requester


async def test_send_is_idempotent_across_ws_and_http(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    room_id = await make_room(client, alice)
    fields = {
        "room_id": room_id,
        "event_type": "m.room.message",
        "content": {"msgtype": "m.text", "body": "once"},
    }
    async with connect(server, alice["access_token"]) as ws:
        first = await ws.ok("send", txn_id="txn-1", **fields)
        again = await ws.ok("send", txn_id="txn-1", **fields)
        assert again == first
        over_http = await http_send(client, alice, room_id, "txn-1", "once")
        assert over_http == first["event_id"]
        # HTTP first, then a WebSocket retry of the same transaction.
        http_first = await http_send(client, alice, room_id, "txn-2", "twice")
        assert (await ws.ok("send", txn_id="txn-2", **fields))["event_id"] == http_first
    # Another device of the same user is another transaction scope.
    login = await client.post(
        "/_matrix/client/v3/login",
        json={
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": "alice"},
            "password": "correct horse",
        },
    )
    other = login.json()
    async with connect(server, other["access_token"]) as ws:
        assert (await ws.ok("send", txn_id="txn-1", **fields))["event_id"] != first["event_id"]
    messages = await client.get(
        f"/_matrix/client/v3/rooms/{room_id}/messages",
        params={"dir": "b", "limit": "50"},
        headers=auth(alice),
    )
    bodies = [e["content"].get("body") for e in messages.json()["chunk"]]
    assert sorted(b for b in bodies if b) == ["once", "once", "twice"]


async def test_command_errors_carry_the_http_matrix_error(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    room_id = await make_room(client, alice)
    async with connect(server, bob["access_token"]) as ws:
        not_member = await ws.command(
            "send", room_id=room_id, event_type="m.room.message", txn_id="x", content={}
        )
        http = await client.put(
            f"/_matrix/client/v3/rooms/{room_id}/send/m.room.message/y",
            json={},
            headers=auth(bob),
        )
        assert http.status_code == 403
        assert not_member["type"] == "error"
        assert not_member["errcode"] == http.json()["errcode"] == "M_FORBIDDEN"
        missing = await ws.command("send", room_id=room_id, event_type="m.room.message")
        assert missing["errcode"] == "M_MISSING_PARAM"
        bad_room = await ws.command("typing", room_id="nope", typing=True)
        assert bad_room["errcode"] == "M_INVALID_PARAM"


async def test_typing_and_receipts_reach_the_other_user(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    room_id = await make_room(client, alice, bob)
    async with (
        connect(server, alice["access_token"]) as alice_ws,
        connect(server, bob["access_token"]) as bob_ws,
    ):
        await bob_ws.ok("subscribe", since=None)
        await bob_ws.next_sync()
        await alice_ws.ok("typing", room_id=room_id, typing=True, timeout=20000)
        with trio.fail_after(WAIT):
            while True:
                body = await bob_ws.next_sync()
                ephemeral = body["rooms"]["join"].get(room_id, {}).get("ephemeral", {})
                typing = [e for e in ephemeral.get("events", []) if e["type"] == "m.typing"]
                if typing and alice["user_id"] in typing[-1]["content"]["user_ids"]:
                    break
        sent = await alice_ws.ok(
            "send",
            room_id=room_id,
            event_type="m.room.message",
            txn_id="t",
            content={"msgtype": "m.text", "body": "read me"},
        )
        event_id = sent["event_id"]
        await bob_ws.ok("receipt", room_id=room_id, receipt_type="m.read", event_id=event_id)
        await bob_ws.ok("read_markers", room_id=room_id, body={"m.fully_read": event_id})
        await alice_ws.ok("subscribe", since=None)
        body = await alice_ws.next_sync()
        receipts = [
            e
            for e in body["rooms"]["join"][room_id]["ephemeral"]["events"]
            if e["type"] == "m.receipt"
        ]
        assert bob["user_id"] in receipts[0]["content"][event_id]["m.read"]
        assert event_id in [e["event_id"] for e in room_timeline(body, room_id)]
    markers = await client.get(
        f"/_matrix/client/v3/user/{bob['user_id']}/rooms/{room_id}/account_data/m.fully_read",
        headers=auth(bob),
    )
    assert markers.json() == {"event_id": event_id}


@pytest.mark.server_config(websocket={"max_frame_bytes": 1024})
async def test_bad_frames_get_error_frames_and_the_socket_survives(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    async with connect(server, alice["access_token"]) as ws:
        await ws.ws.send_message("{not json")
        assert (await ws.expect(lambda f: True))["errcode"] == "M_NOT_JSON"
        await ws.ws.send_message(b"\x01\x02")
        assert (await ws.expect(lambda f: True))["errcode"] == "M_NOT_JSON"
        await ws.ws.send_message(json.dumps({"type": "ping", "pad": "x" * 2000}))
        assert (await ws.expect(lambda f: True))["errcode"] == "M_TOO_LARGE"
        await ws.ws.send_message("[]")
        assert (await ws.expect(lambda f: True))["errcode"] == "M_BAD_JSON"
        unknown = await ws.command("launch_rockets")
        assert unknown == {
            "type": "error",
            "id": unknown["id"],
            "errcode": "M_UNRECOGNIZED",
            "error": "Unknown frame type 'launch_rockets'",
        }
        assert (await ws.command("subscribe", since="garbage"))["errcode"] == "M_INVALID_PARAM"
        assert (await ws.command("ping"))["type"] == "pong"
    # A frame over the transport's 1 MiB limit closes that socket only (1009).
    async with connect(server, alice["access_token"]) as ws:
        try:
            await ws.ws.send_message("x" * (2 * 1024 * 1024))
        except trio_websocket.ConnectionClosed as closed:
            code = closed.reason.code  # closed while the frame was still going out
        else:
            code = await close_code(ws.ws)
        assert code == 1009
    async with connect(server, alice["access_token"]) as ws:
        assert (await ws.command("ping"))["type"] == "pong"


@pytest.mark.server_config(auth={"session_cache_s": 0})
async def test_logout_elsewhere_ends_the_socket(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    async with trio_websocket.open_websocket_url(
        server.base_url.replace("http", "ws", 1) + "/_plait/client/v1/ws"
    ) as raw:
        await raw.send_message(json.dumps({"type": "auth", "access_token": alice["access_token"]}))
        assert json.loads(await raw.get_message())["type"] == "auth_ok"
        await server.hs.auth.logout(
            Requester(alice["user_id"], alice["device_id"], session_id="", is_guest=False)
        )
        # The next command is refused like an HTTP request would be.
        await raw.send_message(
            json.dumps({"type": "typing", "id": 1, "room_id": "!a:b", "typing": False})
        )
        reply = json.loads(await raw.get_message())
        assert reply["errcode"] == "M_UNKNOWN_TOKEN"
