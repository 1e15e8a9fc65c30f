"""User directory search (``POST /user_directory/search``).

Spec: "User Directory": results must at least cover users who share a room
with the requester and users in public rooms. Here "public" means rooms
published in the room directory or whose join rule is ``public``; results
are local users (profiles of remote users need federation).
"""

from __future__ import annotations

from typing import Any

from homeserver.rooms.directory import DirectoryService
from homeserver.storage import rooms as rooms_db
from homeserver.storage.database import Database
from homeserver.storage.events import EventStore

MAX_LIMIT = 50
MAX_SEARCH_TERM_LENGTH = 256


class UserDirectoryService:
    def __init__(
        self, database: Database, event_store: EventStore, directory: DirectoryService
    ) -> None:
        self.database = database
        self.event_store = event_store
        self.directory = directory

    async def search(self, user_id: str, term: str, limit: int) -> dict[str, Any]:
        limit = max(0, min(limit, MAX_LIMIT))
        public = set(await self.directory.public_room_ids())
        public |= await self.database.read(rooms_db.public_join_rule_rooms)
        rows = await self.database.read(
            lambda conn: rooms_db.search_users(conn, user_id, sorted(public), term, limit + 1)
        )
        results = []
        for row in rows[:limit]:
            entry: dict[str, Any] = {"user_id": row.user_id}
            if row.displayname is not None:
                entry["display_name"] = row.displayname
            if row.avatar_url is not None:
                entry["avatar_url"] = row.avatar_url
            results.append(entry)
        return {"results": results, "limited": len(rows) > limit}
