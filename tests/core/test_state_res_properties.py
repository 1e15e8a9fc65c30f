"""Properties: resolution depends on the states, never on the order they are given in.

Servers receive forks and events in different orders; any dependence on input order
(set iteration, dict insertion) would split the room. State sets are drawn from the
shared vector rooms, so the events have real auth chains and real conflicts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from homeserver.core.room_versions import get_room_version
from homeserver.core.state_res import resolve_state

FIXTURES = Path("/work/shared/test-vectors/state-res/fixtures")
ROOMS = {
    "v10-public": [
        "bootstrap-public-chat",
        "ban-vs-power-levels-alice",
        "ban-vs-power-levels-bob",
        "topic-vs-ban-common",
        "topic-vs-ban-alice",
        "topic-vs-ban-bob",
        "join-rules-vs-join-common",
        "join-rules-vs-join-alice",
        "join-rules-vs-join-ella",
        "power-levels-admin-vs-mod-alice",
        "power-levels-admin-vs-mod-bob",
    ],
    "v11-msc4297-b": ["MSC4297-problem-B/pdus-v11"],
    "v12-msc4297-a": ["MSC4297-problem-A/pdus-v12"],
    "v12-msc4297-b": ["MSC4297-problem-B/pdus-v12"],
}


def _load(names: list[str]) -> list[dict[str, Any]]:
    pdus: dict[str, dict[str, Any]] = {}
    for name in names:
        for pdu in json.loads((FIXTURES / f"{name}.json").read_text()):
            pdus[pdu["event_id"]] = pdu
    return list(pdus.values())


PDUS = {room: _load(names) for room, names in ROOMS.items()}


@st.composite
def resolutions(draw: st.DrawFn) -> tuple[str, list[dict[tuple[str, str], str]]]:
    room = draw(st.sampled_from(sorted(PDUS)))
    pdus = PDUS[room]
    state_sets = []
    for _ in range(draw(st.integers(1, 4))):
        chosen = draw(st.lists(st.sampled_from(pdus), min_size=1, max_size=len(pdus)))
        state_sets.append({(p["type"], p["state_key"]): p["event_id"] for p in chosen})
    return room, state_sets


@settings(max_examples=150, deadline=None)
@given(case=resolutions(), data=st.data())
def test_resolution_ignores_input_order(
    case: tuple[str, list[dict[tuple[str, str], str]]], data: st.DataObject
) -> None:
    room, state_sets = case
    pdus = PDUS[room]
    version = get_room_version(pdus[0]["content"]["room_version"])
    assert version is not None
    event_map = {p["event_id"]: p for p in pdus}
    expected = resolve_state(version, state_sets, event_map)

    permuted_sets = data.draw(st.permutations(state_sets))
    permuted_sets = [dict(data.draw(st.permutations(list(s.items())))) for s in permuted_sets]
    permuted_events = data.draw(st.permutations(pdus))
    shuffled_map = {p["event_id"]: p for p in permuted_events}
    assert resolve_state(version, permuted_sets, shuffled_map) == expected


@settings(max_examples=50, deadline=None)
@given(case=resolutions())
def test_resolving_a_state_with_itself_changes_nothing(
    case: tuple[str, list[dict[tuple[str, str], str]]],
) -> None:
    room, state_sets = case
    pdus = PDUS[room]
    version = get_room_version(pdus[0]["content"]["room_version"])
    assert version is not None
    event_map = {p["event_id"]: p for p in pdus}
    state = state_sets[0]
    assert resolve_state(version, [state, dict(state)], event_map) == state


garbage = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=4),
    st.lists(st.one_of(st.text(max_size=4), st.lists(st.integers(), max_size=1)), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@settings(max_examples=100, deadline=None)
@given(case=resolutions(), data=st.data())
def test_malformed_events_never_break_resolution(
    case: tuple[str, list[dict[tuple[str, str], str]]], data: st.DataObject
) -> None:
    """Forged events in the auth graph are resolved around, never crash the resolver."""
    room, state_sets = case
    pdus = PDUS[room]
    version = get_room_version(pdus[0]["content"]["room_version"])
    assert version is not None
    event_map = {p["event_id"]: dict(p) for p in pdus}
    for event_id in data.draw(st.lists(st.sampled_from(sorted(event_map)), max_size=4)):
        field = data.draw(
            st.sampled_from(
                [
                    "type",
                    "sender",
                    "state_key",
                    "content",
                    "auth_events",
                    "origin_server_ts",
                    "room_id",
                ]
            )
        )
        event_map[event_id][field] = data.draw(garbage)
    resolved = resolve_state(version, state_sets, event_map)
    assert all(isinstance(v, str) for v in resolved.values())
