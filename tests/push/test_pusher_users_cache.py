"""The pusher sender remembers users without pushers; setting one must still be seen."""

from __future__ import annotations

from typing import Any

import httpx
from plait_fixtures import RegisterUser, RunningServer
from room_http_helpers import V3, auth, create_room, join, send
from test_pushers import ALLOW_LOOPBACK, Gateway, gateway, pusher

__all__ = ["gateway"]  # the fixture, used by name


async def set_pusher(client: httpx.AsyncClient, user: dict[str, Any], body: dict[str, Any]) -> None:
    r = await client.post(f"{V3}/pushers/set", headers=auth(user), json=body)
    assert r.status_code == 200, r.text


@ALLOW_LOOPBACK
async def test_a_pusher_set_after_actions_without_one_gets_the_next(
    server: RunningServer,
    client: httpx.AsyncClient,
    register_user: RegisterUser,
    gateway: Gateway,
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    room_id = await create_room(client, alice, preset="public_chat")
    await join(client, bob, room_id)
    hs = server.hs
    # Bob gets push actions while he has no pusher: the sender learns he has none.
    await send(client, alice, room_id, "before any pusher")
    assert await hs.push.wait_for(hs.notifier.current_token().events)
    await set_pusher(client, bob, pusher(gateway.url))
    event_id = await send(client, alice, room_id, "after the pusher")
    await gateway.wait_for(1)
    assert [n["notification"]["event_id"] for n in gateway.received] == [event_id]
    # Deleted again: nothing more is delivered, and a new pusher is found once more.
    await set_pusher(client, bob, {**pusher(gateway.url), "kind": None})
    await send(client, alice, room_id, "while without")
    assert await hs.push.wait_for(hs.notifier.current_token().events)
    await set_pusher(client, bob, pusher(gateway.url, pushkey="key2"))
    last = await send(client, alice, room_id, "with the second")
    await gateway.wait_for(2)
    assert [n["notification"]["event_id"] for n in gateway.received] == [event_id, last]


@ALLOW_LOOPBACK
async def test_one_message_reaches_the_pushers_of_several_members(
    server: RunningServer,
    client: httpx.AsyncClient,
    register_user: RegisterUser,
    gateway: Gateway,
) -> None:
    # The sender reads the pushers of a batch's users in one query: each member
    # with a pusher is found, a member without one is not.
    alice = await register_user(client, "alice")
    members = {name: await register_user(client, name) for name in ("bob", "carol", "dave")}
    room_id = await create_room(client, alice, preset="public_chat")
    for user in members.values():
        await join(client, user, room_id)
    for name in ("bob", "dave"):
        await set_pusher(client, members[name], pusher(gateway.url, pushkey=f"key-{name}"))
    event_id = await send(client, alice, room_id, "to everyone")
    await gateway.wait_for(2)
    assert sorted(
        (n["notification"]["devices"][0]["pushkey"], n["notification"]["event_id"])
        for n in gateway.received
    ) == [("key-bob", event_id), ("key-dave", event_id)]
