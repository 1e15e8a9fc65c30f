"""Send throughput: S concurrent senders in one room; messages/s and send latency.

Every sender joins one public room and sends N messages back to back (the
next PUT starts when the previous answered). Reports messages per second over
the whole run and the latency percentiles of the individual sends. Standard
Client-Server API only, loopback only, bounded in count and time.

    python -m tools.bench.throughput --base-url http://127.0.0.1:8008 --senders 10 --messages 100
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import trio

from tools.bench.matrix_client import User, open_client, register, summary_ms

MAX_SENDERS = 200
MAX_MESSAGES = 10_000
MAX_DURATION = 600.0


async def _send_loop(user: User, room_id: str, count: int, latencies: list[float]) -> None:
    for n in range(count):
        started = trio.current_time()
        await user.send(room_id, f"throughput {n}")
        latencies.append(trio.current_time() - started)


async def run(
    base_url: str, *, senders: int = 10, messages: int = 100, max_duration: float = 120.0
) -> dict[str, Any]:
    if not 1 <= senders <= MAX_SENDERS or not 1 <= messages <= MAX_MESSAGES:
        raise ValueError(f"senders in 1..{MAX_SENDERS}, messages in 1..{MAX_MESSAGES}")
    async with open_client(base_url, senders + 4) as client:
        creator = await register(client, "tcreator")
        room_id = await creator.create_room()
        users = [await register(client, "tsender") for _ in range(senders)]
        for user in users:
            await user.join(room_id)
        latencies: list[float] = []
        started = trio.current_time()
        with trio.move_on_after(min(max_duration, MAX_DURATION)) as scope:
            async with trio.open_nursery() as nursery:
                for user in users:
                    nursery.start_soon(_send_loop, user, room_id, messages, latencies)
        elapsed = trio.current_time() - started
    return {
        "benchmark": "throughput",
        "senders": senders,
        "messages_per_sender": messages,
        "sent": len(latencies),
        "seconds": round(elapsed, 3),
        "messages_per_second": round(len(latencies) / elapsed, 1) if elapsed > 0 else 0.0,
        "timed_out": scope.cancelled_caught,
        "send_latency": summary_ms(latencies),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.bench.throughput", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--base-url", default="http://127.0.0.1:8008")
    parser.add_argument("--senders", type=int, default=10)
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--max-duration", type=float, default=120.0)
    args = parser.parse_args(argv)
    try:
        result = trio.run(
            lambda: run(
                args.base_url,
                senders=args.senders,
                messages=args.messages,
                max_duration=args.max_duration,
            )
        )
    except (ValueError, RuntimeError) as exc:
        print(f"throughput: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
