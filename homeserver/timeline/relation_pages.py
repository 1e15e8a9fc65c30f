"""Paging through child events (/relations) and a room's threads (/threads).

Client-Server API v1.12+: ``GET /rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]]``
and ``GET /rooms/{roomId}/threads``. Both apply history visibility through
:class:`ClientEvents` the way /messages does: a page is filled from batches of
rows, dropping what the user may not see, with a bound on the rows scanned.
"""

from __future__ import annotations

import functools
import re

import attrs

from homeserver.errors import MatrixError, invalid_param, not_found
from homeserver.storage.events import StoredEvent
from homeserver.storage.relation_queries import RelationPoint, read_children, read_thread_roots
from homeserver.timeline.service import MessageService
from homeserver.timeline.tokens import PaginationPoint, StreamPoint, TopologicalToken

# Spec "recurse": servers SHOULD traverse at least 3 levels of relationships.
RECURSION_DEPTH = 3
DEFAULT_LIMIT = 10
MAX_LIMIT = 100
_BATCH = 50
_MAX_SCAN = 5_000
_THREAD_TOKEN = re.compile(r"th([0-9]{1,18})")
_LIMIT = re.compile(r"[0-9]{1,9}")


@attrs.frozen
class RelationsPage:
    events: list[StoredEvent]
    next_point: TopologicalToken | None


@attrs.frozen
class ThreadsPage:
    roots: list[StoredEvent]
    next_token: str | None


def parse_limit(value: str | None) -> int:
    if value is None or value == "":
        return DEFAULT_LIMIT
    # ASCII digits only: str.isdigit() also accepts "²", which int() refuses.
    if _LIMIT.fullmatch(value) is None or int(value) == 0:
        raise invalid_param("'limit' must be a positive integer")
    return min(int(value), MAX_LIMIT)


def parse_thread_token(value: str) -> int:
    match = _THREAD_TOKEN.fullmatch(value)
    if match is None:
        raise invalid_param("Unknown pagination token")
    return int(match.group(1))


def _relation_point(point: PaginationPoint | None) -> RelationPoint | None:
    if point is None:
        return None
    if isinstance(point, StreamPoint):
        return RelationPoint(0, point.stream, stream_only=True)
    return RelationPoint(point.topological, point.stream)


class RelationPages:
    def __init__(self, messages: MessageService) -> None:
        self.messages = messages
        self.database = messages.database
        self.client_events = messages.client_events

    async def visible_parent(self, user_id: str, room_id: str, event_id: str) -> StoredEvent:
        """The parent, if the user may see it; 404 otherwise (spec: even when not in the room)."""
        try:
            return await self.messages.get_visible_event(user_id, room_id, event_id)
        except MatrixError as exc:
            if exc.status == 403:
                raise not_found("Event not found") from None
            raise

    async def relations(
        self,
        user_id: str,
        room_id: str,
        parent_id: str,
        *,
        rel_type: str | None,
        event_type: str | None,
        start: PaginationPoint | None,
        stop: PaginationPoint | None,
        backwards: bool,
        limit: int,
        recurse: bool,
    ) -> RelationsPage:
        await self.visible_parent(user_id, room_id, parent_id)
        point = _relation_point(start)
        stop_point = _relation_point(stop)
        depth = RECURSION_DEPTH if recurse else 1
        collected: list[StoredEvent] = []
        scanned = 0
        while scanned < _MAX_SCAN:
            size = max(_BATCH, limit - len(collected))
            batch = await self.database.read(
                functools.partial(
                    read_children,
                    parent_id=parent_id,
                    rel_type=rel_type,
                    event_type=event_type,
                    backwards=backwards,
                    start=point,
                    stop=stop_point,
                    recurse_depth=depth,
                    limit=size,
                )
            )
            scanned += len(batch)
            exhausted = len(batch) < size
            visible = {e.event_id for e in await self.client_events.filter_visible(user_id, batch)}
            for event in batch:
                key = (
                    TopologicalToken.before(event.topological_ordering, event.stream_ordering)
                    if backwards
                    else TopologicalToken.after(event.topological_ordering, event.stream_ordering)
                )
                point = RelationPoint(key.topological, key.stream)
                if event.event_id in visible:
                    collected.append(event)
                    if len(collected) == limit:
                        more = event is not batch[-1] or not exhausted
                        return RelationsPage(collected, key if more else None)
            if exhausted:
                return RelationsPage(collected, None)
        last = point
        return RelationsPage(
            collected, TopologicalToken(last.topological, last.stream) if last else None
        )

    async def threads(
        self,
        user_id: str,
        room_id: str,
        *,
        participated_only: bool,
        before_stream: int | None,
        limit: int,
    ) -> ThreadsPage:
        """Thread roots the user may see, by latest reply, newest first (spec "Querying threads")."""
        await self.messages.require_room_access(user_id, room_id)
        collected: list[StoredEvent] = []
        scanned = 0
        position = before_stream
        while scanned < _MAX_SCAN:
            size = max(_BATCH, limit - len(collected))
            rows = await self.database.read(
                functools.partial(
                    read_thread_roots,
                    room_id=room_id,
                    participant=user_id if participated_only else None,
                    before_stream=position,
                    limit=size,
                )
            )
            scanned += len(rows)
            exhausted = len(rows) < size
            visible = {
                e.event_id
                for e in await self.client_events.filter_visible(user_id, [r for r, _ in rows])
            }
            for index, (root, latest) in enumerate(rows):
                position = latest
                if root.event_id in visible:
                    collected.append(root)
                    if len(collected) == limit:
                        more = index < len(rows) - 1 or not exhausted
                        return ThreadsPage(collected, f"th{latest}" if more else None)
            if exhausted:
                return ThreadsPage(collected, None)
        return ThreadsPage(collected, f"th{position}" if position is not None else None)
