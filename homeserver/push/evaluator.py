"""Push rule evaluation: which actions a user's rules give one event. Pure, no I/O.

Spec: Client-Server API, "Push Notifications" (push rules, conditions,
predefined rules) and appendices "Dot-separated property paths" and
"Glob-style matching". The caller gathers the room context once per event
(member count, power levels, each user's display name) and this module only
reads plain values, so it is tested with tables and hypothesis, never a server.

Evaluation never raises on event content: a malformed rule or an event whose
properties have unexpected types simply does not match, because the content
comes from any sender on any server.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from homeserver.push.default_rules import KINDS

Rule = Mapping[str, Any]
RuleSet = Mapping[str, Sequence[Rule]]

_INT_MAX = 2**53 - 1
_MEMBER_COUNT = re.compile(r"^(==|<=|>=|<|>)?([0-9]+)$")
# The legacy body-matching mention rules step aside for events with intentional
# mentions (spec "User and room mentions": clients sending m.mentions opt out).
LEGACY_MENTION_RULES = frozenset(
    {".m.rule.contains_display_name", ".m.rule.roomnotif", ".m.rule.contains_user_name"}
)


@attrs.frozen
class PushContext:
    """What the conditions need beyond the event, gathered once per event and user."""

    user_id: str
    display_name: str | None
    room_member_count: int
    # content of m.room.power_levels (None: none in the room).
    power_levels: Mapping[str, Any] | None = None


@attrs.frozen
class PushResult:
    """The actions of the first matching rule, and what they mean for counts."""

    rule_id: str | None
    actions: tuple[Any, ...]

    @property
    def notify(self) -> bool:
        return "notify" in self.actions

    @property
    def highlight(self) -> bool:
        for action in self.actions:
            if isinstance(action, Mapping) and action.get("set_tweak") == "highlight":
                value = action.get("value", True)
                return value is True
        return False


NO_MATCH = PushResult(rule_id=None, actions=())


def split_key(key: str) -> list[str]:
    """``content.m\\.relates_to.rel_type`` -> ``["content", "m.relates_to", "rel_type"]``.

    Spec appendix "Dot-separated property paths": ``\\.`` is a literal dot and
    ``\\\\`` a literal backslash; any other backslash is kept as it is.
    """
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(key):
        char = key[i]
        if char == "\\" and i + 1 < len(key) and key[i + 1] in ".\\":
            current.append(key[i + 1])
            i += 2
            continue
        if char == ".":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    parts.append("".join(current))
    return parts


_MISSING = object()


@functools.lru_cache(maxsize=4096)
def _key_parts(key: str) -> tuple[str, ...]:
    # Rule keys repeat for every receiver of every event: split each once.
    return tuple(split_key(key))


def lookup(event: Mapping[str, Any], key: str) -> Any:
    """The value at a dotted path, or ``_MISSING`` (never raises)."""
    value: Any = event
    for part in _key_parts(key):
        # dict first: the ABC check of Mapping is slow and events are dicts.
        if not (type(value) is dict or isinstance(value, Mapping)) or part not in value:
            return _MISSING
        value = value[part]
    return value


@functools.lru_cache(maxsize=4096)
def _glob_regex(pattern: str, word_boundary: bool) -> re.Pattern[str]:
    body = "".join(".*?" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    if word_boundary:
        # A word boundary: start or end of the value, or a char not in [A-Za-z0-9_].
        return re.compile(rf"(?:^|(?<=[^A-Za-z0-9_])){body}(?:$|(?=[^A-Za-z0-9_]))", re.I | re.S)
    return re.compile(rf"^{body}$", re.I | re.S)


_ASCII_WORD = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")


def ascii_word_in(text: str, word: str) -> bool:
    """Whether non-empty ``word`` is in ``text`` case-insensitively, with no
    ``[A-Za-z0-9_]`` just before or after it; both ASCII.

    What the word-boundary regexes below match, without compiling one: a
    member's own patterns (their user name, their display name) would
    otherwise each cost a regex compile, on the first message after they join.
    """
    haystack = text.lower()
    needle = word.lower()
    size = len(needle)
    at = haystack.find(needle)
    while at != -1:
        end = at + size
        if (at == 0 or haystack[at - 1] not in _ASCII_WORD) and (
            end == len(haystack) or haystack[end] not in _ASCII_WORD
        ):
            return True
        at = haystack.find(needle, at + 1)
    return False


def glob_matches(pattern: str, value: str, *, word_boundary: bool = False) -> bool:
    literal = pattern and "*" not in pattern and "?" not in pattern
    if literal and pattern.isascii() and value.isascii():  # no regex needed
        if word_boundary:
            return ascii_word_in(value, pattern)
        folded, wanted = value.lower(), pattern.lower()
        # ``^...$`` also matches before a final newline.
        return folded == wanted or folded == wanted + "\n"
    return _glob_regex(pattern, word_boundary).search(value) is not None


def _is_scalar(value: Any) -> bool:
    if value is None or isinstance(value, (str, bool)):
        return True
    return isinstance(value, int) and -_INT_MAX <= value <= _INT_MAX


def _same(a: Any, b: Any) -> bool:
    # True == 1 in Python; the spec does not cast types.
    return type(a) is type(b) and a == b


def _member_count_matches(spec: Any, count: int) -> bool:
    if not isinstance(spec, str):
        return False
    found = _MEMBER_COUNT.match(spec)
    if found is None:
        return False
    op, number = found.group(1) or "==", int(found.group(2))
    return {
        "==": count == number,
        "<": count < number,
        ">": count > number,
        "<=": count <= number,
        ">=": count >= number,
    }[op]


def _int_or(value: Any, default: int) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"[+-]?[0-9]{1,16}", value.strip()):
        return int(value)
    return default


def sender_power(power_levels: Mapping[str, Any] | None, sender: str) -> int:
    if power_levels is None:
        return 0  # the creator's 100 is known to the caller, which passes levels then
    users = power_levels.get("users")
    if isinstance(users, Mapping) and sender in users:
        return _int_or(users[sender], 0)
    return _int_or(power_levels.get("users_default"), 0)


def notification_level(power_levels: Mapping[str, Any] | None, key: str) -> int:
    notifications = power_levels.get("notifications") if power_levels is not None else None
    if isinstance(notifications, Mapping) and key in notifications:
        return _int_or(notifications[key], 50)
    return 50  # spec: m.room.power_levels, notifications.room defaults to 50


def condition_matches(condition: Any, event: Mapping[str, Any], context: PushContext) -> bool:
    if not (type(condition) is dict or isinstance(condition, Mapping)):
        return False
    kind = condition.get("kind")
    key = condition.get("key")
    if kind == "event_match":
        pattern = condition.get("pattern")
        if not isinstance(key, str) or not isinstance(pattern, str):
            return False
        value = lookup(event, key)
        if not isinstance(value, str):
            return False
        return glob_matches(pattern, value, word_boundary=key == "content.body")
    if kind == "event_property_is":
        if not isinstance(key, str) or "value" not in condition:
            return False
        value = lookup(event, key)
        return _is_scalar(value) and _same(value, condition["value"])
    if kind == "event_property_contains":
        if not isinstance(key, str) or "value" not in condition:
            return False
        value = lookup(event, key)
        if not isinstance(value, list):
            return False
        wanted = condition["value"]
        return any(_is_scalar(item) and _same(item, wanted) for item in value)
    if kind == "contains_display_name":
        body = lookup(event, "content.body")
        name = context.display_name
        if not isinstance(body, str) or not name:
            return False
        # The whole name, between word boundaries, case-insensitively (like Synapse).
        if body.isascii() and name.isascii():
            return ascii_word_in(body, name)
        escaped = re.escape(name)
        found = re.search(rf"(?:^|(?<=\W)){escaped}(?:$|(?=\W))", body, re.I)
        return found is not None
    if kind == "room_member_count":
        return _member_count_matches(condition.get("is"), context.room_member_count)
    if kind == "sender_notification_permission":
        sender = event.get("sender")
        if not isinstance(key, str) or not isinstance(sender, str):
            return False
        levels = context.power_levels
        return sender_power(levels, sender) >= notification_level(levels, key)
    return False  # unknown conditions never match (spec: "Conditions")


def _rule_conditions(kind: str, rule: Rule) -> list[Any] | None:
    """The conditions of a rule, with the implicit ones of content/room/sender rules."""
    if kind == "content":
        pattern = rule.get("pattern")
        if not isinstance(pattern, str):
            return None
        return [{"kind": "event_match", "key": "content.body", "pattern": pattern}]
    if kind == "room":
        return [{"kind": "event_match", "key": "room_id", "pattern": rule.get("rule_id")}]
    if kind == "sender":
        return [{"kind": "event_match", "key": "sender", "pattern": rule.get("rule_id")}]
    conditions = rule.get("conditions", [])
    return list(conditions) if isinstance(conditions, list) else None


def _has_mentions(event: Mapping[str, Any]) -> bool:
    content = event.get("content")
    return isinstance(content, Mapping) and "m.mentions" in content


# Condition kinds whose outcome depends only on the event and the room (the
# member count and power levels), not on which member the rules belong to.
_MEMBER_FREE_KINDS = frozenset(
    {
        "event_match",
        "event_property_is",
        "event_property_contains",
        "room_member_count",
        "sender_notification_permission",
    }
)


def _member_free(conditions: list[Any]) -> bool:
    return all(isinstance(c, Mapping) and c.get("kind") in _MEMBER_FREE_KINDS for c in conditions)


@attrs.define
class RuleMemo:
    """What :func:`evaluate` learnt about rule objects (by ``id``) for one event."""

    matched: dict[int, bool] = attrs.Factory(dict)  # member-free rules: did they match


# What evaluation needs of a rule object: (the rule, its kind, skipped for
# events with m.mentions, its conditions (None: disabled or malformed), whether
# they are member-free, the result if it matches). With a memo (the push
# processor, whose rule sets are the read-only cached ones, shared between users
# and events) it is worked out once per rule object rather than once per event:
# measured, 150 -> 122 microseconds for an event with 10 recipients. An entry
# keeps its rule alive, so an ``id`` is never reused while its entry is here.
# Bounded: oldest out.
_Compiled = tuple[Rule, str, bool, tuple[Any, ...] | None, bool, PushResult]
_COMPILED: dict[int, _Compiled] = {}
MAX_COMPILED_RULES = 8192


def _compiled(kind: str, rule: Rule, cached: bool) -> _Compiled:
    key = id(rule)
    if cached:
        found = _COMPILED.get(key)
        if found is not None and found[0] is rule and found[1] == kind:
            return found
    rule_id = rule.get("rule_id")
    legacy = isinstance(rule_id, str) and rule_id in LEGACY_MENTION_RULES
    conditions: tuple[Any, ...] | None = None
    if rule.get("enabled", True):
        listed = _rule_conditions(kind, rule)
        conditions = tuple(listed) if listed is not None else None
    actions = rule.get("actions", [])
    result = PushResult(
        rule_id=rule_id if isinstance(rule_id, str) else None,
        # dont_notify and coalesce are no-ops now (spec): nothing to do.
        actions=tuple(actions) if isinstance(actions, list) else (),
    )
    member_free = conditions is not None and _member_free(list(conditions))
    entry: _Compiled = (rule, kind, legacy, conditions, member_free, result)
    if not cached:
        return entry
    if len(_COMPILED) >= MAX_COMPILED_RULES:
        del _COMPILED[next(iter(_COMPILED))]
    _COMPILED[key] = entry
    return entry


def evaluate(
    rules: RuleSet,
    event: Mapping[str, Any],
    context: PushContext,
    memo: RuleMemo | None = None,
) -> PushResult:
    """The first enabled matching rule in priority order, override first (spec "Push Rules").

    ``memo`` lets the members of one room share the work on one event: it keeps
    whether a rule object matched, for rules whose conditions do not depend on
    the member (the default rules other than mentions of the member are one
    object for every user, see ``shared_default_rule_set``). Share a memo only
    between calls for the same event with the same room member count and
    power levels, while every rule set it saw is alive (it is keyed by ``id``).
    With a memo the rule objects must also be read-only, now and later: what
    each one needs is kept between events.
    """
    skip_legacy = _has_mentions(event)
    matched = memo.matched if memo is not None else None
    cached = memo is not None
    for kind in KINDS:
        for rule in rules.get(kind, ()):
            if not (type(rule) is dict or isinstance(rule, Mapping)):
                continue
            _, _, legacy, conditions, member_free, result = _compiled(kind, rule, cached)
            if conditions is None or (skip_legacy and legacy):
                continue
            if member_free and matched is not None:
                key = id(rule)
                known = matched.get(key)
                if known is None:
                    known = matched[key] = all(
                        condition_matches(c, event, context) for c in conditions
                    )
            else:
                known = all(condition_matches(c, event, context) for c in conditions)
            if known:
                return result
    return NO_MATCH
