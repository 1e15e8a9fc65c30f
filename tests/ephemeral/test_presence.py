"""Presence end to end: set and get, limits, visibility, idle timeouts, restarts, off switch."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest
import trio
from ephemeral_helpers import V3, User, assert_error, make_room, make_user
from plait_fixtures import RegisterUser, RunningServer

from homeserver.homeserver import HomeServer
from homeserver.presence import MAX_STATUS_MSG_LENGTH


def status_url(user_id: str) -> str:
    return f"{V3}/presence/{quote(user_id)}/status"


async def put_status(client: httpx.AsyncClient, user: User, body: object) -> httpx.Response:
    return await client.put(status_url(user.user_id), json=body, headers=user.headers)


async def get_status(client: httpx.AsyncClient, viewer: User, user_id: str) -> httpx.Response:
    return await client.get(status_url(user_id), headers=viewer.headers)


async def test_set_and_get_presence(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await make_user(client, register_user, "alice")
    r = await get_status(client, alice, alice.user_id)
    assert r.status_code == 200
    assert r.json()["presence"] == "offline"

    r = await put_status(client, alice, {"presence": "online", "status_msg": "coding"})
    assert r.status_code == 200, r.text
    assert r.json() == {}
    body = (await get_status(client, alice, alice.user_id)).json()
    assert body["presence"] == "online"
    assert body["status_msg"] == "coding"
    assert body["currently_active"] is True
    assert isinstance(body["last_active_ago"], int) and body["last_active_ago"] >= 0

    r = await put_status(client, alice, {"presence": "unavailable"})
    assert r.status_code == 200
    body = (await get_status(client, alice, alice.user_id)).json()
    assert body["presence"] == "unavailable"
    assert "status_msg" not in body  # a PUT without status_msg clears it
    assert body["currently_active"] is False


async def test_presence_refusals_and_limits(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await make_user(client, register_user, "alice")
    bob = await make_user(client, register_user, "bob")
    # Only your own.
    r = await client.put(
        status_url(alice.user_id), json={"presence": "online"}, headers=bob.headers
    )
    assert_error(r, 403, "M_FORBIDDEN")
    # status_msg bounded; wrong types and values name the field.
    r = await put_status(
        client, alice, {"presence": "online", "status_msg": "x" * (MAX_STATUS_MSG_LENGTH + 1)}
    )
    assert "status_msg" in assert_error(r, 400, "M_INVALID_PARAM")["error"]
    r = await put_status(
        client, alice, {"presence": "online", "status_msg": "x" * MAX_STATUS_MSG_LENGTH}
    )
    assert r.status_code == 200
    r = await put_status(client, alice, {"presence": "online", "status_msg": 5})
    assert "status_msg" in assert_error(r, 400, "M_BAD_JSON")["error"]
    for value in ("busy", 1, None):
        r = await put_status(client, alice, {"presence": value})
        assert "presence" in assert_error(r, 400, "M_BAD_JSON")["error"]
    r = await put_status(client, alice, {})
    assert "presence" in assert_error(r, 400, "M_MISSING_PARAM")["error"]
    r = await client.get(status_url("not-a-user"), headers=alice.headers)
    assert_error(r, 400, "M_INVALID_PARAM")
    r = await client.get(status_url(alice.user_id))
    assert_error(r, 401, "M_MISSING_TOKEN")


async def test_presence_visible_only_to_users_sharing_a_room(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    hs = server.hs
    alice = await make_user(client, register_user, "alice")
    bob = await make_user(client, register_user, "bob")
    carol = await make_user(client, register_user, "carol")
    await make_room(hs, alice.user_id, bob.user_id)
    start = hs.notifier.current_token().presence

    with (
        hs.notifier.listen(bob.user_id, []) as bob_listener,
        hs.notifier.listen(carol.user_id, []) as carol_listener,
    ):
        r = await put_status(client, alice, {"presence": "online", "status_msg": "hi"})
        assert r.status_code == 200
        assert bob_listener.changed
        assert not carol_listener.changed
    assert hs.notifier.current_token().presence > start

    r = await get_status(client, bob, alice.user_id)
    assert r.status_code == 200 and r.json()["status_msg"] == "hi"
    r = await get_status(client, carol, alice.user_id)
    assert_error(r, 403, "M_FORBIDDEN")

    # The sync read API: Bob gets Alice's presence, Carol gets nothing of hers.
    events = await hs.presence.presence_for_user(bob.user_id, start)
    assert [e["sender"] for e in events] == [alice.user_id]
    assert events[0]["type"] == "m.presence"
    assert events[0]["content"]["presence"] == "online"
    assert await hs.presence.presence_for_user(carol.user_id, 0) == []
    position = hs.notifier.current_token().presence
    assert await hs.presence.presence_for_user(bob.user_id, position) == []


async def test_idle_then_unavailable_then_offline(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    hs = server.hs
    alice = await make_user(client, register_user, "alice")
    bob = await make_user(client, register_user, "bob")
    await make_room(hs, alice.user_id, bob.user_id)
    await hs.presence.user_syncing(alice.user_id, "online")
    assert (await get_status(client, alice, alice.user_id)).json()["presence"] == "online"
    assert await hs.presence.check_timeouts() == 0

    # Idle (default 300 s), not yet offline: unavailable. (A sync now would
    # stream the change itself; here the timeout check has to.)
    hs.clock.advance(301)
    assert (await get_status(client, bob, alice.user_id)).json()["presence"] == "unavailable"
    before = hs.notifier.current_token().presence
    with hs.notifier.listen(bob.user_id, []) as listener:
        assert await hs.presence.check_timeouts() == 1
        assert listener.changed
    events = await hs.presence.presence_for_user(bob.user_id, before)
    assert [e["content"]["presence"] for e in events] == ["unavailable"]
    assert events[0]["content"]["last_active_ago"] >= 301_000

    # Stops syncing (default 1800 s): offline.
    hs.clock.advance(1801)
    assert (await get_status(client, bob, alice.user_id)).json()["presence"] == "offline"
    before = hs.notifier.current_token().presence
    assert await hs.presence.check_timeouts() == 1
    assert await hs.presence.check_timeouts() == 0
    events = await hs.presence.presence_for_user(bob.user_id, before)
    assert [e["content"]["presence"] for e in events] == ["offline"]

    # Syncing again brings her back online.
    await hs.presence.user_syncing(alice.user_id)
    assert (await get_status(client, bob, alice.user_id)).json()["presence"] == "online"


@pytest.mark.server_config(presence={"idle_after_s": 10, "offline_after_s": 20})
async def test_idle_times_come_from_the_config(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    hs = server.hs
    alice = await make_user(client, register_user, "alice")
    await put_status(client, alice, {"presence": "online"})
    hs.clock.advance(11)
    assert (await get_status(client, alice, alice.user_id)).json()["presence"] == "unavailable"
    hs.clock.advance(10)
    assert (await get_status(client, alice, alice.user_id)).json()["presence"] == "offline"


async def test_timeout_loop_runs_with_the_server(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    hs = server.hs
    alice = await make_user(client, register_user, "alice")
    await put_status(client, alice, {"presence": "online"})
    hs.clock.advance(301)
    position = hs.notifier.current_token().presence
    async with trio.open_nursery() as nursery:
        await nursery.start(hs.presence.run)
        # The loop notices the idle timeout on its own and streams it to Alice herself.
        with hs.notifier.listen(alice.user_id, []) as listener:
            await listener.wait()
        nursery.cancel_scope.cancel()
    assert hs.notifier.current_token().presence > position


async def test_status_msg_survives_a_restart(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await make_user(client, register_user, "alice")
    await put_status(client, alice, {"presence": "unavailable", "status_msg": "brb"})
    position = server.hs.notifier.current_token().presence
    reopened = await HomeServer.open(server.config)
    try:
        assert reopened.notifier.current_token().presence == position
        body = await reopened.presence.get_presence(alice.user_id, alice.user_id)
        assert body["presence"] == "unavailable" and body["status_msg"] == "brb"
    finally:
        await reopened.aclose()


@pytest.mark.server_config(presence={"enabled": False})
async def test_presence_switched_off(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    hs = server.hs
    alice = await make_user(client, register_user, "alice")
    bob = await make_user(client, register_user, "bob")
    await make_room(hs, alice.user_id, bob.user_id)
    start = hs.notifier.current_token().presence
    r = await put_status(client, alice, {"presence": "online", "status_msg": "hi"})
    assert r.status_code == 200 and r.json() == {}
    # Still only your own, and still validated.
    r = await client.put(
        status_url(alice.user_id), json={"presence": "online"}, headers=bob.headers
    )
    assert_error(r, 403, "M_FORBIDDEN")
    await hs.presence.user_syncing(alice.user_id)
    assert (await get_status(client, bob, alice.user_id)).json() == {"presence": "offline"}
    assert (await get_status(client, alice, alice.user_id)).json() == {"presence": "offline"}
    assert await hs.presence.presence_for_user(bob.user_id, 0) == []
    assert hs.notifier.current_token().presence == start
