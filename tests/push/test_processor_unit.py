"""The push processor's pure parts: read marks per thread, /sync counts, room context."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from homeserver.push.processor import (
    ReadMarks,
    read_marks,
    room_context,
    sync_counts,
    total_counts,
)
from homeserver.storage.events import StoredEvent


def test_unthreaded_receipt_reads_every_thread() -> None:
    marks = read_marks([("", 10)], None)
    assert marks == ReadMarks(10, {})
    assert marks.position_for("main") == 10 and marks.position_for("$root") == 10


def test_thread_and_main_receipts_are_separate() -> None:
    marks = read_marks([("", 5), ("main", 8), ("$root", 3), ("$other", 12)], None)
    assert marks.unthreaded == 5
    # A thread receipt behind the unthreaded one does not move the thread back.
    assert marks.threads == {"main": 8, "$root": 5, "$other": 12}
    assert marks.position_for("$unknown") == 5


def test_own_event_reads_its_thread_only() -> None:
    marks = read_marks([("main", 4)], (9, "$root"))
    assert marks.position_for("$root") == 9
    assert marks.position_for("main") == 4
    assert marks.position_for("$elsewhere") == 0
    assert read_marks([], (7, "main")).threads == {"main": 7}


@given(
    st.lists(st.tuples(st.sampled_from(["", "main", "$a", "$b"]), st.integers(0, 100))),
    st.none() | st.tuples(st.integers(0, 100), st.sampled_from(["main", "$a"])),
)
def test_marks_never_behind_unthreaded(
    receipts: list[tuple[str, int]], own: tuple[int, str] | None
) -> None:
    marks = read_marks(receipts, own)
    for thread in ("main", "$a", "$b", "$c"):
        assert marks.position_for(thread) >= marks.unthreaded
    for thread, position in receipts:
        assert marks.position_for(thread or "main") >= position


@pytest.mark.parametrize(
    ("by_thread", "per_thread", "expected"),
    [
        ({}, False, ((0, 0), {})),
        ({}, True, ((0, 0), {})),
        ({"main": (2, 1), "$r": (3, 0)}, False, ((5, 1), {})),
        ({"main": (2, 1), "$r": (3, 0)}, True, ((2, 1), {"$r": (3, 0)})),
        ({"$r": (1, 1)}, True, ((0, 0), {"$r": (1, 1)})),
        ({"main": (1, 0), "$r": (0, 0)}, True, ((1, 0), {})),
    ],
)
def test_sync_counts(
    by_thread: dict[str, tuple[int, int]],
    per_thread: bool,
    expected: tuple[tuple[int, int], dict[str, tuple[int, int]]],
) -> None:
    assert sync_counts(by_thread, per_thread) == expected
    assert total_counts(by_thread) == sync_counts(by_thread, False)[0]


def _state(type_: str, key: str, content: Any, sender: str = "@c:x") -> StoredEvent:
    return StoredEvent(
        event_id=f"${type_}{key}",
        room_id="!r:x",
        type=type_,
        state_key=key,
        sender=sender,
        depth=1,
        topological_ordering=1,
        stream_ordering=1,
        origin_server_ts=0,
        rejected_reason=None,
        soft_failed=False,
        outlier=False,
        state_group_before=None,
        state_group_after=None,
        pdu={"type": type_, "state_key": key, "sender": sender, "content": content},
    )


def test_room_context_members_and_levels() -> None:
    state = {
        ("m.room.create", ""): _state("m.room.create", "", {}, sender="@c:x"),
        ("m.room.member", "@a:x"): _state("m.room.member", "@a:x", {"membership": "join"}),
        ("m.room.member", "@b:x"): _state(
            "m.room.member", "@b:x", {"membership": "join", "displayname": "Bee"}
        ),
        ("m.room.member", "@d:x"): _state("m.room.member", "@d:x", {"membership": "leave"}),
        ("m.room.member", "@e:x"): _state("m.room.member", "@e:x", "not an object"),
    }
    context = room_context(state)
    assert context.joined == {"@a:x": None, "@b:x": "Bee"}
    # No power levels event: the creator has 100 (the spec's default).
    assert context.power_levels == {"users": {"@c:x": 100}}
    levels = {"users": {"@a:x": 50}}
    state[("m.room.power_levels", "")] = _state("m.room.power_levels", "", levels)
    assert room_context(state).power_levels == levels
    state[("m.room.power_levels", "")] = _state("m.room.power_levels", "", ["bad"])
    assert room_context(state).power_levels is None
