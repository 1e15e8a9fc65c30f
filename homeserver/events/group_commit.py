"""Group commit of local events: the queue entry of one send, and a built event.

Concurrent sends to one room wait in the room's queue as :class:`PendingSend`
entries; whoever holds the room's lock builds them into a chain of
:class:`BuiltEvent` (each citing the previous one) and persists the chain in one
transaction, then answers each entry with its event or its own error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from homeserver.errors import MatrixError
from homeserver.storage.events import EventToPersist, InTxnHook, StoredEvent
from homeserver.storage.state import StateKey


class PendingSend:
    """One sender's event waiting in its room's queue, and, once persisted, its outcome."""

    def __init__(
        self,
        event_type: str,
        sender: str,
        content: Mapping[str, Any],
        state_key: str | None,
        in_txn: InTxnHook | None,
    ) -> None:
        self.event_type = event_type
        self.sender = sender
        self.content = content
        self.state_key = state_key
        self.in_txn = in_txn
        # Taken by a batch: its outcome will be set by whoever took it.
        self.taken = False
        self.done = False
        self._event: StoredEvent | None = None
        self._hook_result: Any = None
        self._error: BaseException | None = None

    def succeed(self, event: StoredEvent, hook_result: Any) -> None:
        self._event, self._hook_result, self.done = event, hook_result, True

    def fail(self, error: BaseException) -> None:
        self._error, self.done = error, True

    def result(self) -> tuple[StoredEvent, Any]:
        if self._error is not None:
            raise self._error
        if self._event is None:
            raise MatrixError(500, "M_UNKNOWN", "The event was not persisted")
        return self._event, self._hook_result


@attrs.frozen
class BuiltEvent:
    """A signed, authorised event ready to persist, and what the next link of a chain needs."""

    send: PendingSend
    event: EventToPersist
    depth: int
    state_after: Mapping[StateKey, str]
    # Extremities the event does not cite (they stay extremities beside it).
    remaining: list[str]
