"""Changing a password and deactivating an account (both behind UIA in the API)."""

from __future__ import annotations

import logging

from sqlalchemy.engine import Connection

from homeserver.accounts.auth import AuthService, Requester
from homeserver.accounts.passwords import PasswordHasher
from homeserver.storage import accounts as accounts_db
from homeserver.storage.database import Database

log = logging.getLogger(__name__)


class AccountManagement:
    def __init__(self, database: Database, auth: AuthService, passwords: PasswordHasher) -> None:
        self.database = database
        self.auth = auth
        self.passwords = passwords

    async def change_password(
        self, requester: Requester, new_password: str, *, logout_devices: bool
    ) -> None:
        """Spec ``POST /account/password``: ``logout_devices`` (default true) ends every
        other device's sessions, keeping the one that asked."""
        password_hash = await self.passwords.hash(new_password)

        def write(conn: Connection) -> list[str]:
            accounts_db.set_password_hash(conn, requester.user_id, password_hash)
            if logout_devices:
                return self.auth.delete_all_devices_tx(
                    conn, requester.user_id, except_device=requester.device_id
                )
            return []

        ended = await self.database.run(write)
        self.auth.forget_sessions(ended)
        log.info("password changed for %s (%d sessions ended)", requester.user_id, len(ended))

    async def deactivate(self, user_id: str) -> None:
        """Spec ``POST /account/deactivate``: irreversible; every session ends at once."""

        def write(conn: Connection) -> list[str]:
            ended = self.auth.delete_all_devices_tx(conn, user_id)
            accounts_db.mark_deactivated(conn, user_id)
            return ended

        ended = await self.database.run(write)
        self.auth.forget_sessions(ended)
        log.info("deactivated %s", user_id)
