"""Server-side search (Client-Server API "Server Side Search", ``POST /search``, room_events).

The index is a :class:`StreamFollower`: it tokenizes ``content.body``,
``content.name`` and ``content.topic`` of every persisted event (message,
room name, topic) off the send path, and a redaction deletes its target's
row, so redacted text is no longer found. A search waits (bounded) until the
indexer reached the current position, so a message is findable as soon as
its send returned.

Who sees what: only rooms the user is joined to, or left (then only up to
the leave), and of those only the events history visibility lets them see
(``ClientEvents.filter_visible``, the predicate ``/messages`` uses). A room
named in the filter that the user was never in is simply not searched (the
spec has no error for it; Synapse answers the same).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
import trio
from sqlalchemy.engine import Connection

from homeserver.errors import bad_json, invalid_param
from homeserver.push.follower import StreamFollower, is_live
from homeserver.search import tokenize
from homeserver.storage import search as store
from homeserver.storage.database import Database
from homeserver.storage.event_tables import events as events_table
from homeserver.storage.events import EventStore, StoredEvent
from homeserver.storage.timeline import read_user_memberships, redaction_target
from homeserver.timeline.client_events import ClientEvents
from homeserver.timeline.tokens import TopologicalToken

# key -> the event type whose content field it indexes (spec: search "keys").
KEYS = {
    "content.body": "m.room.message",
    "content.name": "m.room.name",
    "content.topic": "m.room.topic",
}
_FIELD = {"m.room.message": "body", "m.room.name": "name", "m.room.topic": "topic"}
DEFAULT_LIMIT = 10
MAX_LIMIT = 50
MAX_CONTEXT = 20
MAX_TERM_CHARS = 1000
MAX_FILTER_ITEMS = 500


class SearchIndexer(StreamFollower):
    name = "search"
    # A search asks for the pending index writes (wait_for); otherwise they are grouped.
    write_interval = 0.2

    async def prepare(self, batch: list[StoredEvent]) -> tuple[list[store.Entry], list[str]]:
        entries: list[store.Entry] = []
        redacted: list[str] = []
        for event in batch:
            if not is_live(event):
                continue
            if event.type == "m.room.redaction":
                target = redaction_target(event.pdu)
                if target is not None:
                    redacted.append(target)
                continue
            field = _FIELD.get(event.type)
            content = event.pdu.get("content")
            if field is None or not isinstance(content, dict):
                continue
            text = content.get(field)
            if not isinstance(text, str) or not text:
                continue
            terms = tokenize.terms(text)
            if terms:
                entries.append(
                    store.Entry(
                        stream_ordering=event.stream_ordering,
                        event_id=event.event_id,
                        room_id=event.room_id,
                        sender=event.sender,
                        type=event.type,
                        origin_server_ts=event.origin_server_ts,
                        terms=terms,
                    )
                )
        return entries, redacted

    def write(self, conn: Connection, batch: list[StoredEvent], prepared: Any) -> None:
        entries, redacted = prepared
        store.insert_entries(conn, entries)
        for event_id in redacted:
            store.delete_entry(conn, event_id)


def _strings(body: Mapping[str, Any], name: str) -> list[str] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad_json(f"'filter.{name}' must be a list of strings")
    if len(value) > MAX_FILTER_ITEMS:
        raise invalid_param(f"'filter.{name}' has too many entries")
    return value


def _int(body: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_json(f"'{name}' must be an integer")
    return max(low, min(value, high))


def _object(body: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = body.get(name, {})
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_json(f"'{name}' must be an object")
    return value


class SearchService:
    def __init__(
        self,
        database: Database,
        event_store: EventStore,
        client_events: ClientEvents,
        head: Callable[[], int],
    ) -> None:
        self.database = database
        self.event_store = event_store
        self.client_events = client_events
        self._head = head
        self.indexer = SearchIndexer(database, event_store, head)

    async def search(
        self, user_id: str, body: Mapping[str, Any], next_batch: str | None
    ) -> dict[str, Any]:
        categories = body.get("search_categories")
        if not isinstance(categories, dict):
            raise bad_json("'search_categories' must be an object")
        criteria = categories.get("room_events")
        if criteria is None:
            return {"search_categories": {}}
        if not isinstance(criteria, dict):
            raise bad_json("'search_categories.room_events' must be an object")
        return {
            "search_categories": {
                "room_events": await self._room_events(user_id, criteria, next_batch)
            }
        }

    async def _room_events(
        self, user_id: str, criteria: Mapping[str, Any], next_batch: str | None
    ) -> dict[str, Any]:
        term = criteria.get("search_term")
        if not isinstance(term, str):
            raise bad_json("'search_term' must be a string")
        if len(term) > MAX_TERM_CHARS:
            raise invalid_param(f"'search_term' may be at most {MAX_TERM_CHARS} characters")
        keys = criteria.get("keys", list(KEYS))
        if not isinstance(keys, list) or not keys or any(k not in KEYS for k in keys):
            raise bad_json(f"'keys' must be a non-empty list of {', '.join(KEYS)}")
        order_by = criteria.get("order_by", "rank")
        if order_by not in ("rank", "recent"):
            raise bad_json("'order_by' must be 'rank' or 'recent'")
        filter_ = _object(criteria, "filter")
        limit = _int(filter_, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        context = criteria.get("event_context")
        if context is not None and not isinstance(context, dict):
            raise bad_json("'event_context' must be an object")
        if context is not None:  # refuse bad limits even when nothing is found
            _int(context, "before_limit", 5, 0, MAX_CONTEXT)
            _int(context, "after_limit", 5, 0, MAX_CONTEXT)
        group_by = self._group_by(criteria)
        offset = 0
        if next_batch is not None:
            if not (next_batch.isascii() and next_batch.isdigit()) or len(next_batch) > 9:
                raise invalid_param("Invalid 'next_batch'")
            offset = int(next_batch)

        rooms = await self._readable_rooms(user_id)
        wanted = _strings(filter_, "rooms")
        if wanted is not None:
            rooms = {r: b for r, b in rooms.items() if r in wanted}
        for room_id in _strings(filter_, "not_rooms") or []:
            rooms.pop(room_id, None)
        types = [KEYS[k] for k in keys]
        filter_types = _strings(filter_, "types")
        if filter_types is not None:
            types = [t for t in types if any(_glob(p, t) for p in filter_types)]
        query = store.Query(
            terms=tokenize.query_terms(term),
            rooms=rooms,
            senders=_strings(filter_, "senders"),
            not_senders=_strings(filter_, "not_senders") or [],
            types=types,
            not_types=_strings(filter_, "not_types") or [],
            order_by_rank=order_by == "rank",
        )
        await self.indexer.wait_for(self._head())
        hits, total = await self.database.read(
            lambda conn: store.search(conn, query, limit, offset)
        )
        found = await self.event_store.get_events(h.event_id for h in hits)
        visible = await self.client_events.filter_visible(
            user_id, [found[h.event_id] for h in hits if h.event_id in found]
        )
        visible_ids = {e.event_id for e in visible}
        hits = [h for h in hits if h.event_id in visible_ids]
        serialized = await self.client_events.serialize(
            [found[h.event_id] for h in hits], user_id=user_id
        )
        contexts: dict[str, dict[str, Any]] = {}
        if context is not None:
            # Each result's context is independent reads: fetch them side by side.
            async with trio.open_nursery() as nursery:
                for hit in hits:
                    nursery.start_soon(
                        self._context_into, contexts, user_id, found[hit.event_id], context
                    )
        results: list[dict[str, Any]] = []
        for hit, event in zip(hits, serialized, strict=True):
            result: dict[str, Any] = {"rank": hit.rank, "result": event}
            if context is not None:
                result["context"] = contexts[hit.event_id]
            results.append(result)
        out: dict[str, Any] = {
            "count": total,
            "highlights": tokenize.highlights(term),
            "results": results,
        }
        if offset + limit < total:
            out["next_batch"] = str(offset + limit)
        if group_by:
            out["groups"] = _groups(group_by, hits, found, out.get("next_batch"))
        if criteria.get("include_state") is True:
            out["state"] = {
                room_id: await self.client_events.serialize(
                    (await self.event_store.get_current_state(room_id)).values()
                )
                for room_id in dict.fromkeys(h.room_id for h in hits)
                if rooms.get(room_id, 0) is None
            }
        return out

    def _group_by(self, criteria: Mapping[str, Any]) -> list[str]:
        groupings = _object(criteria, "groupings")
        group_by = groupings.get("group_by", [])
        if not isinstance(group_by, list):
            raise bad_json("'groupings.group_by' must be a list")
        keys: list[str] = []
        for group in group_by:
            key = group.get("key") if isinstance(group, dict) else None
            if key not in ("room_id", "sender"):
                raise bad_json("'groupings.group_by' keys must be 'room_id' or 'sender'")
            keys.append(key)
        return keys

    async def _readable_rooms(self, user_id: str) -> dict[str, int | None]:
        """room_id -> upper bound: None while joined, the leave's position after leaving."""
        memberships = await self.database.read(lambda conn: read_user_memberships(conn, user_id))
        rooms: dict[str, int | None] = {}
        for m in memberships:
            if m.membership == "join":
                rooms[m.room_id] = None
            elif m.membership in ("leave", "ban"):
                rooms[m.room_id] = m.stream_ordering
        return rooms

    async def _context_into(
        self,
        out: dict[str, dict[str, Any]],
        user_id: str,
        event: StoredEvent,
        spec: Mapping[str, Any],
    ) -> None:
        out[event.event_id] = await self._context(user_id, event, spec)

    async def _context(
        self, user_id: str, event: StoredEvent, spec: Mapping[str, Any]
    ) -> dict[str, Any]:
        before_limit = _int(spec, "before_limit", 5, 0, MAX_CONTEXT)
        after_limit = _int(spec, "after_limit", 5, 0, MAX_CONTEXT)

        def read(conn: Connection) -> tuple[list[str], list[str]]:
            return (
                _neighbours(conn, event, before=True, limit=before_limit),
                _neighbours(conn, event, before=False, limit=after_limit),
            )

        before_ids, after_ids = await self.database.read(read)
        found = await self.event_store.get_events(before_ids + after_ids)
        before = await self.client_events.filter_visible(
            user_id, [found[i] for i in before_ids if i in found]
        )
        after = await self.client_events.filter_visible(
            user_id, [found[i] for i in after_ids if i in found]
        )
        first = before[-1] if before else event
        last = after[-1] if after else event
        out: dict[str, Any] = {
            "events_before": await self.client_events.serialize(before, user_id=user_id),
            "events_after": await self.client_events.serialize(after, user_id=user_id),
            "start": TopologicalToken.before(
                first.topological_ordering, first.stream_ordering
            ).to_string(),
            "end": TopologicalToken.after(
                last.topological_ordering, last.stream_ordering
            ).to_string(),
        }
        if spec.get("include_profile") is True:
            state = await self.event_store.get_current_state(event.room_id)
            profiles: dict[str, Any] = {}
            for sender in dict.fromkeys(e.sender for e in [*before, event, *after]):
                member = state.get(("m.room.member", sender))
                content = member.pdu.get("content", {}) if member is not None else {}
                profiles[sender] = {
                    k: content[k]
                    for k in ("displayname", "avatar_url")
                    if isinstance(content.get(k), str)
                }
            out["profile_info"] = profiles
        return out


def _neighbours(conn: Connection, event: StoredEvent, *, before: bool, limit: int) -> list[str]:
    """Event IDs next to ``event`` in its room's stream: newest first before it, oldest first after."""
    if limit == 0:
        return []
    e = events_table.c
    position = (
        e.stream_ordering < event.stream_ordering
        if before
        else e.stream_ordering > event.stream_ordering
    )
    rows = conn.execute(
        sa.select(e.event_id)
        .where(
            e.room_id == event.room_id,
            position,
            e.outlier == sa.false(),
            e.rejected_reason.is_(None),
            e.soft_failed == sa.false(),
        )
        .order_by(e.stream_ordering.desc() if before else e.stream_ordering.asc())
        .limit(limit)
    ).all()
    return [r.event_id for r in rows]


def _glob(pattern: str, value: str) -> bool:
    if "*" not in pattern:
        return pattern == value
    prefix, _, suffix = pattern.partition("*")
    return value.startswith(prefix) and value.endswith(suffix.replace("*", ""))


def _groups(
    group_by: list[str],
    hits: list[store.Hit],
    found: Mapping[str, StoredEvent],
    next_batch: str | None,
) -> dict[str, Any]:
    """Spec ``groups``: per key, per value, the result event IDs and the value's rank order."""
    out: dict[str, Any] = {}
    for key in group_by:
        groups: dict[str, dict[str, Any]] = {}
        for hit in hits:
            value = hit.room_id if key == "room_id" else found[hit.event_id].sender
            group = groups.setdefault(value, {"results": [], "order": len(groups) + 1})
            group["results"].append(hit.event_id)
        if next_batch is not None:
            for group in groups.values():
                group["next_batch"] = next_batch
        out[key] = groups
    return out
