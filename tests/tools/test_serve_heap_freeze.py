"""The serving process freezes what startup left alive, out of the collector's walks."""

from __future__ import annotations

import gc
import linecache

import attrs

from tools.serve import freeze_startup_heap


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_startup_objects_are_frozen_and_later_garbage_is_still_collected() -> None:
    kept = [_Cycle() for _ in range(100)]
    try:
        frozen = freeze_startup_heap()
        assert frozen == gc.get_freeze_count() > 0
        # Objects alive at the freeze are out of every generation a collection walks.
        tracked = {id(o) for o in gc.get_objects()}
        assert not any(id(o) in tracked for o in kept)
        # Garbage made after the freeze is still collected.
        for _ in range(50):
            _Cycle()
        assert gc.collect() >= 50
    finally:
        gc.unfreeze()
    assert gc.get_freeze_count() == 0


def test_the_generated_sources_in_linecache_are_dropped() -> None:
    @attrs.define
    class Generated:  # attrs registers its methods' source in linecache
        x: int

    assert any(name.startswith("<attrs generated") for name in linecache.cache)
    try:
        freeze_startup_heap()
        assert linecache.cache == {}
        assert Generated(1) == Generated(1)  # the generated methods still work
    finally:
        gc.unfreeze()
