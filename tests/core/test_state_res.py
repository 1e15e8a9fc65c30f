"""State resolution: the algorithm's pieces and the pitfalls other implementations hit.

Each pitfall from the research brief (section 2.13) has a named test here; the shared
vectors are in test_state_res_vectors.py and the order-independence properties in
test_state_res_properties.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from homeserver.core.power_levels import CREATOR_POWER_LEVEL
from homeserver.core.room_versions import V10, V11, V12, RoomVersion
from homeserver.core.state_res import (
    _Resolver,
    is_power_event,
    resolve_state,
    split_conflicted_state,
)

ALICE, BOB, CAROL = "@alice:a.example", "@bob:b.example", "@carol:c.example"
versions = pytest.mark.parametrize("version", [V10, V11, V12], ids=["v10", "v11", "v12"])


class Dag:
    """Hand-built auth DAG: events named by readable IDs, auth_events given explicitly."""

    def __init__(self, version: RoomVersion) -> None:
        self.version = version
        self.events: dict[str, dict[str, Any]] = {}
        content: dict[str, Any] = {"room_version": version.identifier}
        if not version.implicit_room_creator:
            content["creator"] = ALICE
        self.add("$create", "m.room.create", ALICE, content, "", [], ts=0)
        self.add(
            "$join-alice", "m.room.member", ALICE, {"membership": "join"}, ALICE, ["$create"], ts=1
        )

    @property
    def room_id(self) -> str:
        return "!create" if self.version.room_id_from_create_event else "!room:a.example"

    def add(
        self,
        event_id: str,
        event_type: str,
        sender: str,
        content: dict[str, Any],
        state_key: str | None,
        auth_events: list[str],
        *,
        ts: int,
    ) -> str:
        if self.version.room_id_from_create_event:
            auth_events = [a for a in auth_events if a != "$create"]
        event: dict[str, Any] = {
            "event_id": event_id,
            "type": event_type,
            "sender": sender,
            "content": content,
            "auth_events": auth_events,
            "prev_events": [],
            "origin_server_ts": ts,
        }
        if state_key is not None:
            event["state_key"] = state_key
        if not (event_type == "m.room.create" and self.version.room_id_from_create_event):
            event["room_id"] = self.room_id
        self.events[event_id] = event
        return event_id

    def power_levels(
        self, event_id: str, users: dict[str, int], auth: list[str], *, ts: int
    ) -> str:
        if self.version.privileged_creators:
            users = {u: v for u, v in users.items() if u != ALICE}
        return self.add(event_id, "m.room.power_levels", ALICE, {"users": users}, "", auth, ts=ts)

    def state(self, *event_ids: str) -> dict[tuple[str, str], str]:
        return {(self.events[e]["type"], self.events[e]["state_key"]): e for e in event_ids}

    def resolver(self, rejected: frozenset[str] = frozenset()) -> _Resolver:
        return _Resolver(self.version, self.events, rejected)


def base(version: RoomVersion) -> Dag:
    """create, Alice's join, PL0 (Alice 100), public join rules, Bob's join."""
    dag = Dag(version)
    dag.power_levels("$pl0", {ALICE: 100}, ["$create", "$join-alice"], ts=2)
    auth = ["$create", "$join-alice", "$pl0"]
    dag.add("$jr", "m.room.join_rules", ALICE, {"join_rule": "public"}, "", auth, ts=3)
    dag.add(
        "$join-bob",
        "m.room.member",
        BOB,
        {"membership": "join"},
        BOB,
        ["$create", "$pl0", "$jr"],
        ts=4,
    )
    return dag


BASE = ("$create", "$join-alice", "$pl0", "$jr", "$join-bob")


# --- definitions ----------------------------------------------------------------------------


def test_split_conflicted_state() -> None:
    s1 = {("a", ""): "$1", ("b", ""): "$2", ("c", ""): "$3"}
    s2 = {("a", ""): "$1", ("b", ""): "$4"}
    unconflicted, conflicted = split_conflicted_state([s1, s2])
    assert unconflicted == {("a", ""): "$1"}
    assert conflicted == {"$2", "$3", "$4"}  # a key missing from one set is conflicted


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"type": "m.room.power_levels", "state_key": ""}, True),
        ({"type": "m.room.join_rules", "state_key": ""}, True),
        ({"type": "m.room.create", "state_key": ""}, True),
        (
            {
                "type": "m.room.member",
                "state_key": BOB,
                "sender": ALICE,
                "content": {"membership": "ban"},
            },
            True,
        ),
        (
            {
                "type": "m.room.member",
                "state_key": BOB,
                "sender": ALICE,
                "content": {"membership": "leave"},
            },
            True,
        ),
        (
            {
                "type": "m.room.member",
                "state_key": BOB,
                "sender": BOB,
                "content": {"membership": "leave"},
            },
            False,
        ),
        (
            {
                "type": "m.room.member",
                "state_key": BOB,
                "sender": ALICE,
                "content": {"membership": "invite"},
            },
            False,
        ),
        ({"type": "m.room.topic", "state_key": ""}, False),
        ({"type": "m.room.member", "state_key": BOB, "sender": ALICE, "content": "ban"}, False),
    ],
)
def test_is_power_event(event: dict[str, Any], expected: bool) -> None:
    assert is_power_event(event) is expected


@versions
def test_no_state_sets_resolve_to_empty_and_one_set_to_itself(version: RoomVersion) -> None:
    dag = base(version)
    assert resolve_state(version, [], dag.events) == {}
    assert resolve_state(version, [dag.state(*BASE)], dag.events) == dag.state(*BASE)


def test_auth_difference_counts_the_state_events_themselves() -> None:
    """PL0 is in both states but cited only in one: like Synapse and ruma, not a difference."""
    dag = base(V10)
    auth = ["$create", "$join-alice", "$pl0"]
    dag.add("$topic", "m.room.topic", ALICE, {"topic": "x"}, "", auth, ts=5)
    dag.add(
        "$old-topic", "m.room.topic", ALICE, {"topic": "y"}, "", ["$create", "$join-alice"], ts=6
    )
    s1 = dag.state("$create", "$join-alice", "$pl0", "$old-topic")
    s2 = dag.state("$create", "$join-alice", "$pl0", "$topic")
    assert dag.resolver().auth_difference([s1, s2]) == {"$topic", "$old-topic"}


def test_conflicted_state_subgraph_holds_paths_between_conflicted_events() -> None:
    dag = base(V12)
    dag.power_levels("$pl1", {ALICE: 100, BOB: 50}, ["$join-alice", "$pl0"], ts=5)
    dag.power_levels("$pl2", {ALICE: 100, BOB: 60}, ["$join-alice", "$pl1"], ts=6)
    subgraph = dag.resolver().conflicted_state_subgraph({"$pl2", "$pl0"})
    assert subgraph == {"$pl2", "$pl1", "$pl0"}  # $join-alice leads to no conflicted event


# --- pitfalls ---------------------------------------------------------------------------------


@versions
def test_mainline_events_without_power_levels_sort_before_oldest_mainline_event(
    version: RoomVersion,
) -> None:
    """Pitfall ruma#2480: position ∞ must not collide with the oldest mainline position."""
    dag = base(version)
    dag.add(
        "$topic-no-pl",
        "m.room.topic",
        ALICE,
        {"topic": "old"},
        "",
        ["$create", "$join-alice"],
        ts=100,
    )
    dag.add(
        "$topic-pl0",
        "m.room.topic",
        ALICE,
        {"topic": "new"},
        "",
        ["$create", "$join-alice", "$pl0"],
        ts=10,
    )
    order = dag.resolver().mainline_order(["$topic-pl0", "$topic-no-pl"], "$pl0")
    assert order == ["$topic-no-pl", "$topic-pl0"]
    s1 = dag.state(*BASE, "$topic-no-pl")
    s2 = dag.state(*BASE, "$topic-pl0")
    resolved = resolve_state(version, [s1, s2], dag.events)
    if version is V12:
        # v2.1 starts from the empty map and PL0 is unconflicted and in both auth chains, so
        # no power levels event is resolved by step 2: both topics sit at ∞, ts decides.
        assert resolved[("m.room.topic", "")] == "$topic-no-pl"
    else:
        assert resolved[("m.room.topic", "")] == "$topic-pl0"


@versions
def test_mainline_walk_follows_power_levels_auth_events_only(version: RoomVersion) -> None:
    """Pitfall synapse#8971: PL -> auth_events -> PL, not the newest PL anywhere in the chain."""
    dag = base(version)
    dag.power_levels("$pl1", {ALICE: 100, BOB: 10}, ["$create", "$join-alice", "$pl0"], ts=5)
    dag.power_levels("$pl2", {ALICE: 100, BOB: 20}, ["$create", "$join-alice", "$pl1"], ts=6)
    # $via-member cites PL0 directly, but also a member event that was authorised by PL2.
    dag.add(
        "$join-carol",
        "m.room.member",
        CAROL,
        {"membership": "join"},
        CAROL,
        ["$create", "$pl2", "$jr"],
        ts=7,
    )
    dag.add(
        "$via-member",
        "m.room.topic",
        ALICE,
        {"topic": "a"},
        "",
        ["$create", "$pl0", "$join-carol"],
        ts=100,
    )
    dag.add(
        "$via-pl1",
        "m.room.topic",
        ALICE,
        {"topic": "b"},
        "",
        ["$create", "$join-alice", "$pl1"],
        ts=10,
    )
    order = dag.resolver().mainline_order(["$via-pl1", "$via-member"], "$pl2")
    assert order == ["$via-member", "$via-pl1"]


@versions
def test_sender_power_comes_from_the_events_own_auth_events(version: RoomVersion) -> None:
    """Pitfall gomatrixserverlib#153: own auth PL, creator fallback, unknown auth event."""
    dag = base(version)
    dag.power_levels("$pl1", {ALICE: 100, BOB: 50}, ["$create", "$join-alice", "$pl0"], ts=5)
    dag.add("$bob-under-pl1", "m.custom", BOB, {}, "", ["$create", "$join-bob", "$pl1"], ts=6)
    dag.add("$bob-under-pl0", "m.custom", BOB, {}, "", ["$create", "$join-bob", "$pl0"], ts=7)
    dag.add("$alice-no-pl", "m.custom", ALICE, {}, "", ["$create", "$join-alice"], ts=8)
    dag.add("$bob-no-pl", "m.custom", BOB, {}, "", ["$create", "$join-bob"], ts=9)
    dag.add("$bob-unknown-pl", "m.custom", BOB, {}, "", ["$create", "$join-bob", "$missing"], ts=10)
    resolver = dag.resolver()
    assert resolver.sender_power_level("$bob-under-pl1") == 50
    assert resolver.sender_power_level("$bob-under-pl0") == 0
    creator_level = CREATOR_POWER_LEVEL if version is V12 else 100
    assert resolver.sender_power_level("$alice-no-pl") == creator_level
    assert resolver.sender_power_level("$bob-no-pl") == 0
    assert resolver.sender_power_level("$bob-unknown-pl") == 0


@versions
def test_power_ordering_prefers_power_over_timestamp(version: RoomVersion) -> None:
    dag = base(version)
    dag.power_levels("$pl1", {ALICE: 100, BOB: 50}, ["$create", "$join-alice", "$pl0"], ts=5)
    dag.add(
        "$jr-alice",
        "m.room.join_rules",
        ALICE,
        {"join_rule": "invite"},
        "",
        ["$create", "$join-alice", "$pl1"],
        ts=50,
    )
    dag.add(
        "$jr-bob",
        "m.room.join_rules",
        BOB,
        {"join_rule": "knock"},
        "",
        ["$create", "$join-bob", "$pl1"],
        ts=1,
    )
    order = dag.resolver().reverse_topological_power_order(
        ["$jr-bob", "$jr-alice"], {"$jr-alice", "$jr-bob"}
    )
    assert order == ["$jr-alice", "$jr-bob"]


@versions
def test_kahn_waits_for_every_auth_event_in_the_graph(version: RoomVersion) -> None:
    """Pitfall gomatrixserverlib#233: in-edges past the first auth event were dropped."""
    dag = base(version)
    dag.power_levels("$pl1", {ALICE: 100, BOB: 60}, ["$create", "$join-alice", "$pl0"], ts=90)
    dag.add(
        "$jr-bob",
        "m.room.join_rules",
        BOB,
        {"join_rule": "invite"},
        "",
        ["$create", "$join-bob", "$pl0"],
        ts=91,
    )
    # $ban cites both; it has the most power and the earliest timestamp, yet must come last.
    dag.add(
        "$ban",
        "m.room.member",
        ALICE,
        {"membership": "ban"},
        CAROL,
        ["$create", "$join-alice", "$pl1", "$jr-bob"],
        ts=0,
    )
    full = {"$pl1", "$jr-bob", "$ban"}
    order = dag.resolver().reverse_topological_power_order(["$ban", "$jr-bob", "$pl1"], full)
    assert order == ["$pl1", "$jr-bob", "$ban"]


@versions
def test_tie_break_is_timestamp_then_event_id(version: RoomVersion) -> None:
    """Pitfall: a tie-break bug (ruma-state-res 0.13); ts first, then event ID as a string."""
    dag = base(version)
    auth = ["$create", "$join-alice", "$pl0"]
    dag.add("$b", "m.room.topic", ALICE, {}, "", auth, ts=5)
    dag.add("$a", "m.room.topic", ALICE, {}, "", auth, ts=6)
    dag.add("$c", "m.room.topic", ALICE, {}, "", auth, ts=6)
    assert dag.resolver().mainline_order(["$c", "$a", "$b"], "$pl0") == ["$b", "$a", "$c"]
    jr = ["$create", "$join-alice", "$pl0"]
    dag.add("$jr-y", "m.room.join_rules", ALICE, {"join_rule": "invite"}, "", jr, ts=7)
    dag.add("$jr-x", "m.room.join_rules", ALICE, {"join_rule": "knock"}, "", jr, ts=7)
    full = {"$jr-x", "$jr-y"}
    assert dag.resolver().reverse_topological_power_order(["$jr-y", "$jr-x"], full) == [
        "$jr-x",
        "$jr-y",
    ]


@versions
def test_iterative_checks_take_missing_keys_from_own_auth_events(version: RoomVersion) -> None:
    """Pitfall gomatrixserverlib#336: fall back to the event's own auth events, per key."""
    dag = base(version)
    auth = ["$create", "$join-alice", "$pl0"]
    dag.add("$topic", "m.room.topic", ALICE, {"topic": "x"}, "", auth, ts=5)
    resolver = dag.resolver()
    assert resolver.iterative_auth_checks(["$topic"], {}) == {("m.room.topic", ""): "$topic"}
    # The partially resolved state wins where it has the key: Alice has left there.
    dag.add("$leave-alice", "m.room.member", ALICE, {"membership": "leave"}, ALICE, auth, ts=6)
    partial = dag.state("$leave-alice")
    assert resolver.iterative_auth_checks(["$topic"], partial) == partial


@versions
def test_rejected_auth_events_are_not_used_by_iterative_checks(version: RoomVersion) -> None:
    """Pitfall synapse#17742: a rejected event must not authorise anything."""
    dag = base(version)
    dag.add(
        "$topic",
        "m.room.topic",
        ALICE,
        {"topic": "x"},
        "",
        ["$create", "$join-alice", "$pl0"],
        ts=5,
    )
    assert dag.resolver(frozenset({"$join-alice"})).iterative_auth_checks(["$topic"], {}) == {}
    partial = dag.state("$join-alice")
    assert (
        dag.resolver(frozenset({"$join-alice"})).iterative_auth_checks(["$topic"], partial)
        == partial
    )


@versions
def test_auth_failure_skips_the_event_and_resolution_goes_on(version: RoomVersion) -> None:
    """Pitfall ruma-state-res 0.14: a failing event is dropped, the resolution completes."""
    dag = base(version)
    auth = ["$create", "$join-bob", "$pl0"]
    dag.add("$topic-bob", "m.room.topic", BOB, {"topic": "no power"}, "", auth, ts=5)
    dag.add(
        "$topic-junk",
        "m.room.topic",
        ALICE,
        "not an object",
        "",
        ["$create", "$join-alice", "$pl0"],
        ts=6,
    )  # type: ignore[arg-type]
    dag.add(
        "$topic-alice",
        "m.room.topic",
        ALICE,
        {"topic": "ok"},
        "",
        ["$create", "$join-alice", "$pl0"],
        ts=4,
    )
    states = [dag.state(*BASE, e) for e in ("$topic-bob", "$topic-alice", "$topic-junk")]
    resolved = resolve_state(version, states, dag.events)
    # Bob lacks the state level; the junk-content topic passes (content is never read) and is newest.
    assert resolved[("m.room.topic", "")] == "$topic-junk"
    resolved = resolve_state(version, states[:2], dag.events)
    assert resolved[("m.room.topic", "")] == "$topic-alice"


@versions
def test_unconflicted_state_wins_over_resolved(version: RoomVersion) -> None:
    dag = base(version)
    dag.add(
        "$kick-bob",
        "m.room.member",
        ALICE,
        {"membership": "leave"},
        BOB,
        ["$create", "$join-alice", "$pl0", "$join-bob"],
        ts=5,
    )
    s1 = dag.state(*BASE)
    s2 = dag.state(*BASE[:4], "$kick-bob")
    resolved = resolve_state(version, [s1, s2], dag.events)
    assert resolved[("m.room.member", BOB)] == "$kick-bob"
    assert {k: v for k, v in resolved.items() if k != ("m.room.member", BOB)} == dag.state(
        *BASE[:4]
    )


def test_v2_1_starts_from_the_empty_map() -> None:
    """Pitfall: state resets under v2 (synapse#8629); v2.1 checks power events from empty."""
    for version in (V11, V12):
        dag = base(version)
        jr_auth = ["$create", "$join-alice", "$pl0"]
        dag.add("$jr-new", "m.room.join_rules", ALICE, {"join_rule": "invite"}, "", jr_auth, ts=6)
        dag.add(
            "$leave-alice", "m.room.member", ALICE, {"membership": "leave"}, ALICE, jr_auth, ts=7
        )
        s1 = dag.state(*BASE, "$leave-alice")
        s2 = dag.state("$create", "$pl0", "$jr-new", "$join-bob", "$leave-alice")
        resolved = resolve_state(version, [s1, s2], dag.events)
        # v2: Alice's unconflicted leave is in the starting map, so both join rules fail
        # and the key is lost (a state reset). v2.1: both pass on their own auth events.
        expected = None if version is V11 else "$jr-new"
        assert resolved.get(("m.room.join_rules", "")) == expected, version.identifier
