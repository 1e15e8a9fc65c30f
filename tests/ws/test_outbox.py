"""The bounded outgoing queue of a WebSocket connection."""

from __future__ import annotations

import pytest
import trio

from homeserver.ws import Outbox, OutboxFull, WebSocketHub


async def test_bounds_on_frames_and_bytes() -> None:
    hub = WebSocketHub()
    outbox = Outbox(hub, max_frames=3, max_bytes=100)
    outbox.put("a" * 10)
    outbox.put("b" * 10)
    outbox.put("c" * 10)
    with pytest.raises(OutboxFull):
        outbox.put("d")
    assert [await outbox.get() for _ in range(3)] == ["a" * 10, "b" * 10, "c" * 10]
    outbox.put("x" * 60)
    with pytest.raises(OutboxFull):
        outbox.put("y" * 41)  # 101 bytes queued would pass the byte bound
    outbox.put("é" * 20)  # 40 bytes of UTF-8: exactly at the bound
    assert outbox.queued_bytes == 100
    stats = hub.statistics()
    assert stats.peak_queued_frames == 3
    assert stats.peak_queued_bytes == 100


async def test_a_lone_large_frame_is_accepted_into_an_empty_queue() -> None:
    hub = WebSocketHub()
    outbox = Outbox(hub, max_frames=3, max_bytes=100)
    outbox.put("z" * 1000)
    with pytest.raises(OutboxFull):
        outbox.put("a")
    assert await outbox.get() == "z" * 1000
    assert outbox.queued_bytes == 0
    assert hub.statistics().peak_queued_bytes == 0


async def test_get_waits_for_a_frame_and_ends_after_close() -> None:
    outbox = Outbox(WebSocketHub(), max_frames=2, max_bytes=100)
    got: list[str] = []

    async def consumer() -> None:
        while True:
            try:
                got.append(await outbox.get())
            except trio.EndOfChannel:
                return

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(consumer)
            await trio.lowlevel.checkpoint()
            outbox.put("one")
            await trio.lowlevel.checkpoint()
            outbox.put("two")
            outbox.close()
    assert got == ["one", "two"]
