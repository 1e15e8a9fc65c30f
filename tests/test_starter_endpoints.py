"""What Element calls at start: push rules, TURN, third-party protocols, 3PIDs, pushers, backup.

The default push rules are checked twice: against the rule IDs and order the
spec lists, and (when the spec checkout is present) rule by rule against the
JSON definitions in the spec's push module.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from plait_fixtures import RegisterUser, RunningServer

from homeserver.push.default_rules import KINDS, default_rule_set, push_rules_response

V3 = "/_matrix/client/v3"
SPEC_PUSH = Path("/work/shared/matrix-spec/content/client-server-api/modules/push.md")

OVERRIDE_IDS = [
    ".m.rule.master",
    ".m.rule.suppress_notices",
    ".m.rule.invite_for_me",
    ".m.rule.member_event",
    ".m.rule.is_user_mention",
    ".m.rule.contains_display_name",
    ".m.rule.is_room_mention",
    ".m.rule.roomnotif",
    ".m.rule.tombstone",
    ".m.rule.reaction",
    ".m.rule.room.server_acl",
    ".m.rule.suppress_edits",
]
UNDERRIDE_IDS = [
    ".m.rule.call",
    ".m.rule.encrypted_room_one_to_one",
    ".m.rule.room_one_to_one",
    ".m.rule.message",
    ".m.rule.encrypted",
]
LEGACY = {".m.rule.contains_display_name", ".m.rule.roomnotif", ".m.rule.contains_user_name"}


def ids(rules: list[dict[str, Any]]) -> list[str]:
    return [rule["rule_id"] for rule in rules]


def check_rule_shape(kind: str, rule: dict[str, Any]) -> None:
    """The push rule schema (data/api/client-server/definitions/push_rule.yaml)."""
    assert isinstance(rule["rule_id"], str) and rule["rule_id"].startswith(".")
    assert rule["default"] is True
    assert isinstance(rule["enabled"], bool)
    assert isinstance(rule["actions"], list)
    if kind in ("override", "underride"):
        assert isinstance(rule["conditions"], list) and "pattern" not in rule
        for condition in rule["conditions"]:
            assert isinstance(condition["kind"], str)
    elif kind == "content":
        assert isinstance(rule["pattern"], str) and "conditions" not in rule


# -- the pure builder ---------------------------------------------------------------


def test_default_rule_set_lists_the_spec_rules_in_order() -> None:
    rules = default_rule_set("@alice:example.org")
    assert list(rules) == list(KINDS)
    assert ids(rules["override"]) == OVERRIDE_IDS
    assert ids(rules["content"]) == [".m.rule.contains_user_name"]
    assert rules["room"] == [] and rules["sender"] == []
    assert ids(rules["underride"]) == UNDERRIDE_IDS
    for kind in KINDS:
        for rule in rules[kind]:
            check_rule_shape(kind, rule)
    master = rules["override"][0]
    assert master == {
        "rule_id": ".m.rule.master",
        "default": True,
        "enabled": False,
        "conditions": [],
        "actions": [],
    }
    assert all(r["enabled"] for kind in KINDS for r in rules[kind] if r is not master)


def test_the_user_is_substituted() -> None:
    rules = default_rule_set("@alice:example.org")
    by_id = {r["rule_id"]: r for kind in KINDS for r in rules[kind]}
    invite = by_id[".m.rule.invite_for_me"]["conditions"]
    assert {"key": "state_key", "kind": "event_match", "pattern": "@alice:example.org"} in invite
    mention = by_id[".m.rule.is_user_mention"]["conditions"][0]
    assert mention["value"] == "@alice:example.org"
    assert by_id[".m.rule.contains_user_name"]["pattern"] == "alice"
    assert "[the user" not in json.dumps(rules)


def test_rule_sets_are_independent_copies() -> None:
    first = default_rule_set("@a:x")
    first["override"][0]["enabled"] = True
    first["underride"][0]["actions"].append("dont_notify")
    second = default_rule_set("@a:x")
    assert second["override"][0]["enabled"] is False
    assert "dont_notify" not in second["underride"][0]["actions"]


def test_strict_v1_17_set_without_legacy_mention_rules() -> None:
    rules = default_rule_set("@a:x", legacy_mention_rules=False)
    assert ids(rules["override"]) == [i for i in OVERRIDE_IDS if i not in LEGACY]
    assert rules["content"] == []
    assert push_rules_response("@a:x", legacy_mention_rules=False) == {"global": rules}


def spec_definitions() -> dict[str, dict[str, Any]]:
    """rule_id -> definition, from the JSON blocks of the spec's push module."""
    text = SPEC_PUSH.read_text()
    out: dict[str, dict[str, Any]] = {}
    for block in re.findall(r"Definition:\s*```json\n(.*?)```", text, re.S):
        rule = json.loads(block)
        out[rule["rule_id"]] = rule
    return out


@pytest.mark.skipif(not SPEC_PUSH.exists(), reason="matrix-spec checkout not present")
def test_rules_equal_the_spec_definitions() -> None:
    spec = spec_definitions()
    assert set(spec) == {i for i in OVERRIDE_IDS + UNDERRIDE_IDS if i not in LEGACY}
    rules = default_rule_set("[the user's Matrix ID]")
    ours = {r["rule_id"]: r for kind in KINDS for r in rules[kind]}
    for rule_id, definition in spec.items():
        assert ours[rule_id] == definition, rule_id


# -- over HTTP ----------------------------------------------------------------------


async def token_of(client: httpx.AsyncClient, register_user: RegisterUser) -> dict[str, str]:
    body = await register_user(client, "alice")
    return {"Authorization": f"Bearer {body['access_token']}"}


async def test_pushrules_with_and_without_trailing_slash(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    headers = await token_of(client, register_user)
    expected = push_rules_response("@alice:test.example")
    for path in (f"{V3}/pushrules/", f"{V3}/pushrules", "/_matrix/client/r0/pushrules/"):
        r = await client.get(path, headers=headers)
        assert r.status_code == 200, (path, r.text)
        assert r.json() == expected
    r = await client.get(f"{V3}/pushrules/global/", headers=headers)
    assert r.status_code == 200
    assert r.json() == expected["global"]
    r = await client.get(f"{V3}/pushrules/")
    assert r.status_code == 401 and r.json()["errcode"] == "M_MISSING_TOKEN"


async def test_single_push_rule_reads(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    headers = await token_of(client, register_user)
    base = f"{V3}/pushrules/global"
    r = await client.get(f"{base}/override/.m.rule.master", headers=headers)
    assert r.status_code == 200 and r.json()["rule_id"] == ".m.rule.master"
    r = await client.get(f"{base}/override/.m.rule.master/enabled", headers=headers)
    assert r.json() == {"enabled": False}
    r = await client.get(f"{base}/underride/.m.rule.message/actions", headers=headers)
    assert r.json() == {"actions": ["notify"]}
    r = await client.get(f"{base}/content/.m.rule.contains_user_name", headers=headers)
    assert r.json()["pattern"] == "alice"
    r = await client.get(f"{base}/override/.m.rule.nope", headers=headers)
    assert r.status_code == 404 and r.json()["errcode"] == "M_NOT_FOUND"
    r = await client.get(f"{base}/sideways/.m.rule.master", headers=headers)
    assert r.status_code == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    r = await client.get(f"{V3}/pushrules/device/override/.m.rule.master", headers=headers)
    assert r.status_code == 400 and r.json()["errcode"] == "M_INVALID_PARAM"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/voip/turnServer", {"username": "", "password": "", "uris": [], "ttl": 86400}),
        ("/thirdparty/protocols", {}),
        ("/account/3pid", {"threepids": []}),
        ("/pushers", {"pushers": []}),
    ],
)
async def test_best_effort_starter_endpoints(
    server: RunningServer,
    client: httpx.AsyncClient,
    register_user: RegisterUser,
    path: str,
    expected: dict[str, Any],
) -> None:
    headers = await token_of(client, register_user)
    r = await client.get(f"{V3}{path}", headers=headers)
    assert r.status_code == 200, r.text
    assert r.json() == expected
    r = await client.get(f"{V3}{path}")
    assert r.status_code == 401 and r.json()["errcode"] == "M_MISSING_TOKEN"


async def test_no_key_backup_is_not_found(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    """js-sdk reads 404 M_NOT_FOUND as "no backup"; anything else as a broken one."""
    headers = await token_of(client, register_user)
    r = await client.get(f"{V3}/room_keys/version", headers=headers)
    assert r.status_code == 404 and r.json()["errcode"] == "M_NOT_FOUND"


async def test_turn_server_answer_has_the_schema_fields(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    """voip.yaml: username, password, uris and ttl are required."""
    headers = await token_of(client, register_user)
    body = (await client.get(f"{V3}/voip/turnServer", headers=headers)).json()
    assert isinstance(body["username"], str) and isinstance(body["password"], str)
    assert body["uris"] == [] and isinstance(body["ttl"], int)
