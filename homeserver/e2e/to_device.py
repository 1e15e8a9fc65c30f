"""Send-to-device messaging (client-server-api "Send-to-Device messaging").

A message is queued per recipient device with a position on the ``to_device``
stream; ``/sync`` hands a device its queue in order, at most
:data:`MAX_PER_SYNC` at a time, and deletes what a later sync acknowledges (a
``since`` token whose ``to_device`` position is past the messages).
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Connection

from homeserver.errors import MatrixError
from homeserver.notifier import Notifier
from homeserver.storage import devices as devices_db
from homeserver.storage import e2e_keys as positions_db
from homeserver.storage import to_device as db
from homeserver.storage.database import Database

# Bounds, documented in client_api/to_device.py.
MAX_PER_SYNC = 100
MAX_QUEUED_PER_DEVICE = 1000
# Users and devices whose queue state is remembered in memory (sync skips reads).
MAX_TRACKED = 50_000


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
        # What lets a sync skip its to-device reads (``nothing_queued``):
        # the highest position queued for each user by this process, recorded
        # in the writing transaction *before* it commits; every message not
        # recorded there (queued before start, or evicted) is at most ``_floor``
        # (``None``: not read from the database yet) or ``_evicted``.
        self._lock = threading.Lock()
        self._last_queued: OrderedDict[str, int] = OrderedDict()
        self._evicted = 0
        self._floor: int | None = None
        # (user, device) -> position up to which the device's queue is known empty.
        self._acked: OrderedDict[tuple[str, str], int] = OrderedDict()

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
            self._record_queued(positions)
            return positions

        positions = await self.database.run(write)
        for user_id, position in positions.items():
            self.notifier.notify("to_device", position, users=[user_id])

    def _record_queued(self, positions: dict[str, int]) -> None:
        """Called in the writing transaction, before the commit (worker thread)."""
        with self._lock:
            for user_id, position in positions.items():
                self._last_queued[user_id] = max(position, self._last_queued.get(user_id, 0))
                self._last_queued.move_to_end(user_id)
            while len(self._last_queued) > MAX_TRACKED:
                _, evicted = self._last_queued.popitem(last=False)
                self._evicted = max(self._evicted, evicted)

    async def nothing_queued(self, user_id: str, device_id: str, since_pos: int) -> bool:
        """True if the device has no message at all (none up to ``since_pos`` left to
        delete, none after it to read), known without a database trip.

        Conservative: False whenever unsure (a device not acknowledged since its
        user's latest queued message). A user that never had a message (no position
        above 0 recorded or possible: the stream never moved before this process,
        or moved only for others) has nothing, whatever ``since_pos`` is.
        """
        if self._floor is None:
            # Committed positions only; later ones are recorded before they commit.
            self._floor = await self.database.read(
                functools.partial(positions_db.read_position, stream="to_device")
            )
        with self._lock:
            last = max(self._last_queued.get(user_id, 0), self._floor, self._evicted)
            acked = self._acked.get((user_id, device_id), -1)
        if last <= 0:
            return True
        return since_pos > 0 and last <= since_pos and acked >= last

    def _record_acked(self, user_id: str, device_id: str, pos: int) -> None:
        key = (user_id, device_id)
        with self._lock:
            self._acked[key] = max(pos, self._acked.get(key, 0))
            self._acked.move_to_end(key)
            while len(self._acked) > MAX_TRACKED:
                self._acked.popitem(last=False)

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
            self._record_acked(user_id, device_id, pos)
            return 0
        deleted = await self.database.run(
            lambda conn: db.delete_upto(conn, user_id, device_id, pos)
        )
        self._record_acked(user_id, device_id, pos)
        return deleted

    def delete_devices_tx(
        self, conn: Connection, user_id: str, device_ids: list[str] | None
    ) -> None:
        db.delete_devices(conn, user_id, device_ids)
