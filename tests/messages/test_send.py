"""PUT /send and /redact end to end: idempotent transactions, refusals, redacted serving."""

from __future__ import annotations

import httpx
import sqlalchemy as sa
import trio
from plait_fixtures import RegisterUser, RunningServer
from timeline_helpers import V3, assert_error, bearer, make_room, send, sync

from homeserver.storage.event_tables import events as events_table

ALICE = "@alice:test.example"
BOB = "@bob:test.example"


async def count_events(server: RunningServer) -> int:
    def count(conn: sa.Connection) -> int:
        return int(conn.execute(sa.select(sa.func.count()).select_from(events_table)).scalar_one())

    return await server.hs.database.read(count)


async def test_send_and_txn_idempotency(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    room_id = await make_room(server.hs, ALICE)
    first = await send(client, alice["access_token"], room_id, "hi", txn_id="abc")
    assert first.status_code == 200, first.text
    before = await count_events(server)
    again = await send(client, alice["access_token"], room_id, "hi", txn_id="abc")
    assert again.status_code == 200 and again.json() == first.json()
    assert await count_events(server) == before
    # Another txnId is another event; the same txnId on /redact is another endpoint.
    other = await send(client, alice["access_token"], room_id, "hi", txn_id="abd")
    assert other.json()["event_id"] != first.json()["event_id"]


async def test_concurrent_retries_make_one_event(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    room_id = await make_room(server.hs, ALICE)
    before = await count_events(server)
    results: list[httpx.Response] = []

    async def retry() -> None:
        results.append(await send(client, alice["access_token"], room_id, "once", txn_id="same"))

    async with trio.open_nursery() as nursery:
        for _ in range(8):
            nursery.start_soon(retry)
    assert {r.status_code for r in results} == {200}
    assert len({r.json()["event_id"] for r in results}) == 1
    assert await count_events(server) == before + 1


async def test_txn_scoped_to_device(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    login = await client.post(
        f"{V3}/login",
        json={
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": "alice"},
            "password": "correct horse",
        },
    )
    second = login.json()["access_token"]
    room_id = await make_room(server.hs, ALICE)
    a = await send(client, alice["access_token"], room_id, "x", txn_id="1")
    b = await send(client, second, room_id, "x", txn_id="1")
    assert a.json()["event_id"] != b.json()["event_id"]


async def test_transaction_id_echo_only_for_sending_device(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    room_id = await make_room(server.hs, ALICE, joined=(BOB,))
    sent = await send(client, alice["access_token"], room_id, "echo", txn_id="m1")
    event_id = sent.json()["event_id"]
    own = await sync(client, alice["access_token"])
    timeline = own["rooms"]["join"][room_id]["timeline"]["events"]
    mine = next(e for e in timeline if e["event_id"] == event_id)
    assert mine["unsigned"]["transaction_id"] == "m1"
    theirs = await sync(client, bob["access_token"])
    other = next(
        e
        for e in theirs["rooms"]["join"][room_id]["timeline"]["events"]
        if e["event_id"] == event_id
    )
    assert "transaction_id" not in other["unsigned"]


async def test_send_refusals(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    token = alice["access_token"]
    room_id = await make_room(server.hs, ALICE)
    before = await count_events(server)
    assert_error(await send(client, token, "!nope:test.example", "x"), 404, "M_NOT_FOUND")
    assert_error(await send(client, bob["access_token"], room_id, "x"), 403, "M_FORBIDDEN")
    assert_error(await send(client, token, "not-a-room", "x"), 400, "M_INVALID_PARAM")
    big = {"msgtype": "m.text", "body": "x" * 70_000}
    assert_error(await send(client, token, room_id, big), 413, "M_TOO_LARGE")
    almost = {"msgtype": "m.text", "body": "x" * 65_000}
    assert_error(await send(client, token, room_id, almost), 413, "M_TOO_LARGE")
    bad = await client.put(
        f"{V3}/rooms/{room_id}/send/m.room.message/z",
        headers={**bearer(token), "Content-Type": "application/json"},
        content=b"[1, 2]",
    )
    assert_error(bad, 400, "M_BAD_JSON")
    not_json = await client.put(
        f"{V3}/rooms/{room_id}/send/m.room.message/z2", headers=bearer(token), content=b"{"
    )
    assert_error(not_json, 400, "M_NOT_JSON")
    floats = await send(client, token, room_id, {"body": "x", "n": 1.5})
    assert_error(floats, 400, "M_BAD_JSON")
    no_token = await client.put(f"{V3}/rooms/{room_id}/send/m.room.message/z3", json={})
    assert no_token.status_code == 401
    assert await count_events(server) == before


async def test_redact_serves_redacted_form(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    room_id = await make_room(server.hs, ALICE, joined=(BOB,))
    target = (await send(client, bob["access_token"], room_id, "oops")).json()["event_id"]
    alice_msg = (await send(client, alice["access_token"], room_id, "mine")).json()["event_id"]
    # Bob (power 0) may not redact Alice's event; Alice (100) may redact Bob's.
    refused = await client.put(
        f"{V3}/rooms/{room_id}/redact/{alice_msg}/r1",
        headers=bearer(bob["access_token"]),
        json={},
    )
    assert_error(refused, 403, "M_FORBIDDEN")
    url = f"{V3}/rooms/{room_id}/redact/{target}/r1"
    first = await client.put(url, headers=bearer(alice["access_token"]), json={"reason": "spam"})
    assert first.status_code == 200, first.text
    again = await client.put(url, headers=bearer(alice["access_token"]), json={"reason": "spam"})
    assert again.json() == first.json()
    redaction_id = first.json()["event_id"]
    fetched = await client.get(
        f"{V3}/rooms/{room_id}/event/{target}", headers=bearer(bob["access_token"])
    )
    assert fetched.status_code == 200
    body = fetched.json()
    assert body["content"] == {}
    assert body["unsigned"]["redacted_because"]["event_id"] == redaction_id
    assert body["unsigned"]["redacted_because"]["content"]["reason"] == "spam"
    redaction = await client.get(
        f"{V3}/rooms/{room_id}/event/{redaction_id}", headers=bearer(bob["access_token"])
    )
    assert redaction.json()["redacts"] == target
    unknown = await client.put(
        f"{V3}/rooms/{room_id}/redact/$unknown/r2",
        headers=bearer(alice["access_token"]),
        json={},
    )
    assert_error(unknown, 404, "M_NOT_FOUND")
    malformed = await client.put(
        f"{V3}/rooms/{room_id}/redact/nope/r3", headers=bearer(alice["access_token"]), json={}
    )
    assert_error(malformed, 400, "M_INVALID_PARAM")


async def test_redaction_through_send(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    token = alice["access_token"]
    room_id = await make_room(server.hs, ALICE)
    target = (await send(client, token, room_id, "secret")).json()["event_id"]
    missing = await send(client, token, room_id, {"reason": "x"}, event_type="m.room.redaction")
    assert_error(missing, 400, "M_BAD_JSON")
    sent = await send(client, token, room_id, {"redacts": target}, event_type="m.room.redaction")
    assert sent.status_code == 200, sent.text
    fetched = await client.get(f"{V3}/rooms/{room_id}/event/{target}", headers=bearer(token))
    assert fetched.json()["content"] == {}
    assert fetched.json()["unsigned"]["redacted_because"]["event_id"] == sent.json()["event_id"]
