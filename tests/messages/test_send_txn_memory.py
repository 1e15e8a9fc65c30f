"""Transaction IDs the server's memory does not know of (a restart, an eviction).

A first send reads nothing: the mapping is checked in the event's own
transaction. These tests make the memory forget, then retry, and check that the
retry still gets the first event and that no second event is stored, alone,
inside a batch of other senders' events, and when sending again would be refused.
"""

from __future__ import annotations

import json

import httpx
import sqlalchemy as sa
import trio
from plait_fixtures import RegisterUser, RunningServer
from timeline_helpers import V3, bearer, make_room, send

from homeserver.storage.event_tables import events as events_table

ALICE = "@alice:test.example"
BOB = "@bob:test.example"
CAROL = "@carol:test.example"


async def message_bodies(server: RunningServer, room_id: str) -> list[str]:
    def read(conn: sa.Connection) -> list[str]:
        rows = conn.execute(
            sa.select(events_table.c.json)
            .where(events_table.c.room_id == room_id, events_table.c.type == "m.room.message")
            .order_by(events_table.c.stream_ordering)
        ).all()
        return [json.loads(row.json)["content"]["body"] for row in rows]

    return await server.hs.database.read(read)


def forget_transactions(server: RunningServer) -> None:
    """What a restart does to the memory of recent transactions."""
    server.hs.messages._known_txns.clear()


async def test_retry_unknown_to_memory_gets_the_first_event(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    room_id = await make_room(server.hs, ALICE)
    first = await send(client, alice["access_token"], room_id, "once", txn_id="m1")
    assert first.status_code == 200, first.text
    forget_transactions(server)
    again = await send(client, alice["access_token"], room_id, "once", txn_id="m1")
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert await message_bodies(server, room_id) == ["once"]
    # The room moves on from the first event: the rolled-back one left no trace.
    later = await send(client, alice["access_token"], room_id, "later", txn_id="m2")
    assert later.status_code == 200
    assert await message_bodies(server, room_id) == ["once", "later"]
    extremities = await server.hs.event_store.get_forward_extremities(room_id)
    assert extremities == [later.json()["event_id"]]


async def test_unknown_retry_in_a_batch_fails_alone(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    users = {name: await register_user(client, name) for name in ("alice", "bob", "carol")}
    room_id = await make_room(server.hs, ALICE, joined=(BOB, CAROL))
    first = await send(client, users["alice"]["access_token"], room_id, "a0", txn_id="dup")
    assert first.status_code == 200
    forget_transactions(server)
    answers: dict[str, httpx.Response] = {}

    async def put(name: str, body: str, txn: str) -> None:
        answers[body] = await send(client, users[name]["access_token"], room_id, body, txn_id=txn)

    # Concurrent sends share batches; the retry among them must not sink the others.
    async with trio.open_nursery() as nursery:
        for n in range(4):
            nursery.start_soon(put, "bob", f"b{n}", f"b{n}")
            nursery.start_soon(put, "carol", f"c{n}", f"c{n}")
        nursery.start_soon(put, "alice", "a0 again", "dup")
    assert {r.status_code for r in answers.values()} == {200}
    assert answers["a0 again"].json() == first.json()
    bodies = await message_bodies(server, room_id)
    assert sorted(bodies) == sorted(
        ["a0", *(f"b{n}" for n in range(4)), *(f"c{n}" for n in range(4))]
    )
    ids = {r.json()["event_id"] for r in answers.values()}
    assert len(ids) == 9


async def test_unknown_retry_after_leaving_gets_the_first_event(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    await register_user(client, "alice")
    bob = await register_user(client, "bob")
    room_id = await make_room(server.hs, ALICE, joined=(BOB,))
    first = await send(client, bob["access_token"], room_id, "bye", txn_id="t-leave")
    assert first.status_code == 200
    left = await client.post(
        f"{V3}/rooms/{room_id}/leave", headers=bearer(bob["access_token"]), json={}
    )
    assert left.status_code == 200, left.text
    forget_transactions(server)
    # Sending now would be refused (403), but this transaction already succeeded.
    again = await send(client, bob["access_token"], room_id, "bye", txn_id="t-leave")
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    refused = await send(client, bob["access_token"], room_id, "bye", txn_id="t-new")
    assert refused.status_code == 403


async def test_unknown_retry_of_a_reaction_gets_the_first_event(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    room_id = await make_room(server.hs, ALICE)
    target = await send(client, alice["access_token"], room_id, "react to me")
    reaction = {
        "m.relates_to": {
            "rel_type": "m.annotation",
            "event_id": target.json()["event_id"],
            "key": "+1",
        }
    }

    async def react(txn: str) -> httpx.Response:
        return await client.put(
            f"{V3}/rooms/{room_id}/send/m.reaction/{txn}",
            headers=bearer(alice["access_token"]),
            json=reaction,
        )

    first = await react("r1")
    assert first.status_code == 200, first.text
    forget_transactions(server)
    # The same reaction again would be a duplicate (400); the retry is not.
    again = await react("r1")
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    duplicate = await react("r2")
    assert duplicate.status_code == 400
