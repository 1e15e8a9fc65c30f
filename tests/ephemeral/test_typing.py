"""Typing notifications end to end: set, unset, expiry, refusals, the sync read API."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest
import trio
from ephemeral_helpers import V3, assert_error, leave, make_room, make_user
from plait_fixtures import RegisterUser, RunningServer

from homeserver.notifier import Notifier
from homeserver.typing import MAX_TYPING_TIMEOUT_MS, TypingService


def typing_url(room_id: str, user_id: str) -> str:
    return f"{V3}/rooms/{quote(room_id)}/typing/{quote(user_id)}"


async def test_typing_set_unset_and_expire(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    hs = server.hs
    alice = await make_user(client, register_user, "alice")
    bob = await make_user(client, register_user, "bob")
    room = await make_room(hs, alice.user_id, bob.user_id)
    start = hs.notifier.current_token().typing

    r = await client.put(
        typing_url(room, alice.user_id),
        json={"typing": True, "timeout": 10_000},
        headers=alice.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json() == {}
    assert hs.notifier.current_token().typing > start
    events = hs.typing.typing_for_rooms([room], start)
    assert events == {room: {"type": "m.typing", "content": {"user_ids": [alice.user_id]}}}

    r = await client.put(
        typing_url(room, bob.user_id), json={"typing": True, "timeout": 60_000}, headers=bob.headers
    )
    assert r.status_code == 200
    both = hs.typing.typing_for_rooms([room], start)[room]["content"]["user_ids"]
    assert both == sorted([alice.user_id, bob.user_id])

    # Nothing new since the current position.
    now = hs.notifier.current_token().typing
    assert hs.typing.typing_for_rooms([room], now) == {}

    # Alice stops: the room changes and the event lists only Bob.
    r = await client.put(
        typing_url(room, alice.user_id), json={"typing": False}, headers=alice.headers
    )
    assert r.status_code == 200
    assert hs.typing.typing_for_rooms([room], now)[room]["content"]["user_ids"] == [bob.user_id]

    # Bob asked for 60 s; the server caps at 30 s. After 31 s he has stopped.
    before_expiry = hs.notifier.current_token().typing
    hs.clock.advance(MAX_TYPING_TIMEOUT_MS / 1000 + 1)
    assert hs.typing.typing_users(room) == []  # reads never show a lapsed typer
    assert hs.typing.expire() == [room]
    assert hs.notifier.current_token().typing > before_expiry
    assert hs.typing.typing_for_rooms([room], before_expiry)[room]["content"]["user_ids"] == []


async def test_typing_refusals(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    hs = server.hs
    alice = await make_user(client, register_user, "alice")
    bob = await make_user(client, register_user, "bob")
    carol = await make_user(client, register_user, "carol")
    room = await make_room(hs, alice.user_id, bob.user_id)

    # Someone else's typing state.
    r = await client.put(
        typing_url(room, alice.user_id), json={"typing": True}, headers=bob.headers
    )
    assert_error(r, 403, "M_FORBIDDEN")
    # Not joined.
    r = await client.put(
        typing_url(room, carol.user_id), json={"typing": True}, headers=carol.headers
    )
    assert_error(r, 403, "M_FORBIDDEN")
    # Unknown room: not joined either.
    r = await client.put(
        typing_url("!nope:test.example", alice.user_id),
        json={"typing": True},
        headers=alice.headers,
    )
    assert_error(r, 403, "M_FORBIDDEN")
    # Bad bodies name the field.
    r = await client.put(typing_url(room, alice.user_id), json={}, headers=alice.headers)
    assert "typing" in assert_error(r, 400, "M_MISSING_PARAM")["error"]
    for body in ({"typing": "yes"}, {"typing": 1}):
        r = await client.put(typing_url(room, alice.user_id), json=body, headers=alice.headers)
        assert "typing" in assert_error(r, 400, "M_BAD_JSON")["error"]
    for timeout in ("30000", -1, 1.5, True):
        r = await client.put(
            typing_url(room, alice.user_id),
            json={"typing": True, "timeout": timeout},
            headers=alice.headers,
        )
        assert "timeout" in assert_error(r, 400, "M_BAD_JSON")["error"]
    r = await client.put(
        typing_url(room, "not-a-user"), json={"typing": True}, headers=alice.headers
    )
    assert_error(r, 400, "M_INVALID_PARAM")
    r = await client.put(typing_url(room, alice.user_id), content=b"[1]", headers=alice.headers)
    assert r.status_code == 400
    # No token.
    r = await client.put(typing_url(room, alice.user_id), json={"typing": True})
    assert_error(r, 401, "M_MISSING_TOKEN")
    assert hs.typing.typing_users(room) == []


async def test_typing_wakes_a_waiting_room_member(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    hs = server.hs
    alice = await make_user(client, register_user, "alice")
    bob = await make_user(client, register_user, "bob")
    room = await make_room(hs, alice.user_id, bob.user_id)
    with hs.notifier.listen(bob.user_id, [room]) as listener:
        r = await client.put(
            typing_url(room, alice.user_id), json={"typing": True}, headers=alice.headers
        )
        assert r.status_code == 200
        assert listener.changed


async def test_positions_from_before_a_restart_get_the_current_typers() -> None:
    async def joined(user_id: str, room_id: str) -> bool:
        return True

    service = TypingService(Notifier(), joined, lambda: 1000.0)
    service.started_typing("@a:x", "!r:x", 5000)
    assert service.typing_for_rooms(["!r:x"], 999)["!r:x"]["content"]["user_ids"] == ["@a:x"]


async def test_expiry_loop_expires_on_its_own(autojump_clock: trio.abc.Clock) -> None:
    """The background task drops typers at their deadline (fake clock: no real waiting)."""

    async def joined(user_id: str, room_id: str) -> bool:
        return True

    notifier = Notifier()
    service = TypingService(notifier, joined, trio.current_time)
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        await service.set_typing("@a:x", "@a:x", "!r:x", True, 20_000)
        await service.set_typing("@b:x", "@b:x", "!r:x", True, 5_000)
        assert service.typing_users("!r:x") == ["@a:x", "@b:x"]
        position = service.position
        with notifier.listen("@c:x", ["!r:x"]) as listener:
            await listener.wait()  # Bob's expiry wakes room members
        assert service.position == position + 1
        assert service.statistics().typers == 1
        await trio.sleep(20)
        assert service.statistics().typers == 0
        assert service.typing_for_rooms(["!r:x"], position)["!r:x"]["content"]["user_ids"] == []
        # Renewing does not advance the stream; stopping someone not typing neither.
        await service.set_typing("@a:x", "@a:x", "!r:x", True, 10_000)
        renewed = service.position
        await service.set_typing("@a:x", "@a:x", "!r:x", True, 10_000)
        service.stopped_typing("@z:x", "!r:x")
        assert service.position == renewed
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("timeout", [0])
async def test_zero_timeout_is_not_typing(timeout: int) -> None:
    async def joined(user_id: str, room_id: str) -> bool:
        return True

    service = TypingService(Notifier(), joined, lambda: 1000.0)
    await service.set_typing("@a:x", "@a:x", "!r:x", True, timeout)
    assert service.typing_users("!r:x") == []


async def test_leaving_stops_typing(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    hs = server.hs
    alice = await make_user(client, register_user, "alice")
    bob = await make_user(client, register_user, "bob")
    room = await make_room(hs, alice.user_id, bob.user_id)
    r = await client.put(typing_url(room, bob.user_id), json={"typing": True}, headers=bob.headers)
    assert r.status_code == 200
    position = hs.notifier.current_token().typing
    await leave(hs, room, bob.user_id)
    assert hs.typing.typing_users(room) == []
    assert hs.typing.typing_for_rooms([room], position)[room]["content"]["user_ids"] == []


@pytest.mark.server_config(
    rate_limits={"enabled": True, "writes_burst": 2, "writes_per_second": 0.01}
)
async def test_typing_is_rate_limited_as_a_write(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await make_user(client, register_user, "alice")
    room = await make_room(server.hs, alice.user_id)
    url = typing_url(room, alice.user_id)
    for _ in range(2):
        assert (
            await client.put(url, json={"typing": True}, headers=alice.headers)
        ).status_code == 200
    r = await client.put(url, json={"typing": True}, headers=alice.headers)
    body = assert_error(r, 429, "M_LIMIT_EXCEEDED")
    assert body["retry_after_ms"] > 0
