"""Push rule API over HTTP: every verb, ordering, refusals, account data mirror."""

from __future__ import annotations

import httpx
from plait_fixtures import RegisterUser, RunningServer
from room_http_helpers import V3, assert_error, auth, sync

RULES = f"{V3}/pushrules/global"


async def rule_ids(client: httpx.AsyncClient, user: dict[str, str], kind: str) -> list[str]:
    response = await client.get(f"{V3}/pushrules/", headers=auth(user))
    assert response.status_code == 200
    return [r["rule_id"] for r in response.json()["global"][kind]]


async def test_put_get_delete_and_ordering(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    h = auth(alice)
    body = {"pattern": "cake*lie", "actions": ["notify"]}
    assert (await client.put(f"{RULES}/content/a", headers=h, json=body)).status_code == 200
    assert (await client.put(f"{RULES}/content/b", headers=h, json=body)).status_code == 200
    # New rules go first among user rules; user rules precede the defaults.
    assert (await rule_ids(client, alice, "content"))[:3] == [
        "b",
        "a",
        ".m.rule.contains_user_name",
    ]
    r = await client.put(f"{RULES}/content/c", headers=h, json=body, params={"after": "b"})
    assert r.status_code == 200
    r = await client.put(f"{RULES}/content/d", headers=h, json=body, params={"before": "b"})
    assert r.status_code == 200
    assert (await rule_ids(client, alice, "content"))[:4] == ["d", "b", "c", "a"]
    got = (await client.get(f"{RULES}/content/c", headers=h)).json()
    assert got == {
        "rule_id": "c",
        "default": False,
        "enabled": True,
        "pattern": "cake*lie",
        "actions": ["notify"],
    }
    # Updating keeps the place (and the enabled flag).
    await client.put(f"{RULES}/content/c/enabled", headers=h, json={"enabled": False})
    r = await client.put(f"{RULES}/content/c", headers=h, json={"pattern": "pie", "actions": []})
    assert r.status_code == 200
    assert (await rule_ids(client, alice, "content"))[:4] == ["d", "b", "c", "a"]
    got = (await client.get(f"{RULES}/content/c", headers=h)).json()
    assert got["pattern"] == "pie" and got["enabled"] is False
    assert (await client.get(f"{RULES}/content/c/enabled", headers=h)).json() == {"enabled": False}
    r = await client.put(
        f"{RULES}/content/c/actions",
        headers=h,
        json={"actions": ["notify", {"set_tweak": "sound", "value": "x"}]},
    )
    assert r.status_code == 200
    assert (await client.get(f"{RULES}/content/c/actions", headers=h)).json() == {
        "actions": ["notify", {"set_tweak": "sound", "value": "x"}]
    }
    assert (await client.delete(f"{RULES}/content/c", headers=h)).status_code == 200
    assert_error(await client.get(f"{RULES}/content/c", headers=h), 404, "M_NOT_FOUND")
    assert_error(await client.delete(f"{RULES}/content/c", headers=h), 404, "M_NOT_FOUND")
    # Override rules: after the master rule, before the other defaults.
    cond = {"conditions": [{"kind": "event_match", "key": "type", "pattern": "x.y"}], "actions": []}
    assert (await client.put(f"{RULES}/override/mine", headers=h, json=cond)).status_code == 200
    assert (await rule_ids(client, alice, "override"))[:2] == [".m.rule.master", "mine"]
    # Room and sender rules.
    r = await client.put(f"{RULES}/room/!abc:localhost", headers=h, json={"actions": []})
    assert r.status_code == 200
    assert await rule_ids(client, alice, "room") == ["!abc:localhost"]
    # Another user's rules are untouched.
    bob = await register_user(client, "bob")
    assert await rule_ids(client, bob, "room") == []


async def test_default_rules_enable_and_actions(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    h = auth(alice)
    master = f"{RULES}/override/.m.rule.master"
    assert (await client.get(f"{master}/enabled", headers=h)).json() == {"enabled": False}
    assert (
        await client.put(f"{master}/enabled", headers=h, json={"enabled": True})
    ).status_code == 200
    assert (await client.get(f"{master}/enabled", headers=h)).json() == {"enabled": True}
    msg = f"{RULES}/underride/.m.rule.message"
    r = await client.put(f"{msg}/actions", headers=h, json={"actions": ["dont_notify"]})
    assert r.status_code == 200
    got = (await client.get(msg, headers=h)).json()
    assert got["actions"] == ["dont_notify"] and got["default"] is True and got["enabled"] is True
    # The whole set reaches the client as m.push_rules account data.
    data = (await sync(client, alice))["account_data"]["events"]
    rules = next(e for e in data if e["type"] == "m.push_rules")["content"]["global"]
    assert rules["override"][0] == {**rules["override"][0], "enabled": True}
    assert next(r for r in rules["underride"] if r["rule_id"] == ".m.rule.message")["actions"] == [
        "dont_notify"
    ]


async def test_refusals(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    h = auth(alice)
    ok = {"pattern": "x", "actions": ["notify"]}
    assert_error(
        await client.put(f"{RULES}/content/.mine", headers=h, json=ok), 400, "M_INVALID_PARAM"
    )
    assert_error(
        await client.delete(f"{RULES}/override/.m.rule.master", headers=h), 400, "M_INVALID_PARAM"
    )
    assert_error(
        await client.delete(f"{RULES}/override/.m.rule.nope", headers=h), 404, "M_NOT_FOUND"
    )
    assert_error(
        await client.put(f"{V3}/pushrules/device/content/x", headers=h, json=ok),
        400,
        "M_INVALID_PARAM",
    )
    assert_error(await client.put(f"{RULES}/weird/x", headers=h, json=ok), 400, "M_INVALID_PARAM")
    assert_error(
        await client.put(f"{RULES}/content/x", headers=h, json={"pattern": "x"}), 400, "M_BAD_JSON"
    )
    assert_error(
        await client.put(f"{RULES}/content/x", headers=h, json={"actions": []}), 400, "M_BAD_JSON"
    )
    assert_error(
        await client.put(
            f"{RULES}/content/x", headers=h, json={"pattern": "x", "actions": ["explode"]}
        ),
        400,
        "M_BAD_JSON",
    )
    assert_error(
        await client.put(
            f"{RULES}/override/x", headers=h, json={"conditions": "no", "actions": []}
        ),
        400,
        "M_BAD_JSON",
    )
    assert_error(
        await client.put(f"{RULES}/room/not-a-room", headers=h, json={"actions": []}),
        400,
        "M_INVALID_PARAM",
    )
    assert_error(
        await client.put(f"{RULES}/sender/bob", headers=h, json={"actions": []}),
        400,
        "M_INVALID_PARAM",
    )
    assert_error(
        await client.put(f"{RULES}/content/x", headers=h, json=ok, params={"before": "missing"}),
        400,
        "M_UNKNOWN",
    )
    assert_error(
        await client.put(
            f"{RULES}/content/x", headers=h, json=ok, params={"after": ".m.rule.contains_user_name"}
        ),
        400,
        "M_UNKNOWN",
    )
    assert_error(
        await client.put(
            f"{RULES}/content/x", headers=h, json={"pattern": "x" * 2000, "actions": []}
        ),
        400,
        "M_TOO_LARGE",
    )
    assert_error(await client.get(f"{RULES}/content/x", headers=h), 404, "M_NOT_FOUND")
    assert_error(
        await client.put(f"{RULES}/content/x/enabled", headers=h, json={"enabled": True}),
        404,
        "M_NOT_FOUND",
    )
    assert_error(
        await client.put(
            f"{RULES}/override/.m.rule.master/enabled", headers=h, json={"enabled": "yes"}
        ),
        400,
        "M_BAD_JSON",
    )
    assert_error(
        await client.put(
            f"{RULES}/override/.m.rule.master/actions", headers=h, json={"actions": 3}
        ),
        400,
        "M_BAD_JSON",
    )
    r = await client.put(f"{RULES}/content/x", headers=h, content=b"not json")
    assert r.status_code == 400
    assert_error(await client.get(f"{V3}/pushrules/"), 401, "M_MISSING_TOKEN")
    for i in range(50):
        assert (await client.put(f"{RULES}/content/r{i}", headers=h, json=ok)).status_code == 200
    assert_error(
        await client.put(f"{RULES}/content/r50", headers=h, json=ok), 400, "M_LIMIT_EXCEEDED"
    )
