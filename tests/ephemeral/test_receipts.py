"""Receipts and read markers end to end: m.read, m.read.private, threads, refusals."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest
from ephemeral_helpers import V3, User, assert_error, leave, make_room, make_user, send_message
from plait_fixtures import RegisterUser, RunningServer

from homeserver.homeserver import HomeServer


def receipt_url(room_id: str, receipt_type: str, event_id: str) -> str:
    return f"{V3}/rooms/{quote(room_id)}/receipt/{receipt_type}/{quote(event_id)}"


def markers_url(room_id: str) -> str:
    return f"{V3}/rooms/{quote(room_id)}/read_markers"


async def post_receipt(
    client: httpx.AsyncClient,
    user: User,
    room_id: str,
    event_id: str,
    receipt_type: str = "m.read",
    body: Any = None,
) -> httpx.Response:
    return await client.post(
        receipt_url(room_id, receipt_type, event_id),
        json={} if body is None else body,
        headers=user.headers,
    )


async def receipts(hs: HomeServer, viewer: str, room_id: str, since: int = 0) -> dict[str, Any]:
    found = await hs.receipts.receipts_for_rooms(viewer, [room_id], since, None)
    if room_id not in found:
        return {}
    event = found[room_id]
    assert event["type"] == "m.receipt"
    content: dict[str, Any] = event["content"]
    return content


async def setup(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> tuple[User, User, User, str, list[str]]:
    hs = server.hs
    alice = await make_user(client, register_user, "alice")
    bob = await make_user(client, register_user, "bob")
    carol = await make_user(client, register_user, "carol")
    room = await make_room(hs, alice.user_id, bob.user_id)
    messages = [await send_message(hs, room, alice.user_id, f"m{i}") for i in range(3)]
    return alice, bob, carol, room, messages


async def test_public_read_receipt_is_shared_with_the_room(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    hs = server.hs
    alice, bob, _, room, messages = await setup(server, client, register_user)
    start = hs.notifier.current_token().receipts
    with hs.notifier.listen(alice.user_id, [room]) as listener:
        r = await post_receipt(client, bob, room, messages[0])
        assert r.status_code == 200, r.text
        assert r.json() == {}
        assert listener.changed
    position = hs.notifier.current_token().receipts
    assert position > start
    for viewer in (alice.user_id, bob.user_id):
        content = await receipts(hs, viewer, room)
        assert list(content) == [messages[0]]
        data = content[messages[0]]["m.read"][bob.user_id]
        assert isinstance(data["ts"], int) and "thread_id" not in data
    # A newer receipt replaces the old one: one event per (user, type, thread).
    r = await post_receipt(client, bob, room, messages[2])
    assert r.status_code == 200
    content = await receipts(hs, alice.user_id, room)
    assert list(content) == [messages[2]]
    # Since the previous position only the change is sent.
    assert list(await receipts(hs, alice.user_id, room, position)) == [messages[2]]
    assert await receipts(hs, alice.user_id, room, hs.notifier.current_token().receipts) == {}
    assert await hs.receipts.latest_read_receipt(bob.user_id, room) == messages[2]
    assert await hs.receipts.latest_read_receipt(alice.user_id, room) is None


# Presence off: a receipt also marks its sender active, which would wake Alice.
@pytest.mark.server_config(presence={"enabled": False})
async def test_private_receipt_only_reaches_its_owner(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    hs = server.hs
    alice, bob, _, room, messages = await setup(server, client, register_user)
    alice_listening = hs.notifier.listen(alice.user_id, [room])
    with alice_listening as alice_listener, hs.notifier.listen(bob.user_id, []) as bob_listener:
        r = await post_receipt(client, bob, room, messages[2], "m.read.private")
        assert r.status_code == 200, r.text
        assert bob_listener.changed
        # Only the owner is woken for a private receipt.
        assert not alice_listener.changed
    assert await receipts(hs, alice.user_id, room) == {}
    mine = await receipts(hs, bob.user_id, room)
    assert bob.user_id in mine[messages[2]]["m.read.private"]
    # A public receipt behind the private one does not rewind the read-up-to mark.
    r = await post_receipt(client, bob, room, messages[0])
    assert r.status_code == 200
    assert await hs.receipts.latest_read_receipt(bob.user_id, room) == messages[2]
    seen_by_alice = await receipts(hs, alice.user_id, room)
    assert list(seen_by_alice) == [messages[0]]
    assert "m.read.private" not in seen_by_alice[messages[0]]


async def test_threaded_receipts(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    hs = server.hs
    alice, bob, _, room, messages = await setup(server, client, register_user)
    root = messages[0]
    reply = await send_message(
        hs,
        room,
        alice.user_id,
        "in thread",
        **{"m.relates_to": {"rel_type": "m.thread", "event_id": root}},
    )
    r = await post_receipt(client, bob, room, reply, body={"thread_id": root})
    assert r.status_code == 200, r.text
    r = await post_receipt(client, bob, room, messages[1], body={"thread_id": "main"})
    assert r.status_code == 200, r.text
    # The root itself is in the main timeline and may be read under its own thread too.
    r = await post_receipt(client, bob, room, root, body={"thread_id": root})
    assert r.status_code == 200, r.text
    content = await receipts(hs, alice.user_id, room)
    assert content[messages[1]]["m.read"][bob.user_id]["thread_id"] == "main"
    assert content[root]["m.read"][bob.user_id]["thread_id"] == root
    # A receipt inside the thread does not count for the main timeline's read mark.
    assert await hs.receipts.latest_read_receipt(bob.user_id, room) == messages[1]

    # Bad thread ids: not a string, empty, wrong thread, with m.fully_read.
    for body in ({"thread_id": 5}, {"thread_id": ""}):
        r = await post_receipt(client, bob, room, messages[2], body=body)
        assert_error(r, 400, "M_INVALID_PARAM")
    r = await post_receipt(client, bob, room, reply, body={"thread_id": "main"})
    assert_error(r, 400, "M_INVALID_PARAM")
    r = await post_receipt(client, bob, room, messages[2], body={"thread_id": root})
    assert_error(r, 400, "M_INVALID_PARAM")
    r = await post_receipt(
        client, bob, room, messages[2], "m.fully_read", body={"thread_id": "main"}
    )
    assert_error(r, 400, "M_INVALID_PARAM")


async def test_receipt_refusals(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    hs = server.hs
    alice, bob, carol, room, messages = await setup(server, client, register_user)
    other_room = await make_room(hs, carol.user_id)
    elsewhere = await send_message(hs, other_room, carol.user_id)
    # Not a member.
    r = await post_receipt(client, carol, room, messages[0])
    assert_error(r, 403, "M_FORBIDDEN")
    # Left members are not members.
    await leave(hs, room, bob.user_id)
    r = await post_receipt(client, bob, room, messages[0])
    assert_error(r, 403, "M_FORBIDDEN")
    # Unknown event, or an event of another room.
    r = await post_receipt(client, alice, room, "$unknown")
    assert_error(r, 404, "M_NOT_FOUND")
    r = await post_receipt(client, alice, room, elsewhere)
    assert_error(r, 404, "M_NOT_FOUND")
    # Unknown receipt type, malformed ids, no token.
    r = await post_receipt(client, alice, room, messages[0], "m.unread")
    assert_error(r, 400, "M_INVALID_PARAM")
    r = await post_receipt(client, alice, room, "not-an-event")
    assert_error(r, 400, "M_INVALID_PARAM")
    r = await post_receipt(client, alice, "#alias:test.example", messages[0])
    assert_error(r, 400, "M_INVALID_PARAM")
    r = await client.post(receipt_url(room, "m.read", messages[0]), json={})
    assert_error(r, 401, "M_MISSING_TOKEN")
    r = await client.post(
        receipt_url(room, "m.read", messages[0]), content=b"not json", headers=alice.headers
    )
    assert r.status_code == 400
    assert await receipts(hs, alice.user_id, room) == {}


async def test_receipts_survive_a_restart(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    hs = server.hs
    _, bob, _, room, messages = await setup(server, client, register_user)
    r = await post_receipt(client, bob, room, messages[1])
    assert r.status_code == 200
    position = hs.notifier.current_token().receipts
    reopened = await HomeServer.open(server.config)
    try:
        assert reopened.notifier.current_token().receipts == position
        assert await reopened.receipts.latest_read_receipt(bob.user_id, room) == messages[1]
    finally:
        await reopened.aclose()


async def test_read_markers(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    hs = server.hs
    alice, bob, carol, room, messages = await setup(server, client, register_user)
    r = await client.post(
        markers_url(room),
        json={"m.fully_read": messages[1], "m.read": messages[1], "m.read.private": messages[2]},
        headers=bob.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json() == {}
    seen_by_alice = await receipts(hs, alice.user_id, room)
    assert list(seen_by_alice) == [messages[1]]
    assert await hs.receipts.latest_read_receipt(bob.user_id, room) == messages[2]
    assert await hs.account_data.get_room(bob.user_id, room, "m.fully_read") == {
        "event_id": messages[1]
    }
    # The receipt endpoint sets the fully-read marker too, never as an m.receipt.
    r = await post_receipt(client, bob, room, messages[2], "m.fully_read")
    assert r.status_code == 200, r.text
    assert await hs.account_data.get_room(bob.user_id, room, "m.fully_read") == {
        "event_id": messages[2]
    }
    content = await receipts(hs, bob.user_id, room)
    assert all("m.fully_read" not in by_type for by_type in content.values())

    # Refusals: non-members, unknown events (nothing is written), bad values.
    r = await client.post(markers_url(room), json={"m.read": messages[0]}, headers=carol.headers)
    assert_error(r, 403, "M_FORBIDDEN")
    r = await client.post(
        markers_url(room),
        json={"m.read": messages[0], "m.fully_read": "$nope"},
        headers=bob.headers,
    )
    assert_error(r, 404, "M_NOT_FOUND")
    assert await hs.receipts.latest_read_receipt(bob.user_id, room) == messages[2]
    r = await client.post(markers_url(room), json={"m.read": 7}, headers=bob.headers)
    assert "m.read" in assert_error(r, 400, "M_BAD_JSON")["error"]
    # An empty body is accepted and changes nothing.
    r = await client.post(markers_url(room), json={}, headers=bob.headers)
    assert r.status_code == 200


@pytest.mark.parametrize("receipt_type", ["m.read", "m.read.private"])
async def test_receipt_marks_the_user_active(
    server: RunningServer,
    client: httpx.AsyncClient,
    register_user: RegisterUser,
    receipt_type: str,
) -> None:
    hs = server.hs
    _, bob, _, room, messages = await setup(server, client, register_user)
    r = await post_receipt(client, bob, room, messages[0], receipt_type)
    assert r.status_code == 200
    status = await hs.presence.get_presence(bob.user_id, bob.user_id)
    assert status["presence"] == "online" and status["currently_active"] is True
