"""Who may redact (power levels), and the purge of redacted originals after the retention
period, over HTTP on both databases (spec: Client-Server API "Redactions")."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import trio
from plait_fixtures import RegisterUser, RunningServer
from room_http_helpers import V3, assert_error, auth, create_room, join, send

from homeserver.homeserver import HomeServer
from homeserver.storage.event_tables import events
from homeserver.storage.timeline import event_redactions

WEEK = 7 * 24 * 3600


async def redact(
    client: httpx.AsyncClient, user: dict[str, Any], room_id: str, event_id: str, **body: Any
) -> httpx.Response:
    return await client.put(
        f"{V3}/rooms/{room_id}/redact/{event_id}/r-{event_id[1:9]}-{user['user_id'][1:4]}",
        headers=auth(user),
        json=body,
    )


async def get_event(
    client: httpx.AsyncClient, user: dict[str, Any], room_id: str, event_id: str
) -> dict[str, Any]:
    r = await client.get(f"{V3}/rooms/{room_id}/event/{event_id}", headers=auth(user))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    # Ages move with the clock; everything else must be identical.
    body["unsigned"].pop("age", None)
    because = body["unsigned"].get("redacted_because")
    if because is not None:
        because["unsigned"].pop("age", None)
    return body


async def stored_json(hs: HomeServer, event_id: str) -> str:
    value: str = await hs.database.read(
        lambda conn: conn.execute(
            sa.select(events.c.json).where(events.c.event_id == event_id)
        ).scalar_one()
    )
    return value


async def purged(hs: HomeServer, redaction_id: str) -> bool:
    value: bool = await hs.database.read(
        lambda conn: conn.execute(
            sa.select(event_redactions.c.purged).where(event_redactions.c.event_id == redaction_id)
        ).scalar_one()
    )
    return bool(value)


async def test_who_may_redact(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    carol = await register_user(client, "carol")
    mallory = await register_user(client, "mallory")
    room_id = await create_room(client, alice, preset="public_chat")
    await join(client, bob, room_id)
    await join(client, carol, room_id)
    bobs = await send(client, bob, room_id, "bob's words")
    alices = await send(client, alice, room_id, "alice's words")
    # Power 0 may redact its own events, never others' (the redact level is 50).
    assert (await redact(client, bob, room_id, bobs)).status_code == 200
    assert_error(await redact(client, bob, room_id, alices), 403, "M_FORBIDDEN")
    assert_error(await redact(client, carol, room_id, alices), 403, "M_FORBIDDEN")
    # Not in the room at all.
    assert_error(await redact(client, mallory, room_id, alices), 403, "M_FORBIDDEN")
    # Carol is given the redact level: now she may.
    url = f"{V3}/rooms/{room_id}/state/m.room.power_levels"
    levels = (await client.get(url, headers=auth(alice))).json()
    levels["users"][carol["user_id"]] = levels.get("redact", 50)
    assert (await client.put(url, headers=auth(alice), json=levels)).status_code == 200
    assert (await redact(client, carol, room_id, alices)).status_code == 200
    assert (await get_event(client, bob, room_id, alices))["content"] == {}
    # Lowering the room's redact level to 0 lets everyone redact.
    levels["redact"] = 0
    assert (await client.put(url, headers=auth(alice), json=levels)).status_code == 200
    another = await send(client, alice, room_id, "more")
    assert (await redact(client, bob, room_id, another)).status_code == 200


async def test_original_kept_for_the_retention_period_then_purged(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    hs = server.hs
    assert hs.config.redaction_retention_s == WEEK
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    room_id = await create_room(client, alice, preset="public_chat")
    await join(client, bob, room_id)
    targets = [await send(client, bob, room_id, f"secret pasta plan {i}") for i in range(3)]
    redactions = []
    for target in targets:
        r = await redact(client, alice, room_id, target, reason="spam")
        assert r.status_code == 200, r.text
        redactions.append(r.json()["event_id"])
    before = [await get_event(client, bob, room_id, t) for t in targets]
    assert all(e["content"] == {} for e in before)
    # Within the retention period the original stays for moderation.
    assert await hs.redaction_purger.purge_once() == 0
    assert "secret pasta plan 0" in await stored_json(hs, targets[0])
    # A day short of the period: still kept.
    hs.clock.advance(WEEK - 24 * 3600)
    assert await hs.redaction_purger.purge_once() == 0
    hs.clock.advance(24 * 3600 + 1)
    # Bounded batches: two, then the last one.
    assert await hs.redaction_purger.purge_once(limit=2) == 2
    assert "secret" in await stored_json(hs, targets[2])
    assert await hs.redaction_purger.purge_once(limit=2) == 1
    assert await hs.redaction_purger.purge_once() == 0
    for target, redaction in zip(targets, redactions, strict=True):
        assert "secret" not in await stored_json(hs, target)
        assert await purged(hs, redaction)
    # Clients are served exactly what they were served before the purge.
    after = [await get_event(client, bob, room_id, t) for t in targets]
    assert after == before
    # The redaction's own reason is the moderation record and stays.
    assert after[0]["unsigned"]["redacted_because"]["content"]["reason"] == "spam"
    found = await client.post(
        f"{V3}/search",
        headers=auth(alice),
        json={"search_categories": {"room_events": {"search_term": "pasta"}}},
    )
    assert found.json()["search_categories"]["room_events"]["results"] == []


@pytest.mark.server_config(redaction_retention_s=0)
async def test_background_task_purges(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    hs = server.hs
    alice = await register_user(client, "alice")
    room_id = await create_room(client, alice)
    target = await send(client, alice, room_id, "regrettable words")
    unredacted = await send(client, alice, room_id, "fine words")
    r = await redact(client, alice, room_id, target)
    assert r.status_code == 200, r.text
    redaction_id = r.json()["event_id"]
    # The task started with the server's services purges it (a bounded wait).
    for _ in range(400):
        if await purged(hs, redaction_id):
            break
        hs.redaction_purger.wake()
        await trio.sleep(0.025)
    assert await purged(hs, redaction_id)
    assert "regrettable" not in await stored_json(hs, target)
    assert "fine words" in await stored_json(hs, unredacted)
    served = await get_event(client, alice, room_id, target)
    assert served["content"] == {}
    assert served["unsigned"]["redacted_because"]["event_id"] == redaction_id
