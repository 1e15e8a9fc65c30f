"""History visibility as a pure predicate (client-server-api "History visibility")."""

from __future__ import annotations

import pytest

from homeserver.sync.visibility import history_visibility_of, is_event_visible

MEMBERSHIPS = [None, "join", "invite", "leave", "ban", "knock"]


@pytest.mark.parametrize("membership", MEMBERSHIPS)
@pytest.mark.parametrize("joined_after", [False, True])
def test_world_readable_is_always_visible(membership: str | None, joined_after: bool) -> None:
    assert is_event_visible("world_readable", membership, joined_after=joined_after)


@pytest.mark.parametrize("visibility", ["shared", "invited", "joined"])
def test_joined_at_event_sees_it(visibility: str) -> None:
    assert is_event_visible(visibility, "join", joined_after=False)


def test_shared_rewards_a_later_join() -> None:
    assert is_event_visible("shared", None, joined_after=True)
    assert is_event_visible("shared", "leave", joined_after=True)
    assert not is_event_visible("shared", "leave", joined_after=False)


def test_invited_needs_invite_or_join_at_event() -> None:
    assert is_event_visible("invited", "invite", joined_after=False)
    assert not is_event_visible("invited", None, joined_after=True)
    assert not is_event_visible("invited", "leave", joined_after=True)


@pytest.mark.parametrize("membership", ["invite", "leave", "ban", None])
def test_joined_needs_join(membership: str | None) -> None:
    assert not is_event_visible("joined", membership, joined_after=True)


@pytest.mark.parametrize("membership", ["invite", "leave", "ban", "join"])
def test_own_membership_events_always_visible(membership: str) -> None:
    assert is_event_visible("joined", membership, joined_after=False, own_membership_event=True)


def test_visibility_content() -> None:
    assert history_visibility_of(None) == "shared"
    assert history_visibility_of({}) == "shared"
    assert history_visibility_of({"history_visibility": "joined"}) == "joined"
    # A value we do not know closes the room rather than opening it.
    assert history_visibility_of({"history_visibility": "everyone!"}) == "joined"
