"""Initial sync: a user in R rooms with some history each; how long a first /sync takes.

Each run logs in a new device (so no server-side response cache can answer
it) and times one full /sync with ``timeout=0``; the median of the runs is
the headline.

    plait bench initial-sync --base-url http://127.0.0.1:8008 --rooms 100 --history 10
"""

from __future__ import annotations

import argparse
import statistics
import sys
from functools import partial
from typing import Any

import trio

from tools.bench.common import (
    Client,
    add_base_url,
    check_range,
    gather_bounded,
    run_main,
    summary_ms,
)

MAX_ROOMS = 2000
MAX_DURATION = 900.0


async def run(
    base_url: str,
    *,
    rooms: int = 100,
    history: int = 10,
    runs: int = 5,
    concurrency: int = 8,
    max_duration: float = 600.0,
) -> dict[str, Any]:
    check_range("rooms", rooms, 1, MAX_ROOMS)
    check_range("history", history, 0, 1000)
    check_range("runs", runs, 1, 50)
    check_range("concurrency", concurrency, 1, 256)
    check_range("max_duration", max_duration, 1.0, MAX_DURATION)
    timings: list[float] = []
    joined = 0
    with trio.move_on_after(max_duration) as scope:
        async with Client(base_url, connections=concurrency + 2) as client:
            user = await client.register("binit")
            room_ids: list[str] = []

            async def make_room(n: int) -> None:
                room_id = await user.create_room(f"room {n}")
                for k in range(history):
                    await user.send(room_id, f"message {k} in room {n}")
                room_ids.append(room_id)

            await gather_bounded([partial(make_room, n) for n in range(rooms)], concurrency)
            for _ in range(runs):
                device = await client.login(user.user_id)
                started = trio.current_time()
                body = await device.sync(None, 0, timeline_limit=10)
                timings.append(trio.current_time() - started)
                joined = len(body.get("rooms", {}).get("join", {}))
    return {
        "benchmark": "initial_sync",
        "rooms": rooms,
        "history_per_room": history,
        "runs": len(timings),
        "rooms_in_sync": joined,
        "timed_out": scope.cancelled_caught,
        "median_ms": round(statistics.median(timings) * 1000, 3) if timings else None,
        "sync_ms": summary_ms(timings),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="plait bench initial-sync", description=__doc__.split("\n")[0]
    )
    add_base_url(parser)
    parser.add_argument("--rooms", type=int, default=100)
    parser.add_argument("--history", type=int, default=10, help="messages per room")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-duration", type=float, default=600.0)
    args = parser.parse_args(argv)
    return run_main(
        "initial-sync",
        args,
        lambda: run(
            args.base_url,
            rooms=args.rooms,
            history=args.history,
            runs=args.runs,
            concurrency=args.concurrency,
            max_duration=args.max_duration,
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
