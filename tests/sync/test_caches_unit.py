"""RecentEvents answers exactly as the database would; RoomMembers drops raced reads."""

from __future__ import annotations

import random

import attrs
import pytest
import trio

from homeserver.notifier import Notifier
from homeserver.storage.events import StoredEvent
from homeserver.sync.caches import MemberSummary, RecentEvents, RoomMembers


def _event(room_id: str, position: int) -> StoredEvent:
    return StoredEvent(
        event_id=f"${position}",
        room_id=room_id,
        type="m.room.message",
        state_key=None,
        sender="@a:x",
        depth=position,
        topological_ordering=position,
        stream_ordering=position,
        origin_server_ts=0,
        rejected_reason=None,
        soft_failed=False,
        outlier=False,
        state_group_before=None,
        state_group_after=None,
        pdu={},
    )


@pytest.mark.parametrize("seed", range(40))
async def test_recent_events_answer_as_the_database(seed: int) -> None:
    rng = random.Random(seed)
    rooms = "ABC"
    stored: dict[str, list[StoredEvent]] = {r: [] for r in rooms}
    reads = 0

    def truth(room_id: str, after: int, upto: int, limit: int) -> list[StoredEvent]:
        found = [e for e in stored[room_id] if after < e.stream_ordering <= upto]
        return found[-limit:] if limit > 0 else []

    async def read_range(room_id: str, after: int, upto: int, limit: int) -> list[StoredEvent]:
        nonlocal reads
        reads += 1
        await trio.lowlevel.checkpoint()
        return truth(room_id, after, upto, limit)

    cache = RecentEvents(read_range, max_rooms=2, per_room=rng.choice([3, 5, 50]))
    position = 0
    for _ in range(300):
        if rng.random() < 0.5:
            position += 1
            stored[rng.choice(rooms)].append(_event("r", position))
        room_id = rng.choice(rooms)
        upto = rng.randint(0, position)
        after = rng.randint(0, upto) if rng.random() < 0.5 else max(0, upto - rng.randint(0, 5))
        limit = rng.choice([1, 2, 10, 20, 1000])
        roll = rng.random()
        if roll < 0.2:
            if not truth(room_id, after, upto, 1):
                cache.note_no_events(room_id, after, upto)
        elif roll < 0.4:
            known = cache.covers(room_id, after, upto)
            assert known is None or known == bool(truth(room_id, after, upto, 1))
        else:
            got = await cache.read(room_id, after, upto, limit)
            want = truth(room_id, after, upto, limit)
            assert [e.stream_ordering for e in got] == [e.stream_ordering for e in want]


async def test_receivers_of_one_event_share_one_read() -> None:
    stored = [_event("!r", p) for p in range(1, 4)]
    reads: list[tuple[int, int]] = []

    async def read_range(room_id: str, after: int, upto: int, limit: int) -> list[StoredEvent]:
        reads.append((after, upto))
        await trio.sleep(0.01)
        return [e for e in stored if after < e.stream_ordering <= upto][-limit:]

    cache = RecentEvents(read_range)
    assert len(await cache.read("!r", 0, 3, 10)) == 3
    stored.append(_event("!r", 4))
    results: list[list[int]] = []

    async def receiver() -> None:
        found = await cache.read("!r", 3, 4, 10)
        results.append([e.stream_ordering for e in found])

    async with trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(receiver)
    assert results == [[4]] * 20
    assert reads == [(0, 3), (3, 4)]  # one read for the twenty woken receivers


def test_room_members_drop_a_read_that_raced_a_member_event() -> None:
    members = RoomMembers()
    summary = MemberSummary.from_rows([("@a:x", "join", 1), ("@b:x", "invite", 2)])
    assert (summary.joined, summary.invited, summary.present) == (1, 1, ("@a:x", "@b:x"))
    stamp = members.stamp("!r")
    members.on_new_event(_member_event("!r"))
    members.put("!r", stamp, summary)  # read before the change: not kept
    assert members.get("!r") is None
    stamp = members.stamp("!r")
    members.put("!r", stamp, summary)
    assert members.get("!r") == summary
    members.on_new_event(_event("!r", 9))  # a message changes no member
    assert members.get("!r") == summary
    members.on_new_event(_member_event("!r"))
    assert members.get("!r") is None


def _member_event(room_id: str) -> StoredEvent:
    return attrs.evolve(_event(room_id, 10), type="m.room.member", state_key="@c:x")


def test_change_count_moves_for_every_announcement_even_a_late_one() -> None:
    notifier = Notifier()
    assert notifier.change_count("receipts") == 0
    notifier.notify("receipts", 5)
    notifier.notify("receipts", 3)  # announced after 5: the position stays, the count moves
    assert notifier.current_token().receipts == 5
    assert notifier.change_count("receipts") == 2
    assert notifier.change_count("events") == 0
