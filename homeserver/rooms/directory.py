"""Room aliases and the public room directory.

Spec: Client-Server API "Room aliases" (``directory.yaml``) and "Listing rooms"
(``list_public_rooms.yaml``). Aliases on other servers need a federation
query, which does not exist yet: they answer 404 ``M_NOT_FOUND``.

Who may do what (the spec leaves it to servers; these follow Synapse):
creating an alias needs membership of the room; deleting one needs to be its
creator or to have the power to send ``m.room.canonical_alias``; publishing a
room in the directory needs that same power.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from homeserver.core.identifiers import is_valid_server_name
from homeserver.core.power_levels import power_levels_from_state
from homeserver.core.room_versions import get_room_version
from homeserver.errors import MatrixError, forbidden, invalid_param, not_found
from homeserver.rooms.common import require_room
from homeserver.storage import directory as store
from homeserver.storage import rooms as rooms_db
from homeserver.storage.database import Database
from homeserver.storage.events import EventStore, StoredEvent

MAX_ALIAS_BYTES = 255
MAX_PUBLIC_ROOMS_LIMIT = 500
MAX_SEARCH_TERM_LENGTH = 256


def parse_room_alias(alias: str) -> tuple[str, str]:
    """``#localpart:server`` -> (localpart, server); 400 ``M_INVALID_PARAM`` otherwise."""
    if not alias.startswith("#") or len(alias.encode()) > MAX_ALIAS_BYTES:
        raise invalid_param(f"{alias!r} is not a valid room alias")
    localpart, sep, server = alias[1:].partition(":")
    if not sep or not localpart or "\x00" in localpart or not is_valid_server_name(server):
        raise invalid_param(f"{alias!r} is not a valid room alias")
    return localpart, server


_ALIAS_LOCALPART_RE = re.compile(r"^[^:\s\x00#]+$")


def alias_from_name(name: str, server_name: str) -> str:
    """``room_alias_name`` of ``/createRoom`` -> a full alias on our server."""
    if not _ALIAS_LOCALPART_RE.match(name):
        raise invalid_param("'room_alias_name' may not contain ':', '#' or whitespace")
    alias = f"#{name}:{server_name}"
    if len(alias.encode()) > MAX_ALIAS_BYTES:
        raise invalid_param("'room_alias_name' is too long")
    return alias


@attrs.frozen
class PublicRoomsQuery:
    limit: int | None = None
    since: str | None = None
    search_term: str | None = None
    # None: any room type; otherwise the wanted types (None in the list: rooms without type).
    room_types: Sequence[str | None] | None = None


def _content(event: StoredEvent | None) -> Mapping[str, Any]:
    if event is None:
        return {}
    content = event.pdu.get("content")
    return content if isinstance(content, dict) else {}


def room_summary(
    room_id: str, state: Mapping[str, Mapping[str, Any]], joined: int
) -> dict[str, Any]:
    """A ``/publicRooms`` chunk entry (``PublishedRoomsChunk``) from the contents of the
    room's current summary state, by event type (all with the empty state key)."""

    def field(event_type: str, key: str) -> Any:
        return state.get(event_type, {}).get(key)

    entry: dict[str, Any] = {
        "room_id": room_id,
        "num_joined_members": joined,
        "world_readable": field("m.room.history_visibility", "history_visibility")
        == "world_readable",
        "guest_can_join": field("m.room.guest_access", "guest_access") == "can_join",
    }
    for event_type, key, name in (
        ("m.room.name", "name", "name"),
        ("m.room.topic", "topic", "topic"),
        ("m.room.canonical_alias", "alias", "canonical_alias"),
        ("m.room.avatar", "url", "avatar_url"),
    ):
        value = field(event_type, key)
        # An empty name counts as no name (matrix_brief 6 #6).
        if isinstance(value, str) and value:
            entry[name] = value
    join_rule = field("m.room.join_rules", "join_rule")
    entry["join_rule"] = join_rule if isinstance(join_rule, str) else "invite"
    room_type = field("m.room.create", "type")
    if isinstance(room_type, str):
        entry["room_type"] = room_type
    return entry


def _matches(entry: Mapping[str, Any], query: PublicRoomsQuery) -> bool:
    if query.room_types is not None and entry.get("room_type") not in query.room_types:
        return False
    if query.search_term:
        term = query.search_term.casefold()
        fields = (entry.get("name"), entry.get("topic"), entry.get("canonical_alias"))
        return any(isinstance(f, str) and term in f.casefold() for f in fields)
    return True


def _parse_since(since: str | None) -> int:
    if since is None or since == "":
        return 0
    if not since.startswith("p") or not (since.isascii() and since[1:].isdigit()) or len(since) > 12:
        raise invalid_param("Invalid 'since' token")
    return int(since[1:])


class DirectoryService:
    def __init__(self, database: Database, event_store: EventStore, server_name: str) -> None:
        self.database = database
        self.event_store = event_store
        self.server_name = server_name

    # -- aliases --------------------------------------------------------------------------

    def _require_local(self, alias: str) -> None:
        _, server = parse_room_alias(alias)
        if server != self.server_name:
            raise not_found("Room aliases on other servers need federation (not supported yet)")

    async def alias_exists(self, alias: str) -> bool:
        return await self.database.read(lambda conn: store.get_alias(conn, alias)) is not None

    async def create_alias(self, alias: str, room_id: str, creator: str) -> None:
        try:
            await self.database.run(lambda conn: store.create_alias(conn, alias, room_id, creator))
        except store.AliasExists:
            raise MatrixError(409, "M_UNKNOWN", f"Room alias {alias} already exists.") from None

    async def put_alias(self, requester: str, alias: str, room_id: str) -> None:
        self._require_local(alias)
        await require_room(self.event_store, room_id)
        members = await self.event_store.get_members(room_id, "join")
        if requester not in members:
            raise forbidden("You must be joined to the room to give it an alias")
        await self.create_alias(alias, room_id, requester)

    async def resolve_alias(self, alias: str) -> str:
        self._require_local(alias)
        row = await self.database.read(lambda conn: store.get_alias(conn, alias))
        if row is None:
            raise not_found(f"Room alias {alias} not found.")
        return row.room_id

    async def delete_alias(self, requester: str, alias: str) -> None:
        self._require_local(alias)
        row = await self.database.read(lambda conn: store.get_alias(conn, alias))
        if row is None:
            raise not_found(f"Room alias {alias} not found.")
        if row.creator != requester and not await self._may_send_state(
            requester, row.room_id, "m.room.canonical_alias"
        ):
            raise forbidden("You may not delete this alias")
        await self.database.run(lambda conn: store.delete_alias(conn, alias))

    async def aliases_of_room(self, room_id: str) -> list[str]:
        return await self.database.read(lambda conn: store.aliases_of_room(conn, room_id))

    # -- the public room list ------------------------------------------------------------

    async def get_visibility(self, room_id: str) -> str:
        await require_room(self.event_store, room_id)
        return await self.database.read(lambda conn: store.get_visibility(conn, room_id))

    async def set_visibility(self, requester: str, room_id: str, visibility: str) -> None:
        await require_room(self.event_store, room_id)
        if not await self._may_send_state(requester, room_id, "m.room.canonical_alias"):
            raise forbidden("You may not change this room's directory visibility")
        await self.store_visibility(room_id, visibility)

    async def store_visibility(self, room_id: str, visibility: str) -> None:
        await self.database.run(lambda conn: store.set_visibility(conn, room_id, visibility))

    async def public_room_ids(self) -> list[str]:
        return await self.database.read(store.public_room_ids)

    async def public_rooms(self, query: PublicRoomsQuery) -> dict[str, Any]:
        """One page of the directory: busiest rooms first, then by room ID (a stable order)."""
        offset = _parse_since(query.since)
        room_ids = await self.public_room_ids()
        counts = await self.database.read(lambda conn: rooms_db.joined_counts(conn, room_ids))
        states = await self.database.read(lambda conn: rooms_db.summary_state(conn, room_ids))
        entries = []
        for room_id in room_ids:
            entry = room_summary(room_id, states.get(room_id, {}), counts.get(room_id, 0))
            if _matches(entry, query):
                entries.append(entry)
        entries.sort(key=lambda e: (-e["num_joined_members"], e["room_id"]))
        limit = min(query.limit or MAX_PUBLIC_ROOMS_LIMIT, MAX_PUBLIC_ROOMS_LIMIT)
        page = entries[offset : offset + limit]
        body: dict[str, Any] = {"chunk": page, "total_room_count_estimate": len(entries)}
        if offset + limit < len(entries):
            body["next_batch"] = f"p{offset + limit}"
        if offset > 0:
            body["prev_batch"] = f"p{max(0, offset - limit)}"
        return body

    # -- helpers ---------------------------------------------------------------------------

    async def _may_send_state(self, user_id: str, room_id: str, event_type: str) -> bool:
        room = await self.event_store.get_room(room_id)
        if room is None:
            return False
        state = await self.event_store.get_current_state(room_id)
        member = state.get(("m.room.member", user_id))
        if member is None or _content(member).get("membership") != "join":
            return False
        version = get_room_version(room.room_version)
        if version is None:
            return False
        create = state.get(("m.room.create", ""))
        power = state.get(("m.room.power_levels", ""))
        levels = power_levels_from_state(
            version,
            None if create is None else {**create.pdu, "event_id": create.event_id},
            None if power is None else power.pdu,
        )
        required = levels.required_level(event_type, is_state=True)
        return levels.user_level(user_id) >= required
