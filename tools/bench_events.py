"""Benchmark the local event pipeline: N messages into one room, events per second.

Each message goes through the whole pipeline (extremities, state, auth events,
hash, signature, auth check, one transaction, notifier hook), like a client's
``PUT /send``. Runs on SQLite in a temporary directory and, with
``--database-url``, on PostgreSQL too (in a throwaway schema, dropped after).

    python -m tools.bench_events --events 2000 \\
        --database-url postgresql://root@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import secrets
import tempfile
import time
from pathlib import Path

import nacl.signing
import sqlalchemy as sa
import trio

from homeserver.events.creation import EventCreationService, StreamNotifier
from homeserver.storage.database import Database, normalize_url, with_search_path
from homeserver.storage.events import EventStore
from homeserver.storage.migrate import upgrade_engine

SERVER = "bench.example"


async def run_bench(
    url: str, events: int, concurrency: int, room_version: str, members: int = 0
) -> tuple[float, float]:
    """(messages/s, joins/s); joins/s is 0 when ``members`` is 0."""
    database = Database(url)
    try:
        await database.run_sync(upgrade_engine)
        store = EventStore(database)
        notifier = StreamNotifier()
        service = EventCreationService(
            store,
            server_name=SERVER,
            signing_key=nacl.signing.SigningKey.generate(),
            key_id="ed25519:bench",
            on_new_event=notifier.on_new_event,
        )
        alice = f"@alice:{SERVER}"
        create = await service.create_room(alice, room_version)
        room_id = create.room_id
        await service.create_and_persist_event(
            room_id, "m.room.member", alice, {"membership": "join"}, alice
        )
        join_rate = 0.0
        if members:
            # Public room, then ``members`` joins: state events, and a larger state.
            await service.create_and_persist_event(
                room_id, "m.room.join_rules", alice, {"join_rule": "public"}, ""
            )
            start = time.perf_counter()
            for i in range(members):
                user = f"@user{i}:{SERVER}"
                await service.create_and_persist_event(
                    room_id, "m.room.member", user, {"membership": "join"}, user
                )
            join_rate = members / (time.perf_counter() - start)
        per_task = events // concurrency

        async def sender(task: int) -> None:
            for i in range(per_task):
                await service.create_and_persist_event(
                    room_id, "m.room.message", alice, {"msgtype": "m.text", "body": f"{task}/{i}"}
                )

        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for task in range(concurrency):
                nursery.start_soon(sender, task)
        elapsed = time.perf_counter() - start
        extremities = await store.get_forward_extremities(room_id)
        assert len(extremities) == 1, extremities
        return per_task * concurrency / elapsed, join_rate
    finally:
        await database.aclose()


def _pg_schema(url: str) -> tuple[str, str]:
    schema = f"bench_{secrets.token_hex(4)}"
    engine = sa.create_engine(normalize_url(url))
    with engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    engine.dispose()
    return schema, with_search_path(url, schema)


def _drop_pg_schema(url: str, schema: str) -> None:
    engine = sa.create_engine(normalize_url(url))
    with engine.begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000, help="messages to send")
    parser.add_argument("--concurrency", type=int, default=1, help="concurrent senders")
    parser.add_argument("--room-version", default="10")
    parser.add_argument("--members", type=int, default=0, help="users who join first")
    parser.add_argument("--database-url", help="also run on this PostgreSQL database")
    args = parser.parse_args(argv)

    def report(name: str, rates: tuple[float, float]) -> None:
        line = (
            f"{name:11} {rates[0]:8.1f} messages/s ({args.events}, concurrency {args.concurrency})"
        )
        if args.members:
            line += f"; {rates[1]:8.1f} joins/s ({args.members} members)"
        print(line)

    bench = (args.events, args.concurrency, args.room_version, args.members)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        report("sqlite:", trio.run(run_bench, url, *bench))
    if args.database_url:
        schema, url = _pg_schema(args.database_url)
        try:
            report("postgresql:", trio.run(run_bench, url, *bench))
        finally:
            _drop_pg_schema(args.database_url, schema)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
