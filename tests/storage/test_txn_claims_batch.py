"""Client transaction IDs claimed in the event's transaction, one at a time and a batch at once.

A claim that finds its ID taken raises TxnAlreadyClaimed naming the first event,
so the caller's transaction rolls back; a batch claims every ID in one
statement and fails as a whole if any is taken. The event store runs
consecutive batchable hooks together and the others one by one, in order.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from homeserver.storage.database import Database
from homeserver.storage.events import _run_hooks
from homeserver.storage.transactions import (
    TxnAlreadyClaimed,
    TxnClaim,
    event_txn_ids,
    read_txn,
)


class _Event:
    def __init__(self, event_id: str) -> None:
        self.event_id = event_id


class _Written:
    def __init__(self, event_id: str) -> None:
        self.event = _Event(event_id)


def claim(txn: str, device: str = "D") -> TxnClaim:
    return TxnClaim("@a:x", device, "send", txn, now_ms=1)


async def rows(database: Database) -> dict[str, str]:
    def read(conn: sa.Connection) -> dict[str, str]:
        return {
            row.txn_id: row.event_id
            for row in conn.execute(sa.select(event_txn_ids.c.txn_id, event_txn_ids.c.event_id))
        }

    return await database.read(read)


async def test_a_batch_claims_every_id_at_once(database: Database) -> None:
    items = [(claim(f"t{i}"), _Event(f"$e{i}")) for i in range(5)]
    result = await database.run(lambda conn: TxnClaim.run_batch(conn, items))
    assert result == [f"$e{i}" for i in range(5)]
    assert await rows(database) == {f"t{i}": f"$e{i}" for i in range(5)}


async def test_a_batch_with_a_taken_id_fails_whole(database: Database) -> None:
    await database.run(lambda conn: claim("t2")(conn, _Event("$first")))
    items = [(claim(f"t{i}"), _Event(f"$e{i}")) for i in range(4)]
    with pytest.raises(TxnAlreadyClaimed) as caught:
        await database.run(lambda conn: TxnClaim.run_batch(conn, items))
    assert caught.value.event_id == "$first"
    # The caller's transaction rolled back: only the first claim is stored.
    assert await rows(database) == {"t2": "$first"}


async def test_one_claim_of_a_taken_id_names_the_first_event(database: Database) -> None:
    await database.run(lambda conn: claim("t")(conn, _Event("$first")))
    with pytest.raises(TxnAlreadyClaimed) as caught:
        await database.run(lambda conn: claim("t")(conn, _Event("$second")))
    assert caught.value.event_id == "$first"
    # Another device's same txnId is another transaction.
    assert await database.run(lambda conn: claim("t", "E")(conn, _Event("$third"))) == "$third"
    found = await database.read(lambda conn: read_txn(conn, "@a:x", "D", "send", "t"))
    assert found == "$first"


async def test_the_same_id_twice_in_one_batch_is_caught(database: Database) -> None:
    items = [(claim("t"), _Event("$one")), (claim("t"), _Event("$two"))]
    with pytest.raises(TxnAlreadyClaimed) as caught:
        await database.run(lambda conn: TxnClaim.run_batch(conn, items))
    assert caught.value.event_id == "$one"
    assert await rows(database) == {}


async def test_hooks_run_in_order_batching_neighbours(database: Database) -> None:
    calls: list[Any] = []

    def plain(conn: sa.Connection, event: Any) -> str:
        calls.append(event.event_id)
        return f"plain {event.event_id}"

    hooks: list[Any] = [claim("a"), claim("b"), plain, None, claim("c"), plain]
    written: list[Any] = [_Written(f"$e{i}") for i in range(len(hooks))]
    results = await database.run(lambda conn: _run_hooks(conn, written, hooks))
    assert results == ["$e0", "$e1", "plain $e2", None, "$e4", "plain $e5"]
    assert calls == ["$e2", "$e5"]
    assert await rows(database) == {"a": "$e0", "b": "$e1", "c": "$e4"}
