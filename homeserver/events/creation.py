"""The local event-creation pipeline, and the entry federation uses to store events.

``create_and_persist_event`` turns "user X sends this content to room R" into a
signed PDU in the DAG: prev_events from the room's forward extremities, state
before the event (resolved if the extremities disagree), auth_events selected
from that state, depth, timestamp from the injected clock, content hash,
signature, event ID, the auth check, then one transaction for the event and
everything it changes, and finally the notifier hook with the new position.

Within this process, work on one room is serialized by a per-room
:class:`trio.Lock`, held from reading the extremities to the commit: two
concurrent sends would otherwise both cite the same extremity and fork the room
for no reason. Rooms do not wait for each other except inside the database,
where the stream-ordering row orders commits.

Sends that queue up behind that lock are persisted together (group commit,
``group_commit.py``): the lock holder builds every queued event as one chain,
each citing the one before, and writes the chain in one transaction, so a busy
room pays one thread hop and one commit per batch instead of per event.

Across processes the lock cannot help, so the transaction checks that the
cited prev events are still forward extremities (free: the row counts of the
statements that move them) and the loser rebuilds its event on the new tip.
This also lets the service keep each room's extremities in memory instead of
reading them for every event. Known limit: an extremity added by *another*
process stays unseen here until this process's next rebuild or federated write.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import nacl.signing
import trio

from homeserver.core.auth_rules import AuthError, check_auth
from homeserver.core.canonical_json import EventSizeError, check_event_size
from homeserver.core.hashing import compute_event_id, compute_room_id
from homeserver.core.room_versions import RoomVersion, get_room_version
from homeserver.core.state_res import resolve_state
from homeserver.errors import MatrixError, forbidden, not_found, too_large
from homeserver.events.builder import (
    build_pdu,
    finish_pdu,
    next_depth,
    random_room_id,
    select_auth_events,
    select_prev_events,
)
from homeserver.events.group_commit import BuiltEvent, PendingSend
from homeserver.storage.events import (
    EventStore,
    EventToPersist,
    ExtremitiesChanged,
    InTxnHook,
    NewCurrentState,
    RoomInfo,
    StateBefore,
    StoredEvent,
)
from homeserver.storage.state import StateKey

Clock = Callable[[], int]
# Rebuilds of one event when another process moved the room's extremities meanwhile.
_MAX_ATTEMPTS = 20
_MAX_CACHED_TIPS = 10_000
# Events of one room persisted in one transaction at most (group commit).
MAX_BATCH = 100
NewEventHook = Callable[[StoredEvent], None]


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


def pdu_with_id(event: StoredEvent) -> dict[str, Any]:
    """The PDU with its ``event_id``, the form the auth rules and state resolution read."""
    return {**event.pdu, "event_id": event.event_id}


class StreamNotifier:
    """The smallest notifier: the latest room-event stream position and a way to wait for it.

    The sync service replaces it with one that wakes only the users concerned;
    this one is enough for tests and for code that waits for its own write.
    """

    def __init__(self) -> None:
        self.position = 0
        self._changed = trio.Event()

    def on_new_event(self, event: StoredEvent) -> None:
        if event.stream_ordering > self.position:
            self.position = event.stream_ordering
        self._changed.set()
        self._changed = trio.Event()

    async def wait_for_position(self, position: int) -> None:
        while self.position < position:
            await self._changed.wait()


class EventCreationService:
    def __init__(
        self,
        store: EventStore,
        *,
        server_name: str,
        signing_key: nacl.signing.SigningKey,
        key_id: str,
        clock: Clock = wall_clock_ms,
        on_new_event: NewEventHook | None = None,
    ) -> None:
        self.store = store
        self.server_name = server_name
        self._signing_key = signing_key
        self._key_id = key_id
        self._clock = clock
        self._hooks: list[NewEventHook] = [on_new_event] if on_new_event is not None else []
        self._room_locks: dict[str, trio.Lock] = {}
        self._room_lock_users: dict[str, int] = {}
        # room_id -> its forward extremities (event_id, depth) as this process last
        # wrote or read them, under the room's lock. Saves a read per event; the
        # persist transaction checks they are still true (ExtremitiesChanged).
        self._tips: OrderedDict[str, list[tuple[str, int]]] = OrderedDict()
        # room_id -> sends waiting for the room's lock (group commit).
        self._queues: dict[str, list[PendingSend]] = {}

    def add_new_event_hook(self, hook: NewEventHook) -> None:
        self._hooks.append(hook)

    @asynccontextmanager
    async def room_lock(self, room_id: str) -> AsyncIterator[None]:
        """Serialize DAG changes to one room; the lock is dropped when nobody holds or waits."""
        lock = self._room_locks.setdefault(room_id, trio.Lock())
        self._room_lock_users[room_id] = self._room_lock_users.get(room_id, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._room_lock_users[room_id] -= 1
            if self._room_lock_users[room_id] == 0:
                del self._room_lock_users[room_id]
                del self._room_locks[room_id]

    # -- local events --------------------------------------------------------------

    async def create_room(
        self,
        creator: str,
        room_version: RoomVersion | str,
        *,
        extra_content: Mapping[str, Any] | None = None,
    ) -> StoredEvent:
        """Create and persist a room's ``m.room.create`` event; its ``room_id`` names the room.

        v12 (MSC4291): the room ID is derived from the create event, which carries
        no ``room_id``. Earlier versions: a random ``!opaque:server_name``.
        """
        version = _version(room_version)
        content: dict[str, Any] = {**(extra_content or {}), "room_version": version.identifier}
        if not version.implicit_room_creator:
            content["creator"] = creator
        room_id = None if version.room_id_from_create_event else random_room_id(self.server_name)
        pdu = build_pdu(
            room_id=room_id,
            event_type="m.room.create",
            sender=creator,
            content=content,
            state_key="",
            prev_events=[],
            auth_events=[],
            depth=1,
            origin_server_ts=self._clock(),
        )
        event_id, signed = self._finish(pdu, version)
        if room_id is None:
            room_id = compute_room_id(signed, version)
        _check(version, {**signed, "event_id": event_id}, {})
        async with self.room_lock(room_id):
            result = await self.store.persist(
                EventToPersist(
                    event_id=event_id,
                    pdu=signed,
                    state_before=StateBefore(state={}),
                    new_current_state="after",
                    new_room=RoomInfo(
                        room_id=room_id, room_version=version.identifier, creator=creator
                    ),
                    local=True,
                )
            )
            self._remember_tips(room_id, [(event_id, result.event.depth)])
        self._notify(result.event)
        return result.event

    async def create_and_persist_event(
        self,
        room_id: str,
        event_type: str,
        sender: str,
        content: Mapping[str, Any],
        state_key: str | None = None,
        *,
        prev_event_ids: Sequence[str] | None = None,
    ) -> StoredEvent:
        """Build, authorise, sign and persist a local event; raise 403 if auth fails.

        ``prev_event_ids`` overrides the choice of prev events (tests, and
        rebuilding a specific fork); by default the room's extremities are cited.
        """
        if prev_event_ids is not None:
            return await self._create_on(
                room_id, event_type, sender, content, state_key, prev_event_ids
            )
        event, _ = await self.send_event(room_id, event_type, sender, content, state_key)
        return event

    async def send_event(
        self,
        room_id: str,
        event_type: str,
        sender: str,
        content: Mapping[str, Any],
        state_key: str | None = None,
        *,
        in_txn: InTxnHook | None = None,
    ) -> tuple[StoredEvent, Any]:
        """Like :meth:`create_and_persist_event`; ``in_txn`` runs in the event's transaction.

        Group commit: concurrent sends to one room join a queue; whoever gets the
        room's lock takes every queued send (up to ``MAX_BATCH``), builds them as
        one chain (each cites the previous one) and persists them in one
        transaction, then answers each waiter with its own event or error. An
        event that fails to build or authorise fails alone; a batch whose
        transaction fails is retried one event at a time, so one bad event
        cannot fail the others. Returns the event and ``in_txn``'s result.
        """
        room = await self.store.get_room(room_id)
        if room is None:
            raise not_found(f"Unknown room {room_id}")
        version = _version(room.room_version)
        send = PendingSend(event_type, sender, content, state_key, in_txn)
        queue = self._queues.setdefault(room_id, [])
        queue.append(send)
        try:
            async with self.room_lock(room_id):
                if not send.taken:
                    batch = queue[:MAX_BATCH]
                    del queue[:MAX_BATCH]
                    for queued in batch:
                        queued.taken = True
                    # The batch holds other senders' events: finish it even if
                    # this sender is cancelled (it ends with the transaction).
                    with trio.CancelScope(shield=True):
                        await self._persist_queued(room_id, version, batch)
        finally:
            if not send.taken:
                queue.remove(send)
            if not queue and self._queues.get(room_id) is queue:
                del self._queues[room_id]
        return send.result()

    async def _create_on(
        self,
        room_id: str,
        event_type: str,
        sender: str,
        content: Mapping[str, Any],
        state_key: str | None,
        prev_event_ids: Sequence[str],
    ) -> StoredEvent:
        """One event citing exactly ``prev_event_ids`` (it may fork the room)."""
        room = await self.store.get_room(room_id)
        if room is None:
            raise not_found(f"Unknown room {room_id}")
        version = _version(room.room_version)
        send = PendingSend(event_type, sender, content, state_key, None)
        async with self.room_lock(room_id):
            extremities = await self.store.get_forward_extremities_with_depth(room_id)
            # The extremities move in a way the cache cannot follow: read them afresh next time.
            self._tips.pop(room_id, None)
            built = await self._build(room_id, version, extremities, send, prev_event_ids)
            [(result, _)] = await self.store.persist_batch([(built.event, None)])
        self._notify(result.event)
        return result.event

    async def _persist_queued(
        self, room_id: str, version: RoomVersion, batch: list[PendingSend]
    ) -> None:
        """Persist ``batch`` in order: as one chain in one transaction, alone after a failure.

        Every entry is answered, whatever happens: the others' senders wait for it.
        """
        try:
            await self._persist_rounds(room_id, version, batch)
        except BaseException:
            self._tips.pop(room_id, None)
            for send in batch:
                if not send.done:
                    send.fail(MatrixError(500, "M_UNKNOWN", "The event could not be persisted"))
            raise

    async def _persist_rounds(
        self, room_id: str, version: RoomVersion, batch: list[PendingSend]
    ) -> None:
        one_by_one = False
        attempts = 0
        while True:
            waiting = [send for send in batch if not send.done]
            if not waiting:
                return
            extremities = self._tips.get(room_id)
            if extremities is None:
                extremities = await self.store.get_forward_extremities_with_depth(room_id)
            chain = await self._build_chain(
                room_id, version, extremities, waiting[:1] if one_by_one else waiting
            )
            if not chain:
                continue  # every event of this round failed to build, and was answered
            try:
                results = await self.store.persist_batch([(b.event, b.send.in_txn) for b in chain])
            except ExtremitiesChanged:
                # Another writer (another process) moved the room on: rebuild on
                # the fresh extremities rather than fork the room.
                self._tips.pop(room_id, None)
                attempts += 1
                if attempts >= _MAX_ATTEMPTS:
                    for built in chain:
                        built.send.fail(
                            MatrixError(503, "M_UNKNOWN", f"Room {room_id} is too busy, try again")
                        )
                continue
            except Exception as exc:
                # Nothing was written, or we cannot tell: read the tips afresh.
                self._tips.pop(room_id, None)
                if len(chain) == 1:
                    chain[0].send.fail(exc)
                one_by_one = True  # find the event that fails, and fail only that one
                continue
            last = results[-1][0].event
            cited = set(chain[0].event.pdu["prev_events"])
            tips = [tip for tip in extremities if tip[0] not in cited]
            self._remember_tips(room_id, [*tips, (last.event_id, last.depth)])
            for built, (result, hook_result) in zip(chain, results, strict=True):
                built.send.succeed(result.event, hook_result)
            for result, _ in results:
                self._notify(result.event)

    async def _build_chain(
        self,
        room_id: str,
        version: RoomVersion,
        extremities: Sequence[tuple[str, int]],
        sends: Sequence[PendingSend],
    ) -> list[BuiltEvent]:
        """Build ``sends`` in order, each citing the one before; failures are answered here.

        The first cites the room's extremities; a chain continues only while the
        first event leaves no other extremity behind (else the room's current
        state would need resolving for every link).
        """
        chain: list[BuiltEvent] = []
        unpersisted: dict[str, Mapping[str, Any]] = {}
        for send in sends:
            if chain and chain[0].remaining:
                break
            try:
                built = await self._build(
                    room_id,
                    version,
                    extremities,
                    send,
                    None,
                    after=chain[-1] if chain else None,
                    unpersisted=unpersisted,
                )
            except Exception as exc:
                if not chain:
                    self._tips.pop(room_id, None)  # perhaps stale: read them afresh
                send.fail(exc)
                continue
            chain.append(built)
            unpersisted[built.event.event_id] = {
                **built.event.pdu,
                "event_id": built.event.event_id,
            }
        return chain

    async def _build(
        self,
        room_id: str,
        version: RoomVersion,
        extremities: Sequence[tuple[str, int]],
        send: PendingSend,
        prev_event_ids: Sequence[str] | None,
        *,
        after: BuiltEvent | None = None,
        unpersisted: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> BuiltEvent:
        """Build, sign and authorise one event; ``after``: the unpersisted event it follows."""
        remaining: list[str] = []
        if after is not None:
            # The next link of a chain: the only extremity will be ``after``.
            prev_ids = [after.event.event_id]
            depth = next_depth([after.depth])
            before = StateBefore(state=after.state_after)
        else:
            if prev_event_ids is None:
                prev_ids = select_prev_events(extremities)
            else:
                prev_ids = list(prev_event_ids)
            prevs = await self._require_events(prev_ids)
            if not prevs:
                raise MatrixError(500, "M_UNKNOWN", f"Room {room_id} has no forward extremities")
            before = await self._state_before(version, [prevs[eid] for eid in prev_ids])
            depth = next_depth([prevs[eid].depth for eid in prev_ids])
            remaining = [eid for eid, _ in extremities if eid not in prevs]
        skeleton = build_pdu(
            room_id=room_id,
            event_type=send.event_type,
            sender=send.sender,
            content=send.content,
            state_key=send.state_key,
            prev_events=prev_ids,
            auth_events=[],
            depth=depth,
            origin_server_ts=self._clock(),
        )
        skeleton["auth_events"] = select_auth_events(version, skeleton, before.state)
        event_id, signed = self._finish(skeleton, version)
        await self._check_against_state(
            version, {**signed, "event_id": event_id}, before.state, unpersisted
        )
        state_after: Mapping[StateKey, str] = before.state
        if send.state_key is not None:
            state_after = {**before.state, (send.event_type, send.state_key): event_id}
        new_current: NewCurrentState
        if not remaining and len(prev_ids) == 1 and send.state_key is None:
            # A message on the room's only extremity: the current state is the
            # state after that extremity, and stays so.
            new_current = None
        else:
            new_current = await self._new_current_state(
                version, remaining, state_after, {**signed, "event_id": event_id}
            )
        event = EventToPersist(
            event_id=event_id,
            pdu=signed,
            state_before=before,
            new_current_state=new_current,
            local=True,
            expect_prevs_are_extremities=prev_event_ids is None,
        )
        return BuiltEvent(send, event, depth, state_after, remaining)

    def _remember_tips(self, room_id: str, tips: list[tuple[str, int]]) -> None:
        self._tips[room_id] = tips
        self._tips.move_to_end(room_id)
        while len(self._tips) > _MAX_CACHED_TIPS:
            self._tips.popitem(last=False)

    # -- events from elsewhere ------------------------------------------------------

    async def persist_federated_event(
        self,
        pdu: Mapping[str, Any],
        state_before: Mapping[StateKey, str] | None = None,
        *,
        rejected_reason: str | None = None,
        soft_failed: bool = False,
    ) -> StoredEvent:
        """Store an already validated event received from another server, in the DAG.

        The caller (federation) has checked format, signatures, hashes and auth
        and says whether the event is rejected or soft-failed. ``state_before``
        is the state before the event if the caller knows it (e.g. from
        ``/state_ids``); otherwise it is resolved from the event's prev events,
        which must then be stored and not outliers. An event already stored is
        returned as it is; one stored as an outlier takes its place in the DAG now.
        """
        room_id = str(pdu["room_id"])
        room = await self.store.get_room(room_id)
        if room is None:
            raise not_found(f"Unknown room {room_id}")
        version = _version(room.room_version)
        event_id = compute_event_id(pdu, version)
        async with self.room_lock(room_id):
            existing = await self.store.get_event(event_id)
            if existing is not None and not existing.outlier:
                # Federation delivers the same PDU more than once; storing it is idempotent.
                return existing
            prev_ids = [str(p) for p in pdu.get("prev_events", [])]
            if state_before is not None:
                before = StateBefore(state=dict(state_before))
            else:
                prevs = await self._require_events(prev_ids)
                before = await self._state_before(version, [prevs[eid] for eid in prev_ids])
            new_current: NewCurrentState = None
            if rejected_reason is None and not soft_failed:
                state_after: Mapping[StateKey, str] = before.state
                if pdu.get("state_key") is not None:
                    key = (str(pdu["type"]), str(pdu["state_key"]))
                    state_after = {**before.state, key: event_id}
                extremities = await self.store.get_forward_extremities(room_id)
                remaining = [eid for eid in extremities if eid not in prev_ids]
                new_current = await self._new_current_state(
                    version, remaining, state_after, {**pdu, "event_id": event_id}
                )
            # The room's extremities are about to move: local sends read them afresh.
            self._tips.pop(room_id, None)
            result = await self.store.persist(
                EventToPersist(
                    event_id=event_id,
                    pdu=dict(pdu),
                    state_before=before,
                    rejected_reason=rejected_reason,
                    soft_failed=soft_failed,
                    new_current_state=new_current,
                )
            )
        self._notify(result.event)
        return result.event

    async def persist_outlier(
        self, pdu: Mapping[str, Any], *, rejected_reason: str | None = None
    ) -> StoredEvent:
        """Store an event without a place in the DAG (auth chain or state fetched over federation)."""
        room_id = str(pdu["room_id"])
        room = await self.store.get_room(room_id)
        if room is None:
            raise not_found(f"Unknown room {room_id}")
        version = _version(room.room_version)
        event_id = compute_event_id(pdu, version)
        existing = await self.store.get_event(event_id)
        if existing is not None:
            return existing
        result = await self.store.persist(
            EventToPersist(
                event_id=event_id,
                pdu=dict(pdu),
                state_before=None,
                rejected_reason=rejected_reason,
            )
        )
        return result.event

    # -- helpers ----------------------------------------------------------------------

    def _finish(self, pdu: dict[str, Any], version: RoomVersion) -> tuple[str, dict[str, Any]]:
        """Hash, sign and name the PDU, refusing one over the size limits.

        The limit counts the complete signed event (client-server API "Size
        limits"), so it can only be checked here, after signing.
        """
        event_id, signed = finish_pdu(
            pdu, version, self.server_name, self._signing_key, self._key_id
        )
        try:
            check_event_size(signed)
        except EventSizeError as exc:
            raise too_large(str(exc)) from exc
        return event_id, signed

    async def _require_events(self, event_ids: Sequence[str]) -> dict[str, StoredEvent]:
        found = await self.store.get_events(event_ids)
        missing = [eid for eid in event_ids if eid not in found or found[eid].outlier]
        if missing:
            raise MatrixError(400, "M_UNKNOWN", f"Unknown or outlier prev events: {missing}")
        return found

    async def _state_before(
        self, version: RoomVersion, prevs: Sequence[StoredEvent]
    ) -> StateBefore:
        """The state before an event with these prev events (s2s: resolution of their states after)."""
        groups = list(
            dict.fromkeys(e.state_group_after for e in prevs if e.state_group_after is not None)
        )
        if not groups:
            return StateBefore(state={})
        if len(groups) == 1:
            state = await self.store.get_state_group_shared(groups[0])
            return StateBefore(state=state, group=groups[0])
        states = [await self.store.get_state_group_shared(g) for g in groups]
        resolved = await self._resolve(version, states)
        return StateBefore(state=resolved, base_group=groups[0], base_state=states[0])

    async def _resolve(
        self,
        version: RoomVersion,
        states: Sequence[Mapping[StateKey, str]],
        unpersisted: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> dict[StateKey, str]:
        """Resolve ``states``; ``unpersisted`` holds events not stored yet (the one being added)."""
        if all(state == states[0] for state in states[1:]):
            return dict(states[0])
        extra = dict(unpersisted or {})
        ids = {eid for state in states for eid in state.values()} - extra.keys()
        auth_roots = ids | {a for pdu in extra.values() for a in pdu.get("auth_events", [])}
        ids |= await self.store.get_auth_chain_ids(auth_roots) | (auth_roots - extra.keys())
        found = await self.store.get_events(ids)
        event_map: dict[str, Mapping[str, Any]] = {
            eid: pdu_with_id(event) for eid, event in found.items()
        }
        event_map.update(extra)
        return dict(resolve_state(version, states, event_map))

    async def _new_current_state(
        self,
        version: RoomVersion,
        other_extremities: Sequence[str],
        state_after: Mapping[StateKey, str],
        new_event: Mapping[str, Any],
    ) -> NewCurrentState:
        """The room's state once ``new_event`` joins ``other_extremities`` at the DAG's edge."""
        if not other_extremities:
            return "after"
        others = await self.store.get_events(other_extremities)
        states: list[Mapping[StateKey, str]] = [state_after]
        for event in others.values():
            if event.state_group_after is not None:
                states.append(await self.store.get_state_group_shared(event.state_group_after))
        resolved = await self._resolve(version, states, {str(new_event["event_id"]): new_event})
        return "after" if resolved == state_after else resolved

    async def _check_against_state(
        self,
        version: RoomVersion,
        event: Mapping[str, Any],
        state: Mapping[StateKey, str],
        unpersisted: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        # Auth rules run against the state before the event, restricted to what
        # auth needs (s2s "Checks performed on receipt", step 5); the create event
        # is always included because v12 events no longer cite it.
        wanted = set(event.get("auth_events", []))
        create_id = state.get(("m.room.create", ""))
        if create_id is not None:
            wanted.add(create_id)
        # Events earlier in the same batch are not stored yet.
        local = {eid: unpersisted[eid] for eid in wanted if unpersisted and eid in unpersisted}
        found = await self.store.get_events(wanted - local.keys())
        auth_events: dict[StateKey, Mapping[str, Any]] = {
            (e.type, e.state_key or ""): pdu_with_id(e)
            for e in found.values()
            if e.state_key is not None
        }
        for pdu in local.values():
            if pdu.get("state_key") is not None:
                auth_events[(str(pdu["type"]), str(pdu["state_key"]))] = pdu
        _check(version, event, auth_events)

    def _notify(self, event: StoredEvent) -> None:
        for hook in self._hooks:
            hook(event)


def _check(
    version: RoomVersion,
    event: Mapping[str, Any],
    auth_events: Mapping[StateKey, Mapping[str, Any]],
) -> None:
    try:
        check_auth(version, event, auth_events)
    except AuthError as exc:
        raise forbidden(str(exc)) from exc


def _version(room_version: RoomVersion | str) -> RoomVersion:
    if isinstance(room_version, RoomVersion):
        return room_version
    version = get_room_version(room_version)
    if version is None:
        raise MatrixError(
            400, "M_UNSUPPORTED_ROOM_VERSION", f"Unsupported room version {room_version}"
        )
    return version
