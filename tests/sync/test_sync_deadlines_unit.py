"""The shared long-poll timer (``homeserver/sync/deadlines.py``), on trio's mock clock."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from homeserver.sync.deadlines import MIN_COMPACT, Deadlines


class _Target:
    def __init__(self, name: str, log: list[tuple[str, float]]) -> None:
        self.name = name
        self.log = log

    def wake(self) -> None:
        self.log.append((self.name, trio.current_time()))


@pytest.fixture
def mock_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


async def test_targets_wake_at_their_deadlines_in_order(mock_clock: trio.testing.MockClock) -> None:
    log: list[tuple[str, float]] = []
    deadlines = Deadlines()
    start = trio.current_time()
    deadlines.add(start + 5, _Target("five", log))
    deadlines.add(start + 3, _Target("three", log))  # earlier than the armed one
    cancelled = deadlines.add(start + 4, _Target("four", log))
    deadlines.cancel(cancelled)
    deadlines.cancel(cancelled)  # twice is harmless
    assert len(deadlines) == 2
    await trio.sleep(10)
    assert log == [("three", start + 3), ("five", start + 5)]
    assert len(deadlines) == 0
    # The timer ended with nothing left; a new deadline starts it again.
    deadlines.add(trio.current_time() + 1, _Target("again", log))
    await trio.sleep(2)
    assert log[-1] == ("again", start + 11)


async def test_a_woken_entry_cancelled_later_changes_nothing(
    mock_clock: trio.testing.MockClock,
) -> None:
    log: list[tuple[str, float]] = []
    deadlines = Deadlines()
    entry = deadlines.add(trio.current_time() + 1, _Target("a", log))
    await trio.sleep(2)
    deadlines.cancel(entry)
    assert [name for name, _ in log] == ["a"]
    assert len(deadlines) == 0


async def test_cancelled_entries_do_not_pile_up(mock_clock: trio.testing.MockClock) -> None:
    log: list[tuple[str, float]] = []
    deadlines = Deadlines()
    now = trio.current_time()
    kept = deadlines.add(now + 60, _Target("kept", log))
    for i in range(10 * MIN_COMPACT):
        deadlines.cancel(deadlines.add(now + 30 + i / 1000, _Target(f"t{i}", log)))
    assert len(deadlines) == 1
    assert len(deadlines._heap) <= 2 * MIN_COMPACT + 2
    await trio.sleep(61)
    assert log == [("kept", now + 60)]
    assert kept.target is None
