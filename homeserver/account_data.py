"""Account data: a user's own JSON documents, global or per room, and room tags.

Spec: Client-Server API "Client Config" (account data), "Room Tagging",
"Ignoring Users", "Direct Messaging". Only the owner reads or writes them.
Every write takes a position on the ``account_data`` stream and wakes that
user's waiting syncs; ``/sync`` reads what changed with :meth:`get_changes_since`
(or the per-kind helpers) and everything with :meth:`get_all`.

Types the server manages (``m.fully_read``, ``m.push_rules``) are refused
through the client API with 405 ``M_BAD_JSON`` (spec "Server Behaviour");
the services that own them write with ``server_managed=True``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from homeserver.core.identifiers import parse_user_id
from homeserver.errors import MatrixError, bad_json, forbidden, invalid_param, not_found
from homeserver.notifier import Notifier
from homeserver.rooms.common import check_room_id
from homeserver.storage import account_data as store
from homeserver.storage.account_data import GLOBAL, AccountDataRow
from homeserver.storage.database import Database

SERVER_MANAGED_TYPES = frozenset({"m.fully_read", "m.push_rules"})
# Limits: the spec sets none, but each document is sent in full on every initial sync.
MAX_TYPE_LENGTH = 255
MAX_CONTENT_BYTES = 65536
MAX_TAG_BYTES = 255  # spec "Room Tagging": a tag name MUST NOT exceed 255 bytes
MAX_TAGS_PER_ROOM = 100
MAX_IGNORED_USERS = 10000


@attrs.frozen
class AccountDataChanges:
    """What changed for one user: global documents and per-room documents, newest content."""

    global_data: dict[str, dict[str, Any]]
    rooms: dict[str, dict[str, dict[str, Any]]]
    position: int


def _group(rows: list[AccountDataRow], position: int) -> AccountDataChanges:
    global_data: dict[str, dict[str, Any]] = {}
    rooms: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        if row.room_id == GLOBAL:
            global_data[row.type] = row.content
        else:
            rooms.setdefault(row.room_id, {})[row.type] = row.content
        position = max(position, row.stream_id)
    return AccountDataChanges(global_data=global_data, rooms=rooms, position=position)


def validate_content(data_type: str, content: Mapping[str, Any]) -> None:
    """Shape checks for the types whose content the server itself reads."""
    if data_type == "m.ignored_user_list":
        ignored = content.get("ignored_users")
        if not isinstance(ignored, dict):
            raise bad_json("'ignored_users' must be an object of user IDs")
        if len(ignored) > MAX_IGNORED_USERS:
            raise bad_json("'ignored_users' has too many entries")
        for user_id, value in ignored.items():
            if parse_user_id(user_id) is None:
                raise bad_json(f"'ignored_users' key {user_id!r} is not a user ID")
            if not isinstance(value, dict):
                raise bad_json("'ignored_users' values must be objects")
    elif data_type == "m.direct":
        for user_id, rooms in content.items():
            if not isinstance(rooms, list) or not all(isinstance(r, str) for r in rooms):
                raise bad_json(f"'m.direct' entry {user_id!r} must be a list of room IDs")
    elif data_type == "m.tag":
        tags = content.get("tags")
        if not isinstance(tags, dict):
            raise bad_json("'tags' must be an object")


class AccountDataService:
    def __init__(self, database: Database, notifier: Notifier) -> None:
        self.database = database
        self.notifier = notifier

    async def load_stream_position(self) -> None:
        """Seed the notifier with the stored position, so sync tokens survive a restart."""
        position = await self.database.read(store.read_position)
        self.notifier.set_position("account_data", position)

    # -- writing ---------------------------------------------------------------------

    async def put_global(
        self,
        user_id: str,
        data_type: str,
        content: dict[str, Any],
        *,
        server_managed: bool = False,
    ) -> int:
        return await self._put(user_id, GLOBAL, data_type, content, server_managed)

    async def put_room(
        self,
        user_id: str,
        room_id: str,
        data_type: str,
        content: dict[str, Any],
        *,
        server_managed: bool = False,
    ) -> int:
        check_room_id(room_id)
        return await self._put(user_id, room_id, data_type, content, server_managed)

    async def _put(
        self,
        user_id: str,
        room_id: str,
        data_type: str,
        content: dict[str, Any],
        server_managed: bool,
    ) -> int:
        if not data_type or len(data_type.encode()) > MAX_TYPE_LENGTH:
            raise invalid_param("Account data type must be 1 to 255 bytes")
        if data_type in SERVER_MANAGED_TYPES and not server_managed:
            raise MatrixError(405, "M_BAD_JSON", f"Cannot set {data_type} through this API.")
        validate_content(data_type, content)
        _check_size(content)
        position = await self.database.run(
            lambda conn: store.put(conn, user_id, room_id, data_type, content)
        )
        self.notifier.notify("account_data", position, users=[user_id])
        return position

    # -- reading ---------------------------------------------------------------------

    async def get_global(self, user_id: str, data_type: str) -> dict[str, Any] | None:
        return await self.database.read(lambda conn: store.get(conn, user_id, GLOBAL, data_type))

    async def get_room(self, user_id: str, room_id: str, data_type: str) -> dict[str, Any] | None:
        check_room_id(room_id)
        return await self.database.read(lambda conn: store.get(conn, user_id, room_id, data_type))

    async def get_changes_since(
        self, user_id: str, from_pos: int, to_pos: int | None = None
    ) -> AccountDataChanges:
        """Documents written in ``(from_pos, to_pos]`` (``to_pos`` None: up to now)."""
        rows = await self.database.read(
            lambda conn: store.changed_since(conn, user_id, from_pos, to_pos)
        )
        return _group(rows, from_pos)

    async def get_all(self, user_id: str, to_pos: int | None = None) -> AccountDataChanges:
        """Everything, for an initial sync."""
        return await self.get_changes_since(user_id, 0, to_pos)

    async def get_global_since(
        self, user_id: str, from_pos: int, to_pos: int | None = None
    ) -> dict[str, dict[str, Any]]:
        return (await self.get_changes_since(user_id, from_pos, to_pos)).global_data

    async def get_room_since(
        self, user_id: str, from_pos: int, to_pos: int | None = None
    ) -> dict[str, dict[str, dict[str, Any]]]:
        return (await self.get_changes_since(user_id, from_pos, to_pos)).rooms

    # -- helpers built on top -----------------------------------------------------------

    async def _modify(
        self,
        user_id: str,
        room_id: str,
        data_type: str,
        change: Callable[[dict[str, Any] | None], dict[str, Any] | None],
    ) -> None:
        """Apply ``change`` to one document atomically (read-modify-write in one transaction)."""

        def checked(old: dict[str, Any] | None) -> dict[str, Any] | None:
            new = change(old)
            if new is not None:
                validate_content(data_type, new)
                _check_size(new)
            return new

        position = await self.database.run(
            lambda conn: store.modify(conn, user_id, room_id, data_type, checked)
        )
        if position is not None:
            self.notifier.notify("account_data", position, users=[user_id])

    async def get_tags(self, user_id: str, room_id: str) -> dict[str, Any]:
        return _tags_of(await self.get_room(user_id, room_id, "m.tag"))

    async def set_tag(self, user_id: str, room_id: str, tag: str, info: dict[str, Any]) -> None:
        check_room_id(room_id)
        if not tag or len(tag.encode()) > MAX_TAG_BYTES:
            raise invalid_param("Tag names must be 1 to 255 bytes")
        order = info.get("order")
        if order is not None and (isinstance(order, bool) or not isinstance(order, (int, float))):
            raise bad_json("'order' must be a number")

        def change(old: dict[str, Any] | None) -> dict[str, Any]:
            tags = _tags_of(old)
            tags[tag] = info
            if len(tags) > MAX_TAGS_PER_ROOM:
                raise invalid_param(f"At most {MAX_TAGS_PER_ROOM} tags per room")
            return {**(old or {}), "tags": tags}

        await self._modify(user_id, room_id, "m.tag", change)

    async def remove_tag(self, user_id: str, room_id: str, tag: str) -> None:
        check_room_id(room_id)

        def change(old: dict[str, Any] | None) -> dict[str, Any] | None:
            tags = _tags_of(old)
            if tags.pop(tag, None) is None:
                return None
            return {**(old or {}), "tags": tags}

        await self._modify(user_id, room_id, "m.tag", change)

    async def add_direct_room(self, user_id: str, other_user: str, room_id: str) -> None:
        """Record ``room_id`` as a DM with ``other_user`` in ``user_id``'s ``m.direct``."""

        def change(old: dict[str, Any] | None) -> dict[str, Any] | None:
            direct = dict(old or {})
            rooms = direct.get(other_user)
            rooms = list(rooms) if isinstance(rooms, list) else []
            if room_id in rooms:
                return None
            direct[other_user] = [*rooms, room_id]
            return direct

        await self._modify(user_id, GLOBAL, "m.direct", change)

    async def ignored_users(self, user_id: str) -> set[str]:
        content = await self.get_global(user_id, "m.ignored_user_list") or {}
        ignored = content.get("ignored_users")
        return set(ignored) if isinstance(ignored, dict) else set()


def _check_size(content: dict[str, Any]) -> None:
    # Not canonical JSON: account data is no event, and tag ``order`` is a float.
    size = len(json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode())
    if size > MAX_CONTENT_BYTES:
        raise MatrixError(413, "M_TOO_LARGE", "Account data content is too large")


def _tags_of(content: dict[str, Any] | None) -> dict[str, Any]:
    tags = (content or {}).get("tags")
    return dict(tags) if isinstance(tags, dict) else {}


def require_owner(requester_id: str, user_id: str) -> None:
    if parse_user_id(user_id) is None:
        raise invalid_param(f"{user_id!r} is not a valid user ID")
    if requester_id != user_id:
        raise forbidden("Cannot access account data of other users.")


def require_found(content: dict[str, Any] | None) -> dict[str, Any]:
    if content is None:
        raise not_found("Account data not found.")
    return content
