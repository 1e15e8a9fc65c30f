"""Display names and avatars of local users.

Spec ``/profile``: anyone may read a profile; only its owner may change it.
Lengths are capped (the spec sets none) so a profile stays cheap to copy into
every membership event later.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from homeserver.errors import forbidden, invalid_param, not_found
from homeserver.storage import accounts as accounts_db
from homeserver.storage.database import Database

MAX_DISPLAYNAME_LENGTH = 256
MAX_AVATAR_URL_LENGTH = 1024

# Called with the user ID after a profile change (room member events follow the profile).
ProfileChangeHook = Callable[[str], Awaitable[None]]


class ProfileService:
    def __init__(self, database: Database, server_name: str) -> None:
        self.database = database
        self.server_name = server_name
        self._change_hooks: list[ProfileChangeHook] = []

    def add_change_hook(self, hook: ProfileChangeHook) -> None:
        self._change_hooks.append(hook)

    async def _changed(self, user_id: str) -> None:
        for hook in self._change_hooks:
            await hook(user_id)

    async def get_profile(self, user_id: str) -> accounts_db.ProfileRow:
        profile = await self.database.read(lambda conn: accounts_db.get_profile(conn, user_id))
        if profile is None:
            raise not_found("Profile not found")
        return profile

    async def set_displayname(
        self, requester_id: str, user_id: str, displayname: str | None
    ) -> None:
        self._check_owner(requester_id, user_id)
        if displayname is not None and len(displayname) > MAX_DISPLAYNAME_LENGTH:
            raise invalid_param(f"displayname must be at most {MAX_DISPLAYNAME_LENGTH} characters")
        await self.database.run(
            lambda conn: accounts_db.set_displayname(conn, user_id, displayname or None)
        )
        await self._changed(user_id)

    async def set_avatar_url(self, requester_id: str, user_id: str, avatar_url: str | None) -> None:
        self._check_owner(requester_id, user_id)
        if avatar_url is not None and len(avatar_url) > MAX_AVATAR_URL_LENGTH:
            raise invalid_param(f"avatar_url must be at most {MAX_AVATAR_URL_LENGTH} characters")
        await self.database.run(
            lambda conn: accounts_db.set_avatar_url(conn, user_id, avatar_url or None)
        )
        await self._changed(user_id)

    @staticmethod
    def _check_owner(requester_id: str, user_id: str) -> None:
        if requester_id != user_id:
            raise forbidden("You may only change your own profile")
