"""A tiny in-memory room for auth rule tests: build events, check them, apply them.

No tests here; the auth rule test modules import :class:`Room`. Events carry readable
event IDs, and their ``auth_events`` come from the auth events selection over the room's
current state, as a real server would pick them.
"""

from __future__ import annotations

from typing import Any

from homeserver.core.auth_rules import auth_types_for_event, check_auth
from homeserver.core.room_versions import V10, V11, V12, RoomVersion

ALICE = "@alice:a.example"
BOB = "@bob:b.example"
CAROL = "@carol:c.example"
DAVE = "@dave:a.example"

VERSIONS = [V10, V11, V12]
VERSION_IDS = ["v10", "v11", "v12"]

Key = tuple[str, str]


class Room:
    """State plus an event factory; ``send`` checks an event and applies it if allowed."""

    def __init__(
        self,
        version: RoomVersion,
        creator: str = ALICE,
        create_content: dict[str, Any] | None = None,
    ) -> None:
        self.version = version
        self.state: dict[Key, dict[str, Any]] = {}
        self.events: dict[str, dict[str, Any]] = {}
        self._counter = 0
        self.last_event_id: str | None = None
        content: dict[str, Any] = {"room_version": version.identifier}
        if not version.implicit_room_creator:
            content["creator"] = creator
        content.update(create_content or {})
        self.create = self.event("m.room.create", creator, content, state_key="", prev_events=[])
        self.apply(self.create)

    @property
    def room_id(self) -> str:
        if self.version.room_id_from_create_event:
            return "!" + self.create["event_id"][1:]
        return "!room:a.example"

    def event(
        self,
        event_type: str,
        sender: str,
        content: dict[str, Any],
        state_key: str | None = None,
        prev_events: list[str] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        self._counter += 1
        event: dict[str, Any] = {
            "event_id": f"${self._counter:03d}-{event_type}",
            "type": event_type,
            "sender": sender,
            "content": content,
            "origin_server_ts": self._counter,
            "depth": self._counter,
            "prev_events": (
                prev_events
                if prev_events is not None
                else ([self.last_event_id] if self.last_event_id else [])
            ),
        }
        if state_key is not None:
            event["state_key"] = state_key
        if event_type != "m.room.create" or not self.version.room_id_from_create_event:
            event["room_id"] = self.room_id
        selected = auth_types_for_event(self.version, event)
        event["auth_events"] = sorted(
            self.state[key]["event_id"] for key in selected if key in self.state
        )
        event.update(extra)
        return event

    def member(
        self, sender: str, membership: str, target: str | None = None, **content: Any
    ) -> dict[str, Any]:
        return self.event(
            "m.room.member",
            sender,
            {"membership": membership, **content},
            state_key=target or sender,
        )

    def check(self, event: dict[str, Any]) -> None:
        check_auth(self.version, event, self.state)

    def apply(self, event: dict[str, Any]) -> dict[str, Any]:
        self.events[event["event_id"]] = event
        self.last_event_id = event["event_id"]
        if "state_key" in event:
            self.state[(event["type"], event["state_key"])] = event
        return event

    def send(self, event: dict[str, Any]) -> dict[str, Any]:
        self.check(event)
        return self.apply(event)

    def set_power_levels(self, sender: str, content: dict[str, Any]) -> dict[str, Any]:
        return self.send(self.event("m.room.power_levels", sender, content, state_key=""))

    def set_join_rule(self, sender: str, join_rule: str, **content: Any) -> dict[str, Any]:
        return self.send(
            self.event(
                "m.room.join_rules", sender, {"join_rule": join_rule, **content}, state_key=""
            )
        )


def admin_users(version: RoomVersion, **users: int) -> dict[str, int]:
    """A ``users`` map giving Alice 100 where she is not already an (infinite) creator."""
    result = dict(users)
    if not version.privileged_creators:
        result[ALICE] = 100
    return result


def public_room(version: RoomVersion, **power_levels: Any) -> Room:
    """Alice creates, joins, sets power levels (she has 100) and a public join rule; Bob joins."""
    room = Room(version)
    room.send(room.member(ALICE, "join"))
    content = {"users": admin_users(version)}
    content.update(power_levels)
    room.set_power_levels(ALICE, content)
    room.set_join_rule(ALICE, "public")
    room.send(room.member(BOB, "join"))
    return room
