"""Hook-fed sync caches: the hook watermark, followed recent-event ranges, user memberships.

The model: events commit in stream order, but their hooks may run late and
out of order (two rooms' transactions finish together), and the announced
position is the highest hooked one. A cache must answer as the database
would for any range up to the announced position.
"""

from __future__ import annotations

import random

import attrs
import pytest
import trio

from homeserver.storage.events import StoredEvent
from homeserver.storage.timeline import Membership
from homeserver.sync.caches import HookedPositions, RecentEvents
from homeserver.sync.memberships import UserMemberships


def _event(room_id: str, position: int, **changes: object) -> StoredEvent:
    event = StoredEvent(
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
        pdu={"prev_events": [f"${position - 1}"]},
    )
    return attrs.evolve(event, **changes)


def test_the_watermark_waits_for_a_late_hook() -> None:
    hooked = HookedPositions(10)
    hooked.hooked(11)
    assert hooked.upto == 11
    hooked.hooked(13)  # 12 committed, its hook not run yet
    assert hooked.upto == 11
    hooked.hooked(14)
    assert hooked.upto == 11
    hooked.hooked(12)
    assert hooked.upto == 14
    hooked.hooked(9)  # below: nothing moves
    assert hooked.upto == 14


def test_the_watermark_steps_over_a_position_that_never_passes_the_hook() -> None:
    hooked = HookedPositions(0, max_pending=3)
    hooked.hooked(2)  # 1 is an outlier's: no hook ever
    hooked.hooked(3)
    hooked.hooked(4)
    assert hooked.upto == 0
    hooked.hooked(5)
    assert hooked.upto == 5


@pytest.mark.parametrize("seed", range(60))
async def test_followed_ranges_answer_as_the_database(seed: int) -> None:
    rng = random.Random(seed)
    rooms = "ABC"
    committed: list[StoredEvent] = []
    unhooked: list[StoredEvent] = []
    hooked = HookedPositions(0)
    announced = 0
    cache: RecentEvents

    def truth(room_id: str, after: int, upto: int, limit: int) -> list[StoredEvent]:
        found = [
            e
            for e in committed
            if e.room_id == room_id and after < e.stream_ordering <= upto and not e.soft_failed
        ]
        return found[-limit:] if limit > 0 else []

    def commit() -> None:
        position = len(committed) + 1
        event = _event(rng.choice(rooms), position, soft_failed=rng.random() < 0.1)
        committed.append(event)
        unhooked.append(event)

    def run_a_hook() -> None:
        nonlocal announced
        # Mostly the oldest waiting hook, sometimes a later one first.
        event = unhooked.pop(0 if rng.random() < 0.7 else rng.randrange(len(unhooked)))
        cache.on_new_event(event)
        hooked.hooked(event.stream_ordering)
        announced = max(announced, event.stream_ordering)

    def meanwhile() -> None:
        for _ in range(rng.randint(0, 3)):
            if rng.random() < 0.5:
                commit()
            elif unhooked:
                run_a_hook()

    async def read_range(room_id: str, after: int, upto: int, limit: int) -> list[StoredEvent]:
        found = truth(room_id, after, upto, limit)
        await trio.lowlevel.checkpoint()
        meanwhile()  # hooks and commits while the read is in flight
        return found

    cache = RecentEvents(
        read_range, max_rooms=2, per_room=rng.choice([3, 5, 50]), hooked=hooked, max_hooked_rooms=2
    )
    for _ in range(400):
        meanwhile()
        room_id = rng.choice(rooms)
        upto = rng.randint(max(0, announced - 4), announced)
        after = max(0, upto - rng.randint(0, 6))
        limit = rng.choice([1, 2, 10, 1000])
        if rng.random() < 0.3:
            known = cache.covers(room_id, after, upto)
            assert known is None or known == bool(truth(room_id, after, upto, 1))
        else:
            got = await cache.read(room_id, after, upto, limit)
            want = truth(room_id, after, upto, limit)
            assert [e.stream_ordering for e in got] == [e.stream_ordering for e in want]


async def test_a_followed_room_is_read_once() -> None:
    stored = [_event("!r", p) for p in range(1, 4)]
    reads: list[tuple[int, int]] = []

    async def read_range(room_id: str, after: int, upto: int, limit: int) -> list[StoredEvent]:
        reads.append((after, upto))
        return [e for e in stored if after < e.stream_ordering <= upto][-limit:]

    hooked = HookedPositions(3)
    cache = RecentEvents(read_range, hooked=hooked)
    assert len(await cache.read("!r", 0, 3, 10)) == 3
    for position in (4, 5):
        event = _event("!r" if position == 5 else "!other", position)
        stored.append(event)
        cache.on_new_event(event)
        hooked.hooked(position)
    assert cache.covers("!r", 3, 4) is False
    assert cache.covers("!r", 4, 5) is True
    assert [e.stream_ordering for e in await cache.read("!r", 3, 5, 10)] == [5]
    assert reads == [(0, 3)]


def _membership(room_id: str, position: int) -> Membership:
    return Membership(room_id, "join", f"${position}", position)


def _member(user_id: str, room_id: str, position: int, prev: str) -> StoredEvent:
    return _event(
        room_id, position, type="m.room.member", state_key=user_id, pdu={"prev_events": [prev]}
    )


def test_user_memberships_drop_a_read_that_raced_a_member_event() -> None:
    cache = UserMemberships()
    cache.on_new_event(_event("!r", 1, type="m.room.create", state_key="", pdu={}))
    rows = [_membership("!r", 2)]
    stamp = cache.stamp()
    cache.on_new_event(_member("@u:x", "!r", 2, "$1"))
    cache.put("@u:x", stamp, rows)  # read before the change: not kept
    assert cache.get("@u:x") is None
    cache.put("@u:x", cache.stamp(), rows)
    assert cache.get("@u:x") == tuple(rows)
    # Someone else's member event and a message change nothing for @u.
    cache.on_new_event(_member("@v:x", "!r", 3, "$2"))
    cache.on_new_event(_event("!r", 4, pdu={"prev_events": ["$3"]}))
    assert cache.get("@u:x") == tuple(rows)
    cache.on_new_event(_member("@u:x", "!r", 5, "$4"))
    assert cache.get("@u:x") is None


def test_user_memberships_dropped_by_an_event_that_may_resolve_state() -> None:
    cache = UserMemberships()
    cache.on_new_event(_event("!r", 1, type="m.room.create", state_key="", pdu={}))
    cache.put("@u:x", cache.stamp(), [_membership("!r", 1)])
    # A fork: the event does not follow the room's last one.
    cache.on_new_event(_event("!r", 2, pdu={"prev_events": ["$0"]}))
    assert cache.get("@u:x") is None
    cache.put("@u:x", cache.stamp(), [_membership("!r", 1)])
    # A merge of two extremities.
    cache.on_new_event(_event("!r", 3, pdu={"prev_events": ["$2", "$1"]}))
    assert cache.get("@u:x") is None
    cache.put("@u:x", cache.stamp(), [_membership("!r", 1)])
    # A room never seen (since the start, or forgotten): it may be forked.
    cache.on_new_event(_event("!s", 4, pdu={"prev_events": ["$x"]}))
    assert cache.get("@u:x") is None
    cache.put("@u:x", cache.stamp(), [_membership("!r", 1)])
    cache.on_new_event(_event("!s", 5, pdu={"prev_events": ["$4"]}))  # linear from now on
    assert cache.get("@u:x") is not None


def test_user_memberships_stay_bounded() -> None:
    cache = UserMemberships(max_users=2, max_invalidations=2)
    for i in range(4):
        cache.put(f"@{i}:x", cache.stamp(), [])
    assert cache.get("@0:x") is None and cache.get("@3:x") == ()
    stamp = cache.stamp()
    for i in range(3):
        cache.invalidate(f"@v{i}:x")  # the record of invalidations is cleared when full
    cache.put("@u:x", stamp, [])  # stamped before that: refused
    assert cache.get("@u:x") is None
