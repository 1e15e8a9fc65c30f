"""Membership changes (join, leave, invite, kick, ban, unban, knock, forget) and member lists.

Spec: Client-Server API "Room membership". Every change is an
``m.room.member`` event through the event pipeline, so the auth rules decide
what is allowed (403 ``M_FORBIDDEN`` otherwise). A few refusals come first,
where the auth rules would allow a pointless event: kicking someone not in
the room, unbanning someone not banned, leaving a room one is not in.

Rooms on other servers need federation (make_join/send_join), which does not
exist yet: they are unknown here and answer 404 ``M_NOT_FOUND``.

Profile changes become new join events in every room the user is joined to
(spec "Events on Change of Profile Information"), through :meth:`on_profile_change`.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from homeserver.account_data import AccountDataService
from homeserver.core.identifiers import parse_user_id
from homeserver.core.power_levels import power_levels_from_state
from homeserver.core.room_versions import get_room_version
from homeserver.errors import MatrixError, forbidden, invalid_param, not_found
from homeserver.events.creation import EventCreationService
from homeserver.notifier import StreamToken
from homeserver.rooms.common import (
    membership_event,
    membership_of,
    readable_state_ids,
    require_room,
)
from homeserver.storage import accounts as accounts_db
from homeserver.storage import rooms as rooms_db
from homeserver.storage.database import Database
from homeserver.storage.events import EventStore, StoredEvent
from homeserver.storage.timeline import read_redactions

log = logging.getLogger(__name__)

MEMBERSHIPS = ("join", "invite", "knock", "leave", "ban")


class MembershipService:
    def __init__(
        self,
        database: Database,
        event_store: EventStore,
        events: EventCreationService,
        account_data: AccountDataService,
        server_name: str,
    ) -> None:
        self.database = database
        self.event_store = event_store
        self.events = events
        self.account_data = account_data
        self.server_name = server_name

    # -- changes ------------------------------------------------------------------------------

    async def join(self, user_id: str, room_id: str, reason: str | None = None) -> str:
        await require_room(self.event_store, room_id)
        current = await membership_event(self.event_store, room_id, user_id)
        content = await self._member_content("join", user_id, reason)
        if membership_of(current) == "join" and current is not None:
            old = current.pdu.get("content", {})
            if all(old.get(k) == content.get(k) for k in ("displayname", "avatar_url")):
                return room_id  # already joined with this profile: nothing to change
        if membership_of(current) not in ("join", "invite"):
            authoriser = await self._restricted_join_authoriser(user_id, room_id)
            if authoriser is not None:
                content["join_authorised_via_users_server"] = authoriser
        await self._send(room_id, user_id, user_id, content)
        await self.database.run(lambda conn: rooms_db.unforget_room(conn, user_id, room_id))
        if membership_of(current) == "invite" and current is not None:
            await self._remember_direct(user_id, room_id, current)
        return room_id

    async def knock(self, user_id: str, room_id: str, reason: str | None = None) -> str:
        await require_room(self.event_store, room_id)
        content = await self._member_content("knock", user_id, reason)
        await self._send(room_id, user_id, user_id, content)
        return room_id

    async def leave(self, user_id: str, room_id: str, reason: str | None = None) -> None:
        await require_room(self.event_store, room_id)
        current = membership_of(await membership_event(self.event_store, room_id, user_id))
        if current not in ("join", "invite", "knock"):
            raise forbidden("You are not in this room")
        await self._send(room_id, user_id, user_id, _with_reason({"membership": "leave"}, reason))

    async def invite(
        self, sender: str, room_id: str, target: str, reason: str | None = None
    ) -> None:
        await require_room(self.event_store, room_id)
        await self._require_local_user(target)
        content = await self._member_content("invite", target, reason)
        await self._send(room_id, sender, target, content)

    async def kick(self, sender: str, room_id: str, target: str, reason: str | None = None) -> None:
        await require_room(self.event_store, room_id)
        _check_user_id(target)
        current = membership_of(await membership_event(self.event_store, room_id, target))
        if current not in ("join", "invite", "knock"):
            raise forbidden(f"{target} is not in the room")
        await self._send(room_id, sender, target, _with_reason({"membership": "leave"}, reason))

    async def ban(self, sender: str, room_id: str, target: str, reason: str | None = None) -> None:
        await require_room(self.event_store, room_id)
        _check_user_id(target)
        await self._send(room_id, sender, target, _with_reason({"membership": "ban"}, reason))

    async def unban(
        self, sender: str, room_id: str, target: str, reason: str | None = None
    ) -> None:
        await require_room(self.event_store, room_id)
        _check_user_id(target)
        current = membership_of(await membership_event(self.event_store, room_id, target))
        if current != "ban":
            raise forbidden(f"{target} is not banned")
        await self._send(room_id, sender, target, _with_reason({"membership": "leave"}, reason))

    async def forget(self, user_id: str, room_id: str) -> None:
        await require_room(self.event_store, room_id)
        current = membership_of(await membership_event(self.event_store, room_id, user_id))
        if current in ("join", "invite", "knock"):
            raise MatrixError(400, "M_UNKNOWN", "Leave the room before forgetting it")
        await self.database.run(lambda conn: rooms_db.forget_room(conn, user_id, room_id))

    async def forgotten_rooms(self, user_id: str) -> set[str]:
        return await self.database.read(lambda conn: rooms_db.forgotten_rooms(conn, user_id))

    # -- reading -------------------------------------------------------------------------------

    async def joined_rooms(self, user_id: str) -> list[str]:
        rooms = await self.database.read(lambda conn: rooms_db.rooms_for_user(conn, user_id))
        return sorted(rooms)

    async def rooms_for_user(self, user_id: str) -> dict[str, str]:
        """room_id -> membership, every room the user has a membership in."""
        return await self.database.read(lambda conn: rooms_db.rooms_for_user(conn, user_id, None))

    async def members(
        self,
        user_id: str,
        room_id: str,
        *,
        at: str | None = None,
        membership: str | None = None,
        not_membership: str | None = None,
    ) -> list[StoredEvent]:
        """Member events visible to ``user_id`` (spec GET /rooms/{roomId}/members)."""
        state = await readable_state_ids(self.event_store, room_id, user_id)
        if at is not None:
            state = await self._state_at_token(user_id, room_id, at, state)
        member_ids = [eid for (etype, _), eid in state.items() if etype == "m.room.member"]
        found = await self.event_store.get_events(member_ids)
        out = []
        for event in sorted(found.values(), key=lambda e: e.state_key or ""):
            value = membership_of(event)
            if membership is not None and value != membership:
                continue
            if not_membership is not None and value == not_membership:
                continue
            out.append(event)
        return out

    async def joined_members(self, user_id: str, room_id: str) -> dict[str, dict[str, Any]]:
        """user -> {display_name, avatar_url} of joined members; only members may ask."""
        await require_room(self.event_store, room_id)
        state = await self.event_store.get_current_state(room_id)
        mine = state.get(("m.room.member", user_id))
        if membership_of(mine) != "join":
            raise forbidden("You are not joined to this room")
        members = {
            state_key: event
            for (etype, state_key), event in state.items()
            if etype == "m.room.member" and membership_of(event) == "join"
        }
        ids = [event.event_id for event in members.values()]
        redacted = await self.database.read(lambda conn: read_redactions(conn, ids))
        joined: dict[str, dict[str, Any]] = {}
        for state_key, event in sorted(members.items()):
            # A redacted member event keeps its membership but loses name and avatar.
            content = {} if event.event_id in redacted else event.pdu.get("content", {})
            joined[state_key] = {
                "display_name": content.get("displayname"),
                "avatar_url": content.get("avatar_url"),
            }
        return joined

    # -- profile propagation ----------------------------------------------------------------------

    async def on_profile_change(self, user_id: str) -> None:
        """Send a fresh join event with the new profile into every joined room.

        One room refusing (e.g. the user may no longer change their member event
        there) must not stop the others: it is logged and skipped.
        """
        for room_id in await self.joined_rooms(user_id):
            try:
                await self.join(user_id, room_id)
            except MatrixError as exc:
                log.info("profile update not sent to %s: %s", room_id, exc)

    # -- helpers -----------------------------------------------------------------------------------

    async def _send(
        self, room_id: str, sender: str, target: str, content: dict[str, Any]
    ) -> StoredEvent:
        return await self.events.create_and_persist_event(
            room_id, "m.room.member", sender, content, target
        )

    async def _member_content(
        self, membership: str, user_id: str, reason: str | None
    ) -> dict[str, Any]:
        content: dict[str, Any] = {"membership": membership}
        row = await self.database.read(lambda conn: accounts_db.get_profile(conn, user_id))
        if row is not None:
            if row.displayname is not None:
                content["displayname"] = row.displayname
            if row.avatar_url is not None:
                content["avatar_url"] = row.avatar_url
        return _with_reason(content, reason)

    async def _require_local_user(self, user_id: str) -> None:
        parsed = _check_user_id(user_id)
        if parsed[1] != self.server_name:
            raise forbidden("Inviting users on other servers needs federation (not yet)")
        user = await self.database.read(lambda conn: accounts_db.get_user(conn, user_id))
        if user is None:
            raise not_found(f"Unknown user {user_id}")

    async def _restricted_join_authoriser(self, user_id: str, room_id: str) -> str | None:
        """For a restricted room the user may enter, a local member who may invite.

        Spec "Restricted rooms": the resident server checks the ``allow`` conditions
        (membership of one of the listed rooms) and names one of its users with
        invite power in ``join_authorised_via_users_server``; the auth rules then
        check that user. None when the room is not restricted or no condition holds
        (the auth rules refuse the join with 403).
        """
        state = await self.event_store.get_current_state(room_id)
        rules = state.get(("m.room.join_rules", ""))
        content = rules.pdu.get("content", {}) if rules is not None else {}
        if content.get("join_rule") not in ("restricted", "knock_restricted"):
            return None
        allow = content.get("allow")
        if not isinstance(allow, list):
            return None
        mine = await self.database.read(lambda conn: rooms_db.rooms_for_user(conn, user_id))
        allowed = any(
            isinstance(entry, dict)
            and entry.get("type") == "m.room_membership"
            and entry.get("room_id") in mine
            for entry in allow
        )
        if not allowed:
            return None
        room = await self.event_store.get_room(room_id)
        version = get_room_version(room.room_version) if room is not None else None
        if version is None:
            return None
        create = state.get(("m.room.create", ""))
        power = state.get(("m.room.power_levels", ""))
        levels = power_levels_from_state(
            version,
            None if create is None else {**create.pdu, "event_id": create.event_id},
            None if power is None else power.pdu,
        )
        candidates = sorted(
            (levels.user_level(key[1]) >= levels.invite, key[1])
            for key, event in state.items()
            if key[0] == "m.room.member"
            and membership_of(event) == "join"
            and key[1].endswith(":" + self.server_name)
        )
        for may_invite, member in reversed(candidates):
            if may_invite:
                return member
        return None

    async def _remember_direct(self, user_id: str, room_id: str, invite: StoredEvent) -> None:
        """Joining a DM invite records the room in the joiner's ``m.direct``."""
        if invite.pdu.get("content", {}).get("is_direct") is True:
            await self.account_data.add_direct_room(user_id, invite.sender, room_id)

    async def _state_at_token(
        self, user_id: str, room_id: str, at: str, visible: dict[Any, str]
    ) -> dict[Any, str]:
        """State as of a sync token (``at``); never more than the user may see now."""
        member_id = visible.get(("m.room.member", user_id))
        member = await self.event_store.get_event(member_id) if member_id else None
        if membership_of(member) != "join":
            # Not joined: what they may see is fixed (state when they left, or world-readable).
            return visible
        position = _token_position(at)
        event_id = await self.database.read(
            lambda conn: rooms_db.last_event_at(conn, room_id, position)
        )
        if event_id is None:
            return {}
        state = await self.event_store.get_state_at_event(event_id, before=False)
        if state is None:
            return visible
        return state


_TOPOLOGICAL = re.compile(r"t-?\d{1,18}-(-?\d{1,18})")


def _token_position(token: str) -> int:
    """The events-stream position of a sync token (``s…``) or a pagination token (``t…``)."""
    match = _TOPOLOGICAL.fullmatch(token)
    if match is not None:
        return max(0, int(match.group(1)))
    try:
        return StreamToken.parse(token).events
    except MatrixError:
        raise invalid_param("Invalid 'at' token") from None


def _check_user_id(user_id: str) -> tuple[str, str]:
    parsed = parse_user_id(user_id)
    if parsed is None:
        raise invalid_param(f"{user_id!r} is not a valid user ID")
    return parsed


def _with_reason(content: dict[str, Any], reason: str | None) -> dict[str, Any]:
    if reason:
        content["reason"] = reason
    return content
