"""The server-default push rules (Client-Server API, "Push Notifications: Predefined Rules").

Element's start-up blocks on ``GET /pushrules/``: js-sdk retries it forever
before its first ``/sync`` (matrix_brief.md §1.2, pitfall 1), so the server
must always answer a complete rule set. This module holds the spec's default
rules as data and :func:`default_rule_set` builds one user's set: the rules
that name the user (``.m.rule.invite_for_me``, ``.m.rule.is_user_mention``,
``.m.rule.contains_user_name``) get their Matrix ID or localpart substituted.

Matrix v1.17 dropped the legacy body-matching mention rules
(``.m.rule.contains_display_name``, ``.m.rule.roomnotif``,
``.m.rule.contains_user_name``). Synapse still serves them and clients that
predate intentional mentions (``m.mentions``) rely on them to highlight, so they
are included by default, in the places the v1.16 spec lists them; pass
``legacy_mention_rules=False`` for the strict v1.17 set.

Pure: plain values in, plain values out. :func:`default_rule_set` returns
fresh dicts, so a caller may mutate its copy without touching the defaults.
:func:`shared_default_rule_set` is the hot path (push evaluation for every
receiver of every event): one set per user, built once and cached, which no
caller may mutate (``rules.merge_rule_set`` copies only the rules it changes).
"""

from __future__ import annotations

import copy
import functools
from typing import Any

Rule = dict[str, Any]
KINDS = ("override", "content", "room", "sender", "underride")

_USER_ID = "[the user's Matrix ID]"
_LOCALPART = "[the local part of the user's Matrix ID]"

_SOUND_DEFAULT = {"set_tweak": "sound", "value": "default"}
_HIGHLIGHT = {"set_tweak": "highlight"}


def _rule(
    rule_id: str, conditions: list[dict[str, Any]], actions: list[Any], *, enabled: bool = True
) -> Rule:
    return {
        "rule_id": rule_id,
        "default": True,
        "enabled": enabled,
        "conditions": conditions,
        "actions": actions,
    }


def _match(key: str, pattern: str) -> dict[str, Any]:
    return {"kind": "event_match", "key": key, "pattern": pattern}


# Legacy rules are tagged so the builder can leave them out.
_LEGACY = frozenset(
    {".m.rule.contains_display_name", ".m.rule.roomnotif", ".m.rule.contains_user_name"}
)

# In priority order, as the spec lists them.
_OVERRIDE: list[Rule] = [
    _rule(".m.rule.master", [], [], enabled=False),
    _rule(".m.rule.suppress_notices", [_match("content.msgtype", "m.notice")], []),
    _rule(
        ".m.rule.invite_for_me",
        [
            _match("type", "m.room.member"),
            _match("content.membership", "invite"),
            _match("state_key", _USER_ID),
        ],
        ["notify", _SOUND_DEFAULT],
    ),
    _rule(".m.rule.member_event", [_match("type", "m.room.member")], []),
    _rule(
        ".m.rule.is_user_mention",
        [
            {
                "kind": "event_property_contains",
                "key": "content.m\\.mentions.user_ids",
                "value": _USER_ID,
            }
        ],
        ["notify", _SOUND_DEFAULT, _HIGHLIGHT],
    ),
    _rule(
        ".m.rule.contains_display_name",
        [{"kind": "contains_display_name"}],
        ["notify", _SOUND_DEFAULT, _HIGHLIGHT],
    ),
    _rule(
        ".m.rule.is_room_mention",
        [
            {"kind": "event_property_is", "key": "content.m\\.mentions.room", "value": True},
            {"kind": "sender_notification_permission", "key": "room"},
        ],
        ["notify", _HIGHLIGHT],
    ),
    _rule(
        ".m.rule.roomnotif",
        [
            _match("content.body", "@room"),
            {"kind": "sender_notification_permission", "key": "room"},
        ],
        ["notify", _HIGHLIGHT],
    ),
    _rule(
        ".m.rule.tombstone",
        [_match("type", "m.room.tombstone"), _match("state_key", "")],
        ["notify", _HIGHLIGHT],
    ),
    _rule(".m.rule.reaction", [_match("type", "m.reaction")], []),
    _rule(
        ".m.rule.room.server_acl",
        [_match("type", "m.room.server_acl"), _match("state_key", "")],
        [],
    ),
    _rule(
        ".m.rule.suppress_edits",
        [
            {
                "kind": "event_property_is",
                "key": "content.m\\.relates_to.rel_type",
                "value": "m.replace",
            }
        ],
        [],
    ),
]

# Content rules carry a ``pattern`` instead of conditions.
_CONTENT: list[Rule] = [
    {
        "rule_id": ".m.rule.contains_user_name",
        "default": True,
        "enabled": True,
        "pattern": _LOCALPART,
        "actions": ["notify", _SOUND_DEFAULT, _HIGHLIGHT],
    },
]

_UNDERRIDE: list[Rule] = [
    _rule(
        ".m.rule.call",
        [_match("type", "m.call.invite")],
        ["notify", {"set_tweak": "sound", "value": "ring"}],
    ),
    _rule(
        ".m.rule.encrypted_room_one_to_one",
        [{"kind": "room_member_count", "is": "2"}, _match("type", "m.room.encrypted")],
        ["notify", _SOUND_DEFAULT],
    ),
    _rule(
        ".m.rule.room_one_to_one",
        [{"kind": "room_member_count", "is": "2"}, _match("type", "m.room.message")],
        ["notify", _SOUND_DEFAULT],
    ),
    _rule(".m.rule.message", [_match("type", "m.room.message")], ["notify"]),
    _rule(".m.rule.encrypted", [_match("type", "m.room.encrypted")], ["notify"]),
]


def _personal(value: Any) -> bool:
    """Whether a default rule holds a placeholder for the user's ID or localpart."""
    if value in (_USER_ID, _LOCALPART):
        return True
    if isinstance(value, dict):
        return any(_personal(v) for v in value.values())
    if isinstance(value, list):
        return any(_personal(v) for v in value)
    return False


def _substitute(value: Any, user_id: str, localpart: str) -> Any:
    if value == _USER_ID:
        return user_id
    if value == _LOCALPART:
        return localpart
    if isinstance(value, dict):
        return {k: _substitute(v, user_id, localpart) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, user_id, localpart) for v in value]
    return value


def default_rule_set(user_id: str, *, legacy_mention_rules: bool = True) -> dict[str, list[Rule]]:
    """The ``global`` rule set of ``user_id``: ``{override, content, room, sender, underride}``.

    A fresh copy the caller owns.
    """
    return copy.deepcopy(shared_default_rule_set(user_id, legacy_mention_rules))


@functools.lru_cache(maxsize=8192)
def shared_default_rule_set(
    user_id: str, legacy_mention_rules: bool = True
) -> dict[str, list[Rule]]:
    """Like :func:`default_rule_set`, but one cached set per (user, flag): READ-ONLY.

    Bounded (least recently used users go). Callers must not mutate it or any
    rule in it; copy a rule before changing it. Rules without the user's ID or
    localpart in them are the same objects in every user's set: a private copy
    of all of them cost about 18 KB per user.
    """
    localpart = user_id[1:].split(":", 1)[0] if user_id.startswith("@") else user_id
    rules = {
        "override": _OVERRIDE,
        "content": _CONTENT,
        "room": [],
        "sender": [],
        "underride": _UNDERRIDE,
    }
    out: dict[str, list[Rule]] = {}
    for kind in KINDS:
        out[kind] = [
            _substitute(rule, user_id, localpart) if _personal(rule) else rule
            for rule in rules[kind]
            if legacy_mention_rules or rule["rule_id"] not in _LEGACY
        ]
    return out


def push_rules_response(user_id: str, *, legacy_mention_rules: bool = True) -> dict[str, Any]:
    """The body of ``GET /pushrules/``: ``{"global": <rule set>}``."""
    return {"global": default_rule_set(user_id, legacy_mention_rules=legacy_mention_rules)}
