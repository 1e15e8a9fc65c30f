"""The pure relation rules: parsing m.relates_to, validity of edits, the latest edit, thread roots."""

from __future__ import annotations

from typing import Any

import pytest

from homeserver.storage.relations import relation_of
from homeserver.timeline.relations import (
    latest_valid_edit,
    replacement_problem,
    thread_root_problem,
)

ROOM = "!r:test.example"
ALICE = "@alice:test.example"


def message(event_id: str = "$orig", **overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": event_id,
        "type": "m.room.message",
        "sender": ALICE,
        "room_id": ROOM,
        "origin_server_ts": 1000,
        "content": {"msgtype": "m.text", "body": "hi"},
    }
    event.update(overrides)
    return event


def edit_of(target: str, event_id: str, ts: int, **overrides: Any) -> dict[str, Any]:
    content = {
        "msgtype": "m.text",
        "body": "* new",
        "m.new_content": {"msgtype": "m.text", "body": "new"},
        "m.relates_to": {"rel_type": "m.replace", "event_id": target},
    }
    return message(event_id, origin_server_ts=ts, content=content, **overrides)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ({"m.relates_to": {"rel_type": "m.thread", "event_id": "$a"}}, ("m.thread", "$a", None)),
        (
            {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$a", "key": "👍"}},
            ("m.annotation", "$a", "👍"),
        ),
        # The key only counts for annotations.
        (
            {"m.relates_to": {"rel_type": "m.reference", "event_id": "$a", "key": "k"}},
            ("m.reference", "$a", None),
        ),
        ({"m.relates_to": {"m.in_reply_to": {"event_id": "$a"}}}, None),  # a rich reply
        ({"m.relates_to": {"rel_type": "m.thread"}}, None),
        ({"m.relates_to": {"rel_type": 5, "event_id": "$a"}}, None),
        ({"m.relates_to": "nope"}, None),
        ({"body": "plain"}, None),
        ("not a dict", None),
    ],
)
def test_relation_of(content: Any, expected: tuple[str, str, str | None] | None) -> None:
    assert relation_of(content) == expected


def test_a_valid_edit() -> None:
    assert replacement_problem(message(), edit_of("$orig", "$e1", 2000)) is None


@pytest.mark.parametrize(
    ("original", "replacement", "word"),
    [
        (message(), edit_of("$orig", "$e", 1, sender="@bob:test.example"), "sender"),
        (message(), edit_of("$orig", "$e", 1, type="m.sticker"), "type"),
        (message(), edit_of("$orig", "$e", 1, room_id="!other:test.example"), "room"),
        (message(state_key=""), edit_of("$orig", "$e", 1, state_key=""), "State"),
        (edit_of("$x", "$orig", 1), edit_of("$orig", "$e", 2), "edit"),
        (message(), message("$e", content={"body": "*"}), "m.new_content"),
        (message(), message("$e", content={"m.new_content": "text"}), "m.new_content"),
    ],
)
def test_invalid_edits(original: dict[str, Any], replacement: dict[str, Any], word: str) -> None:
    problem = replacement_problem(original, replacement)
    assert problem is not None and word in problem


def test_encrypted_edits_need_no_visible_new_content() -> None:
    original = message(type="m.room.encrypted", content={"ciphertext": "x"})
    replacement = message(
        "$e",
        type="m.room.encrypted",
        content={"ciphertext": "y", "m.relates_to": {"rel_type": "m.replace", "event_id": "$orig"}},
    )
    assert replacement_problem(original, replacement) is None


def test_latest_edit_by_timestamp_then_event_id() -> None:
    original = message()
    early = edit_of("$orig", "$zzz", 1000)
    late_a = edit_of("$orig", "$aaa", 2000)
    late_b = edit_of("$orig", "$bbb", 2000)
    chosen = latest_valid_edit(original, [early, late_a, late_b])
    assert chosen is not None and chosen["event_id"] == "$bbb"
    # Order of the candidates does not matter.
    chosen = latest_valid_edit(original, [late_b, early, late_a])
    assert chosen is not None and chosen["event_id"] == "$bbb"


def test_latest_edit_skips_invalid_ones() -> None:
    original = message()
    valid = edit_of("$orig", "$valid", 1000)
    forged = edit_of("$orig", "$forged", 9000, sender="@mallory:test.example")
    chosen = latest_valid_edit(original, [valid, forged])
    assert chosen is not None and chosen["event_id"] == "$valid"
    assert latest_valid_edit(original, [forged]) is None
    assert latest_valid_edit(original, []) is None


def test_thread_roots() -> None:
    assert thread_root_problem(message()) is None
    # A rich reply has m.relates_to but no rel_type: it may start a thread.
    reply = message(content={"body": "r", "m.relates_to": {"m.in_reply_to": {"event_id": "$a"}}})
    assert thread_root_problem(reply) is None
    assert thread_root_problem(edit_of("$a", "$e", 1)) is not None
    in_thread = message(content={"m.relates_to": {"rel_type": "m.thread", "event_id": "$a"}})
    assert thread_root_problem(in_thread) is not None
