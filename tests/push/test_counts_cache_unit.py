"""CountsCache against a model: whatever it answers equals counting from scratch."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from homeserver.push.counts_cache import TAIL_MAX, CountsCache, Entry
from homeserver.push.follower import queued_batch
from homeserver.push.processor import read_marks
from homeserver.storage.push import PushAction

USER, ROOM = "@bob:hs", "!room:hs"
THREADS = ["main", "$a", "$b"]


def action(
    position: int, thread: str, notify: bool, highlight: bool, user: str = USER
) -> PushAction:
    return PushAction(
        user_id=user,
        event_id=f"$e{position}",
        room_id=ROOM,
        stream_ordering=position,
        notify=notify,
        highlight=highlight,
        actions=[],
        ts=0,
        thread_id=thread,
    )


class Model:
    """The database: every action, receipt and own event; counts as the processor reads them."""

    def __init__(self) -> None:
        self.position = 0
        self.actions: list[tuple[int, str, bool, bool]] = []
        self.receipts: dict[str, int] = {}
        self.own: list[tuple[int, str]] = []

    def marks(self, upto: int) -> Any:
        own = [o for o in self.own if o[0] <= upto]
        return read_marks(self.receipts.items(), own[-1] if own else None)

    def counts(self, upto: int) -> dict[str, tuple[int, int]]:
        marks = self.marks(upto)
        out: dict[str, tuple[int, int]] = {}
        for position, thread, notify, highlight in self.actions:
            if marks.position_for(thread) < position <= upto:
                n, h = out.get(thread, (0, 0))
                out[thread] = (n + notify, h + highlight)
        return out

    def load(self, floor: int) -> Entry:
        """What thread_counts reads: marks with the latest own event, counts up to floor,
        the rows after it."""
        marks = self.marks(self.position)
        own = self.own[-1] if self.own else None
        tail = [a for a in self.actions if floor < a[0] and a[0] > marks.position_for(a[1])]
        return Entry.loaded(
            marks.unthreaded, marks.threads, own, floor, self.counts_with(marks, floor), tail
        )

    def counts_with(self, marks: Any, upto: int) -> dict[str, tuple[int, int]]:
        out: dict[str, tuple[int, int]] = {}
        for position, thread, notify, highlight in self.actions:
            if marks.position_for(thread) < position <= upto:
                n, h = out.get(thread, (0, 0))
                out[thread] = (n + notify, h + highlight)
        return out


operation = st.one_of(
    st.tuples(
        st.just("action"),
        st.sampled_from(THREADS),
        st.sampled_from([(True, False), (True, True), (False, True)]),
    ),
    st.tuples(st.just("own"), st.sampled_from(THREADS)),
    st.tuples(st.just("receipt"), st.sampled_from(["", *THREADS]), st.integers(0, 200)),
    st.tuples(st.just("load"), st.integers(0, 200)),
    st.tuples(st.just("query"), st.integers(0, 200)),
    st.tuples(st.just("redact")),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(operation, max_size=120))
def test_cache_answers_equal_counting_from_scratch(ops: list[Any]) -> None:
    model = Model()
    cache = CountsCache(max_entries=4)
    for op in ops:
        kind = op[0]
        if kind == "action":
            # The processor commits a one-event batch holding the action.
            model.position += 1
            notify, highlight = op[2]
            model.actions.append((model.position, op[1], notify, highlight))
            start = model.position - 1
            cache.apply_batch(
                start, model.position, [action(model.position, op[1], notify, highlight)], ()
            )
        elif kind == "own":
            # The user's own event is announced before the processor reaches it.
            model.position += 1
            model.own.append((model.position, op[1]))
            cache.on_new_event(USER, ROOM, model.position, None if op[1] == "main" else op[1])
            cache.apply_batch(model.position - 1, model.position, [], ())
        elif kind == "receipt":
            position = min(op[2], model.position)
            model.receipts[op[1]] = max(model.receipts.get(op[1], 0), position)
            cache.invalidate(USER, ROOM)
        elif kind == "load":
            stamp = cache.stamp()
            floor = min(op[1], model.position)
            entry = model.load(floor)
            if entry.size <= TAIL_MAX:
                cache.put(USER, ROOM, stamp, entry, model.position)
        elif kind == "redact":
            if model.actions:
                model.actions.pop(0)
            model.position += 1
            cache.apply_batch(model.position - 1, model.position, [], [ROOM])
        else:
            upto = min(op[1], model.position)
            found = cache.get(USER, ROOM, upto)
            if found is not None:
                assert found == model.counts(upto)
        found = cache.get(USER, ROOM, model.position)
        if found is not None:
            assert found == model.counts(model.position)


def test_a_load_that_raced_the_processor_is_completed_from_its_log() -> None:
    cache = CountsCache()
    cache.apply_batch(0, 10, [], ())
    stamp = cache.stamp()
    entry = Entry.loaded(0, {}, None, 10, {"main": (2, 0)})
    # While the read ran, the processor committed two batches with actions for the user.
    cache.apply_batch(10, 12, [action(11, "main", True, False)], ())
    cache.apply_batch(
        12, 13, [action(13, "$a", True, True), action(13, "main", True, False, "@x:hs")], ()
    )
    assert cache.put(USER, ROOM, stamp, entry, 10)
    assert cache.get(USER, ROOM, 13) == {"main": (3, 0), "$a": (1, 1)}
    assert cache.get(USER, ROOM, 12) == {"main": (3, 0)}
    assert cache.get(USER, ROOM, 9) is None  # before the floor: the database answers


def test_a_load_that_raced_an_invalidation_is_not_stored() -> None:
    cache = CountsCache()
    stamp = cache.stamp()
    cache.invalidate(USER, ROOM)
    assert not cache.put(USER, ROOM, stamp, Entry.loaded(0, {}, None, 0, {}), 0)
    stamp = cache.stamp()
    cache.on_new_event(USER, ROOM, 5, None)  # the user's own event: their mark moved
    assert not cache.put(USER, ROOM, stamp, Entry.loaded(0, {}, None, 0, {}), 0)
    stamp = cache.stamp()
    cache.apply_batch(0, 6, [], [ROOM])  # a redaction in the room
    assert not cache.put(USER, ROOM, stamp, Entry.loaded(0, {}, None, 0, {}), 0)
    stamp = cache.stamp()
    assert cache.put(USER, ROOM, stamp, Entry.loaded(0, {}, None, 6, {}), 6)


def test_a_load_older_than_the_log_is_not_stored() -> None:
    cache = CountsCache()
    stamp = cache.stamp()
    for n in range(100):
        cache.apply_batch(n, n + 1, [], ())
    assert not cache.put(USER, ROOM, stamp, Entry.loaded(0, {}, None, 0, {}), 0)


def test_forgotten_generations_refuse_older_loads() -> None:
    cache = CountsCache(max_entries=1)
    stamp = cache.stamp()
    cache.invalidate(USER, ROOM)
    for n in range(10):  # pushes the user's generation out of the bounded map
        cache.invalidate(f"@u{n}:hs", ROOM)
    assert not cache.put(USER, ROOM, stamp, Entry.loaded(0, {}, None, 0, {}), 0)


def test_entries_are_bounded() -> None:
    cache = CountsCache(max_entries=3)
    for n in range(10):
        assert cache.put(f"@u{n}:hs", ROOM, cache.stamp(), Entry.loaded(0, {}, None, 0, {}), 0)
    assert len(cache) == 3
    many = [action(p, "main", True, False) for p in range(1, 500)]
    cache.put(USER, ROOM, cache.stamp(), Entry.loaded(0, {}, None, 0, {}), 0)
    cache.apply_batch(0, 499, many, ())
    entry = cache._entries[(USER, ROOM)]
    assert entry.size <= TAIL_MAX
    assert cache.get(USER, ROOM, 499) == {"main": (499, 0)}


def test_queued_batch_needs_every_position() -> None:
    events: Any = {p: f"e{p}" for p in (3, 4, 5, 7)}
    assert queued_batch(events, 2, 5, 200) == ["e3", "e4", "e5"]
    assert queued_batch(events, 2, 4, 200) == ["e3", "e4"]
    assert queued_batch(events, 2, 5, 2) == ["e3", "e4"]
    assert queued_batch(events, 2, 7, 200) is None  # 6 was never announced
    assert queued_batch(events, 1, 5, 200) is None
    assert queued_batch(events, 5, 5, 200) is None


def test_a_load_behind_a_redaction_in_its_room_is_not_stored() -> None:
    cache = CountsCache()
    cache.apply_batch(0, 10, [], ())
    stamp = cache.stamp()
    # The read ran at 10; the batch up to 12 deletes actions the read may have counted.
    cache.apply_batch(10, 12, [], [ROOM])
    entry = Entry.loaded(0, {}, None, 10, {"main": (2, 0)})
    assert not cache.put(USER, ROOM, cache.stamp(), entry, 10)
    assert not cache.put(USER, ROOM, stamp, entry, 10)
    # Another room's redaction does not matter.
    cache.apply_batch(12, 13, [], ["!other:hs"])
    assert cache.put(USER, ROOM, cache.stamp(), Entry.loaded(0, {}, None, 12, {}), 12)


def test_reset_forgets_a_batch_that_was_not_written() -> None:
    cache = CountsCache()
    cache.put(USER, ROOM, cache.stamp(), Entry.loaded(0, {}, None, 0, {"main": (1, 0)}), 0)
    stamp = cache.stamp()
    cache.apply_batch(0, 5, [action(5, "main", True, False)], ())
    assert cache.get(USER, ROOM, 5) == {"main": (2, 0)}
    cache.reset(0)  # the write of (0, 5] failed
    assert cache.get(USER, ROOM, 5) is None
    assert not cache.put(USER, ROOM, stamp, Entry.loaded(0, {}, None, 0, {"main": (1, 0)}), 0)
    # A load after the reset, then the redone batch: counted once.
    cache.put(USER, ROOM, cache.stamp(), Entry.loaded(0, {}, None, 0, {"main": (1, 0)}), 0)
    cache.apply_batch(0, 5, [action(5, "main", True, False)], ())
    assert cache.get(USER, ROOM, 5) == {"main": (2, 0)}
