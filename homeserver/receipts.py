"""Read receipts and the fully-read marker.

Spec: Client-Server API, "Receipts" and "Fully read markers". ``m.read`` is
shared with the room; ``m.read.private`` only ever reaches its owner
(matrix_brief.md §1.9) and wakes only them; ``m.fully_read`` is not a receipt
at all but the room account data ``m.fully_read`` (``{"event_id": ...}``),
written through the account-data service. Receipts are persisted (they survive
restarts) on the ``receipts`` stream.

Read side, for ``/sync`` and unread counts:
:meth:`ReceiptService.receipts_for_rooms` (the ``m.receipt`` ephemeral events),
:meth:`ReceiptService.latest_read_receipt` / :meth:`latest_read_position`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from homeserver.errors import MatrixError, forbidden, invalid_param, not_found
from homeserver.notifier import Notifier
from homeserver.storage import receipts as store
from homeserver.storage.database import Database
from homeserver.storage.events import EventStore, StoredEvent

READ = "m.read"
READ_PRIVATE = "m.read.private"
FULLY_READ = "m.fully_read"
RECEIPT_TYPES = (READ, READ_PRIVATE, FULLY_READ)
MAIN_THREAD = "main"
MAX_THREAD_ID_LENGTH = 255

IsJoined = Callable[[str, str], Awaitable[bool]]
OnActive = Callable[[str], Awaitable[None]]


class RoomAccountData(Protocol):
    """The slice of the account-data service the fully-read marker needs."""

    async def put_room(
        self,
        user_id: str,
        room_id: str,
        data_type: str,
        content: dict[str, Any],
        *,
        server_managed: bool = False,
    ) -> int: ...


def thread_of(event: StoredEvent) -> str | None:
    """The thread root an event belongs to (``m.thread`` relation), or None for the main timeline."""
    relates_to = event.pdu.get("content", {}).get("m.relates_to")
    if isinstance(relates_to, dict) and relates_to.get("rel_type") == "m.thread":
        root = relates_to.get("event_id")
        if isinstance(root, str):
            return root
    return None


def check_thread(event: StoredEvent, thread_id: str) -> None:
    """A threaded receipt must name the event's thread (spec: 400 if unrelated).

    One hop only: an event related to a thread event by another relation (a
    reaction to a threaded reply) is accepted under any thread it could be in.
    """
    actual = thread_of(event)
    relates_to = event.pdu.get("content", {}).get("m.relates_to")
    if actual is None and isinstance(relates_to, dict) and relates_to.get("rel_type"):
        return  # an indirect relation: not resolved here
    if thread_id == MAIN_THREAD:
        if actual is not None:
            raise invalid_param("The event is in a thread, not the main timeline")
    elif not (actual == thread_id or (actual is None and event.event_id == thread_id)):
        raise invalid_param("The event is not in the thread named by thread_id")


class ReceiptService:
    def __init__(
        self,
        database: Database,
        event_store: EventStore,
        notifier: Notifier,
        is_joined: IsJoined,
        clock: Callable[[], float],
        *,
        account_data: RoomAccountData | None = None,
        on_active: OnActive | None = None,
    ) -> None:
        self.database = database
        self._events = event_store
        self._notifier = notifier
        self._is_joined = is_joined
        self._clock = clock
        self._account_data = account_data
        self._on_active = on_active
        # Called with (user_id, room_id) when a read receipt is stored (cached counts).
        self._read_receipt_hooks: list[Callable[[str, str], None]] = []

    def add_read_receipt_hook(self, hook: Callable[[str, str], None]) -> None:
        self._read_receipt_hooks.append(hook)

    async def load_stream_position(self) -> None:
        """Seed the notifier with the stored position, so sync tokens survive a restart."""
        self._notifier.set_position("receipts", await self.database.read(store.read_position))

    # -- writing --------------------------------------------------------------------

    async def set_receipt(
        self,
        user_id: str,
        room_id: str,
        receipt_type: str,
        event_id: str,
        thread_id: str | None = None,
    ) -> None:
        """``POST /rooms/{roomId}/receipt/{receiptType}/{eventId}``."""
        if receipt_type not in RECEIPT_TYPES:
            raise invalid_param(f"Unknown receipt type {receipt_type!r}")
        if thread_id is not None:
            if not thread_id or len(thread_id) > MAX_THREAD_ID_LENGTH:
                raise invalid_param("thread_id field must be a non-empty string")
            if receipt_type == FULLY_READ:
                raise invalid_param("thread_id is not allowed for m.fully_read")
        event = await self._check_target(user_id, room_id, event_id)
        if thread_id is not None:
            check_thread(event, thread_id)
        if receipt_type == FULLY_READ:
            await self._set_fully_read(user_id, room_id, event)
        else:
            await self._store(user_id, room_id, receipt_type, event, thread_id)
        if self._on_active is not None:
            await self._on_active(user_id)

    async def set_read_markers(self, user_id: str, room_id: str, markers: dict[str, str]) -> None:
        """``POST /rooms/{roomId}/read_markers``: any of m.fully_read, m.read, m.read.private."""
        # Check every target before writing any, so a bad one leaves nothing half done.
        events = {
            kind: await self._check_target(user_id, room_id, eid) for kind, eid in markers.items()
        }
        for kind, event in events.items():
            if kind == FULLY_READ:
                await self._set_fully_read(user_id, room_id, event)
            else:
                await self._store(user_id, room_id, kind, event, None)
        if events and self._on_active is not None:
            await self._on_active(user_id)

    async def _check_target(self, user_id: str, room_id: str, event_id: str) -> StoredEvent:
        if not await self._is_joined(user_id, room_id):
            raise forbidden("You are not joined to this room")
        event = await self._events.get_event(event_id)
        if event is None or event.room_id != room_id or event.outlier:
            raise not_found("Unknown event in this room")
        return event

    async def _store(
        self,
        user_id: str,
        room_id: str,
        receipt_type: str,
        event: StoredEvent,
        thread_id: str | None,
    ) -> None:
        ts = int(self._clock() * 1000)
        position = await self.database.run(
            lambda conn: store.put(
                conn,
                room_id=room_id,
                receipt_type=receipt_type,
                user_id=user_id,
                thread_id=store.UNTHREADED if thread_id is None else thread_id,
                event_id=event.event_id,
                data={"ts": ts},
                event_stream_ordering=event.stream_ordering,
            )
        )
        for hook in self._read_receipt_hooks:
            hook(user_id, room_id)
        if receipt_type == READ_PRIVATE:
            self._notifier.notify("receipts", position, users=[user_id])
        else:
            self._notifier.notify("receipts", position, rooms=[room_id])

    async def _set_fully_read(self, user_id: str, room_id: str, event: StoredEvent) -> None:
        if self._account_data is None:
            raise MatrixError(500, "M_UNKNOWN", "Account data is not available")
        await self._account_data.put_room(
            user_id, room_id, FULLY_READ, {"event_id": event.event_id}, server_managed=True
        )

    # -- reading (for /sync and unread counts) ----------------------------------------------

    async def receipts_for_rooms(
        self, user_id: str, room_ids: Iterable[str], from_pos: int, to_pos: int | None
    ) -> dict[str, dict[str, Any]]:
        """``{room_id: m.receipt event}`` for receipts written in (from_pos, to_pos].

        ``from_pos`` 0 gives every current receipt (initial sync). Private
        receipts appear only when they are ``user_id``'s own.
        """
        ids = list(room_ids)
        if not ids:
            return {}
        rows = await self.database.read(
            lambda conn: store.changed_in_rooms(
                conn, ids, from_pos, to_pos, types=(READ, READ_PRIVATE)
            )
        )
        out: dict[str, dict[str, Any]] = {}
        for row in rows:
            if row.receipt_type == READ_PRIVATE and row.user_id != user_id:
                continue
            event = out.setdefault(row.room_id, {"type": "m.receipt", "content": {}})
            data = dict(row.data)
            if row.thread_id != store.UNTHREADED:
                data["thread_id"] = row.thread_id
            by_type = event["content"].setdefault(row.event_id, {})
            by_type.setdefault(row.receipt_type, {})[row.user_id] = data
        return out

    async def latest_read_position(self, user_id: str, room_id: str) -> tuple[str, int] | None:
        """``(event_id, stream_ordering)`` of the user's furthest read-up-to mark in the room.

        The furthest of ``m.read`` and ``m.read.private``, unthreaded or on the
        main timeline (spec, "Private read receipts": whichever is further ahead
        counts). Receipts inside threads clear only their thread and are ignored.
        """
        rows = await self.database.read(
            lambda conn: store.of_user_in_room(conn, user_id, room_id, (READ, READ_PRIVATE))
        )
        best = max(
            (r for r in rows if r.thread_id in (store.UNTHREADED, MAIN_THREAD)),
            key=lambda r: r.event_stream_ordering,
            default=None,
        )
        return None if best is None else (best.event_id, best.event_stream_ordering)

    async def latest_read_receipt(self, user_id: str, room_id: str) -> str | None:
        found = await self.latest_read_position(user_id, room_id)
        return None if found is None else found[0]
