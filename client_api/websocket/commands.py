"""The write commands of the WebSocket transport: the same checks and services as over HTTP.

Each function takes the authenticated requester and the command frame (a JSON
object) and returns the ``result`` of the ack. Bad fields raise the same
:class:`MatrixError` the HTTP endpoint would (``client_api/messages.py``,
``typing.py``, ``receipts.py``), so a client gets one error vocabulary.
"""

from __future__ import annotations

from typing import Any

from homeserver.accounts.auth import Requester
from homeserver.errors import bad_json, invalid_param, missing_param
from homeserver.homeserver import HomeServer
from homeserver.receipts import FULLY_READ, READ, READ_PRIVATE, RECEIPT_TYPES
from homeserver.timeline.service import check_content

MAX_ID_BYTES = 255
MAX_TXN_ID_LENGTH = 255

Frame = dict[str, Any]


def _string(frame: Frame, name: str) -> str:
    if name not in frame:
        raise missing_param(f"'{name}' is required")
    value = frame[name]
    if not isinstance(value, str):
        raise bad_json(f"'{name}' must be a string")
    return value


def room_id_field(frame: Frame) -> str:
    room_id = _string(frame, "room_id")
    if not room_id.startswith("!") or len(room_id.encode()) > MAX_ID_BYTES or len(room_id) < 2:
        raise invalid_param("Malformed room ID")
    return room_id


def event_id_value(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise bad_json(f"'{name}' must be an event ID string")
    if not value.startswith("$") or len(value.encode()) > MAX_ID_BYTES or len(value) < 2:
        raise invalid_param(f"'{name}' is not a valid event ID")
    return value


async def send(hs: HomeServer, requester: Requester, frame: Frame) -> dict[str, Any]:
    """``PUT /rooms/{roomId}/send/{eventType}/{txnId}``: same transaction scope (user, device)."""
    room_id = room_id_field(frame)
    event_type = _string(frame, "event_type")
    if not event_type or len(event_type.encode()) > MAX_ID_BYTES:
        raise invalid_param("Malformed event type")
    txn_id = _string(frame, "txn_id")
    if not txn_id or len(txn_id) > MAX_TXN_ID_LENGTH:
        raise invalid_param("Malformed transaction ID")
    content = check_content(frame.get("content"))
    hs.rate_limits.check("writes", requester.user_id)
    event_id = await hs.messages.send(
        requester.user_id, requester.device_id, room_id, event_type, content, txn_id
    )
    return {"event_id": event_id}


async def typing(hs: HomeServer, requester: Requester, frame: Frame) -> dict[str, Any]:
    """``PUT /rooms/{roomId}/typing/{userId}`` for the connection's own user."""
    room_id = room_id_field(frame)
    if "typing" not in frame:
        raise missing_param("'typing' is required")
    is_typing = frame["typing"]
    if not isinstance(is_typing, bool):
        raise bad_json("'typing' must be a boolean")
    timeout = frame.get("timeout")
    if timeout is not None and (
        not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 0
    ):
        raise bad_json("'timeout' must be a non-negative integer (milliseconds)")
    hs.rate_limits.check("writes", requester.user_id)
    user_id = requester.user_id
    await hs.typing.set_typing(user_id, user_id, room_id, is_typing, timeout)
    if is_typing:
        await hs.presence.bump_active(user_id)
    return {}


async def receipt(hs: HomeServer, requester: Requester, frame: Frame) -> dict[str, Any]:
    """``POST /rooms/{roomId}/receipt/{receiptType}/{eventId}``."""
    room_id = room_id_field(frame)
    receipt_type = _string(frame, "receipt_type")
    if receipt_type not in RECEIPT_TYPES:
        raise invalid_param(f"Receipt type must be one of {', '.join(RECEIPT_TYPES)}")
    event_id = event_id_value(frame.get("event_id"), "event_id")
    thread_id = frame.get("thread_id")
    if thread_id is not None and not isinstance(thread_id, str):
        raise invalid_param("thread_id field must be a non-empty string")
    hs.rate_limits.check("writes", requester.user_id)
    await hs.receipts.set_receipt(requester.user_id, room_id, receipt_type, event_id, thread_id)
    return {}


async def read_markers(hs: HomeServer, requester: Requester, frame: Frame) -> dict[str, Any]:
    """``POST /rooms/{roomId}/read_markers`` with ``body`` as the HTTP body."""
    room_id = room_id_field(frame)
    body = frame.get("body", {})
    if not isinstance(body, dict):
        raise bad_json("'body' must be an object")
    markers = {
        kind: event_id_value(body[kind], kind)
        for kind in (FULLY_READ, READ, READ_PRIVATE)
        if body.get(kind) is not None
    }
    hs.rate_limits.check("writes", requester.user_id)
    await hs.receipts.set_read_markers(requester.user_id, room_id, markers)
    return {}
