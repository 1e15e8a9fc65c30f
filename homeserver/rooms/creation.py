"""``/createRoom``: validate everything, then send the planned events through the pipeline.

The plan (``plan.py``) is checked with the auth rules before the first event is
stored, and the alias and the invitees are checked first too, so a refused
request leaves nothing behind. After the events: the alias row, the directory
entry, and ``m.direct`` for a DM (creator's side, as Synapse does, and the
invitee's, so that both sides show the room as a DM even with clients that
do not write it themselves).
"""

from __future__ import annotations

from typing import Any

from homeserver.account_data import AccountDataService
from homeserver.accounts.profiles import ProfileService
from homeserver.core.identifiers import parse_user_id
from homeserver.errors import MatrixError, not_found
from homeserver.events.creation import EventCreationService
from homeserver.rooms.directory import DirectoryService
from homeserver.rooms.plan import CreateRoomRequest, check_plan, plan_room
from homeserver.storage import accounts as accounts_db
from homeserver.storage.database import Database


class RoomCreationService:
    def __init__(
        self,
        database: Database,
        events: EventCreationService,
        profiles: ProfileService,
        directory: DirectoryService,
        account_data: AccountDataService,
        server_name: str,
    ) -> None:
        self.database = database
        self.events = events
        self.profiles = profiles
        self.directory = directory
        self.account_data = account_data
        self.server_name = server_name

    async def create_room(self, request: CreateRoomRequest) -> str:
        for user_id in request.invite:
            await self._require_local_user(user_id)
        if request.room_alias is not None and await self.directory.alias_exists(request.room_alias):
            raise MatrixError(400, "M_ROOM_IN_USE", "Room alias already taken")
        profiles = {
            user_id: await self._profile(user_id) for user_id in [request.creator, *request.invite]
        }
        plan = plan_room(request, profiles)
        check_plan(request, plan, self.server_name)

        create = await self.events.create_room(
            request.creator, request.room_version, extra_content=plan.create_content
        )
        room_id = create.room_id
        for planned in plan.events:
            await self.events.create_and_persist_event(
                room_id, planned.type, request.creator, planned.content, planned.state_key
            )
        if request.room_alias is not None:
            await self.directory.create_alias(request.room_alias, room_id, request.creator)
        if request.visibility == "public":
            await self.directory.store_visibility(room_id, "public")
        if request.is_direct:
            for invitee in request.invite:
                if invitee == request.creator:
                    continue
                await self.account_data.add_direct_room(request.creator, invitee, room_id)
                await self.account_data.add_direct_room(invitee, request.creator, room_id)
        return room_id

    async def _require_local_user(self, user_id: str) -> None:
        parsed = parse_user_id(user_id)
        if parsed is None:
            raise MatrixError(400, "M_INVALID_PARAM", f"{user_id!r} is not a valid user ID")
        if parsed[1] != self.server_name:
            raise MatrixError(
                400, "M_UNKNOWN", "Inviting users on other servers needs federation (not yet)"
            )
        user = await self.database.read(lambda conn: accounts_db.get_user(conn, user_id))
        if user is None:
            raise not_found(f"Unknown user {user_id}")

    async def _profile(self, user_id: str) -> dict[str, Any]:
        row = await self.database.read(lambda conn: accounts_db.get_profile(conn, user_id))
        if row is None:
            return {}
        return {"displayname": row.displayname, "avatar_url": row.avatar_url}
