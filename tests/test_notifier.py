"""Sync tokens and the notifier (homeserver/notifier.py)."""

from __future__ import annotations

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from homeserver.errors import MatrixError
from homeserver.notifier import STREAMS, Notifier, StreamToken

positions = st.integers(min_value=0, max_value=10**15)


@given(st.tuples(*(positions for _ in STREAMS)))
def test_token_round_trips(values: tuple[int, ...]) -> None:
    token = StreamToken(*values)
    assert StreamToken.parse(token.to_string()) == token


@pytest.mark.parametrize("bad", ["", "x1_2", "s", "s1_2_x", "s-1", "s1_2_3_4_5_6_7_8", "s" + "9" * 19])
def test_malformed_tokens_are_invalid_param(bad: str) -> None:
    with pytest.raises(MatrixError) as info:
        StreamToken.parse(bad)
    assert (info.value.status, info.value.errcode) == (400, "M_INVALID_PARAM")


def test_short_tokens_pad_with_zero_and_advance_is_monotonic() -> None:
    token = StreamToken.parse("s5_1")
    assert token == StreamToken(events=5, typing=1)
    assert token.copy_and_advance("events", 3) is token
    assert token.copy_and_advance("receipts", 2).is_after(token)
    assert not token.is_after(token)


async def test_notify_wakes_only_waiters_it_concerns() -> None:
    notifier = Notifier()
    woken: list[str] = []

    async def wait(name: str, user: str, rooms: list[str]) -> None:
        if await notifier.wait_for_change(user, rooms, timeout=5):
            woken.append(name)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait, "alice-in-room", "@alice:s", ["!r:s"])
        nursery.start_soon(wait, "bob-elsewhere", "@bob:s", ["!other:s"])
        nursery.start_soon(wait, "carol-direct", "@carol:s", [])
        await trio.testing.wait_all_tasks_blocked()
        notifier.notify("events", 7, rooms=["!r:s"])
        notifier.notify("to_device", 1, users=["@carol:s"])
        await trio.testing.wait_all_tasks_blocked()
        assert sorted(woken) == ["alice-in-room", "carol-direct"]
        nursery.cancel_scope.cancel()
    assert notifier.current_token() == StreamToken(events=7, to_device=1)
    assert notifier.statistics().waiters == 0


async def test_wait_times_out_without_a_change(autojump_clock: trio.abc.Clock) -> None:
    notifier = Notifier()
    assert await notifier.wait_for_change("@a:s", ["!r:s"], timeout=30) is False


async def test_listener_catches_a_change_made_before_wait() -> None:
    notifier = Notifier()
    with notifier.listen("@a:s", ["!r:s"]) as listener:
        notifier.notify("events", 1, rooms=["!r:s"])
        assert listener.changed
        with trio.fail_after(1):
            await listener.wait()


def test_positions_never_go_backwards() -> None:
    notifier = Notifier()
    notifier.notify("events", 10)
    notifier.notify("events", 4)
    notifier.set_position("typing", 3)
    assert notifier.current_token() == StreamToken(events=10, typing=3)
    with pytest.raises(ValueError):
        notifier.set_position("nonsense", 1)
