"""State groups: snapshots and deltas read back exactly, with bounded delta chains."""

from __future__ import annotations

import random

import pytest
import sqlalchemy as sa

from homeserver.storage.database import Database
from homeserver.storage.event_tables import state_group_entries, state_groups
from homeserver.storage.state import (
    SNAPSHOT_INTERVAL,
    StateGroupCache,
    StateKey,
    diff_state,
    load_state_group,
    store_state_group,
)

ROOM = "!room:test.example"


def test_diff_state_marks_removals() -> None:
    old = {("a", ""): "$1", ("b", ""): "$2", ("c", ""): "$3"}
    new = {("a", ""): "$1", ("b", ""): "$9", ("d", ""): "$4"}
    assert diff_state(old, new) == {("b", ""): "$9", ("d", ""): "$4", ("c", ""): None}
    assert diff_state(new, new) == {}


async def test_long_chain_of_changes_reads_back_every_group(database: Database) -> None:
    """350 successive changes (adds, replacements, removals) over a 60-key state."""
    rng = random.Random(1234)
    state: dict[StateKey, str] = {("m.room.member", f"@u{i}:x"): f"$m{i}" for i in range(60)}
    expected: dict[int, dict[StateKey, str]] = {}

    def write_chain(conn: sa.Connection) -> None:
        nonlocal state
        group = store_state_group(conn, ROOM, state)
        expected[group] = dict(state)
        for step in range(350):
            new = dict(state)
            roll = rng.random()
            key = ("m.room.member", f"@u{rng.randrange(80)}:x")
            if roll < 0.2 and key in new:
                del new[key]
            else:
                new[key] = f"$s{step}"
            group = store_state_group(conn, ROOM, new, prev_group=group, prev_state=state)
            expected[group] = dict(new)
            state = new

    await database.run(write_chain)

    def check(conn: sa.Connection) -> tuple[int, int, int]:
        for group, want in expected.items():
            assert load_state_group(conn, group) == want, group
        depth = conn.execute(sa.select(sa.func.max(state_groups.c.delta_depth))).scalar_one()
        snapshots = conn.execute(
            sa.select(sa.func.count()).where(state_groups.c.delta_depth == 0)
        ).scalar_one()
        rows = conn.execute(
            sa.select(sa.func.count()).select_from(state_group_entries)
        ).scalar_one()
        return depth, snapshots, rows

    depth, snapshots, rows = await database.read(check)
    # Chains are cut: at most SNAPSHOT_INTERVAL deltas, so a few snapshots over 350 changes.
    assert depth == SNAPSHOT_INTERVAL
    assert snapshots == 4
    # Deltas hold one row each; only snapshots hold the whole state.
    assert rows < 350 + snapshots * 80


async def test_large_change_is_stored_as_snapshot(database: Database) -> None:
    base = {("k", str(i)): f"$a{i}" for i in range(10)}
    replaced = {("k", str(i)): f"$b{i}" for i in range(10)}
    one_more = {**base, ("k", "new"): "$c"}

    def write(conn: sa.Connection) -> tuple[int, int, int]:
        g0 = store_state_group(conn, ROOM, base)
        g1 = store_state_group(conn, ROOM, replaced, prev_group=g0, prev_state=base)
        g2 = store_state_group(conn, ROOM, one_more, prev_group=g0, prev_state=base)
        return g0, g1, g2

    g0, g1, g2 = await database.run(write)

    def read(conn: sa.Connection) -> dict[int, tuple[int | None, int]]:
        rows = conn.execute(sa.select(state_groups)).all()
        return {row.id: (row.prev_group, row.delta_depth) for row in rows}

    shape = await database.read(read)
    assert shape[g0] == (None, 0)
    assert shape[g1] == (None, 0)  # every key changed: a delta would be no smaller
    assert shape[g2] == (g0, 1)
    assert await database.read(lambda c: load_state_group(c, g1)) == replaced
    assert await database.read(lambda c: load_state_group(c, g2)) == one_more


async def test_cache_serves_and_shortens_reads(database: Database) -> None:
    s0 = {("a", ""): "$1"}
    s1 = {("a", ""): "$1", ("b", ""): "$2"}
    s2 = {("b", ""): "$2"}

    def write(conn: sa.Connection) -> tuple[int, int, int]:
        g0 = store_state_group(conn, ROOM, s0)
        g1 = store_state_group(conn, ROOM, s1, prev_group=g0, prev_state=s0)
        g2 = store_state_group(conn, ROOM, s2, prev_group=g1, prev_state=s1)
        return g0, g1, g2

    g0, g1, g2 = await database.run(write)
    cache = StateGroupCache(max_entries=2)
    # A wrong map planted for an ancestor proves the cached ancestor is what the read used.
    cache.put(g1, {("planted", ""): "$x", ("b", ""): "$2", ("a", ""): "$1"})
    got = await database.read(lambda c: load_state_group(c, g2, cache))
    assert got == {("planted", ""): "$x", ("b", ""): "$2"}
    assert await database.read(lambda c: load_state_group(c, g2)) == s2
    cache.put(g0, s0)
    cache.put(g2, s2)
    assert cache.get(g1) is None  # evicted: least recently used of three
    assert cache.get(g2) == s2


async def test_unknown_group_raises(database: Database) -> None:
    with pytest.raises(KeyError):
        await database.read(lambda c: load_state_group(c, 424242))


def test_cache_is_bounded_by_total_keys() -> None:
    cache = StateGroupCache(max_entries=100, max_keys=10)
    cache.put(1, {("a", str(i)): "$x" for i in range(4)})
    cache.put(2, {("b", str(i)): "$x" for i in range(4)})
    assert cache.statistics()["keys"] == 8
    cache.put(3, {("c", str(i)): "$x" for i in range(4)})
    # 12 keys > 10: the least recently used group goes.
    assert cache.get(1) is None and cache.get(2) is not None and cache.get(3) is not None
    assert cache.statistics()["keys"] == 8
    cache.put(4, {("d", str(i)): "$x" for i in range(50)})
    # One group larger than the bound is still kept, alone.
    stats = cache.statistics()
    assert (stats["groups"], stats["keys"]) == (1, 50)
    assert cache.get(4) is not None
