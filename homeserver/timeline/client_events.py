"""Events as clients see them: who may see which, and in what shape.

Every read path (/messages, /context, /event, /sync) goes through
:class:`ClientEvents`: :meth:`~ClientEvents.filter_visible` applies history
visibility (the pure predicate in ``homeserver.sync.visibility``) using the
room state *at* each event, and :meth:`~ClientEvents.serialize` turns stored
PDUs into the client format (client-server-api "Room Event Format"):
``event_id``, ``type``, ``content``, ``sender``, ``origin_server_ts``,
``room_id``, ``state_key`` for state, and ``unsigned`` with ``age``,
``prev_content``/``replaces_state`` for state events, ``redacted_because``
for redacted events (served in redacted form), ``transaction_id`` on the
sending device's own events (matrix_brief 6 #9) and ``m.relations``, the
bundled aggregations of child events (``homeserver.timeline.relations``; read
in the same database trip as the redactions, for the whole page).

Most served events were stored moments ago (a woken /sync): :class:`RecentEvents`
proves, from memory, that such an event has neither a redaction nor a relation
child, so serializing it needs no database trip.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from homeserver.core.redaction import redact_event
from homeserver.core.room_versions import RoomVersion, get_room_version
from homeserver.storage.database import Database
from homeserver.storage.events import EventStore, StoredEvent
from homeserver.storage.relation_queries import BundleRows, read_bundle_rows
from homeserver.storage.relations import relation_of
from homeserver.storage.state import StateKey
from homeserver.storage.timeline import (
    read_membership_events_of_user,
    read_redactions,
    redaction_target,
)
from homeserver.storage.transactions import read_txn_ids_for_device
from homeserver.sync.visibility import history_visibility_of, is_event_visible
from homeserver.timeline.relations import build_bundles

_HISTORY_KEY: StateKey = ("m.room.history_visibility", "")
# Events named by a redaction or a relation since the watermark, at most; then the
# watermark moves up to the newest event and the set starts empty.
MAX_TOUCHED = 50_000


class RecentEvents:
    """Which recently stored events cannot have a redaction or a relation child.

    Fed by the new-event hook (``EventCreationService.add_new_event_hook``), which
    every event stored in the DAG passes, after its transaction committed: the only
    writers of ``event_redactions`` (local redactions, ``timeline/service.py``) and
    ``event_relations`` (the persist transaction; never for outliers, which take
    their place in the DAG through the hook) store events that pass it. A
    redaction or a child names its target; the hook keeps those names
    (``touched``). The redaction purge (``timeline/retention.py``) only rewrites
    targets of redactions, which were touched.

    An event is *untouched* when it was sent by a local user, stored above the
    watermark, and never named. Local events only: their IDs are hashes (or random)
    nobody can know before we store them, so no child or redaction can precede
    them; a remote event may arrive after its children. The watermark is just
    below the first event this process stored (the server is one process: events
    above it were all stored, and hooked, here), and moves up to the newest event
    whenever the set reaches :data:`MAX_TOUCHED` (then everything stored so far is
    read from the database again, as before).
    """

    def __init__(self, server_name: str, max_touched: int = MAX_TOUCHED) -> None:
        self._local_suffix = ":" + server_name
        self.max_touched = max_touched
        self._watermark: int | None = None
        self._newest = 0
        self._touched: set[str] = set()

    def on_new_event(self, event: StoredEvent) -> None:
        if self._watermark is None:
            self._watermark = event.stream_ordering - 1
        self._newest = max(self._newest, event.stream_ordering)
        if event.type == "m.room.redaction":
            target = redaction_target(dict(event.pdu))
            if target is not None:
                self._touched.add(target)
        relation = relation_of(event.pdu.get("content"))
        if relation is not None:
            self._touched.add(relation[1])
        if len(self._touched) > self.max_touched:
            # A target named now was stored before this event, so at most _newest.
            self._touched.clear()
            self._watermark = self._newest

    def untouched(self, event: StoredEvent) -> bool:
        """True if ``event`` has no redaction and no relation child (known from memory)."""
        return (
            self._watermark is not None
            and event.stream_ordering > self._watermark
            and event.sender.endswith(self._local_suffix)
            and event.event_id not in self._touched
        )


def strip_event(event: StoredEvent) -> dict[str, Any]:
    """Stripped state (``{type, state_key, sender, content}``), as in invite_state."""
    return {
        "type": event.type,
        "state_key": event.state_key or "",
        "sender": event.sender,
        "content": event.pdu.get("content", {}),
    }


class ClientEvents:
    def __init__(self, database: Database, store: EventStore, clock_ms: Callable[[], int]) -> None:
        self.database = database
        self.store = store
        self._clock_ms = clock_ms
        self._versions: dict[str, RoomVersion] = {}
        # None until wired to the new-event hook (track_new_events): then always read.
        self.recent: RecentEvents | None = None

    def track_new_events(self, server_name: str) -> Callable[[StoredEvent], None]:
        """The new-event hook that lets :meth:`serialize` skip reads for fresh events."""
        self.recent = RecentEvents(server_name)
        return self.recent.on_new_event

    async def room_version(self, room_id: str) -> RoomVersion | None:
        version = self._versions.get(room_id)
        if version is None:
            room = await self.store.get_room(room_id)
            if room is None:
                return None
            version = get_room_version(room.room_version)
            if version is None:
                return None
            self._versions[room_id] = version
        return version

    # -- visibility -----------------------------------------------------------------

    async def membership_at(self, event: StoredEvent, user_id: str) -> str | None:
        """The user's membership at ``event`` (the one it sets, for their own member event)."""
        if event.type == "m.room.member" and event.state_key == user_id:
            value = event.pdu.get("content", {}).get("membership")
            return value if isinstance(value, str) else None
        if event.state_group_before is None:
            return None
        state = await self.store.get_state_group(event.state_group_before)
        member_id = state.get(("m.room.member", user_id))
        if member_id is None:
            return None
        member = await self.store.get_event(member_id)
        if member is None:
            return None
        value = member.pdu.get("content", {}).get("membership")
        return value if isinstance(value, str) else None

    async def filter_visible(
        self, user_id: str, events: Sequence[StoredEvent]
    ) -> list[StoredEvent]:
        """The events ``user_id`` may see, in the given order."""
        if not events:
            return []
        groups = {e.state_group_before for e in events if e.state_group_before is not None}
        states = {g: await self.store.get_state_group(g) for g in groups}
        wanted: set[str] = set()
        for state in states.values():
            for key in (_HISTORY_KEY, ("m.room.member", user_id)):
                if key in state:
                    wanted.add(state[key])
        found = await self.store.get_events(wanted)
        # Per event: (visibility, membership at it, is it the user's own member event).
        facts: list[tuple[str, str | None, bool]] = []
        for event in events:
            group = event.state_group_before
            state = states.get(group, {}) if group is not None else {}
            hv_event = found.get(state.get(_HISTORY_KEY, ""))
            visibility = history_visibility_of(hv_event.pdu.get("content") if hv_event else None)
            is_own = event.type == "m.room.member" and event.state_key == user_id
            if is_own:
                membership = event.pdu.get("content", {}).get("membership")
            else:
                member = found.get(state.get(("m.room.member", user_id), ""))
                membership = member.pdu.get("content", {}).get("membership") if member else None
            facts.append((visibility, membership if isinstance(membership, str) else None, is_own))
        # The user's later joins matter only for "shared" events they were not joined at;
        # the common case (a member reading their rooms) never reads them.
        need_joins = {
            event.room_id
            for event, (visibility, membership, is_own) in zip(events, facts, strict=True)
            if visibility == "shared" and membership != "join" and not is_own
        }
        joins: dict[str, list[int]] = {}
        for room_id in need_joins:
            own = await self.database.read(
                functools.partial(read_membership_events_of_user, user_id=user_id, room_id=room_id)
            )
            joins[room_id] = [
                e.stream_ordering
                for e in own
                if e.pdu.get("content", {}).get("membership") == "join"
            ]
        visible: list[StoredEvent] = []
        for event, (visibility, membership, is_own) in zip(events, facts, strict=True):
            joined_after = any(j >= event.stream_ordering for j in joins.get(event.room_id, ()))
            if is_event_visible(
                visibility, membership, joined_after=joined_after, own_membership_event=is_own
            ):
                visible.append(event)
        return visible

    async def can_see(self, user_id: str, event: StoredEvent) -> bool:
        return bool(await self.filter_visible(user_id, [event]))

    # -- format ---------------------------------------------------------------------

    async def serialize(
        self,
        events: Iterable[StoredEvent],
        *,
        user_id: str | None = None,
        device_id: str | None = None,
        with_prev_content: bool = True,
        bundle_relations: bool = True,
        _depth: int = 0,
    ) -> list[dict[str, Any]]:
        """Client-format JSON for ``events`` (in order); ``device_id`` enables the txn echo.

        ``bundle_relations=False`` leaves out ``m.relations`` (an edit inside a bundle).
        """
        events = list(events)
        if not events:
            return []
        own = [e.event_id for e in events if e.sender == user_id]
        # Events known to have no redaction and no child need no reads for either.
        recent = self.recent
        unknown = events if recent is None else [e for e in events if not recent.untouched(e)]
        ids = [e.event_id for e in unknown]
        # State events receive no bundled aggregations (spec "Aggregations of child events").
        # Bundles nest once (a thread's latest event carries its edit), never deeper.
        bundling = bundle_relations and _depth < 2
        parents = [e for e in unknown if e.state_key is None] if bundling else []
        wants_txn_ids = user_id is not None and device_id is not None and bool(own)

        def read(conn: Any) -> tuple[dict[str, StoredEvent], dict[str, str], BundleRows | None]:
            # One trip to the database for all three questions.
            found = read_redactions(conn, ids)
            rows = (
                read_bundle_rows(conn, [e.event_id for e in parents], user_id) if parents else None
            )
            if user_id is None or device_id is None or not own:
                return found, {}, rows
            return found, read_txn_ids_for_device(conn, user_id, device_id, own), rows

        redactions: dict[str, StoredEvent] = {}
        txn_ids: dict[str, str] = {}
        bundle_rows: BundleRows | None = None
        if ids or wants_txn_ids:
            redactions, txn_ids, bundle_rows = await self.database.read(read)
        bundles: dict[str, dict[str, Any]] = {}
        if bundle_rows is not None and not bundle_rows.empty:
            bundles = await build_bundles(
                parents,
                bundle_rows,
                user_id=user_id,
                redacted=set(redactions),
                get_events=self.store.get_events,
                serialize=functools.partial(
                    self._serialize_children, user_id=user_id, device_id=device_id, depth=_depth
                ),
            )
        prev: dict[str, StoredEvent] = {}
        if with_prev_content:
            prev = await self._replaced_state(events)
        now = self._clock_ms()
        out: list[dict[str, Any]] = []
        for event in events:
            version = await self.room_version(event.room_id)
            redaction = redactions.get(event.event_id)
            body = self._format(event, version, now, redacted=redaction is not None)
            unsigned = body["unsigned"]
            if redaction is not None:
                unsigned["redacted_because"] = self._format(redaction, version, now)
            if user_id is not None:
                # v1.11: the requester's membership at the event ("leave" if none).
                unsigned["membership"] = await self.membership_at(event, user_id) or "leave"
            if event.event_id in txn_ids:
                unsigned["transaction_id"] = txn_ids[event.event_id]
            if event.event_id in bundles:
                unsigned["m.relations"] = bundles[event.event_id]
            replaced = prev.get(event.event_id)
            if replaced is not None:
                unsigned["replaces_state"] = replaced.event_id
                if replaced.event_id in redactions and version is not None:
                    unsigned["prev_content"] = redact_event(replaced.pdu, version)["content"]
                else:
                    unsigned["prev_content"] = replaced.pdu.get("content", {})
                unsigned["prev_sender"] = replaced.sender
            out.append(body)
        return out

    async def _serialize_children(
        self,
        events: Sequence[StoredEvent],
        with_bundles: bool,
        *,
        user_id: str | None,
        device_id: str | None,
        depth: int,
    ) -> list[dict[str, Any]]:
        """Children inside a bundle: a thread's latest event (with its edit), an edit (bare)."""
        return await self.serialize(
            events,
            user_id=user_id,
            device_id=device_id,
            with_prev_content=False,
            bundle_relations=with_bundles,
            _depth=depth + 1,
        )

    def _format(
        self, event: StoredEvent, version: RoomVersion | None, now: int, *, redacted: bool = False
    ) -> dict[str, Any]:
        pdu: Mapping[str, Any] = event.pdu
        if redacted and version is not None:
            pdu = redact_event(pdu, version)
        content = pdu.get("content", {})
        body: dict[str, Any] = {
            "event_id": event.event_id,
            "type": event.type,
            "content": content if isinstance(content, dict) else {},
            "sender": event.sender,
            "origin_server_ts": event.origin_server_ts,
            "room_id": event.room_id,
            "unsigned": {"age": max(0, now - event.origin_server_ts)},
        }
        if event.state_key is not None:
            body["state_key"] = event.state_key
        if event.type == "m.room.redaction":
            # v11 moved ``redacts`` into content; older clients read it at the top level.
            target = redaction_target(dict(event.pdu))
            if target is not None:
                body["redacts"] = target
                if "redacts" not in body["content"] and not redacted:
                    body["content"] = {**body["content"], "redacts": target}
        return body

    async def _replaced_state(self, events: Sequence[StoredEvent]) -> dict[str, StoredEvent]:
        """For each state event, the event it replaced in the state before it."""
        replaced_ids: dict[str, str] = {}
        for event in events:
            if event.state_key is None or event.state_group_before is None:
                continue
            state = await self.store.get_state_group(event.state_group_before)
            old = state.get((event.type, event.state_key))
            if old is not None and old != event.event_id:
                replaced_ids[event.event_id] = old
        if not replaced_ids:
            return {}
        found = await self.store.get_events(replaced_ids.values())
        return {eid: found[old] for eid, old in replaced_ids.items() if old in found}
