"""Reading and setting room state: ``GET /rooms/{id}/state[/{type}/{key}]`` and ``PUT``.

Spec: Client-Server API "Getting events for a room" and "Sending events to a
room". Only those who may see the room read its state (see
``common.readable_state_ids``); the auth rules decide who may set it.
"""

from __future__ import annotations

from typing import Any

from homeserver.errors import MatrixError, invalid_param, not_found
from homeserver.events.creation import EventCreationService
from homeserver.rooms.common import check_event_content, readable_state_ids, require_room
from homeserver.rooms.directory import DirectoryService, parse_room_alias
from homeserver.storage.events import EventStore, StoredEvent


class RoomStateService:
    def __init__(
        self,
        event_store: EventStore,
        events: EventCreationService,
        directory: DirectoryService,
        server_name: str,
    ) -> None:
        self.event_store = event_store
        self.events = events
        self.directory = directory
        self.server_name = server_name

    async def get_state(self, user_id: str, room_id: str) -> list[StoredEvent]:
        state = await readable_state_ids(self.event_store, room_id, user_id)
        found = await self.event_store.get_events(state.values())
        return [found[eid] for _, eid in sorted(state.items()) if eid in found]

    async def get_state_event(
        self, user_id: str, room_id: str, event_type: str, state_key: str
    ) -> StoredEvent:
        state = await readable_state_ids(self.event_store, room_id, user_id)
        event_id = state.get((event_type, state_key))
        event = await self.event_store.get_event(event_id) if event_id else None
        if event is None:
            raise not_found(f"No {event_type} state with key {state_key!r} in this room")
        return event

    async def set_state(
        self,
        user_id: str,
        room_id: str,
        event_type: str,
        state_key: str,
        content: dict[str, Any],
    ) -> str:
        """Send a state event; returns its ID (or the current one if nothing would change)."""
        await require_room(self.event_store, room_id)
        check_event_content(
            room_id=room_id,
            sender=user_id,
            event_type=event_type,
            state_key=state_key,
            content=content,
            server_name=self.server_name,
        )
        if event_type == "m.room.canonical_alias":
            await self._check_canonical_alias(room_id, content)
        current = await self.event_store.get_current_state_ids(room_id)
        existing_id = current.get((event_type, state_key))
        if existing_id is not None:
            existing = await self.event_store.get_event(existing_id)
            # Same sender, same content: Synapse answers with the existing event.
            if (
                existing is not None
                and existing.sender == user_id
                and existing.pdu.get("content") == content
            ):
                return existing.event_id
        event = await self.events.create_and_persist_event(
            room_id, event_type, user_id, content, state_key
        )
        return event.event_id

    async def _check_canonical_alias(self, room_id: str, content: dict[str, Any]) -> None:
        """Aliases in ``m.room.canonical_alias`` must be valid and point to this room
        (spec room_state.yaml: 400 ``M_INVALID_PARAM`` / ``M_BAD_ALIAS``)."""
        aliases: list[Any] = []
        if content.get("alias") is not None:
            aliases.append(content["alias"])
        alt = content.get("alt_aliases")
        if alt is not None:
            if not isinstance(alt, list):
                raise invalid_param("'alt_aliases' must be a list of aliases")
            aliases.extend(alt)
        for alias in aliases:
            if not isinstance(alias, str):
                raise invalid_param("Aliases must be strings")
            _, server = parse_room_alias(alias)
            if server != self.server_name:
                continue  # remote aliases cannot be checked without federation
            try:
                target = await self.directory.resolve_alias(alias)
            except MatrixError:
                target = None
            if target != room_id:
                raise MatrixError(
                    400, "M_BAD_ALIAS", f"The alias {alias!r} does not point to this room."
                )
