"""Room timelines over HTTP: /send, /redact, /messages, /context, /event, /timestamp_to_event.

Thin handlers: parse and check the parameters, call
:class:`homeserver.timeline.service.MessageService`, serialize. Matrix IDs in
the path are checked for shape first (400 ``M_INVALID_PARAM``) so a typo never
reaches storage.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from client_api import validation as v
from homeserver.accounts.auth import require_user
from homeserver.core.canonical_json import MAX_PDU_SIZE
from homeserver.errors import bad_json, invalid_param, missing_param
from homeserver.homeserver import HomeServer
from homeserver.http.router import Router
from homeserver.http.types import Request, Response
from homeserver.sync.filters import RoomEventFilter, parse_room_event_filter
from homeserver.timeline.service import check_content, check_limit
from homeserver.timeline.tokens import TopologicalToken, parse_pagination_token

MAX_ID_BYTES = 255
MAX_TXN_ID_LENGTH = 255
MAX_FILTER_PARAM = 8192


def room_id_param(request: Request) -> str:
    room_id = request.path_params["roomId"]
    if not room_id.startswith("!") or len(room_id.encode()) > MAX_ID_BYTES or len(room_id) < 2:
        raise invalid_param("Malformed room ID")
    return room_id


def event_id_param(request: Request, name: str = "eventId") -> str:
    event_id = request.path_params[name]
    if not event_id.startswith("$") or len(event_id.encode()) > MAX_ID_BYTES or len(event_id) < 2:
        raise invalid_param("Malformed event ID")
    return event_id


def txn_id_param(request: Request) -> str:
    txn_id = request.path_params["txnId"]
    if not txn_id or len(txn_id) > MAX_TXN_ID_LENGTH:
        raise invalid_param("Malformed transaction ID")
    return txn_id


def room_event_filter_param(request: Request) -> RoomEventFilter:
    """``?filter=`` of /messages and /context: an inline RoomEventFilter (400 M_BAD_JSON)."""
    raw = request.query_one("filter")
    if raw is None or raw == "":
        return RoomEventFilter()
    if len(raw) > MAX_FILTER_PARAM:
        raise bad_json("The filter is too long")
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        raise bad_json("The filter is not valid JSON") from None
    return parse_room_event_filter(value)


def add_routes(router: Router, hs: HomeServer) -> None:
    messages = hs.messages
    client_events = messages.client_events

    async def send(request: Request) -> Response:
        requester = await require_user(hs, request)
        room_id = room_id_param(request)
        event_type = request.path_params["eventType"]
        if not event_type or len(event_type.encode()) > MAX_ID_BYTES:
            raise invalid_param("Malformed event type")
        txn_id = txn_id_param(request)
        content = check_content(request.json())
        event_id = await messages.send(
            requester.user_id, requester.device_id, room_id, event_type, content, txn_id
        )
        return Response.json({"event_id": event_id})

    async def redact(request: Request) -> Response:
        requester = await require_user(hs, request)
        room_id = room_id_param(request)
        target = event_id_param(request)
        txn_id = txn_id_param(request)
        body = request.json()
        reason = v.string(body, "reason", max_length=4096)
        event_id = await messages.redact(
            requester.user_id, requester.device_id, room_id, target, txn_id, reason
        )
        return Response.json({"event_id": event_id})

    async def get_messages(request: Request) -> Response:
        requester = await require_user(hs, request)
        room_id = room_id_param(request)
        direction = request.query_one("dir")
        if direction is None:
            raise missing_param("'dir' is required")
        if direction not in ("b", "f"):
            raise invalid_param("'dir' must be 'b' or 'f'")
        from_raw = request.query_one("from") or None
        to_raw = request.query_one("to") or None
        start = parse_pagination_token(from_raw) if from_raw else None
        stop = parse_pagination_token(to_raw) if to_raw else None
        limit = check_limit(request.query_one("limit"))
        event_filter = room_event_filter_param(request)
        await messages.require_room_access(requester.user_id, room_id)
        # Messages from users on m.ignored_user_list are not served (spec "Ignoring Users").
        ignored = frozenset(await hs.account_data.ignored_users(requester.user_id))
        used, page = await messages.paginate(
            requester.user_id,
            room_id,
            start=start,
            backwards=direction == "b",
            limit=limit,
            event_filter=event_filter,
            stop=stop,
            ignored=ignored,
        )
        body: dict[str, Any] = {
            # "start" must be the token sent as "from" (matrix_brief 6 #10).
            "start": from_raw if from_raw is not None else used.to_string(),
            "chunk": await client_events.serialize(
                page.events, user_id=requester.user_id, device_id=requester.device_id
            ),
        }
        if page.next_point is not None:
            body["end"] = page.next_point.to_string()
        if event_filter.lazy_load_members and page.events:
            anchor = page.events[0] if direction == "b" else page.events[-1]
            members = await messages.members_for_senders(
                anchor, room_id, {e.sender for e in page.events}
            )
            body["state"] = await client_events.serialize(members, with_prev_content=False)
        else:
            body["state"] = []
        return Response.json(body)

    async def get_context(request: Request) -> Response:
        requester = await require_user(hs, request)
        room_id = room_id_param(request)
        event_id = event_id_param(request)
        limit = check_limit(request.query_one("limit"))
        event_filter = room_event_filter_param(request)
        event, before, after = await messages.context(
            requester.user_id, room_id, event_id, limit, event_filter
        )
        last = after.events[-1] if after.events else event
        everyone = [*before.events, event, *after.events]
        if event_filter.lazy_load_members:
            state = await messages.members_for_senders(last, room_id, {e.sender for e in everyone})
        else:
            state = await messages.state_at(last)
        serialize = functools.partial(
            client_events.serialize, user_id=requester.user_id, device_id=requester.device_id
        )
        body: dict[str, Any] = {
            "event": (await serialize([event]))[0],
            "events_before": await serialize(before.events),
            "events_after": await serialize(after.events),
            "state": await client_events.serialize(state, with_prev_content=False),
        }
        start = before.next_point
        end = after.next_point
        # /context always answers start and end (nio and js-sdk read them).
        body["start"] = (
            start or TopologicalToken.before(event.topological_ordering, event.stream_ordering)
        ).to_string()
        if end is None:
            end = TopologicalToken.after(last.topological_ordering, last.stream_ordering)
        body["end"] = end.to_string()
        return Response.json(body)

    async def get_event(request: Request) -> Response:
        requester = await require_user(hs, request)
        room_id = room_id_param(request)
        event_id = event_id_param(request)
        event = await messages.get_visible_event(requester.user_id, room_id, event_id)
        serialized = await client_events.serialize(
            [event], user_id=requester.user_id, device_id=requester.device_id
        )
        return Response.json(serialized[0])

    async def timestamp_to_event(request: Request) -> Response:
        requester = await require_user(hs, request)
        room_id = room_id_param(request)
        direction = request.query_one("dir")
        if direction not in ("b", "f"):
            raise invalid_param("'dir' must be 'b' or 'f'")
        ts_raw = request.query_one("ts")
        if ts_raw is None:
            raise missing_param("'ts' is required")
        if not ts_raw.isdigit() or len(ts_raw) > 16:
            raise invalid_param("'ts' must be a timestamp in milliseconds")
        event = await messages.timestamp_to_event(
            requester.user_id, room_id, int(ts_raw), direction == "f"
        )
        return Response.json(
            {"event_id": event.event_id, "origin_server_ts": event.origin_server_ts}
        )

    for prefix in ("v3", "r0"):
        base = f"/_matrix/client/{prefix}/rooms/{{roomId}}"
        router.add(
            "PUT",
            f"{base}/send/{{eventType}}/{{txnId}}",
            send,
            max_body=MAX_PDU_SIZE,
            tags={"send"},
        )
        router.add("PUT", f"{base}/redact/{{eventId}}/{{txnId}}", redact, max_body=MAX_PDU_SIZE)
        router.add("GET", f"{base}/messages", get_messages)
        router.add("GET", f"{base}/context/{{eventId}}", get_context)
        router.add("GET", f"{base}/event/{{eventId}}", get_event)
    router.add("GET", "/_matrix/client/v1/rooms/{roomId}/timestamp_to_event", timestamp_to_event)
