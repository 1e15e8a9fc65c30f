"""State resolution v2 (room versions 10, 11) and v2.1 (room version 12), pure and synchronous.

Every server in a room must compute the same state from the same forks, so this module
follows the spec's algorithm step by step and orders every choice totally (power, then
``origin_server_ts``, then ``event_id``); no set or dict iteration order ever reaches the
result. Where the spec is silent, it does what Synapse and ruma do, and says so.

Inputs are plain values: ``state_sets`` map (type, state_key) to event IDs, and
``event_map`` maps event IDs to event dicts (with ``event_id``). ``event_map`` must hold
every event of the state sets and every event reachable from them through
``auth_events``; in v12 it must also hold the create event (which events never cite: it
is found through ``room_id``). Events missing from it are treated as unknown: they are
left out of the conflicted sets and skipped when walking auth events, as ruma does.

Work is linear in the size of the auth graph touched: auth chains are walked once per
state set (no per-event chain sets, which are quadratic on long power level chains), and
per-event facts (parsed auth events, sender power, mainline position) are memoized for the
duration of one call.

Spec: ``content/rooms/fragments/v2-state-res.md``; ``content/rooms/v12.md`` "State
resolution" for v2.1 (MSC4297).
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from homeserver.core.auth_rules import (
    CREATE,
    CREATE_KEY,
    MEMBER,
    POWER_LEVELS_KEY,
    AuthError,
    StateKey,
    auth_types_for_event,
    check_auth,
)
from homeserver.core.power_levels import (
    InfinitePowerLevel,
    PowerLevel,
    power_levels_from_state,
)
from homeserver.core.room_versions import RoomVersion

Event = Mapping[str, Any]
StateMap = Mapping[StateKey, str]

# Sort keys order ascending; these put "more power" and "earlier in the mainline" first.
_INFINITE_FIRST = (0, 0)


def resolve_state(
    room_version: RoomVersion,
    state_sets: Sequence[StateMap],
    event_map: Mapping[str, Event],
    *,
    rejected_event_ids: Collection[str] = frozenset(),
) -> dict[StateKey, str]:
    """The resolution of ``state_sets`` (spec: "The *resolution* of a set of states").

    ``rejected_event_ids`` names events rejected on receipt; the iterative auth checks never
    use them as auth events ("Rejected auth events are deliberately excluded"), although a
    state set may still contain an event rejected only against the state at that event.
    """
    if not state_sets:
        return {}
    resolver = _Resolver(room_version, event_map, rejected_event_ids)
    unconflicted, conflicted = split_conflicted_state(state_sets)
    if not conflicted:
        return dict(unconflicted)

    full_conflicted = set(conflicted) | resolver.auth_difference(state_sets)
    if room_version.state_res == "v2.1":
        full_conflicted |= resolver.conflicted_state_subgraph(conflicted)
    full_conflicted = {event_id for event_id in full_conflicted if event_id in event_map}

    # Step 1: power events and their auth ancestors in the full conflicted set.
    power_events = [e for e in full_conflicted if is_power_event(event_map[e])]
    sorted_power = resolver.reverse_topological_power_order(power_events, full_conflicted)

    # Step 2: v2 starts from the unconflicted map, v2.1 from the empty map (MSC4297).
    initial: dict[StateKey, str] = {} if room_version.state_res == "v2.1" else dict(unconflicted)
    partial = resolver.iterative_auth_checks(sorted_power, initial)

    # Step 3: everything else, by mainline ordering based on the resolved power levels.
    picked = set(sorted_power)
    remaining = [e for e in full_conflicted if e not in picked]
    sorted_remaining = resolver.mainline_order(remaining, partial.get(POWER_LEVELS_KEY))

    # Step 4, then step 5: the unconflicted map wins over anything resolved.
    resolved = resolver.iterative_auth_checks(sorted_remaining, partial)
    resolved.update(unconflicted)
    return resolved


def split_conflicted_state(
    state_sets: Sequence[StateMap],
) -> tuple[dict[StateKey, str], set[str]]:
    """The unconflicted state map and the conflicted state set (spec "Definitions").

    A key is unconflicted when every state set has it with the same event; otherwise each
    of its events is conflicted, including when some sets lack the key.
    """
    unconflicted: dict[StateKey, str] = {}
    conflicted: set[str] = set()
    all_keys: set[StateKey] = set()
    for state_set in state_sets:
        all_keys.update(state_set)
    for key in all_keys:
        values = [state_set.get(key) for state_set in state_sets]
        first = values[0]
        if first is not None and all(v == first for v in values):
            unconflicted[key] = first
        else:
            conflicted.update(v for v in values if v is not None)
    return unconflicted, conflicted


def is_power_event(event: Event) -> bool:
    """A *power event*: one that may take someone's ability to do something away.

    The spec lists power levels, join rules, and kicks/bans (leave or ban of someone else).
    Synapse and ruma also count the create event; so do we, since resolving differently
    from them would split rooms (it only matters when the create event itself is in the
    conflicted set, e.g. when resolving state maps that lack it).
    """
    event_type = event.get("type")
    state_key = event.get("state_key")
    if event_type in ("m.room.power_levels", "m.room.join_rules", CREATE):
        return state_key == ""
    if event_type == MEMBER and isinstance(state_key, str):
        content = event.get("content")
        membership = content.get("membership") if isinstance(content, Mapping) else None
        return membership in ("leave", "ban") and event.get("sender") != state_key
    return False


def _ts(event: Event) -> int:
    ts = event.get("origin_server_ts")
    return ts if type(ts) is int else 0


def _power_sort_key(level: PowerLevel) -> tuple[int, int]:
    """Ascending key that puts the *greater* power level first; infinite before all."""
    if isinstance(level, InfinitePowerLevel):
        return _INFINITE_FIRST
    return (1, -level)


class _Resolver:
    """Per-call memo of the auth graph; one instance serves one :func:`resolve_state` call."""

    def __init__(
        self,
        room_version: RoomVersion,
        event_map: Mapping[str, Event],
        rejected_event_ids: Collection[str],
    ) -> None:
        self.room_version = room_version
        self.event_map = event_map
        self.rejected = rejected_event_ids
        self._auth_ids: dict[str, tuple[str, ...]] = {}
        self._pl_parent: dict[str, str | None] = {}

    # --- the auth graph ----------------------------------------------------------------

    def auth_ids(self, event_id: str) -> tuple[str, ...]:
        """The event's ``auth_events`` that are known (in ``event_map``), in listed order."""
        cached = self._auth_ids.get(event_id)
        if cached is not None:
            return cached
        event = self.event_map.get(event_id)
        raw = event.get("auth_events") if event is not None else None
        ids = tuple(
            a
            for a in (raw if isinstance(raw, list) else ())
            if isinstance(a, str) and a in self.event_map
        )
        self._auth_ids[event_id] = ids
        return ids

    def _reachable(self, start: Iterable[str], *, inclusive: bool) -> set[str]:
        """Events reachable through auth_events from ``start`` (and ``start`` if inclusive)."""
        stack: list[str] = []
        for event_id in start:
            if inclusive:
                stack.append(event_id)
            else:
                stack.extend(self.auth_ids(event_id))
        seen: set[str] = set()
        while stack:
            event_id = stack.pop()
            if event_id in seen:
                continue
            seen.add(event_id)
            stack.extend(p for p in self.auth_ids(event_id) if p not in seen)
        return seen

    def auth_difference(self, state_sets: Sequence[StateMap]) -> set[str]:
        """union(C_i) - intersection(C_i), C_i being S_i's events and all their auth chains.

        The spec defines C_i from the auth chains alone, which excludes S_i's own events;
        Synapse (chain cover index, docs/auth_chain_difference_algorithm.md) and ruma
        count the state events themselves as reachable. The two differ only for an event
        present in every state set that some sets' events do not cite: inclusive counting
        keeps it out of the difference. We count inclusively, as the servers we must agree
        with do; conflicted events are in the full conflicted set either way.
        """
        chains = [self._reachable(s.values(), inclusive=True) for s in state_sets]
        union: set[str] = set().union(*chains)
        common = set(chains[0]).intersection(*chains[1:])
        return union - common

    def conflicted_state_subgraph(self, conflicted: set[str]) -> set[str]:
        """Events on an auth_events path between two conflicted events, endpoints included.

        v2.1 (room version 12). An event is on such a path iff it is reachable from a
        conflicted event and a conflicted event is reachable from it; the second half is
        computed once per event with an explicit post-order walk (no recursion limit).
        """
        known = {e for e in conflicted if e in self.event_map}
        descendants = self._reachable(known, inclusive=True)
        reaches: dict[str, bool] = {}
        for root in descendants:
            if root in reaches:
                continue
            stack: list[tuple[str, bool]] = [(root, False)]
            while stack:
                event_id, expanded = stack.pop()
                if expanded:
                    reaches[event_id] = event_id in known or any(
                        reaches.get(p, False) for p in self.auth_ids(event_id)
                    )
                    continue
                if event_id in reaches:
                    continue
                stack.append((event_id, True))
                stack.extend((p, False) for p in self.auth_ids(event_id) if p not in reaches)
        return {e for e in descendants if reaches[e]}

    # --- step 1: reverse topological power ordering --------------------------------------

    def sender_power_level(self, event_id: str) -> PowerLevel:
        """The sender's power level according to the event's *own* auth events.

        Not the resolved state: the ordering must not depend on the resolution in
        progress. Without a power levels auth event the creator has 100 (v10/v11) and
        everyone else 0; v12 creators are infinite (their create event comes from room_id).
        """
        event = self.event_map[event_id]
        power_levels_event: Event | None = None
        create_event: Event | None = None
        for auth_id in self.auth_ids(event_id):
            auth_event = self.event_map[auth_id]
            key = (auth_event.get("type"), auth_event.get("state_key"))
            if key == POWER_LEVELS_KEY and power_levels_event is None:
                power_levels_event = auth_event
            elif key == CREATE_KEY and create_event is None:
                create_event = auth_event
        if self.room_version.room_id_from_create_event:
            create_event = self.create_event_for(event)
        sender = event.get("sender")
        if not isinstance(sender, str):
            return 0
        levels = power_levels_from_state(self.room_version, create_event, power_levels_event)
        return levels.user_level(sender)

    def create_event_for(self, event: Event) -> Event | None:
        """v12: the create event whose ID is the room ID with ``$`` for ``!`` (MSC4291)."""
        room_id = event.get("room_id")
        if not isinstance(room_id, str) or not room_id.startswith("!"):
            return None
        return self.event_map.get("$" + room_id[1:])

    def reverse_topological_power_order(
        self, power_events: Iterable[str], full_conflicted: set[str]
    ) -> list[str]:
        """Kahn's algorithm over auth edges, always taking the smallest ready event.

        The graph holds the power events and, like Synapse and ruma, the events reachable
        from them by auth_events paths that stay inside the full conflicted set; its edges
        are the direct auth_events links between its nodes. An event is ready once *all*
        its auth events in the graph are placed.
        """
        edges: dict[str, list[str]] = {}
        stack = list(power_events)
        while stack:
            event_id = stack.pop()
            if event_id in edges:
                continue
            parents = [p for p in dict.fromkeys(self.auth_ids(event_id)) if p in full_conflicted]
            edges[event_id] = parents
            stack.extend(p for p in parents if p not in edges)

        def key(event_id: str) -> tuple[tuple[int, int], int, str]:
            power = _power_sort_key(self.sender_power_level(event_id))
            return (power, _ts(self.event_map[event_id]), event_id)

        waiting = {event_id: len(parents) for event_id, parents in edges.items()}
        children: dict[str, list[str]] = {event_id: [] for event_id in edges}
        for event_id, parents in edges.items():
            for parent in parents:
                children[parent].append(event_id)
        ready = [key(event_id) for event_id, count in waiting.items() if count == 0]
        heapq.heapify(ready)
        ordered: list[str] = []
        while ready:
            _, _, event_id = heapq.heappop(ready)
            ordered.append(event_id)
            for child in children[event_id]:
                waiting[child] -= 1
                if waiting[child] == 0:
                    heapq.heappush(ready, key(child))
        return ordered

    # --- steps 2 and 4: iterative auth checks ---------------------------------------------

    def iterative_auth_checks(
        self, event_ids: Sequence[str], state: Mapping[StateKey, str]
    ) -> dict[StateKey, str]:
        """Apply each event in order if it passes the auth rules; skip it otherwise.

        The state checked against is the event's own (non-rejected) auth events, overlaid
        by the partially resolved state for the keys the auth events selection names. A
        failed check skips the event; it never aborts the resolution.
        """
        resolved = dict(state)
        for event_id in event_ids:
            event = self.event_map[event_id]
            event_type, state_key = event.get("type"), event.get("state_key")
            if not isinstance(event_type, str) or not isinstance(state_key, str):
                continue
            auth_state: dict[StateKey, Event] = {}
            for auth_id in self.auth_ids(event_id):
                if auth_id in self.rejected:
                    continue
                auth_event = self.event_map[auth_id]
                auth_key = (auth_event.get("type"), auth_event.get("state_key"))
                if isinstance(auth_key[0], str) and isinstance(auth_key[1], str):
                    auth_state[(auth_key[0], auth_key[1])] = auth_event
            if self.room_version.room_id_from_create_event and event_type != CREATE:
                create_event = self.create_event_for(event)
                if create_event is not None and create_event.get("event_id") not in self.rejected:
                    auth_state[CREATE_KEY] = create_event
            for key in auth_types_for_event(self.room_version, event):
                current_id = resolved.get(key)
                if current_id is None or current_id in self.rejected:
                    continue
                current = self.event_map.get(current_id)
                if current is not None:
                    auth_state[key] = current
            try:
                check_auth(self.room_version, event, auth_state)
            except AuthError:
                continue
            resolved[(event_type, state_key)] = event_id
        return resolved

    # --- step 3: mainline ordering --------------------------------------------------------

    def power_levels_parent(self, event_id: str) -> str | None:
        """The ``m.room.power_levels`` event among the event's auth events, if any."""
        if event_id in self._pl_parent:
            return self._pl_parent[event_id]
        parent = None
        for auth_id in self.auth_ids(event_id):
            auth_event = self.event_map[auth_id]
            if (auth_event.get("type"), auth_event.get("state_key")) == POWER_LEVELS_KEY:
                parent = auth_id
                break
        self._pl_parent[event_id] = parent
        return parent

    def mainline_order(self, event_ids: Iterable[str], power_levels_id: str | None) -> list[str]:
        """Sort by mainline position (greater first, ∞ before all), then ts, then event ID.

        The mainline follows power levels events through their power levels auth event
        only. An event's position comes from the first mainline event on its own chain of
        power levels auth events, *excluding* the event itself; events whose chain never
        meets the mainline (including those citing no power levels at all) have position
        ∞ and sort before every event rooted in the mainline, even its oldest event.
        """
        mainline: dict[str, int] = {}
        current = power_levels_id
        while current is not None and current in self.event_map and current not in mainline:
            mainline[current] = len(mainline)
            current = self.power_levels_parent(current)

        memo: dict[str, tuple[int, int]] = {}

        def chain_position(start: str | None) -> tuple[int, int]:
            walked: list[str] = []
            walked_set: set[str] = set()
            current = start
            position = _INFINITE_FIRST
            while current is not None:
                if current in mainline:
                    position = (1, -mainline[current])
                    break
                if current in memo:
                    position = memo[current]
                    break
                if current in walked_set:  # an auth cycle: only in forged input
                    break
                walked.append(current)
                walked_set.add(current)
                current = self.power_levels_parent(current)
            for event_id in walked:
                memo[event_id] = position
            return position

        keyed = [
            (chain_position(self.power_levels_parent(e)), _ts(self.event_map[e]), e)
            for e in event_ids
        ]
        keyed.sort()
        return [event_id for _, _, event_id in keyed]
