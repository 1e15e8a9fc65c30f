"""Connections: C concurrent idle /sync long-polls; server memory before and while they are held.

The long-polls are spread over a few users, each with a slightly different
``timeout`` so that no server can fold them into one shared computation.
With ``--pid`` (a local server process) VmRSS and VmHWM are read from
/proc/PID/status before opening the connections and while they are held.
``--transport ws`` (WebSocket sync) is not implemented yet.

    plait bench connections --base-url http://127.0.0.1:8008 --connections 2000 --pid 1234
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import trio

from tools.bench.common import (
    BenchError,
    Client,
    Session,
    add_base_url,
    check_range,
    raise_fd_limit,
    read_rss_kib,
    run_main,
)

MAX_CONNECTIONS = 10_000
HOLD_MS = 120_000


async def run(
    base_url: str,
    *,
    connections: int = 2000,
    users: int = 20,
    hold: float = 5.0,
    pid: int | None = None,
    transport: str = "longpoll",
) -> dict[str, Any]:
    if transport != "longpoll":
        raise BenchError(f"--transport {transport} is not implemented yet (only longpoll)")
    check_range("connections", connections, 1, MAX_CONNECTIONS)
    check_range("users", users, 1, 1000)
    check_range("hold", hold, 0.5, 60.0)
    soft = raise_fd_limit(connections * 2 + 256)
    if soft < connections + 128:
        raise BenchError(f"only {soft} file descriptors; --connections {connections} needs more")
    before = read_rss_kib(pid) if pid else {}
    held: dict[str, int] = {}
    answered_early = [0]
    errors = [0]
    opened = [0]
    async with Client(
        base_url, connections=connections + users + 4, timeout=HOLD_MS / 1000 + 30
    ) as client:
        sessions = await client.register_many(min(users, connections), "bconn", 8)
        tokens = [(await s.sync(None, 0, timeline_limit=1))["next_batch"] for s in sessions]

        async def hold_one(i: int, session: Session, since: str) -> None:
            opened[0] += 1
            try:
                await session.sync(since, HOLD_MS + i, timeline_limit=1)
                answered_early[0] += 1
            except Exception:
                errors[0] += 1

        started = trio.current_time()
        async with trio.open_nursery() as nursery:
            for i in range(connections):
                n = i % len(sessions)
                nursery.start_soon(hold_one, i, sessions[n], tokens[n])
            await trio.sleep(hold + connections / 1000)
            if pid:
                held = read_rss_kib(pid)
            open_seconds = trio.current_time() - started
            nursery.cancel_scope.cancel()
    result: dict[str, Any] = {
        "benchmark": "connections",
        "transport": transport,
        "connections": connections,
        "users": len(sessions),
        "held_seconds": round(open_seconds, 2),
        "answered_early": answered_early[0],
        "errors": errors[0],
    }
    if pid:
        rss_before = before.get("VmRSS", 0)
        rss_held = held.get("VmRSS", 0)
        result["rss_kib"] = {"before": rss_before, "held": rss_held, "hwm": held.get("VmHWM", 0)}
        result["kib_per_connection"] = round((rss_held - rss_before) / connections, 2)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="plait bench connections", description=__doc__.split("\n")[0]
    )
    add_base_url(parser)
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--users", type=int, default=20, help="users the long-polls belong to")
    parser.add_argument("--hold", type=float, default=5.0, help="seconds to hold before measuring")
    parser.add_argument("--pid", type=int, help="server process to read VmRSS/VmHWM of")
    parser.add_argument("--transport", choices=["longpoll", "ws"], default="longpoll")
    args = parser.parse_args(argv)
    return run_main(
        "connections",
        args,
        lambda: run(
            args.base_url,
            connections=args.connections,
            users=args.users,
            hold=args.hold,
            pid=args.pid,
            transport=args.transport,
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
