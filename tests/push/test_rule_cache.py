"""The cached rule sets: shared defaults stay untouched, changes invalidate the cache."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from homeserver.push.default_rules import default_rule_set, shared_default_rule_set
from homeserver.push.evaluator import PushContext, evaluate
from homeserver.push.rules import PushRuleService, merge_rule_set
from homeserver.storage import push as store

ME = "@me:example.org"
MESSAGE = {
    "type": "m.room.message",
    "sender": "@other:example.org",
    "room_id": "!r:example.org",
    "event_id": "$e",
    "content": {"msgtype": "m.text", "body": "hello me", "m.mentions": {"user_ids": [ME]}},
}


def test_evaluating_twice_leaves_the_cached_rules_unchanged() -> None:
    shared = shared_default_rule_set(ME)
    before = copy.deepcopy(shared)
    context = PushContext(ME, "me", 3, None)
    for _ in range(2):
        rules = merge_rule_set(ME, [], {})
        result = evaluate(rules, MESSAGE, context)
        assert result.rule_id == ".m.rule.is_user_mention" and result.highlight
    assert shared_default_rule_set(ME) is shared
    assert shared == before == default_rule_set(ME)


def test_users_share_every_default_rule_that_does_not_name_them() -> None:
    mine = shared_default_rule_set(ME)
    theirs = shared_default_rule_set("@them:example.org")
    personal = set()
    for kind in mine:
        assert [r["rule_id"] for r in mine[kind]] == [r["rule_id"] for r in theirs[kind]]
        for a, b in zip(mine[kind], theirs[kind], strict=True):
            if a == b:
                assert a is b  # one object for both users
            else:
                personal.add(a["rule_id"])
                assert a is not b
    # Only the rules with the user's ID or localpart in them are copies of their own.
    assert personal == {
        ".m.rule.invite_for_me",
        ".m.rule.is_user_mention",
        ".m.rule.contains_user_name",
    }
    (user_name,) = [r for r in mine["content"] if r["rule_id"] == ".m.rule.contains_user_name"]
    assert user_name["pattern"] == "me"
    # default_rule_set hands out a private copy: changing it changes no one else's.
    private = default_rule_set(ME)
    private["underride"][0]["actions"].append("coalesce")
    assert private["underride"][0] != theirs["underride"][0]
    assert default_rule_set("@them:example.org")["underride"][0] == theirs["underride"][0]


def test_overrides_copy_the_rule_they_change() -> None:
    shared = shared_default_rule_set(ME)
    before = copy.deepcopy(shared)
    overrides = {".m.rule.message": store.Override(False, ["dont_notify"])}
    merged = merge_rule_set(ME, [], overrides)
    message = next(r for r in merged["underride"] if r["rule_id"] == ".m.rule.message")
    assert message["enabled"] is False and message["actions"] == ["dont_notify"]
    assert shared == before
    # default_rule_set is a fresh copy its caller may change.
    mine = default_rule_set(ME)
    mine["override"][0]["enabled"] = True
    assert shared == before


class FakeDatabase:
    """Counts reads; a change (``run``) stores the override it is handed through ``state``."""

    def __init__(self) -> None:
        self.reads = 0
        self.overrides: dict[str, dict[str, store.Override]] = {}

    async def read(self, fn: Callable[[Any], Any]) -> Any:
        self.reads += 1
        return {}, self.overrides

    async def run(self, fn: Callable[[Any], Any]) -> Any:
        self.overrides = {ME: {".m.rule.message": store.Override(False, None)}}


async def test_service_caches_until_a_change() -> None:
    database = FakeDatabase()
    service = PushRuleService(database)  # type: ignore[arg-type]
    first = await service.rule_sets([ME])
    second = await service.rule_sets([ME])
    assert database.reads == 1 and first[ME] is second[ME]
    context = PushContext(ME, None, 3, None)
    plain = {**MESSAGE, "content": {"msgtype": "m.text", "body": "hi"}}
    assert evaluate(first[ME], plain, context).notify
    # The API path hands out a copy: changing it does not reach the cache.
    api = await service.rule_set(ME)
    api["underride"].clear()
    assert (await service.rule_sets([ME]))[ME]["underride"]
    await service.set_enabled(ME, "underride", ".m.rule.message", False)
    third = (await service.rule_sets([ME]))[ME]
    assert not evaluate(third, plain, context).notify


async def test_cache_is_bounded() -> None:
    database = FakeDatabase()
    service = PushRuleService(database, cache_size=2)  # type: ignore[arg-type]
    await service.rule_sets(["@a:x", "@b:x", "@c:x"])
    assert len(service._cache) == 2
