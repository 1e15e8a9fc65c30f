"""A user's devices: list, rename, delete (deleting ends the device's sessions)."""

from __future__ import annotations

from sqlalchemy.engine import Connection

from homeserver.accounts.auth import AuthService
from homeserver.storage import devices as devices_db
from homeserver.storage.database import Database


class DeviceService:
    def __init__(self, database: Database, auth: AuthService) -> None:
        self.database = database
        self.auth = auth

    async def list_devices(self, user_id: str) -> list[devices_db.DeviceRow]:
        return await self.database.read(lambda conn: devices_db.list_devices(conn, user_id))

    async def get_device(self, user_id: str, device_id: str) -> devices_db.DeviceRow | None:
        return await self.database.read(
            lambda conn: devices_db.get_device(conn, user_id, device_id)
        )

    async def rename(self, user_id: str, device_id: str, display_name: str | None) -> bool:
        """Whether the device exists (and now has the new name)."""
        return await self.database.run(
            lambda conn: devices_db.set_display_name(conn, user_id, device_id, display_name)
        )

    async def delete(self, user_id: str, device_ids: list[str]) -> None:
        def write(conn: Connection) -> list[str]:
            return self.auth.delete_devices_tx(conn, user_id, device_ids)

        ended = await self.database.run(write)
        self.auth.forget_sessions(ended)
