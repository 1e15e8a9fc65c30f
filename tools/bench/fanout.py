"""Fan-out: one room, N members each holding a /sync long-poll; how long until all have a message.

Every member joins, takes a ``next_batch`` with a quick /sync, then long-polls.
After a settle pause one message is sent; a member's sample is "send started
-> its /sync returned the message". The long-polls go through
``matrix_client.RawLongPoll``, a minimal HTTP/1.1 client with a socket per
member (RLIMIT_NOFILE's soft limit is raised to the hard limit first), so the
samples hold as little of this process's own work as they can.

    plait bench fanout --base-url http://127.0.0.1:8008 --members 1000
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from typing import Any

import trio

from tools.bench.common import (
    BenchError,
    Client,
    Session,
    add_base_url,
    check_range,
    gather_bounded,
    raise_fd_limit,
    run_main,
    summary_ms,
)
from tools.bench.matrix_client import RawLongPoll

MAX_MEMBERS = 5000
MAX_DURATION = 600.0
POLL_MS = 60_000


async def _wait_for(
    poll: RawLongPoll, room_id: str, since: str, marker: str, arrivals: list[float]
) -> None:
    try:
        await _wait_on(poll, room_id, since, marker, arrivals)
    finally:
        await poll.aclose()


async def _wait_on(
    poll: RawLongPoll, room_id: str, since: str, marker: str, arrivals: list[float]
) -> None:
    for _ in range(100):  # bounded: other events (joins, receipts) may wake us first
        now, body = await poll.sync(since, POLL_MS)
        room = body.get("rooms", {}).get("join", {}).get(room_id)
        if room is not None:
            for event in room.get("timeline", {}).get("events", []):
                if event.get("content", {}).get("body") == marker:
                    arrivals.append(now)
                    return
        since = body["next_batch"]


async def run(
    base_url: str,
    *,
    members: int = 1000,
    concurrency: int = 8,
    settle: float = 2.0,
    max_duration: float = 300.0,
) -> dict[str, Any]:
    check_range("members", members, 1, MAX_MEMBERS)
    check_range("concurrency", concurrency, 1, 256)
    check_range("settle", settle, 0.0, 60.0)
    check_range("max_duration", max_duration, 1.0, MAX_DURATION)
    soft = raise_fd_limit(members * 2 + 256)
    if soft < members + 128:
        raise BenchError(f"only {soft} file descriptors allowed; --members {members} needs more")
    arrivals: list[float] = []
    sent_at = 0.0
    setup_seconds = 0.0
    with trio.move_on_after(max_duration) as scope:
        async with Client(
            base_url, connections=members + concurrency + 4, timeout=POLL_MS / 1000 + 60
        ) as client:
            setup_started = trio.current_time()
            owner = await client.register("bfanowner")
            room_id = await owner.create_room("fanout")
            sessions = await client.register_many(members, "bfan", concurrency)
            await gather_bounded([partial(s.join, room_id) for s in sessions], concurrency)
            tokens: dict[int, str] = {}

            async def first_sync(i: int, s: Session) -> None:
                tokens[i] = (await s.sync(None, 0, timeline_limit=1))["next_batch"]

            await gather_bounded(
                [partial(first_sync, i, s) for i, s in enumerate(sessions)], concurrency
            )
            setup_seconds = trio.current_time() - setup_started
            marker = f"fanout {trio.current_time()}"
            async with trio.open_nursery() as nursery:
                for i, s in enumerate(sessions):
                    poll = RawLongPoll(base_url, s.access_token, timeline_limit=5)
                    nursery.start_soon(_wait_for, poll, room_id, tokens[i], marker, arrivals)
                await trio.sleep(settle + members / 2000)  # let every long-poll reach the server
                sent_at = trio.current_time()
                await owner.send(room_id, marker)
    delays = [t - sent_at for t in arrivals]
    return {
        "benchmark": "fanout",
        "members": members,
        "delivered": len(arrivals),
        "timed_out": scope.cancelled_caught,
        "setup_seconds": round(setup_seconds, 2),
        "all_delivered_ms": round(max(delays) * 1000, 3) if len(delays) == members else None,
        "delivery_ms": summary_ms(delays),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="plait bench fanout", description=__doc__.split("\n")[0])
    add_base_url(parser)
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8, help="parallel setup requests")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds before sending")
    parser.add_argument("--max-duration", type=float, default=300.0)
    args = parser.parse_args(argv)
    return run_main(
        "fanout",
        args,
        lambda: run(
            args.base_url,
            members=args.members,
            concurrency=args.concurrency,
            settle=args.settle,
            max_duration=args.max_duration,
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
