"""Per-user push rules: the server defaults with the user's changes, and the user's own rules.

Spec: Client-Server API, "Push Rules: API". The defaults are never copied
into the database: a user's set is built from ``default_rules.py`` plus the
stored overrides (enabled, actions) and user-defined rules, so changing a
default in code reaches every user who did not touch it.

Ordering within a kind (spec "Push Rules"): user-defined rules come before the
server defaults, except ``.m.rule.master``, which comes before everything.

After every change the whole set is written to the user's global account data
as ``m.push_rules`` (server-managed), so clients following the account_data
stream in ``/sync`` see the change (spec: "push rules are stored in account
data under m.push_rules").
"""

from __future__ import annotations

import copy
import json
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from homeserver.errors import MatrixError, bad_json, invalid_param, not_found
from homeserver.push.default_rules import KINDS, shared_default_rule_set
from homeserver.storage import push as store
from homeserver.storage.database import Database

MASTER = ".m.rule.master"
MAX_USER_RULES = 50
MAX_RULE_BYTES = 1024
MAX_RULE_ID_LENGTH = 255
_SIMPLE_ACTIONS = ("notify", "dont_notify", "coalesce")
_USER_ID = re.compile(r"^@[^:]+:.+$")
_ROOM_ID = re.compile(r"^![^:]+(:.+)?$")


class GlobalAccountData(Protocol):
    async def put_global(
        self, user_id: str, data_type: str, content: dict[str, Any], *, server_managed: bool = ...
    ) -> int: ...


def check_kind(scope: str, kind: str) -> None:
    if scope != "global":
        raise invalid_param("The only push rule scope is 'global'")
    if kind not in KINDS:
        raise invalid_param(f"Push rule kind must be one of {', '.join(KINDS)}")


def validate_actions(actions: Any) -> list[Any]:
    """Spec "Actions": notify, dont_notify, coalesce (no-ops kept), set_tweak objects."""
    if not isinstance(actions, list):
        raise bad_json("'actions' must be a list")
    for action in actions:
        if isinstance(action, str):
            if action not in _SIMPLE_ACTIONS:
                raise bad_json(f"'actions': unknown action {action[:50]!r}")
        elif isinstance(action, dict):
            if not isinstance(action.get("set_tweak"), str):
                raise bad_json("'actions': an object action needs a string 'set_tweak'")
        else:
            raise bad_json("'actions' entries must be strings or objects")
    return actions


def _validate_conditions(conditions: Any) -> list[Any]:
    if not isinstance(conditions, list):
        raise bad_json("'conditions' must be a list")
    for condition in conditions:
        if not isinstance(condition, dict) or not isinstance(condition.get("kind"), str):
            raise bad_json("'conditions' entries must be objects with a string 'kind'")
    return conditions


def merge_rule_set(
    user_id: str, user_rules: Sequence[store.UserRule], overrides: Mapping[str, store.Override]
) -> dict[str, list[dict[str, Any]]]:
    """One user's complete ``global`` rule set, in evaluation order.

    Shares the cached defaults (``shared_default_rule_set``) and the stored rules'
    values: READ-ONLY. Only a default the user changed is copied (shallowly).
    """
    shared = shared_default_rule_set(user_id)
    defaults: dict[str, list[dict[str, Any]]] = {}
    for kind, rules in shared.items():
        if overrides:
            rules = [_overridden(rule, overrides.get(rule["rule_id"])) for rule in rules]
        defaults[kind] = rules
    out: dict[str, list[dict[str, Any]]] = {}
    for kind in KINDS:
        own = [_render(r) for r in user_rules if r.kind == kind]
        if kind == "override":
            master = [r for r in defaults[kind] if r["rule_id"] == MASTER]
            rest = [r for r in defaults[kind] if r["rule_id"] != MASTER]
            out[kind] = master + own + rest
        else:
            out[kind] = own + defaults[kind]
    return out


def _overridden(rule: dict[str, Any], override: store.Override | None) -> dict[str, Any]:
    if override is None:
        return rule
    rule = dict(rule)
    if override.enabled is not None:
        rule["enabled"] = override.enabled
    if override.actions is not None:
        rule["actions"] = override.actions
    return rule


def _render(rule: store.UserRule) -> dict[str, Any]:
    return {
        "rule_id": rule.rule_id,
        "default": False,
        "enabled": rule.enabled,
        "actions": rule.actions,
        **rule.rule,
    }


class PushRuleService:
    """Users' rule sets, with the merged sets cached in memory (bounded, LRU).

    The cache is invalidated by this service's own changes (put, delete,
    enabled, actions), the only writers of a user's rules. A read that
    overlapped a change does not fill the cache (``_generation``), so a stale
    set is never kept after the change's invalidation.
    """

    def __init__(
        self,
        database: Database,
        account_data: GlobalAccountData | None = None,
        *,
        cache_size: int = 10_000,
    ) -> None:
        self.database = database
        self.account_data = account_data
        self.cache_size = cache_size
        self._cache: OrderedDict[str, dict[str, list[dict[str, Any]]]] = OrderedDict()
        self._generation = 0

    async def rule_set(self, user_id: str) -> dict[str, list[dict[str, Any]]]:
        """The user's set as a fresh copy the caller owns (the API path)."""
        return copy.deepcopy((await self.rule_sets([user_id]))[user_id])

    async def rule_sets(
        self, user_ids: Iterable[str]
    ) -> dict[str, dict[str, list[dict[str, Any]]]]:
        """Every user's set, READ-ONLY (shared with the cache): the push processor's batch.

        Users not cached are read with two queries, however many they are.
        """
        ids = list(dict.fromkeys(user_ids))
        out: dict[str, dict[str, list[dict[str, Any]]]] = {}
        missing: list[str] = []
        for user_id in ids:
            cached = self._cache.get(user_id)
            if cached is None:
                missing.append(user_id)
            else:
                self._cache.move_to_end(user_id)
                out[user_id] = cached
        if not missing:
            return out

        def read(conn: Any) -> tuple[Any, Any]:
            return store.read_user_rules(conn, missing), store.read_overrides(conn, missing)

        generation = self._generation
        user_rules, overrides = await self.database.read(read)
        for user_id in missing:
            merged = merge_rule_set(
                user_id, user_rules.get(user_id, []), overrides.get(user_id, {})
            )
            out[user_id] = merged
            if generation == self._generation:
                self._cache[user_id] = merged
                self._cache.move_to_end(user_id)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return {user_id: out[user_id] for user_id in ids}

    def _invalidate(self, user_id: str) -> None:
        self._generation += 1
        self._cache.pop(user_id, None)

    async def _change(self, user_id: str, change: Callable[[Any], None]) -> None:
        try:
            await self.database.run(change)
        finally:
            self._invalidate(user_id)

    async def get_rule(self, user_id: str, kind: str, rule_id: str) -> dict[str, Any]:
        for rule in (await self.rule_set(user_id))[kind]:
            if rule["rule_id"] == rule_id:
                return rule
        raise not_found("The push rule was not found.")

    async def put_rule(
        self,
        user_id: str,
        kind: str,
        rule_id: str,
        body: Mapping[str, Any],
        *,
        before: str | None = None,
        after: str | None = None,
    ) -> None:
        """Create or update a user-defined rule (spec ``PUT /pushrules/global/{kind}/{ruleId}``)."""
        if rule_id.startswith("."):
            raise invalid_param("Rule IDs starting with '.' are reserved for server-default rules")
        if not rule_id or "/" in rule_id or "\\" in rule_id or len(rule_id) > MAX_RULE_ID_LENGTH:
            raise invalid_param("Rule IDs must be 1 to 255 characters without '/' or '\\'")
        if kind == "room" and not _ROOM_ID.match(rule_id):
            raise invalid_param("A room rule's ID must be a room ID")
        if kind == "sender" and not _USER_ID.match(rule_id):
            raise invalid_param("A sender rule's ID must be a user ID")
        actions = validate_actions(body.get("actions"))
        rule: dict[str, Any] = {}
        if kind == "content":
            pattern = body.get("pattern")
            if not isinstance(pattern, str) or not pattern:
                raise bad_json("'pattern' must be a non-empty string for content rules")
            rule["pattern"] = pattern
        elif kind in ("override", "underride"):
            rule["conditions"] = _validate_conditions(body.get("conditions", []))
        size = len(json.dumps({"rule": rule, "actions": actions}).encode())
        if size > MAX_RULE_BYTES:
            raise MatrixError(400, "M_TOO_LARGE", f"A push rule may be {MAX_RULE_BYTES} bytes")

        def change(conn: Any) -> None:
            rules = store.read_user_rules(conn, [user_id]).get(user_id, [])
            if len(rules) >= MAX_USER_RULES and not any(
                r.kind == kind and r.rule_id == rule_id for r in rules
            ):
                raise MatrixError(400, "M_LIMIT_EXCEEDED", f"At most {MAX_USER_RULES} rules")
            same_kind = [r for r in rules if r.kind == kind]
            index = next((i for i, r in enumerate(same_kind) if r.rule_id == rule_id), None)
            enabled = True if index is None else same_kind[index].enabled
            new = store.UserRule(kind, rule_id, 0, rule, actions, enabled)
            others = [r for r in same_kind if r.rule_id != rule_id]
            if before is not None or after is not None:
                anchor_id = before if before is not None else after
                at = next((i for i, r in enumerate(others) if r.rule_id == anchor_id), None)
                if at is None:
                    raise MatrixError(400, "M_UNKNOWN", f"before/after rule not found: {anchor_id}")
                others.insert(at if before is not None else at + 1, new)
            elif index is None:
                others.insert(0, new)
            else:
                others.insert(index, new)
            store.write_kind(conn, user_id, kind, others)

        await self._change(user_id, change)
        await self._announce(user_id)

    async def delete_rule(self, user_id: str, kind: str, rule_id: str) -> None:
        if rule_id.startswith("."):
            await self.get_rule(user_id, kind, rule_id)  # 404 for unknown ones
            raise invalid_param("Server-default rules cannot be deleted; disable them instead")

        def change(conn: Any) -> None:
            rules = store.read_user_rules(conn, [user_id]).get(user_id, [])
            same_kind = [r for r in rules if r.kind == kind]
            kept = [r for r in same_kind if r.rule_id != rule_id]
            if len(kept) == len(same_kind):
                raise not_found("The push rule was not found.")
            store.write_kind(conn, user_id, kind, kept)

        await self._change(user_id, change)
        await self._announce(user_id)

    async def set_enabled(self, user_id: str, kind: str, rule_id: str, enabled: bool) -> None:
        await self._set(user_id, kind, rule_id, enabled=enabled)

    async def set_actions(self, user_id: str, kind: str, rule_id: str, actions: Any) -> None:
        await self._set(user_id, kind, rule_id, actions=validate_actions(actions))

    async def _set(
        self,
        user_id: str,
        kind: str,
        rule_id: str,
        *,
        enabled: bool | None = None,
        actions: list[Any] | None = None,
    ) -> None:
        await self.get_rule(user_id, kind, rule_id)  # 404 for unknown rules

        def change(conn: Any) -> None:
            if rule_id.startswith("."):
                old = store.read_overrides(conn, [user_id]).get(user_id, {}).get(rule_id)
                merged = store.Override(
                    enabled if enabled is not None else (old.enabled if old else None),
                    actions if actions is not None else (old.actions if old else None),
                )
                store.write_override(conn, user_id, rule_id, merged)
                return
            rules = store.read_user_rules(conn, [user_id]).get(user_id, [])
            same_kind = [r for r in rules if r.kind == kind]
            updated = [
                store.UserRule(
                    r.kind,
                    r.rule_id,
                    r.priority,
                    r.rule,
                    actions if actions is not None else r.actions,
                    enabled if enabled is not None else r.enabled,
                )
                if r.rule_id == rule_id
                else r
                for r in same_kind
            ]
            store.write_kind(conn, user_id, kind, updated)

        await self._change(user_id, change)
        await self._announce(user_id)

    async def _announce(self, user_id: str) -> None:
        if self.account_data is None:
            return
        content = {"global": await self.rule_set(user_id)}
        await self.account_data.put_global(user_id, "m.push_rules", content, server_managed=True)
