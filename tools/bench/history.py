"""History: a room with M messages, paged back with /messages (limit 100); per-page latency.

plait bench history --base-url http://127.0.0.1:8008 --messages 10000
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import trio

from tools.bench.common import Client, add_base_url, check_range, run_main, summary_ms

MAX_MESSAGES = 100_000
MAX_DURATION = 900.0


async def run(
    base_url: str,
    *,
    messages: int = 10_000,
    page: int = 100,
    concurrency: int = 8,
    max_duration: float = 600.0,
) -> dict[str, Any]:
    check_range("messages", messages, 1, MAX_MESSAGES)
    check_range("page", page, 1, 1000)
    check_range("concurrency", concurrency, 1, 256)
    check_range("max_duration", max_duration, 1.0, MAX_DURATION)
    latencies: list[float] = []
    events_seen = 0
    fill_seconds = 0.0
    with trio.move_on_after(max_duration) as scope:
        async with Client(base_url, connections=concurrency + 2) as client:
            owner = await client.register("bhist")
            room_id = await owner.create_room("history")
            remaining = [messages]

            async def sender() -> None:
                while remaining[0] > 0:
                    remaining[0] -= 1
                    await owner.send(room_id, f"history {remaining[0]}")

            started = trio.current_time()
            async with trio.open_nursery() as nursery:
                for _ in range(concurrency):
                    nursery.start_soon(sender)
            fill_seconds = trio.current_time() - started
            token = (await owner.sync(None, 0, timeline_limit=1))["next_batch"]
            for _ in range(messages // page + 10):  # bounded: the room has ~messages/page pages
                started = trio.current_time()
                body = await owner.messages(room_id, token, page)
                latencies.append(trio.current_time() - started)
                chunk = body.get("chunk", [])
                events_seen += len(chunk)
                end = body.get("end")
                if not chunk or end is None or end == token:
                    break
                token = end
    return {
        "benchmark": "history",
        "messages": messages,
        "page_size": page,
        "fill_seconds": round(fill_seconds, 3),
        "fill_messages_per_second": round(messages / fill_seconds, 1) if fill_seconds else 0.0,
        "pages": len(latencies),
        "events_seen": events_seen,
        "timed_out": scope.cancelled_caught,
        "page_ms": summary_ms(latencies),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="plait bench history", description=__doc__.split("\n")[0])
    add_base_url(parser)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--page", type=int, default=100, help="/messages limit")
    parser.add_argument("--concurrency", type=int, default=8, help="parallel sends while filling")
    parser.add_argument("--max-duration", type=float, default=600.0)
    args = parser.parse_args(argv)
    return run_main(
        "history",
        args,
        lambda: run(
            args.base_url,
            messages=args.messages,
            page=args.page,
            concurrency=args.concurrency,
            max_duration=args.max_duration,
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
