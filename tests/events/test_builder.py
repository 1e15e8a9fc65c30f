"""The pure steps of building a PDU."""

from __future__ import annotations

from homeserver.core.room_versions import V10, V11, V12
from homeserver.events.builder import (
    MAX_DEPTH,
    build_pdu,
    next_depth,
    random_room_id,
    select_auth_events,
    select_prev_events,
)

STATE = {
    ("m.room.create", ""): "$create",
    ("m.room.power_levels", ""): "$pl",
    ("m.room.join_rules", ""): "$jr",
    ("m.room.member", "@a:x"): "$a",
    ("m.room.member", "@b:x"): "$b",
    ("m.room.topic", ""): "$topic",
}


def test_prev_events_are_the_deepest_extremities_capped_at_20() -> None:
    extremities = [(f"$e{i:02}", i % 7) for i in range(30)]
    chosen = select_prev_events(extremities)
    assert len(chosen) == 20
    depths = dict(extremities)
    # Everything left out is no deeper than anything chosen.
    assert min(depths[e] for e in chosen) >= max(depths[e] for e in depths if e not in chosen)
    assert select_prev_events([("$only", 3)]) == ["$only"]
    assert select_prev_events(extremities, limit=3) == ["$e06", "$e13", "$e20"]


def test_depth_is_one_more_than_the_deepest_prev_and_capped() -> None:
    assert next_depth([3, 9, 4]) == 10
    assert next_depth([]) == 1
    assert next_depth([MAX_DEPTH]) == MAX_DEPTH


def _event(
    event_type: str, sender: str, content: dict[str, object], state_key: str | None = None
) -> dict[str, object]:
    return build_pdu(
        room_id="!r:x",
        event_type=event_type,
        sender=sender,
        content=content,
        state_key=state_key,
        prev_events=["$p"],
        auth_events=[],
        depth=2,
        origin_server_ts=5,
    )


def test_auth_events_for_a_message_and_a_join() -> None:
    message = _event("m.room.message", "@a:x", {"body": "hi"})
    assert sorted(select_auth_events(V10, message, STATE)) == ["$a", "$create", "$pl"]
    join = _event("m.room.member", "@b:x", {"membership": "join"}, "@b:x")
    assert sorted(select_auth_events(V11, join, STATE)) == ["$b", "$create", "$jr", "$pl"]
    # A user with no member event yet contributes nothing for that key.
    newcomer = _event("m.room.member", "@c:x", {"membership": "join"}, "@c:x")
    assert sorted(select_auth_events(V11, newcomer, STATE)) == ["$create", "$jr", "$pl"]


def test_v12_never_cites_the_create_event() -> None:
    message = _event("m.room.message", "@a:x", {"body": "hi"})
    assert sorted(select_auth_events(V12, message, STATE)) == ["$a", "$pl"]


def test_pdu_shape() -> None:
    state_event = _event("m.room.topic", "@a:x", {"topic": "t"}, "")
    assert state_event["state_key"] == "" and state_event["room_id"] == "!r:x"
    assert "state_key" not in _event("m.room.message", "@a:x", {})
    create = build_pdu(
        room_id=None,
        event_type="m.room.create",
        sender="@a:x",
        content={},
        state_key="",
        prev_events=[],
        auth_events=[],
        depth=1,
        origin_server_ts=1,
    )
    assert "room_id" not in create


def test_random_room_ids_are_distinct_and_on_our_server() -> None:
    ids = {random_room_id("example.org") for _ in range(100)}
    assert len(ids) == 100
    assert all(i.startswith("!") and i.endswith(":example.org") for i in ids)
