"""Benchmark ``POST /search``: one room with N messages, latency p50/p99 per query.

A real server (``HomeServer`` + ``serve_http`` on 127.0.0.1) answers the
searches over HTTP. The room is created through the API; its N messages are
written straight into the ``events`` table and the search index (copies of a
real message's row with new IDs, positions and bodies), which is fast, and
the event-stream followers are moved past them so nothing re-processes them.
Bodies draw words from a Zipf-like vocabulary, with some Chinese text and
URLs, so the queries range from very common to rare terms.

    python -m tools.bench_search --messages 100000 \\
        --database-url postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
import trio
from sqlalchemy.engine import Connection

from homeserver.config import load_config
from homeserver.homeserver import HomeServer
from homeserver.http.server import serve_http
from homeserver.search.tokenize import terms
from homeserver.storage import push as push_store
from homeserver.storage import search as search_store
from homeserver.storage.event_tables import event_stream_position, events
from tools.bench_events import _drop_pg_schema, _pg_schema

V3 = "/_matrix/client/v3"
CHUNK = 5000
VOCABULARY = [f"word{i}" for i in range(5000)]
CHINESE = ["我们明天去北京大学参观", "今天天气很好", "服务器搜索测试", "東京タワーに行きました"]
QUERIES: list[tuple[str, dict[str, Any]]] = [
    ("word1", {}),  # in about a tenth of the messages
    ("word1", {"order_by": "recent"}),
    ("word40", {}),
    ("word4000", {}),  # rare
    ("word2 word3", {}),
    ("北京", {}),
    ("example.org/page42", {}),
    ("nosuchword", {}),
    ("word1", {"event_context": {"before_limit": 3, "after_limit": 3}}),
]


def body_of(rng: random.Random, i: int) -> str:
    words = [
        VOCABULARY[min(int(rng.paretovariate(1.0)) - 1, 4999)] for _ in range(rng.randint(3, 15))
    ]
    if i % 20 == 0:
        words.append(rng.choice(CHINESE))
    if i % 50 == 0:
        words.append(f"https://example.org/page{i % 97}")
    return " ".join(words)


def bulk_insert(conn: Connection, room_id: str, count: int, seed: int) -> int:
    """Copy the room's latest message ``count`` times; returns the new stream head."""
    template = conn.execute(
        sa.select(events)
        .where(events.c.room_id == room_id, events.c.type == "m.room.message")
        .order_by(events.c.stream_ordering.desc())
        .limit(1)
    ).one()
    head = int(conn.execute(sa.select(sa.func.max(events.c.stream_ordering))).scalar_one())
    pdu = json.loads(template.json)
    rng = random.Random(seed)
    for start in range(0, count, CHUNK):
        rows: list[dict[str, Any]] = []
        entries: list[search_store.Entry] = []
        for i in range(start, min(count, start + CHUNK)):
            body = body_of(rng, i)
            position = head + 1 + i
            depth = int(template.depth) + 1 + i
            event_id = f"$bench{i}_{seed}"
            ts = int(template.origin_server_ts) + i
            content = {"msgtype": "m.text", "body": body}
            rows.append(
                {
                    **template._asdict(),
                    "event_id": event_id,
                    "depth": depth,
                    "topological_ordering": depth,
                    "stream_ordering": position,
                    "origin_server_ts": ts,
                    "json": json.dumps(
                        {**pdu, "content": content, "depth": depth, "origin_server_ts": ts}
                    ),
                }
            )
            entries.append(
                search_store.Entry(
                    position, event_id, room_id, template.sender, "m.room.message", ts, terms(body)
                )
            )
        conn.execute(sa.insert(events), rows)
        search_store.insert_entries(conn, entries)
    new_head = head + count
    conn.execute(sa.update(event_stream_position).values(position=new_head))
    for follower in ("search", "push_actions"):
        push_store.write_follower(conn, follower, new_head)
    return new_head


async def run_bench(url: str, messages: int, repeat: int) -> list[tuple[str, float, float, int]]:
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(
            env={},
            overrides={
                "server_name": "bench.example",
                "data_dir": tmp,
                "database_url": url,
                "registration": "open",
                "rate_limits": {"enabled": False},
            },
        )
        hs = await HomeServer.open(config)
        try:
            async with trio.open_nursery() as nursery:
                port = await nursery.start(
                    partial(serve_http, _router(hs), host="127.0.0.1", port=0, config=config.http)
                )
                async with httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{port}", timeout=120
                ) as client:
                    headers, room_id = await _setup(client)
                    started = time.perf_counter()
                    head = await hs.database.run(
                        lambda conn: bulk_insert(conn, room_id, messages, 1)
                    )
                    print(
                        f"  inserted {messages} messages in {time.perf_counter() - started:.1f} s"
                    )
                    hs.notifier.set_position("events", head)
                    await nursery.start(hs.run_services)
                    results = []
                    for term, extra in QUERIES:
                        latencies, count = await _measure(client, headers, term, extra, repeat)
                        p50, p99 = _percentiles(latencies)
                        name = f"{term} {extra or ''}".strip()
                        print(
                            f"  {name:60} p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  ({count} matches)"
                        )
                        results.append((name, p50, p99, count))
                nursery.cancel_scope.cancel()
        finally:
            await hs.aclose()
    return results


def _router(hs: HomeServer) -> Any:
    from client_api import build_router

    return build_router(hs)


async def _setup(client: httpx.AsyncClient) -> tuple[dict[str, str], str]:
    r = await client.post(
        f"{V3}/register",
        json={"username": "bench", "password": "bench password", "auth": {"type": "m.login.dummy"}},
    )
    r.raise_for_status()
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    r = await client.post(f"{V3}/createRoom", headers=headers, json={"preset": "public_chat"})
    r.raise_for_status()
    room_id: str = r.json()["room_id"]
    r = await client.put(
        f"{V3}/rooms/{room_id}/send/m.room.message/t0",
        headers=headers,
        json={"msgtype": "m.text", "body": "template"},
    )
    r.raise_for_status()
    return headers, room_id


async def _measure(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    term: str,
    extra: dict[str, Any],
    repeat: int,
) -> tuple[list[float], int]:
    body = {"search_categories": {"room_events": {"search_term": term, **extra}}}
    latencies: list[float] = []
    count = 0
    for _ in range(repeat):
        started = time.perf_counter()
        r = await client.post(f"{V3}/search", headers=headers, json=body)
        latencies.append((time.perf_counter() - started) * 1000)
        r.raise_for_status()
        count = r.json()["search_categories"]["room_events"]["count"]
    return latencies, count


def _percentiles(latencies: list[float]) -> tuple[float, float]:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered), p99


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=30, help="requests per query")
    parser.add_argument("--database-url", help="also run on this PostgreSQL database")
    args = parser.parse_args(argv)

    def report(name: str, url: str) -> None:
        print(f"{name} ({args.messages} messages, {args.repeat} requests per query)")
        trio.run(run_bench, url, args.messages, args.repeat)

    with tempfile.TemporaryDirectory() as tmp:
        report("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}")
    if args.database_url:
        schema, url = _pg_schema(args.database_url)
        try:
            report("postgresql", url)
        finally:
            _drop_pg_schema(args.database_url, schema)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
