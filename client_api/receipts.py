"""Receipts and read markers.

* ``POST /rooms/{roomId}/receipt/{receiptType}/{eventId}``, body ``{"thread_id"?}``:
  ``m.read``, ``m.read.private`` or ``m.fully_read`` (spec, "Receipts").
* ``POST /rooms/{roomId}/read_markers``, body ``{"m.fully_read"?, "m.read"?,
  "m.read.private"?}`` (spec, "Fully read markers").

Only members of the room (403); the event must be in the room (404); a bad
``thread_id`` is 400 ``M_INVALID_PARAM`` as the spec's example shows.
"""

from __future__ import annotations

from typing import Any

from homeserver.accounts.auth import require_user
from homeserver.errors import bad_json, invalid_param
from homeserver.homeserver import HomeServer
from homeserver.http.router import Router
from homeserver.http.types import Request, Response
from homeserver.receipts import FULLY_READ, READ, READ_PRIVATE, RECEIPT_TYPES

MAX_BODY = 16 * 1024
MAX_EVENT_ID_LENGTH = 255


def _room_id(request: Request) -> str:
    room_id = request.path_params["roomId"]
    if not room_id.startswith("!"):
        raise invalid_param("Not a valid room ID")
    return room_id


def _event_id(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise bad_json(f"'{name}' must be an event ID string")
    if not value.startswith("$") or len(value) > MAX_EVENT_ID_LENGTH:
        raise invalid_param(f"'{name}' is not a valid event ID")
    return value


def add_routes(router: Router, hs: HomeServer) -> None:
    async def post_receipt(request: Request) -> Response:
        requester = await require_user(hs, request)
        room_id = _room_id(request)
        receipt_type = request.path_params["receiptType"]
        if receipt_type not in RECEIPT_TYPES:
            raise invalid_param(f"Receipt type must be one of {', '.join(RECEIPT_TYPES)}")
        event_id = _event_id(request.path_params["eventId"], "eventId")
        body = request.json()
        thread_id = body.get("thread_id")
        if thread_id is not None and not isinstance(thread_id, str):
            raise invalid_param("thread_id field must be a non-empty string")
        await hs.receipts.set_receipt(requester.user_id, room_id, receipt_type, event_id, thread_id)
        return Response.json({})

    async def post_read_markers(request: Request) -> Response:
        requester = await require_user(hs, request)
        room_id = _room_id(request)
        body = request.json()
        markers = {
            kind: _event_id(body[kind], kind)
            for kind in (FULLY_READ, READ, READ_PRIVATE)
            if body.get(kind) is not None
        }
        await hs.receipts.set_read_markers(requester.user_id, room_id, markers)
        return Response.json({})

    for prefix in ("v3", "r0"):
        base = f"/_matrix/client/{prefix}/rooms/{{roomId}}"
        router.add(
            "POST",
            f"{base}/receipt/{{receiptType}}/{{eventId}}",
            post_receipt,
            max_body=MAX_BODY,
        )
        router.add("POST", f"{base}/read_markers", post_read_markers, max_body=MAX_BODY)
