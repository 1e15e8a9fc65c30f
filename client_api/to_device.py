"""``PUT /sendToDevice/{eventType}/{txnId}`` (``to_device.yaml``).

Limits: event type and txnId at most 255 characters; at most 1000 (user, device)
entries per request (``*`` counts once, and fans out to all the user's devices);
each message's content at most 64 KiB of canonical JSON. A recipient device
holds at most 1000 undelivered messages; beyond that the request is refused
with 429 ``M_LIMIT_EXCEEDED`` naming the device (``homeserver/e2e/to_device.py``).
"""

from __future__ import annotations

from typing import Any

from homeserver.accounts.auth import require_user
from homeserver.e2e import validation as val
from homeserver.errors import bad_json, invalid_param, missing_param
from homeserver.homeserver import HomeServer
from homeserver.http.router import Router
from homeserver.http.types import Request, Response

MAX_ID_LENGTH = 255
MAX_TARGETS = 1000
MAX_CONTENT_BYTES = 64 * 1024


def add_routes(router: Router, hs: HomeServer) -> None:
    async def send_to_device(request: Request) -> Response:
        requester = await require_user(hs, request)
        event_type = request.path_params["eventType"]
        txn_id = request.path_params["txnId"]
        if len(event_type) > MAX_ID_LENGTH or len(txn_id) > MAX_ID_LENGTH:
            raise invalid_param("The event type or transaction ID is too long")
        body = request.json()
        raw = body.get("messages")
        if raw is None:
            raise missing_param("'messages' is required")
        if not isinstance(raw, dict):
            raise bad_json("'messages' must be an object")
        messages: dict[str, dict[str, dict[str, Any]]] = {}
        total = 0
        for user_id, by_device in raw.items():
            if not isinstance(by_device, dict) or len(user_id) > MAX_ID_LENGTH:
                raise bad_json("'messages' must map user IDs to objects of device ID to content")
            total += len(by_device)
            if total > MAX_TARGETS:
                raise invalid_param(f"'messages' names too many devices (at most {MAX_TARGETS})")
            for device_id, content in by_device.items():
                if len(device_id) > MAX_ID_LENGTH:
                    raise invalid_param("'messages' has a device ID that is too long")
                if not isinstance(content, dict):
                    raise bad_json(f"'messages.{user_id}.{device_id}' must be an object")
                if val.encoded_size(content, "messages") > MAX_CONTENT_BYTES:
                    raise invalid_param(
                        f"'messages.{user_id}.{device_id}' is larger than {MAX_CONTENT_BYTES} bytes"
                    )
            messages[user_id] = by_device
        await hs.to_device.send(
            requester.user_id, requester.device_id, txn_id, event_type, messages
        )
        return Response.json({})

    for prefix in ("v3", "r0"):
        router.add(
            "PUT",
            f"/_matrix/client/{prefix}/sendToDevice/{{eventType}}/{{txnId}}",
            send_to_device,
        )
