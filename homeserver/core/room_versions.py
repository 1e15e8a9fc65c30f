"""Room versions as data: one frozen rules object per version, with feature flags.

Every behaviour that differs between versions reads a flag here instead of
comparing version strings, so adding an older version (v6-v9) later means adding
one entry. Spec: ``content/rooms/v10.md``, ``v11.md``, ``v12.md``.
"""

from __future__ import annotations

from typing import Literal

import attrs


@attrs.frozen
class RoomVersion:
    identifier: str
    # "v2" for v10/v11, "v2.1" (MSC4297: empty starting map, conflicted state subgraph) for v12.
    state_res: Literal["v2", "v2.1"]
    # v10: power level values must be integers, not strings (MSC3667).
    strict_integer_power_levels: bool
    # v10: the "knock_restricted" join rule exists (MSC3787).
    knock_restricted_join_rule: bool
    # v11 (MSC2176): redaction keeps all of m.room.create content, "invite" in power
    # levels, "signed" in member third_party_invite; drops top-level origin/membership/prev_state.
    updated_redaction_rules: bool
    # v11 (MSC2175): m.room.create has no "creator"; the creator is the event's sender.
    implicit_room_creator: bool
    # v12 (MSC4291): the room ID is "!" + the create event's reference hash; the create
    # event carries no room_id and is never listed in auth_events.
    room_id_from_create_event: bool
    # v12 (MSC4289): the create event's sender and content.additional_creators have
    # infinite power and cannot appear in m.room.power_levels users.
    privileged_creators: bool


V10 = RoomVersion(
    identifier="10",
    state_res="v2",
    strict_integer_power_levels=True,
    knock_restricted_join_rule=True,
    updated_redaction_rules=False,
    implicit_room_creator=False,
    room_id_from_create_event=False,
    privileged_creators=False,
)
V11 = attrs.evolve(V10, identifier="11", updated_redaction_rules=True, implicit_room_creator=True)
V12 = attrs.evolve(
    V11,
    identifier="12",
    state_res="v2.1",
    room_id_from_create_event=True,
    privileged_creators=True,
)

KNOWN_ROOM_VERSIONS: dict[str, RoomVersion] = {v.identifier: v for v in (V10, V11, V12)}
DEFAULT_ROOM_VERSION = "10"


def get_room_version(identifier: str) -> RoomVersion | None:
    return KNOWN_ROOM_VERSIONS.get(identifier)
