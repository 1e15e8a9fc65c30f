"""Pushers over HTTP, and delivery to a push gateway the test runs on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import attrs
import httpx
import pytest
import trio
from plait_fixtures import RegisterUser, RunningServer
from room_http_helpers import V3, assert_error, auth, create_room, join, send

from homeserver.config import HttpConfig
from homeserver.http.router import Router
from homeserver.http.server import serve_http
from homeserver.http.types import Request, Response

ALLOW_LOOPBACK = pytest.mark.server_config(
    push={"gateway_ip_allowlist": "127.0.0.1/32", "retry_initial_s": 0.05}
)


@attrs.define
class Gateway:
    """Answers each POST with the next status from ``script`` (then 200)."""

    url: str = ""
    script: list[tuple[int, dict[str, Any]]] = attrs.field(factory=list)
    received: list[dict[str, Any]] = attrs.field(factory=list)
    changed: trio.Event = attrs.field(factory=trio.Event)
    # When set, each request waits for it before answering.
    hold: trio.Event | None = None

    async def wait_for(self, count: int) -> None:
        with trio.fail_after(30):
            while len(self.received) < count:
                await self.changed.wait()


@pytest.fixture
async def gateway(nursery: trio.Nursery) -> AsyncIterator[Gateway]:
    gw = Gateway()

    async def notify(request: Request) -> Response:
        gw.received.append(request.json())
        gw.changed.set()
        gw.changed = trio.Event()
        if gw.hold is not None:
            await gw.hold.wait()
        status, body = gw.script.pop(0) if gw.script else (200, {"rejected": []})
        return Response.json(body, status=status)

    router = Router()
    router.add("POST", "/_matrix/push/v1/notify", notify)
    port = await nursery.start(
        lambda task_status: serve_http(
            router, host="127.0.0.1", port=0, config=HttpConfig(), task_status=task_status
        )
    )
    gw.url = f"http://127.0.0.1:{port}/_matrix/push/v1/notify"
    yield gw


def pusher(url: str, pushkey: str = "key1", **extra: Any) -> dict[str, Any]:
    return {
        "pushkey": pushkey,
        "kind": "http",
        "app_id": "org.example.app",
        "app_display_name": "Example",
        "device_display_name": "Phone",
        "lang": "en",
        "data": {"url": url},
        **extra,
    }


@ALLOW_LOOPBACK
async def test_delivery_with_retry_and_rejection(
    server: RunningServer,
    client: httpx.AsyncClient,
    register_user: RegisterUser,
    gateway: Gateway,
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    room_id = await create_room(client, alice, preset="public_chat")
    await join(client, bob, room_id)
    r = await client.post(f"{V3}/pushers/set", headers=auth(bob), json=pusher(gateway.url))
    assert r.status_code == 200, r.text
    listed = (await client.get(f"{V3}/pushers", headers=auth(bob))).json()["pushers"]
    assert listed == [{k: v for k, v in pusher(gateway.url).items()}]
    # The gateway fails once, then accepts: the notification arrives twice, once accepted.
    gateway.script = [(500, {})]
    event_id = await send(client, alice, room_id, "hi there")
    await gateway.wait_for(2)
    first, second = gateway.received
    assert first == second
    note = second["notification"]
    assert note["event_id"] == event_id and note["room_id"] == room_id
    assert note["type"] == "m.room.message" and note["sender"] == alice["user_id"]
    assert note["content"]["body"] == "hi there"
    assert note["counts"] == {"unread": 1}
    assert note["prio"] == "high"  # a two-member room: .m.rule.room_one_to_one has a sound
    device = note["devices"][0]
    assert device["pushkey"] == "key1" and device["app_id"] == "org.example.app"
    assert device["tweaks"] == {"sound": "default"} and "url" not in device["data"]
    # The gateway rejects the pushkey: the pusher is gone.
    gateway.script = [(200, {"rejected": ["key1"]})]
    await send(client, alice, room_id, "again")
    await gateway.wait_for(3)
    with trio.fail_after(30):
        while (await client.get(f"{V3}/pushers", headers=auth(bob))).json()["pushers"]:  # noqa: ASYNC110
            await trio.sleep(0.01)
    # Alice sent both messages and gets nothing; nothing more reached the gateway.
    assert len(gateway.received) == 3


@ALLOW_LOOPBACK
async def test_event_id_only_format(
    server: RunningServer,
    client: httpx.AsyncClient,
    register_user: RegisterUser,
    gateway: Gateway,
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    room_id = await create_room(client, alice, preset="public_chat")
    await join(client, bob, room_id)
    body = pusher(gateway.url)
    body["data"]["format"] = "event_id_only"
    assert (await client.post(f"{V3}/pushers/set", headers=auth(bob), json=body)).status_code == 200
    event_id = await send(client, alice, room_id, "secret")
    await gateway.wait_for(1)
    note = gateway.received[0]["notification"]
    assert note["event_id"] == event_id and "content" not in note and "sender" not in note


@ALLOW_LOOPBACK
async def test_set_replace_append_delete(
    server: RunningServer,
    client: httpx.AsyncClient,
    register_user: RegisterUser,
    gateway: Gateway,
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    url = gateway.url
    assert (
        await client.post(f"{V3}/pushers/set", headers=auth(alice), json=pusher(url))
    ).status_code == 200
    # The same pushkey for Bob without append takes it from Alice.
    assert (
        await client.post(f"{V3}/pushers/set", headers=auth(bob), json=pusher(url))
    ).status_code == 200
    assert (await client.get(f"{V3}/pushers", headers=auth(alice))).json() == {"pushers": []}
    # With append, both keep it.
    r = await client.post(f"{V3}/pushers/set", headers=auth(alice), json=pusher(url, append=True))
    assert r.status_code == 200
    assert len((await client.get(f"{V3}/pushers", headers=auth(alice))).json()["pushers"]) == 1
    assert len((await client.get(f"{V3}/pushers", headers=auth(bob))).json()["pushers"]) == 1
    # Replacing (with append: Alice keeps hers) updates the fields.
    r = await client.post(
        f"{V3}/pushers/set",
        headers=auth(bob),
        json=pusher(url, device_display_name="Tablet", append=True),
    )
    assert r.status_code == 200
    listed = (await client.get(f"{V3}/pushers", headers=auth(bob))).json()["pushers"]
    assert [p["device_display_name"] for p in listed] == ["Tablet"]
    # kind null deletes (only Bob's).
    r = await client.post(
        f"{V3}/pushers/set",
        headers=auth(bob),
        json={"pushkey": "key1", "app_id": "org.example.app", "kind": None},
    )
    assert r.status_code == 200
    assert (await client.get(f"{V3}/pushers", headers=auth(bob))).json() == {"pushers": []}
    assert len((await client.get(f"{V3}/pushers", headers=auth(alice))).json()["pushers"]) == 1
    for i in range(19):
        r = await client.post(
            f"{V3}/pushers/set", headers=auth(alice), json=pusher(url, pushkey=f"k{i}", append=True)
        )
        assert r.status_code == 200
    r = await client.post(f"{V3}/pushers/set", headers=auth(alice), json=pusher(url, pushkey="k99"))
    assert_error(r, 400, "M_LIMIT_EXCEEDED")


async def test_refusals(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    h = auth(alice)
    url = "https://push.example.org/_matrix/push/v1/notify"
    cases: list[tuple[dict[str, Any], int, str]] = [
        (pusher("http://127.0.0.1:9/_matrix/push/v1/notify"), 400, "M_INVALID_PARAM"),
        (pusher("http://[::1]/x"), 400, "M_INVALID_PARAM"),
        (pusher("http://10.1.2.3/x"), 400, "M_INVALID_PARAM"),
        (pusher("ftp://push.example.org/x"), 400, "M_INVALID_PARAM"),
        (pusher("not a url"), 400, "M_INVALID_PARAM"),
        (pusher(url, data="x"), 400, "M_BAD_JSON"),
        ({**pusher(url), "data": {}}, 400, "M_BAD_JSON"),
        ({**pusher(url), "data": {"url": url, "format": "full"}}, 400, "M_INVALID_PARAM"),
        (pusher(url, kind="email"), 400, "M_INVALID_PARAM"),
        (pusher(url, kind="sms"), 400, "M_INVALID_PARAM"),
        (pusher(url, pushkey="x" * 513), 400, "M_INVALID_PARAM"),
        (pusher(url, pushkey=5), 400, "M_BAD_JSON"),
        (pusher(url, append="yes"), 400, "M_BAD_JSON"),
        ({k: v for k, v in pusher(url).items() if k != "app_id"}, 400, "M_MISSING_PARAM"),
        ({k: v for k, v in pusher(url).items() if k != "kind"}, 400, "M_MISSING_PARAM"),
        ({k: v for k, v in pusher(url).items() if k != "lang"}, 400, "M_MISSING_PARAM"),
    ]
    for body, status, errcode in cases:
        assert_error(await client.post(f"{V3}/pushers/set", headers=h, json=body), status, errcode)
    assert (await client.get(f"{V3}/pushers", headers=h)).json() == {"pushers": []}
    # A public gateway is accepted (delivery is not exercised here).
    assert (await client.post(f"{V3}/pushers/set", headers=h, json=pusher(url))).status_code == 200
    assert_error(await client.get(f"{V3}/pushers"), 401, "M_MISSING_TOKEN")


@ALLOW_LOOPBACK
async def test_unread_count_is_across_rooms(
    server: RunningServer,
    client: httpx.AsyncClient,
    register_user: RegisterUser,
    gateway: Gateway,
) -> None:
    """Push Gateway API ``counts.unread``: unread messages across all the user's rooms,
    after each room's read receipt; a room the user left no longer counts."""
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    rooms = [await create_room(client, alice, preset="public_chat") for _ in range(3)]
    for room_id in rooms:
        await join(client, bob, room_id)
    r = await client.post(f"{V3}/pushers/set", headers=auth(bob), json=pusher(gateway.url))
    assert r.status_code == 200, r.text
    sent = 0

    async def unread_after(room_id: str, body: str) -> int:
        nonlocal sent
        event_id = await send(client, alice, room_id, body)
        sent += 1
        await gateway.wait_for(sent)
        note = gateway.received[-1]["notification"]
        assert note["event_id"] == event_id
        count: int = note["counts"]["unread"]
        return count

    assert await unread_after(rooms[0], "one") == 1
    first_b = await send(client, alice, rooms[1], "two")
    sent += 1
    assert await unread_after(rooms[1], "three") == 3
    # Bob reads room 1 up to "two": one unread left there.
    r = await client.post(
        f"{V3}/rooms/{rooms[1]}/receipt/m.read/{first_b}", headers=auth(bob), json={}
    )
    assert r.status_code == 200
    assert await unread_after(rooms[2], "four") == 3
    # Bob leaves room 0 (one unread): it stops counting.
    r = await client.post(f"{V3}/rooms/{rooms[0]}/leave", headers=auth(bob), json={})
    assert r.status_code == 200
    assert await unread_after(rooms[2], "five") == 3


@ALLOW_LOOPBACK
async def test_event_redacted_before_delivery_is_not_pushed(
    server: RunningServer,
    client: httpx.AsyncClient,
    register_user: RegisterUser,
    gateway: Gateway,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An action already read by the pusher whose event is then redacted is not sent."""
    hs = server.hs
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    room_id = await create_room(client, alice, preset="public_chat")
    await join(client, bob, room_id)
    r = await client.post(f"{V3}/pushers/set", headers=auth(bob), json=pusher(gateway.url))
    assert r.status_code == 200, r.text
    assert await hs.push.wait_for(hs.notifier.current_token().events)
    # Both messages reach the processor in one batch, so the pusher reads both at once.
    gate = trio.Event()
    step = hs.push.step

    async def gated() -> bool:
        await gate.wait()
        return await step()

    monkeypatch.setattr(hs.push, "step", gated)
    gateway.hold = trio.Event()
    first = await send(client, alice, room_id, "first")
    second = await send(client, alice, room_id, "second, regrettable")
    gate.set()
    await gateway.wait_for(1)  # "first" is at the gateway, held; "second" is queued
    r = await client.put(f"{V3}/rooms/{room_id}/redact/{second}/x", headers=auth(alice), json={})
    assert r.status_code == 200
    assert await hs.push.wait_for(hs.notifier.current_token().events)
    gateway.hold.set()
    third = await send(client, alice, room_id, "third")
    await gateway.wait_for(2)
    ids = [n["notification"]["event_id"] for n in gateway.received]
    assert ids == [first, third]
