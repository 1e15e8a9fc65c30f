"""The shared state resolution vectors (ruma's hand-built rooms), resolved three ways.

See /work/shared/test-vectors/state-res/README.md: event by event along prev_events, batch
by batch, and all at once must each give exactly the expected state.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from homeserver.core.room_versions import RoomVersion, get_room_version
from homeserver.core.state_res import resolve_state

VECTORS = Path("/work/shared/test-vectors/state-res")
FIXTURES = VECTORS / "fixtures"

BATCH_CASES: dict[str, list[str]] = {
    "minimal_private_chat": ["bootstrap-private-chat"],
    "minimal_public_chat": ["bootstrap-public-chat"],
    "origin_server_ts_tiebreak": ["bootstrap-private-chat", "origin-server-ts-tiebreak"],
    "ban_vs_power_levels": [
        "bootstrap-public-chat",
        "ban-vs-power-levels-alice",
        "ban-vs-power-levels-bob",
    ],
    "topic_vs_power_levels": [
        "bootstrap-public-chat",
        "topic-vs-power-levels-alice",
        "topic-vs-power-levels-bob",
    ],
    "power_levels_admin_vs_mod": [
        "bootstrap-public-chat",
        "power-levels-admin-vs-mod-alice",
        "power-levels-admin-vs-mod-bob",
    ],
    "topic_vs_ban": [
        "bootstrap-public-chat",
        "topic-vs-ban-common",
        "topic-vs-ban-alice",
        "topic-vs-ban-bob",
    ],
    "join_rules_vs_join": [
        "bootstrap-public-chat",
        "join-rules-vs-join-common",
        "join-rules-vs-join-alice",
        "join-rules-vs-join-ella",
    ],
    "concurrent_joins": [
        "bootstrap-public-chat",
        "concurrent-joins-charlie",
        "concurrent-joins-ella",
    ],
}

STATE_MAP_CASES: dict[str, tuple[str, list[str], str]] = {
    "msc4297_problem_a_state_res_v2_0": (
        "MSC4297-problem-A",
        ["state-bob", "state-charlie"],
        "pdus-v11",
    ),
    "msc4297_problem_a_state_res_v2_1": (
        "MSC4297-problem-A",
        ["state-bob", "state-charlie"],
        "pdus-v12",
    ),
    "msc4297_problem_b_state_res_v2_0": (
        "MSC4297-problem-B",
        ["state-eve", "state-zara"],
        "pdus-v11",
    ),
    "msc4297_problem_b_state_res_v2_1": (
        "MSC4297-problem-B",
        ["state-eve", "state-zara"],
        "pdus-v12",
    ),
}

Key = tuple[str, str]


def _load(path: Path) -> Any:
    return json.loads(path.read_text())


def _key(pdu: dict[str, Any]) -> Key:
    return (pdu["type"], pdu["state_key"])


def _expected(case: str) -> dict[Key, str]:
    return {
        (e["type"], e["state_key"]): e["event_id"]
        for e in _load(VECTORS / "expected" / f"{case}.json")
    }


def _room_version(first_pdu: dict[str, Any]) -> RoomVersion:
    version = get_room_version(first_pdu["content"]["room_version"])
    assert version is not None
    return version


def _batches(case: str) -> list[list[dict[str, Any]]]:
    return [_load(FIXTURES / f"{name}.json") for name in BATCH_CASES[case]]


def resolve_event_by_event(
    version: RoomVersion, pdus: list[dict[str, Any]], event_map: dict[str, dict[str, Any]]
) -> dict[Key, str]:
    """README mode 1: state after each event, walking prev_events from the create event."""
    state_after: dict[str, dict[Key, str]] = {}
    pending = {p["event_id"]: p for p in pdus}
    has_children: set[str] = set()
    while pending:
        ready = [p for p in pending.values() if all(e in state_after for e in p["prev_events"])]
        assert ready, "prev_events graph is not closed"
        for pdu in sorted(ready, key=lambda p: p["event_id"]):
            del pending[pdu["event_id"]]
            has_children.update(pdu["prev_events"])
            before = resolve_state(version, [state_after[e] for e in pdu["prev_events"]], event_map)
            with_event = {**before, _key(pdu): pdu["event_id"]}
            state_after[pdu["event_id"]] = resolve_state(version, [before, with_event], event_map)
    leaves = [state_after[e] for e in sorted(state_after) if e not in has_children]
    return resolve_state(version, leaves, event_map)


@pytest.mark.parametrize("case", sorted(BATCH_CASES))
def test_event_by_event(case: str) -> None:
    batches = _batches(case)
    pdus = [p for batch in batches for p in batch]
    event_map = {p["event_id"]: p for p in pdus}
    version = _room_version(batches[0][0])
    assert resolve_event_by_event(version, pdus, event_map) == _expected(case)


@pytest.mark.parametrize("case", sorted(BATCH_CASES))
def test_batch_by_batch(case: str) -> None:
    batches = _batches(case)
    event_map = {p["event_id"]: p for batch in batches for p in batch}
    version = _room_version(batches[0][0])
    result: dict[Key, str] | None = None
    for batch in batches:
        maps = [] if result is None else [result]
        maps += [{_key(p): p["event_id"]} for p in batch]
        result = resolve_state(version, maps, event_map)
    assert result == _expected(case)


@pytest.mark.parametrize("case", sorted(BATCH_CASES))
def test_all_at_once(case: str) -> None:
    batches = _batches(case)
    pdus = [p for batch in batches for p in batch]
    event_map = {p["event_id"]: p for p in pdus}
    version = _room_version(batches[0][0])
    result = resolve_state(version, [{_key(p): p["event_id"]} for p in pdus], event_map)
    assert result == _expected(case)


@pytest.mark.parametrize("case", sorted(STATE_MAP_CASES))
def test_two_state_maps(case: str) -> None:
    folder, state_names, pdus_name = STATE_MAP_CASES[case]
    pdus = _load(FIXTURES / folder / f"{pdus_name}.json")
    event_map = {p["event_id"]: p for p in pdus}
    version = _room_version(pdus[0])
    state_sets = [
        {_key(event_map[e]): e for e in _load(FIXTURES / folder / f"{name}.json")}
        for name in state_names
    ]
    assert resolve_state(version, state_sets, event_map) == _expected(case)
    assert resolve_state(version, state_sets[::-1], event_map) == _expected(case)


def test_msc4297_vectors_distinguish_v2_from_v2_1() -> None:
    """Problems A and B resolve differently under v2 and v2.1: the flag is really read."""
    for problem in ("a", "b"):
        v2 = _expected(f"msc4297_problem_{problem}_state_res_v2_0")
        v21 = _expected(f"msc4297_problem_{problem}_state_res_v2_1")
        assert v2 != v21
