"""The pure filter core: parsing and validation, matching, event_fields."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from homeserver.errors import MatrixError
from homeserver.sync.filters import (
    DEFAULT_FILTER,
    EventFilter,
    RoomEventFilter,
    apply_event_fields,
    glob_matches,
    parse_filter,
    parse_room_event_filter,
)


def test_empty_filter_is_default() -> None:
    assert parse_filter({}) == DEFAULT_FILTER
    assert DEFAULT_FILTER.room.timeline.limit is None


def test_element_filter() -> None:
    parsed = parse_filter(
        {
            "room": {
                "timeline": {"limit": 20, "not_types": ["m.call.*"]},
                "state": {"lazy_load_members": True},
                "include_leave": True,
                "rooms": ["!a:x"],
            },
            "event_fields": ["type", "content.body"],
            "presence": {"not_types": ["*"]},
            "unknown_key": 1,
        }
    )
    assert parsed.room.timeline.limit == 20
    assert parsed.lazy_load_members
    assert parsed.room.include_leave
    assert parsed.room.matches_room("!a:x") and not parsed.room.matches_room("!b:x")
    assert not parsed.presence.matches("m.presence", "@u:x")
    assert parsed.event_fields == ("type", "content.body")


@pytest.mark.parametrize(
    "body",
    [
        [],
        "x",
        {"event_format": "xml"},
        {"event_fields": "type"},
        {"event_fields": [1]},
        {"room": []},
        {"room": {"timeline": {"limit": "10"}}},
        {"room": {"timeline": {"limit": -1}}},
        {"room": {"timeline": {"limit": True}}},
        {"room": {"timeline": {"types": "m.room.message"}}},
        {"room": {"state": {"lazy_load_members": "yes"}}},
        {"room": {"rooms": ["not-a-room"]}},
        {"room": {"include_leave": 1}},
        {"room": {"timeline": {"contains_url": "true"}}},
        {"presence": {"senders": [None]}},
        {"account_data": 5},
    ],
)
def test_bad_filters_are_m_bad_json(body: Any) -> None:
    with pytest.raises(MatrixError) as exc:
        parse_filter(body)
    assert (exc.value.status, exc.value.errcode) == (400, "M_BAD_JSON")


def test_limit_is_capped() -> None:
    assert parse_room_event_filter({"limit": 10**9}).limit == 1000


def test_matching_rules() -> None:
    f = EventFilter(types=("m.room.*",), not_types=("m.room.member",), not_senders=("@bad:x",))
    assert f.matches("m.room.message", "@a:x")
    assert not f.matches("m.room.member", "@a:x")  # not_types wins
    assert not f.matches("m.reaction", "@a:x")
    assert not f.matches("m.room.message", "@bad:x")
    only = EventFilter(senders=("@a:x",))
    assert only.matches("x", "@a:x") and not only.matches("x", "@b:x")
    assert EventFilter(types=()).matches("x", "@a:x") is False


def test_room_event_filter_contains_url_and_rooms() -> None:
    f = RoomEventFilter(contains_url=True, not_rooms=("!no:x",))
    with_url = {
        "type": "m.room.message",
        "sender": "@a:x",
        "room_id": "!r:x",
        "content": {"url": "mxc://a/b"},
    }
    without = {**with_url, "content": {"body": "x"}}
    assert f.matches_event(with_url) and not f.matches_event(without)
    assert not f.matches_event({**with_url, "room_id": "!no:x"})
    assert RoomEventFilter(contains_url=False).matches_event(without)


@given(st.text(alphabet="ab.*", max_size=6), st.text(alphabet="ab.", max_size=6))
def test_glob_without_star_is_equality(pattern: str, value: str) -> None:
    if "*" not in pattern:
        assert glob_matches(pattern, value) == (pattern == value)
    else:
        assert glob_matches("*", value)


def test_event_fields() -> None:
    event = {"type": "t", "content": {"body": "b", "x": 1}, "a.b": 2, "sender": "@s:x"}
    assert apply_event_fields(event, ["type", "content.body"]) == {
        "type": "t",
        "content": {"body": "b"},
    }
    assert apply_event_fields(event, ["a\\.b", "missing.path"]) == {"a.b": 2}
    assert apply_event_fields(event, None) == event
