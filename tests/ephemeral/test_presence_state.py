"""The pure presence rules: what others see, from what was set and the time."""

from __future__ import annotations

import attrs
from hypothesis import given
from hypothesis import strategies as st

from homeserver.presence import (
    OFFLINE,
    ONLINE,
    STATES,
    UNAVAILABLE,
    PresenceTimeouts,
    bump_active,
    new_row,
    presence_content,
    set_state,
    syncing,
    visible_presence,
)

T = PresenceTimeouts(idle_after_ms=300_000, offline_after_ms=1_800_000)
NOW = 1_700_000_000_000


def test_a_new_user_is_offline() -> None:
    row = new_row("@a:x")
    assert visible_presence(row, NOW, T) == OFFLINE
    assert presence_content(row, NOW, T) == {"presence": OFFLINE, "currently_active": False}


def test_online_then_idle_then_offline() -> None:
    row = set_state(new_row("@a:x"), ONLINE, "lunch", NOW)
    assert visible_presence(row, NOW, T) == ONLINE
    content = presence_content(row, NOW + 1000, T)
    assert content == {
        "presence": ONLINE,
        "last_active_ago": 1000,
        "currently_active": True,
        "status_msg": "lunch",
    }
    assert presence_content(row, NOW + 61_000, T)["currently_active"] is False
    assert visible_presence(row, NOW + 299_999, T) == ONLINE
    assert visible_presence(row, NOW + 300_000, T) == UNAVAILABLE
    assert visible_presence(row, NOW + 1_800_000, T) == OFFLINE
    assert presence_content(row, NOW + 1_800_000, T)["status_msg"] == "lunch"


def test_syncing_keeps_an_idle_user_unavailable_not_offline() -> None:
    row = set_state(new_row("@a:x"), ONLINE, None, NOW)
    later = NOW + 1_700_000
    row = syncing(row, ONLINE, later, T)
    assert visible_presence(row, later + 1_000_000, T) == UNAVAILABLE
    assert visible_presence(row, later + 1_800_000, T) == OFFLINE


def test_sync_brings_an_offline_user_online_and_active() -> None:
    row = syncing(new_row("@a:x"), ONLINE, NOW, T)
    assert row.state == ONLINE and row.last_active_ts == NOW
    assert visible_presence(row, NOW, T) == ONLINE
    # Timed out to offline: the next sync brings them back.
    gone = NOW + 2_000_000
    assert visible_presence(row, gone, T) == OFFLINE
    back = syncing(row, ONLINE, gone, T)
    assert visible_presence(back, gone, T) == ONLINE


def test_set_presence_offline_leaves_presence_alone() -> None:
    row = set_state(new_row("@a:x"), ONLINE, None, NOW)
    assert syncing(row, OFFLINE, NOW + 5, T) == row


def test_sync_does_not_override_a_chosen_unavailable() -> None:
    row = set_state(new_row("@a:x"), UNAVAILABLE, "away", NOW)
    row = syncing(row, ONLINE, NOW + 10, T)
    assert row.state == UNAVAILABLE
    assert syncing(set_state(row, ONLINE, None, NOW), UNAVAILABLE, NOW, T).state == UNAVAILABLE


def test_explicit_offline_is_offline_whatever_the_activity() -> None:
    row = set_state(bump_active(new_row("@a:x"), NOW), OFFLINE, None, NOW)
    assert visible_presence(row, NOW, T) == OFFLINE
    assert presence_content(row, NOW, T)["currently_active"] is False


def test_activity_brings_back_an_idle_user() -> None:
    row = set_state(new_row("@a:x"), ONLINE, None, NOW)
    idle = NOW + 400_000
    assert visible_presence(row, idle, T) == UNAVAILABLE
    assert visible_presence(bump_active(row, idle), idle, T) == ONLINE


@given(
    state=st.sampled_from(STATES),
    active=st.integers(0, 10**7),
    synced=st.integers(0, 10**7),
    elapsed=st.integers(0, 10**7),
)
def test_visible_presence_properties(state: str, active: int, synced: int, elapsed: int) -> None:
    row = attrs.evolve(new_row("@a:x"), state=state, last_active_ts=active, last_sync_ts=synced)
    now = max(active, synced) + elapsed
    visible = visible_presence(row, now, T)
    assert visible in STATES
    # Never more present than the user chose to be.
    assert STATES.index(visible) >= STATES.index(state)
    # Long silence is always offline.
    if elapsed >= T.offline_after_ms:
        assert visible == OFFLINE
    content = presence_content(row, now, T)
    assert content["presence"] == visible
    assert content.get("last_active_ago", 0) >= 0
