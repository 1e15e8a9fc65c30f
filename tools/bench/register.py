"""Registration rate: how many users per second open registration (m.login.dummy) creates.

plait bench register --base-url http://127.0.0.1:8008 --users 200 --concurrency 8
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import trio

from tools.bench.common import Client, add_base_url, check_range, run_main, summary_ms

MAX_USERS = 20_000
MAX_CONCURRENCY = 256
MAX_DURATION = 600.0


async def run(
    base_url: str, *, users: int = 200, concurrency: int = 8, max_duration: float = 120.0
) -> dict[str, Any]:
    check_range("users", users, 1, MAX_USERS)
    check_range("concurrency", concurrency, 1, MAX_CONCURRENCY)
    check_range("max_duration", max_duration, 0.1, MAX_DURATION)
    latencies: list[float] = []
    async with Client(base_url, connections=concurrency) as client:
        remaining = [users]

        async def worker() -> None:
            while remaining[0] > 0:
                remaining[0] -= 1
                started = trio.current_time()
                await client.register("breg")
                latencies.append(trio.current_time() - started)

        started = trio.current_time()
        with trio.move_on_after(max_duration) as scope:
            async with trio.open_nursery() as nursery:
                for _ in range(concurrency):
                    nursery.start_soon(worker)
        elapsed = trio.current_time() - started
    return {
        "benchmark": "register",
        "users": users,
        "concurrency": concurrency,
        "registered": len(latencies),
        "seconds": round(elapsed, 3),
        "users_per_second": round(len(latencies) / elapsed, 1) if elapsed > 0 else 0.0,
        "timed_out": scope.cancelled_caught,
        "latency_ms": summary_ms(latencies),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="plait bench register", description=__doc__.split("\n")[0]
    )
    add_base_url(parser)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-duration", type=float, default=120.0)
    args = parser.parse_args(argv)
    return run_main(
        "register",
        args,
        lambda: run(
            args.base_url,
            users=args.users,
            concurrency=args.concurrency,
            max_duration=args.max_duration,
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
