"""Send-to-device messaging (client-server-api "Send-to-Device messaging").

A message is queued per recipient device with a position on the ``to_device``
stream; ``/sync`` hands a device its queue in order, at most
:data:`MAX_PER_SYNC` at a time, and deletes what a later sync acknowledges (a
``since`` token whose ``to_device`` position is past the messages).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Connection

from homeserver.errors import MatrixError
from homeserver.notifier import Notifier
from homeserver.storage import devices as devices_db
from homeserver.storage import to_device as db
from homeserver.storage.database import Database

# Bounds, documented in client_api/to_device.py.
MAX_PER_SYNC = 100
MAX_QUEUED_PER_DEVICE = 1000


def queue_full(user_id: str, device_id: str) -> MatrixError:
    return MatrixError(
        429,
        "M_LIMIT_EXCEEDED",
        f"The to-device queue of {user_id} {device_id} is full "
        f"({MAX_QUEUED_PER_DEVICE} messages); retry once the device has synced",
        retry_after_ms=10_000,
    )


class ToDeviceService:
    def __init__(
        self, database: Database, notifier: Notifier, server_name: str, now_ms: Callable[[], int]
    ) -> None:
        self.database = database
        self.notifier = notifier
        self.server_name = server_name
        self._now_ms = now_ms

    async def send(
        self,
        sender: str,
        sender_device: str,
        txn_id: str,
        event_type: str,
        messages: dict[str, dict[str, dict[str, Any]]],
    ) -> None:
        """Queue ``messages`` (user -> device or ``*`` -> content); once per txn ID."""

        def write(conn: Connection) -> dict[str, int]:
            if not db.claim_txn(conn, sender, sender_device, txn_id, self._now_ms()):
                return {}
            targets: list[tuple[str, str, dict[str, Any]]] = []
            for user_id, by_device in messages.items():
                if user_id.partition(":")[2] != self.server_name:
                    # Remote recipients need the m.direct_to_device EDU (federation); not yet.
                    continue
                for device_id, content in by_device.items():
                    if device_id == "*":
                        for device in devices_db.list_devices(conn, user_id):
                            targets.append((user_id, device.device_id, content))
                    elif devices_db.get_device(conn, user_id, device_id) is not None:
                        targets.append((user_id, device_id, content))
            pending = db.pending_counts(conn, [(u, d) for u, d, _ in targets])
            positions: dict[str, int] = {}
            for user_id, device_id, content in targets:
                held = pending.get((user_id, device_id), 0)
                if held >= MAX_QUEUED_PER_DEVICE:
                    raise queue_full(user_id, device_id)
                pending[(user_id, device_id)] = held + 1
                message = {"sender": sender, "type": event_type, "content": content}
                positions[user_id] = db.enqueue(conn, user_id, device_id, message)
            return positions

        positions = await self.database.run(write)
        for user_id, position in positions.items():
            self.notifier.notify("to_device", position, users=[user_id])

    async def to_device_for(
        self, user_id: str, device_id: str, since_pos: int, to_pos: int, limit: int = MAX_PER_SYNC
    ) -> list[tuple[int, dict[str, Any]]]:
        """(position, event) of the device's messages in ``(since_pos, to_pos]``, oldest first."""
        limit = max(1, min(limit, MAX_PER_SYNC))
        return await self.database.read(
            lambda conn: db.read_messages(conn, user_id, device_id, since_pos, to_pos, limit)
        )

    async def delete_to_device_before(self, user_id: str, device_id: str, pos: int) -> int:
        """The device acknowledged everything up to ``pos`` (inclusive): forget it."""
        if pos <= 0:
            return 0
        # Most syncs acknowledge nothing: a read (concurrent on SQLite) spares them
        # the write lock.
        if not await self.database.read(
            lambda conn: db.has_messages_upto(conn, user_id, device_id, pos)
        ):
            return 0
        return await self.database.run(lambda conn: db.delete_upto(conn, user_id, device_id, pos))

    def delete_devices_tx(
        self, conn: Connection, user_id: str, device_ids: list[str] | None
    ) -> None:
        db.delete_devices(conn, user_id, device_ids)
