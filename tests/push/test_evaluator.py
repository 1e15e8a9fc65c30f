"""Push rule evaluation: every default rule, each condition kind, and a no-raise property."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from homeserver.push.default_rules import default_rule_set
from homeserver.push.evaluator import (
    PushContext,
    _glob_regex,
    condition_matches,
    evaluate,
    glob_matches,
    split_key,
)

ME = "@alice:example.org"
RULES = default_rule_set(ME)
LEVELS = {"users": {"@mod:example.org": 50, "@admin:example.org": 100}, "users_default": 0}


def ctx(members: int = 3, name: str | None = "Alice Liddell", levels: Any = LEVELS) -> PushContext:
    return PushContext(
        user_id=ME, display_name=name, room_member_count=members, power_levels=levels
    )


def msg(body: str = "hello", sender: str = "@bob:example.org", **content: Any) -> dict[str, Any]:
    return {
        "type": "m.room.message",
        "sender": sender,
        "room_id": "!r:example.org",
        "content": {"msgtype": "m.text", "body": body, **content},
    }


def state(type_: str, content: dict[str, Any], state_key: str = "") -> dict[str, Any]:
    return {
        "type": type_,
        "sender": "@bob:example.org",
        "state_key": state_key,
        "room_id": "!r:example.org",
        "content": content,
    }


HIGHLIGHT_SOUND = ["notify", {"set_tweak": "sound", "value": "default"}, {"set_tweak": "highlight"}]

# (event, context, expected rule_id, notify, highlight)
TABLE: list[tuple[str, dict[str, Any], PushContext, str | None, bool, bool]] = [
    ("notice", msg(msgtype="m.notice"), ctx(), ".m.rule.suppress_notices", False, False),
    (
        "invite for me",
        state("m.room.member", {"membership": "invite"}, ME),
        ctx(),
        ".m.rule.invite_for_me",
        True,
        False,
    ),
    (
        "invite for other",
        state("m.room.member", {"membership": "invite"}, "@c:x"),
        ctx(),
        ".m.rule.member_event",
        False,
        False,
    ),
    (
        "join",
        state("m.room.member", {"membership": "join"}, "@c:x"),
        ctx(),
        ".m.rule.member_event",
        False,
        False,
    ),
    (
        "user mention",
        msg("hi", **{"m.mentions": {"user_ids": [ME]}}),
        ctx(),
        ".m.rule.is_user_mention",
        True,
        True,
    ),
    (
        "mention of other",
        msg("hi", **{"m.mentions": {"user_ids": ["@c:x"]}}),
        ctx(),
        ".m.rule.message",
        True,
        False,
    ),
    ("display name", msg("hey Alice Liddell!"), ctx(), ".m.rule.contains_display_name", True, True),
    ("display name inside word", msg("heyAlice Liddellx"), ctx(), ".m.rule.message", True, False),
    (
        "display name skipped with m.mentions",
        msg("hey Alice Liddell", **{"m.mentions": {}}),
        ctx(),
        ".m.rule.message",
        True,
        False,
    ),
    (
        "room mention by mod",
        msg("x", sender="@mod:example.org", **{"m.mentions": {"room": True}}),
        ctx(),
        ".m.rule.is_room_mention",
        True,
        True,
    ),
    (
        "room mention by nobody",
        msg("x", **{"m.mentions": {"room": True}}),
        ctx(),
        ".m.rule.message",
        True,
        False,
    ),
    (
        "@room by mod",
        msg("@room look", sender="@mod:example.org"),
        ctx(),
        ".m.rule.roomnotif",
        True,
        True,
    ),
    ("@room by nobody", msg("@room look"), ctx(), ".m.rule.message", True, False),
    (
        "@room with raised notifications level",
        msg("@room", sender="@mod:example.org"),
        ctx(levels={**LEVELS, "notifications": {"room": 100}}),
        ".m.rule.message",
        True,
        False,
    ),
    (
        "tombstone",
        state("m.room.tombstone", {"replacement_room": "!n:x"}),
        ctx(),
        ".m.rule.tombstone",
        True,
        True,
    ),
    (
        "reaction",
        {"type": "m.reaction", "sender": "@bob:x", "content": {}},
        ctx(),
        ".m.rule.reaction",
        False,
        False,
    ),
    (
        "server acl",
        state("m.room.server_acl", {"allow": ["*"]}),
        ctx(),
        ".m.rule.room.server_acl",
        False,
        False,
    ),
    (
        "edit",
        msg("* fixed", **{"m.relates_to": {"rel_type": "m.replace", "event_id": "$e"}}),
        ctx(),
        ".m.rule.suppress_edits",
        False,
        False,
    ),
    ("user name", msg("ping alice please"), ctx(), ".m.rule.contains_user_name", True, True),
    (
        "call",
        {"type": "m.call.invite", "sender": "@bob:x", "content": {}},
        ctx(),
        ".m.rule.call",
        True,
        False,
    ),
    (
        "encrypted dm",
        {"type": "m.room.encrypted", "sender": "@bob:x", "content": {}},
        ctx(2),
        ".m.rule.encrypted_room_one_to_one",
        True,
        False,
    ),
    ("dm message", msg("hi"), ctx(2), ".m.rule.room_one_to_one", True, False),
    ("group message", msg("hi"), ctx(5), ".m.rule.message", True, False),
    (
        "encrypted group",
        {"type": "m.room.encrypted", "sender": "@bob:x", "content": {}},
        ctx(5),
        ".m.rule.encrypted",
        True,
        False,
    ),
    ("topic change", state("m.room.topic", {"topic": "t"}), ctx(), None, False, False),
]


@pytest.mark.parametrize(
    ("event", "context", "rule_id", "notify", "highlight"),
    [row[1:] for row in TABLE],
    ids=[row[0] for row in TABLE],
)
def test_default_rules(
    event: dict[str, Any], context: PushContext, rule_id: str | None, notify: bool, highlight: bool
) -> None:
    result = evaluate(RULES, event, context)
    assert (result.rule_id, result.notify, result.highlight) == (rule_id, notify, highlight)


def test_master_rule_silences_everything() -> None:
    rules = default_rule_set(ME)
    rules["override"][0]["enabled"] = True
    result = evaluate(rules, msg("hey alice", **{"m.mentions": {"user_ids": [ME]}}), ctx())
    assert result.rule_id == ".m.rule.master" and not result.notify


def test_kind_order_and_user_rules() -> None:
    rules = default_rule_set(ME)
    rules["room"] = [{"rule_id": "!r:example.org", "enabled": True, "actions": []}]
    assert evaluate(rules, msg("hi"), ctx()).rule_id == "!r:example.org"
    rules["sender"] = [{"rule_id": "@bob:example.org", "enabled": True, "actions": ["notify"]}]
    assert evaluate(rules, msg("hi"), ctx()).rule_id == "!r:example.org"  # room before sender
    rules["room"][0]["enabled"] = False
    assert evaluate(rules, msg("hi"), ctx()).rule_id == "@bob:example.org"
    rules["content"].insert(
        0,
        {
            "rule_id": "cake",
            "pattern": "ca?e*",
            "enabled": True,
            "actions": ["notify", {"set_tweak": "highlight", "value": False}],
        },
    )
    result = evaluate(rules, msg("I like CAKES a lot"), ctx())
    assert result.rule_id == "cake" and result.notify and not result.highlight


@pytest.mark.parametrize(
    ("spec", "count", "expected"),
    [
        ("2", 2, True),
        ("==2", 3, False),
        ("<3", 2, True),
        ("<3", 3, False),
        (">3", 4, True),
        (">=3", 3, True),
        ("<=3", 4, False),
        ("bogus", 2, False),
        ("=2", 2, False),
        (2, 2, False),
    ],
)
def test_room_member_count(spec: Any, count: int, expected: bool) -> None:
    condition = {"kind": "room_member_count", "is": spec}
    assert condition_matches(condition, msg(), ctx(count)) is expected


@pytest.mark.parametrize(
    ("key", "parts"),
    [
        ("content.body", ["content", "body"]),
        ("content.m\\.mentions.room", ["content", "m.mentions", "room"]),
        ("a\\\\.b", ["a\\", "b"]),
        ("a\\b", ["a\\b"]),
        ("", [""]),
    ],
)
def test_split_key(key: str, parts: list[str]) -> None:
    assert split_key(key) == parts


@pytest.mark.parametrize(
    ("pattern", "value", "word", "expected"),
    [
        ("lunc?*", "Lunch plans", False, True),
        ("lunc?*", " lunch", False, False),
        ("lunc?*", "lunc", False, False),
        ("ex*ple", "An example event.", True, True),
        ("ex*ple", "exple", True, True),
        ("ex*ple", "An exciting triple-whammy", True, True),
        ("ex*ple", "examples", True, False),
        ("a.b", "aXb", False, False),
        ("[x]", "[X]", False, True),
    ],
)
def test_glob(pattern: str, value: str, word: bool, expected: bool) -> None:
    assert glob_matches(pattern, value, word_boundary=word) is expected


# Few letters, so patterns occur in values; case, word and non-word characters.
_ASCII = st.text(alphabet="aAbB_1 .-!\n", max_size=12)


@settings(max_examples=500, deadline=None)
@given(pattern=_ASCII.filter(lambda p: p != ""), value=_ASCII, word=st.booleans())
def test_literal_patterns_match_as_the_regex_does(pattern: str, value: str, word: bool) -> None:
    # The ASCII fast path (no regex compiled) against the compiled glob regex.
    regex = _glob_regex(pattern, word)
    assert glob_matches(pattern, value, word_boundary=word) is (regex.search(value) is not None)


@settings(max_examples=500, deadline=None)
@given(name=_ASCII.filter(lambda n: n != ""), body=_ASCII)
def test_display_name_matches_as_the_regex_does(name: str, body: str) -> None:
    condition = {"kind": "contains_display_name"}
    event = {"type": "m.room.message", "content": {"body": body}}
    found = re.search(rf"(?:^|(?<=\W)){re.escape(name)}(?:$|(?=\W))", body, re.I)
    assert condition_matches(condition, event, ctx(name=name)) is (found is not None)


def test_property_conditions_do_not_cast() -> None:
    event = state("m.room.create", {"m.federate": True, "alt": ["#a:x", 1, {"x": 1}], "n": 1})
    is_ = {"kind": "event_property_is", "key": "content.m\\.federate"}
    assert condition_matches({**is_, "value": True}, event, ctx())
    assert not condition_matches({**is_, "value": "true"}, event, ctx())
    assert not condition_matches({**is_, "key": "content.n", "value": True}, event, ctx())
    contains = {"kind": "event_property_contains", "key": "content.alt"}
    assert condition_matches({**contains, "value": "#a:x"}, event, ctx())
    assert not condition_matches({**contains, "value": ":x"}, event, ctx())
    assert not condition_matches({**contains, "value": True}, event, ctx())
    assert not condition_matches(
        {"kind": "event_match", "key": "content.n", "pattern": "*"}, event, ctx()
    )
    assert not condition_matches({"kind": "no_such_kind"}, event, ctx())


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    content=st.dictionaries(
        st.sampled_from(["body", "msgtype", "m.mentions", "m.relates_to", "membership", "x"]),
        json_values,
        max_size=5,
    ),
    type_=st.sampled_from(["m.room.message", "m.room.member", "m.reaction", "x"])
    | st.text(max_size=5),
    sender=json_values,
    state_key=json_values,
    levels=json_values,
    members=st.integers(min_value=0, max_value=10),
)
def test_evaluation_never_raises(
    content: dict[str, Any], type_: str, sender: Any, state_key: Any, levels: Any, members: int
) -> None:
    event = {"type": type_, "sender": sender, "state_key": state_key, "content": content}
    context = PushContext(
        user_id=ME,
        display_name="Alice",
        room_member_count=members,
        power_levels=levels if isinstance(levels, dict) else None,
    )
    result = evaluate(RULES, event, context)
    assert isinstance(result.notify, bool) and isinstance(result.highlight, bool)


def test_table_covers_every_default_rule() -> None:
    """Each default rule (but the disabled master, tested above) wins at least one row."""
    expected = {row[3] for row in TABLE}
    every = {rule["rule_id"] for kind in RULES.values() for rule in kind}
    assert every - expected == {".m.rule.master"}


@settings(max_examples=300, deadline=None)
@given(
    event=st.dictionaries(
        st.sampled_from(["type", "sender", "state_key", "room_id", "content", "unsigned"])
        | st.text(max_size=6),
        json_values,
        max_size=6,
    ),
    content=json_values,
    name=st.none() | st.text(max_size=20),
    levels=json_values,
)
def test_evaluation_never_raises_on_any_event(
    event: dict[str, Any], content: Any, name: str | None, levels: Any
) -> None:
    """Any JSON at all where the event and its content should be (content need not be
    an object), any display name, any power levels."""
    event = {**event, "content": content}
    context = PushContext(
        user_id=ME,
        display_name=name,
        room_member_count=2,
        power_levels=levels if isinstance(levels, dict) else None,
    )
    result = evaluate(RULES, event, context)
    assert isinstance(result.notify, bool) and isinstance(result.highlight, bool)


def test_a_shared_memo_gives_every_member_their_own_result() -> None:
    from homeserver.push.evaluator import RuleMemo
    from homeserver.push.rules import merge_rule_set
    from homeserver.storage import push as store

    members = {
        "@alice:example.org": "Alice Liddell",
        "@bob:example.org": "Bob",
        "@carol:example.org": None,
    }
    rule_sets = {
        "@alice:example.org": merge_rule_set("@alice:example.org", [], {}),
        "@bob:example.org": merge_rule_set("@bob:example.org", [], {}),
        # Carol turned the message rule off: her copy of it is not the shared one.
        "@carol:example.org": merge_rule_set(
            "@carol:example.org", [], {".m.rule.message": store.Override(False, None)}
        ),
    }
    events = [
        msg("lunch?"),
        msg("hey Alice Liddell!"),
        msg("bob: are you there"),
        msg("see carol later"),
        msg("a notice", msgtype="m.notice"),
        state("m.room.member", {"membership": "invite"}, state_key="@bob:example.org"),
    ]
    for event in events:
        memo = RuleMemo()
        for user_id, name in members.items():
            context = PushContext(user_id, name, 3, LEVELS)
            alone = evaluate(rule_sets[user_id], event, context)
            assert evaluate(rule_sets[user_id], event, context, memo) == alone
    # It did share work: the default rules are one object for every member.
    assert memo.matched


def test_what_a_memo_keeps_of_rule_objects_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from homeserver.push import evaluator
    from homeserver.push.evaluator import RuleMemo

    monkeypatch.setattr(evaluator, "MAX_COMPILED_RULES", 50)
    monkeypatch.setattr(evaluator, "_COMPILED", {})
    for i in range(20):
        user_id = f"@u{i}:example.org"
        rules = default_rule_set(user_id)  # fresh objects every time
        context = PushContext(user_id, None, 2, LEVELS)
        event = msg(f"hello u{i}")
        assert evaluate(rules, event, context, RuleMemo()) == evaluate(rules, event, context)
        assert len(evaluator._COMPILED) <= 50
