"""History visibility: may this user see this event? A pure predicate.

Spec: client-server-api "History visibility". The inputs are the room's
``m.room.history_visibility`` at the event and the user's membership at the
event (for the user's own membership event, the membership it sets: a user
sees their own join). ``joined_after`` says whether the user joined the room
at some point after the event, which ``shared`` rooms reward; callers work it
out from the user's membership events.

The algorithm, in the spec's order:

1. ``world_readable``: allow.
2. The user's membership at the event was ``join``: allow.
3. ``shared`` and the user joined at any point after the event: allow.
4. ``invited`` and the user's membership at the event was ``invite``: allow.
5. Otherwise deny.

Before all of these, a user's own membership events are visible to them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

VISIBILITIES = ("world_readable", "shared", "invited", "joined")
DEFAULT_VISIBILITY = "shared"


def history_visibility_of(content: Mapping[str, Any] | None) -> str:
    """The visibility an ``m.room.history_visibility`` content sets (``shared`` if absent).

    An unknown value is treated as ``joined``, the most restrictive: a typo
    must not open a room's history.
    """
    if content is None:
        return DEFAULT_VISIBILITY
    value = content.get("history_visibility")
    if value is None:
        return DEFAULT_VISIBILITY
    return value if value in VISIBILITIES else "joined"


def is_event_visible(
    visibility: str,
    membership_at_event: str | None,
    *,
    joined_after: bool,
    own_membership_event: bool = False,
) -> bool:
    # A user always sees changes to their own membership, or a room they leave
    # (or an invite they reject) would never disappear from their client (Synapse
    # makes the same exception).
    if own_membership_event:
        return True
    if visibility == "world_readable":
        return True
    if membership_at_event == "join":
        return True
    if visibility == "shared" and joined_after:
        return True
    return visibility == "invited" and membership_at_event == "invite"
