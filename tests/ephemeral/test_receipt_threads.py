"""The pure thread check behind threaded receipts (spec: 400 when event and thread_id disagree)."""

from __future__ import annotations

from typing import Any

import pytest

from homeserver.errors import MatrixError
from homeserver.receipts import check_thread, thread_of
from homeserver.storage.events import StoredEvent


def event(event_id: str, content: dict[str, Any]) -> StoredEvent:
    return StoredEvent(
        event_id=event_id,
        room_id="!r:x",
        type="m.room.message",
        state_key=None,
        sender="@a:x",
        depth=1,
        topological_ordering=1,
        stream_ordering=1,
        origin_server_ts=0,
        rejected_reason=None,
        soft_failed=False,
        outlier=False,
        state_group_before=None,
        state_group_after=None,
        pdu={"content": content},
    )


ROOT = event("$root", {"body": "root"})
REPLY = event("$reply", {"m.relates_to": {"rel_type": "m.thread", "event_id": "$root"}})
REACTION = event("$react", {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$reply"}})
BROKEN = event("$broken", {"m.relates_to": "not an object"})


def test_thread_of() -> None:
    assert thread_of(ROOT) is None
    assert thread_of(REPLY) == "$root"
    assert thread_of(REACTION) is None
    assert thread_of(BROKEN) is None


@pytest.mark.parametrize(
    ("target", "thread_id"),
    [
        (ROOT, "main"),
        (ROOT, "$root"),
        (REPLY, "$root"),
        (REACTION, "main"),
        (REACTION, "$root"),
        (BROKEN, "main"),
    ],
)
def test_accepted(target: StoredEvent, thread_id: str) -> None:
    check_thread(target, thread_id)


@pytest.mark.parametrize(
    ("target", "thread_id"),
    [(REPLY, "main"), (ROOT, "$other"), (REPLY, "$other"), (BROKEN, "$root")],
)
def test_refused(target: StoredEvent, thread_id: str) -> None:
    with pytest.raises(MatrixError) as info:
        check_thread(target, thread_id)
    assert info.value.status == 400 and info.value.errcode == "M_INVALID_PARAM"
