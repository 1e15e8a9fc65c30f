"""What /sync reads from the services beside the room DAG: the extension points.

Each stream other than room events belongs to its own service (typing,
receipts, presence: ``homeserver/typing.py``, ``receipts.py``, ``presence.py``;
account data: ``homeserver/account_data.py``). The sync service depends only on
these small protocols, so a service can be missing (``None``: its section stays
empty) and tests can plug in fakes. The composition root fills
:class:`SyncSources` in ``HomeServer``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import attrs

from homeserver.notifier import StreamToken


class TypingSource(Protocol):
    def typing_for_rooms(
        self, room_ids: Iterable[str], since_pos: int
    ) -> dict[str, dict[str, Any]]: ...


class ReceiptSource(Protocol):
    async def receipts_for_rooms(
        self, user_id: str, room_ids: Iterable[str], from_pos: int, to_pos: int | None
    ) -> dict[str, dict[str, Any]]: ...

    async def latest_read_position(self, user_id: str, room_id: str) -> tuple[str, int] | None: ...


class PresenceSource(Protocol):
    async def user_syncing(self, user_id: str, set_presence: str = ...) -> None: ...

    async def presence_for_user(self, user_id: str, since_pos: int) -> list[dict[str, Any]]: ...


class AccountDataChangesLike(Protocol):
    @property
    def global_data(self) -> dict[str, dict[str, Any]]: ...

    @property
    def rooms(self) -> dict[str, dict[str, dict[str, Any]]]: ...


class AccountDataSource(Protocol):
    async def get_changes_since(
        self, user_id: str, from_pos: int, to_pos: int | None = None
    ) -> AccountDataChangesLike: ...

    async def ignored_users(self, user_id: str) -> set[str]: ...


class E2ESource(Protocol):
    """End-to-end encryption sections (``homeserver/e2e/sync_source.py``)."""

    async def to_device_section(
        self, user_id: str, device_id: str, since_pos: int | None, upto_pos: int
    ) -> tuple[list[dict[str, Any]], int]: ...

    async def device_lists(
        self, user_id: str, since: StreamToken, upto: StreamToken
    ) -> tuple[list[str], list[str]]: ...

    async def device_key_counts(
        self, user_id: str, device_id: str
    ) -> tuple[dict[str, int], list[str]]: ...


class PushCountSource(Protocol):
    """Notification counts from push rules (``homeserver/push/processor.py``)."""

    async def thread_counts(
        self, user_id: str, room_id: str, upto: int | None = None
    ) -> dict[str, tuple[int, int]]: ...


@attrs.define
class SyncSources:
    typing: TypingSource | None = None
    receipts: ReceiptSource | None = None
    presence: PresenceSource | None = None
    account_data: AccountDataSource | None = None
    e2e: E2ESource | None = None
    push: PushCountSource | None = None
