"""The event tables directly: extremities, edges, auth chains, stream orderings, reads."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
import sqlalchemy as sa

from homeserver.storage.database import Database
from homeserver.storage.event_tables import event_auth_edges, event_edges
from homeserver.storage.events import (
    EventStore,
    EventToPersist,
    RoomInfo,
    StateBefore,
    read_auth_chain,
)

ROOM = "!r:test.example"
ALICE = "@alice:test.example"


@pytest.fixture
def store(database: Database) -> EventStore:
    return EventStore(database)


def pdu(
    event_type: str,
    prev: list[str],
    auth: list[str],
    depth: int,
    state_key: str | None = None,
    content: dict[str, Any] | None = None,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "room_id": ROOM,
        "type": event_type,
        "sender": ALICE,
        "content": content or {},
        "prev_events": prev,
        "auth_events": auth,
        "depth": depth,
        "origin_server_ts": 1000 + depth,
    }
    if state_key is not None:
        event["state_key"] = state_key
    return event


async def seed_room(store: EventStore) -> None:
    await store.persist(
        EventToPersist(
            event_id="$create",
            pdu=pdu("m.room.create", [], [], 1, ""),
            state_before=StateBefore(state={}),
            new_current_state="after",
            new_room=RoomInfo(room_id=ROOM, room_version="10", creator=ALICE),
        )
    )


async def add(
    store: EventStore,
    event_id: str,
    prev: list[str],
    depth: int,
    *,
    state_key: str | None = None,
    auth: list[str] | None = None,
    **flags: Any,
) -> int:
    state_before: dict[tuple[str, str], str] = {}
    for p in prev:
        state_before.update(await store.get_state_at_event(p, before=False) or {})
    result = await store.persist(
        EventToPersist(
            event_id=event_id,
            pdu=pdu("m.test", prev, auth if auth is not None else ["$create"], depth, state_key),
            state_before=StateBefore(state=state_before),
            **flags,
        )
    )
    return result.event.stream_ordering


async def test_forward_extremities_follow_the_dag(store: EventStore) -> None:
    await seed_room(store)
    assert await store.get_forward_extremities(ROOM) == ["$create"]
    await add(store, "$a", ["$create"], 2)
    await add(store, "$b", ["$create"], 2)
    assert sorted(await store.get_forward_extremities(ROOM)) == ["$a", "$b"]
    await add(store, "$c", ["$a"], 3)
    # Deepest first.
    assert await store.get_forward_extremities(ROOM) == ["$c", "$b"]
    await add(store, "$d", ["$b", "$c"], 4)
    assert await store.get_forward_extremities(ROOM) == ["$d"]


async def test_child_arriving_first_keeps_parent_off_the_edge(store: EventStore) -> None:
    await seed_room(store)
    await add(store, "$child", ["$parent"], 3)
    # $create has no known child yet: both are extremities.
    assert await store.get_forward_extremities(ROOM) == ["$child", "$create"]
    await add(store, "$parent", ["$create"], 2)
    assert await store.get_forward_extremities(ROOM) == ["$child"]


async def test_rejected_and_soft_failed_children_do_not_hide_parent(store: EventStore) -> None:
    await seed_room(store)
    await add(store, "$a", ["$create"], 2)
    await add(store, "$bad", ["$a"], 3, rejected_reason="nope")
    await add(store, "$soft", ["$a"], 3, soft_failed=True)
    assert await store.get_forward_extremities(ROOM) == ["$a"]
    # A parent stored after only a rejected child exists is still an extremity.
    await add(store, "$late_child", ["$late"], 3, rejected_reason="nope")
    await add(store, "$late", ["$a"], 2)
    assert await store.get_forward_extremities(ROOM) == ["$late"]


async def test_stream_orderings_are_consecutive_and_edges_stored(store: EventStore) -> None:
    await seed_room(store)
    orderings = [
        await add(store, f"$e{i}", [f"$e{i - 1}" if i else "$create"], i + 2) for i in range(20)
    ]
    assert orderings == list(range(orderings[0], orderings[0] + 20))
    assert await store.get_stream_position() == orderings[-1]

    def edges(conn: sa.Connection) -> tuple[set[tuple[str, str]], int]:
        prev = {(r.event_id, r.prev_event_id) for r in conn.execute(sa.select(event_edges)).all()}
        auth = conn.execute(sa.select(sa.func.count()).select_from(event_auth_edges)).scalar_one()
        return prev, auth

    prev, auth = await store.database.read(edges)
    assert ("$e5", "$e4") in prev and ("$e0", "$create") in prev and len(prev) == 20
    assert auth == 20


async def test_auth_chain_is_transitive(store: EventStore) -> None:
    await seed_room(store)
    await add(store, "$member", ["$create"], 2, state_key="m", auth=["$create"])
    await add(store, "$pl", ["$member"], 3, state_key="p", auth=["$create", "$member"])
    await add(store, "$msg", ["$pl"], 4, auth=["$create", "$member", "$pl"])
    await add(store, "$other", ["$create"], 2, auth=["$create"])
    chain = await store.database.read(lambda c: read_auth_chain(c, ["$pl"]))
    assert chain == {"$create", "$member"}
    assert await store.get_auth_chain_ids(["$msg", "$other"]) == {"$create", "$member", "$pl"}
    assert await store.get_auth_chain_ids([]) == set()


async def test_get_events_in_chunks_and_missing(store: EventStore) -> None:
    await seed_room(store)
    prev = "$create"
    for i in range(620):
        await add(store, f"$x{i}", [prev], i + 2)
        prev = f"$x{i}"
    wanted = [f"$x{i}" for i in range(620)] + ["$nope"]
    found = await store.get_events(wanted)
    assert len(found) == 620 and "$nope" not in found
    assert found["$x600"].pdu["prev_events"] == ["$x599"]
    assert found["$x600"].depth == found["$x600"].topological_ordering == 602
    assert await store.get_event("$nope") is None
    assert await store.get_state_at_event("$nope") is None


async def test_duplicate_event_id_rolls_back_everything(store: EventStore) -> None:
    await seed_room(store)
    await add(store, "$a", ["$create"], 2, state_key="k")
    position = await store.get_stream_position()
    with pytest.raises(sa.exc.IntegrityError):
        await add(store, "$a", ["$create"], 2, state_key="k")
    assert await store.get_stream_position() == position
    assert await store.get_forward_extremities(ROOM) == ["$a"]


async def test_events_read_back_share_their_keys_and_ids(database: Database) -> None:
    # A fresh store reads from the database (its cache is empty).
    writer = EventStore(database)
    await seed_room(writer)
    await add(writer, "$a", ["$create"], 2)
    await add(writer, "$b", ["$a"], 3)
    found = await EventStore(database).get_events(["$a", "$b"])
    a, b = found["$a"], found["$b"]
    assert a.pdu == pdu("m.test", ["$create"], ["$create"], 2)
    # One string object for a key, room, sender or cited ID, however many events hold it.
    key_a = next(k for k in a.pdu if k == "auth_events")
    key_b = next(k for k in b.pdu if k == "auth_events")
    assert key_a is key_b
    assert a.pdu["room_id"] is b.pdu["room_id"] is a.room_id is b.room_id
    assert a.pdu["sender"] is b.pdu["sender"] is a.sender
    assert a.pdu["auth_events"][0] is b.pdu["auth_events"][0]
    assert b.pdu["prev_events"][0] is a.event_id


async def test_persisted_events_are_cached_with_shared_keys_and_ids(store: EventStore) -> None:
    import json

    await seed_room(store)
    events = []
    for n, prev in ((2, "$create"), (3, "$a")):
        # As from a client's body and a request path: every string a copy of its own.
        raw = json.loads(json.dumps(pdu("m.test", [prev], ["$create"], n, content={"body": "hi"})))
        events.append(raw)
        await store.persist(
            EventToPersist(
                event_id="$a" if n == 2 else "$b",
                pdu=raw,
                state_before=StateBefore(state=await store.get_state_at_event(prev, before=False) or {}),
            )
        )
    assert events[0]["room_id"] is not events[1]["room_id"]
    found = await store.get_events(["$a", "$b"])  # from the cache: no read
    a, b = found["$a"], found["$b"]
    assert a.pdu == events[0] and b.pdu == events[1]
    assert a.pdu["room_id"] is b.pdu["room_id"] is a.room_id
    assert next(k for k in a.pdu["content"] if k == "body") is next(k for k in b.pdu["content"] if k == "body")
    assert b.pdu["prev_events"][0] is a.event_id
    assert a.pdu is not events[0]  # the caller's PDU is left as it was


def test_load_pdu_keeps_the_data_of_any_json_object() -> None:
    import json

    from homeserver.storage.events import load_pdu

    value = {
        "content": {"a": [{"b": {"c": {"d": [1, 2.5, None, True]}}}], "": ""},
        "auth_events": ["$x", 3],
        "prev_events": "not a list",
        "room_id": 7,
        "unsigned": {"k": {"deep": {"deeper": {"deepest": "v"}}}},
    }
    assert load_pdu(json.dumps(value)) == value
    assert load_pdu(json.dumps(value).encode()) == value


async def test_share_cached_hands_out_the_cached_copy_only_when_equal(
    store: EventStore, database: Database
) -> None:
    from homeserver.storage.timeline import read_room_stream_range

    await seed_room(store)
    await add(store, "$a", ["$create"], 2)  # persisting caches it
    cached = await store.get_event("$a")
    assert cached is not None
    loaded = await database.read(lambda conn: read_room_stream_range(conn, ROOM, 0, 10, 10))
    fresh = next(e for e in loaded if e.event_id == "$a")
    assert fresh is not cached and fresh == cached
    shared = store.share_cached(loaded)
    assert [e.event_id for e in shared] == [e.event_id for e in loaded]
    assert next(e for e in shared if e.event_id == "$a") is cached
    # A row that differs from the cached copy (say, redacted meanwhile) stays as read.
    changed = attrs.evolve(fresh, pdu={**fresh.pdu, "content": {"redacted": False}})
    assert store.share_cached([changed]) == [changed]
    assert store.share_cached([changed])[0] is changed
