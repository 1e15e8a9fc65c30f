"""Delivery latency: K receivers hold /sync; how long until each has a message just sent.

One sender and K receivers share a public room. Every receiver long-polls
``/sync`` with its previous ``next_batch``; the sender sends M messages, one at
a time with a short gap, noting when each send started. A receiver records
when each message arrives, so one sample is "send started -> this receiver
has it", through the whole path (HTTP, persist, notifier, wake, read, encode).
The receivers long-poll through a minimal HTTP/1.1 client
(``matrix_client.RawLongPoll``), so the samples hold as little of this
process's own work as they can.
Standard Client-Server API only, loopback only, bounded in count and time.

    python -m tools.bench.delivery --base-url http://127.0.0.1:8008 --receivers 20 --messages 50
    plait bench delivery --transport ws   # WebSocket and long-poll receivers side by side
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import trio

from tools.bench.matrix_client import (
    RawLongPoll,
    open_client,
    register,
    send_numbered,
    summary_ms,
)

MAX_RECEIVERS = 500
MAX_MESSAGES = 5000
MAX_DURATION = 600.0


async def _receive(
    poll: RawLongPoll, room_id: str, since: str, arrivals: dict[str, float], expected: int
) -> None:
    while len(arrivals) < expected:
        now, body = await poll.sync(since, 30_000)
        room = body.get("rooms", {}).get("join", {}).get(room_id)
        if room is not None:
            for event in room["timeline"]["events"]:
                text = event.get("content", {}).get("body", "")
                if event["type"] == "m.room.message" and text.startswith("bench "):
                    arrivals.setdefault(text, now)
        since = body["next_batch"]


async def run(
    base_url: str,
    *,
    receivers: int = 20,
    messages: int = 50,
    gap: float = 0.02,
    max_duration: float = 120.0,
) -> dict[str, Any]:
    if not 1 <= receivers <= MAX_RECEIVERS or not 1 <= messages <= MAX_MESSAGES:
        raise ValueError(f"receivers in 1..{MAX_RECEIVERS}, messages in 1..{MAX_MESSAGES}")
    async with open_client(base_url, receivers + 8) as client:
        sender = await register(client, "bsender")
        room_id = await sender.create_room()
        users = [await register(client, "brecv") for _ in range(receivers)]
        for user in users:
            await user.join(room_id)
        starts = [(await user.sync(None, 0))["next_batch"] for user in users]
        sent_at: dict[str, float] = {}
        arrivals: list[dict[str, float]] = [{} for _ in users]
        polls = [RawLongPoll(base_url, user.access_token) for user in users]
        try:
            with trio.move_on_after(min(max_duration, MAX_DURATION)) as scope:
                async with trio.open_nursery() as nursery:
                    for poll, since, got in zip(polls, starts, arrivals, strict=True):
                        nursery.start_soon(_receive, poll, room_id, since, got, messages)
                    await trio.sleep(0.2)  # let the receivers start waiting
                    await send_numbered(sender, room_id, messages, gap, sent_at)
        finally:
            for poll in polls:
                await poll.aclose()
        samples = [got[t] - sent_at[t] for got in arrivals for t in got if t in sent_at]
        delivered = sum(len(got) for got in arrivals)
    return {
        "benchmark": "delivery",
        "receivers": receivers,
        "messages": messages,
        "delivered": delivered,
        "expected": receivers * messages,
        "timed_out": scope.cancelled_caught,
        "latency": summary_ms(samples),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.bench.delivery", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--base-url", default="http://127.0.0.1:8008")
    parser.add_argument("--receivers", type=int, default=20)
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--gap", type=float, default=0.02, help="seconds between sends")
    parser.add_argument("--max-duration", type=float, default=120.0)
    parser.add_argument(
        "--transport",
        choices=["longpoll", "ws"],
        default="longpoll",
        help="ws: K WebSocket receivers next to K long-poll receivers, p50/p95/p99 of each",
    )
    args = parser.parse_args(argv)
    if args.transport == "ws":
        from tools.bench import ws_delivery

        return ws_delivery.main(
            [
                "latency",
                f"--base-url={args.base_url}",
                f"--receivers={args.receivers}",
                f"--messages={args.messages}",
                f"--gap={args.gap}",
            ]
        )
    try:
        result = trio.run(
            lambda: run(
                args.base_url,
                receivers=args.receivers,
                messages=args.messages,
                gap=args.gap,
                max_duration=args.max_duration,
            )
        )
    except (ValueError, RuntimeError) as exc:
        print(f"delivery: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
