"""Connections: C concurrent idle syncs; server memory before and while they are held.

``--transport longpoll`` (default 2,000): /sync long-polls spread over a few
users, each with a slightly different ``timeout`` so that no server can fold
them into one shared computation. ``--transport ws`` (default 10,000):
WebSockets (spec/websocket.md), each authenticated and subscribed from a
current token, opened by a lean raw-socket client (tools/bench/wsclient.py)
``--parallel`` at a time; while they are held, one more receiver gets a
message, to show delivery still works. With ``--pid`` (a local server) or
``--spawn`` (start a fresh Plait here) VmRSS and VmHWM are read from
/proc/PID/status before opening and while held: the memory per connection.

    plait bench connections --transport ws --spawn
    plait bench connections --base-url http://127.0.0.1:8008 --connections 2000 --pid 1234
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import trio

from tools.bench.common import (
    BenchError,
    Client,
    Session,
    add_base_url,
    check_range,
    kib_per_connection,
    raise_fd_limit,
    read_rss_kib,
    run_main,
    summary_ms,
)
from tools.bench.wsclient import LeanWebSocket, WsProtocolError

MAX_CONNECTIONS = 10_000
HOLD_MS = 120_000
DEFAULT_CONNECTIONS = {"longpoll": 2000, "ws": 10_000}
WS_PATH = "/_plait/client/v1/ws"
# Opening: sockets in flight at once, the longest one may take, the longest all may take.
MAX_PARALLEL = 512
OPEN_TIMEOUT = 60.0
MAX_OPEN_SECONDS = 900.0
DELIVERY_TIMEOUT = 30.0


async def run(
    base_url: str,
    *,
    connections: int | None = None,
    users: int = 20,
    hold: float = 5.0,
    pid: int | None = None,
    transport: str = "longpoll",
    parallel: int = 64,
) -> dict[str, Any]:
    if transport not in DEFAULT_CONNECTIONS:
        raise BenchError(f"--transport must be longpoll or ws, got {transport!r}")
    if connections is None:
        connections = DEFAULT_CONNECTIONS[transport]
    if transport == "ws":
        return await run_ws(
            base_url, connections=connections, users=users, hold=hold, pid=pid, parallel=parallel
        )
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


async def _open_ws(host: str, port: int, token: str, since: str) -> LeanWebSocket:
    """Connect, authenticate and subscribe from ``since``; returns once subscribed."""
    ws = await LeanWebSocket.connect(host, port, WS_PATH)
    try:
        await ws.send_json({"type": "auth", "access_token": token})
        reply = await ws.receive_json()
        if reply.get("type") != "auth_ok":
            raise WsProtocolError(f"auth refused: {reply}")
        await ws.send_json({"type": "subscribe", "id": 1, "since": since})
        while True:
            reply = await ws.receive_json()
            if reply.get("id") == 1:
                if reply.get("type") != "ack":
                    raise WsProtocolError(f"subscribe refused: {reply}")
                return ws
    except BaseException:
        await ws.aclose()
        raise


async def _hold(ws: LeanWebSocket, dropped: list[int]) -> None:
    """Read (answering pings) until cancelled; a server close counts as dropped."""
    try:
        while True:
            await ws.receive_json()
    except (WsProtocolError, OSError, trio.BrokenResourceError, trio.ClosedResourceError):
        dropped[0] += 1
    finally:
        await ws.aclose()


async def _delivery_while_held(
    host: str, port: int, sender: Session, receiver: Session, since: str, room_id: str
) -> float | None:
    """Seconds from send to the one active receiver's sync frame with it; None if it never came."""
    ws = await _open_ws(host, port, _token(receiver), since)
    try:
        with trio.move_on_after(DELIVERY_TIMEOUT):
            started = trio.current_time()
            await sender.send(room_id, "bench while held")
            while True:
                frame = await ws.receive_json()
                room = frame.get("body", {}).get("rooms", {}).get("join", {}).get(room_id, {})
                for event in room.get("timeline", {}).get("events", []):
                    if event.get("content", {}).get("body") == "bench while held":
                        return trio.current_time() - started
        return None
    finally:
        await ws.aclose()


def _token(session: Session) -> str:
    return session.headers["Authorization"].removeprefix("Bearer ")


async def run_ws(
    base_url: str,
    *,
    connections: int = 10_000,
    users: int = 20,
    hold: float = 5.0,
    pid: int | None = None,
    parallel: int = 64,
) -> dict[str, Any]:
    """Open ``connections`` subscribed WebSockets, hold them, measure the server's RSS."""
    check_range("connections", connections, 1, MAX_CONNECTIONS)
    check_range("users", users, 1, 1000)
    check_range("hold", hold, 0.5, 600.0)
    check_range("parallel", parallel, 1, MAX_PARALLEL)
    soft = raise_fd_limit(connections + 1024)
    if soft < connections + 128:
        raise BenchError(f"only {soft} file descriptors; --connections {connections} needs more")
    url = urlsplit(base_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    async with Client(base_url, connections=users + 4, timeout=60.0) as client:
        sessions = await client.register_many(min(users, connections), "bwsconn", 8)
        # Subscribing from a current token: each socket goes straight to waiting.
        tokens = [(await s.sync(None, 0, timeline_limit=1))["next_batch"] for s in sessions]
        sender, receiver = await client.register("bwssend"), await client.register("bwsrecv")
        room_id = await sender.create_room()
        await receiver.join(room_id)
        receiver_since = (await receiver.sync(None, 0, timeline_limit=1))["next_batch"]
        before = read_rss_kib(pid) if pid else {}
        opened, failed, dropped = [0], [0], [0]
        open_times: list[float] = []
        errors: dict[str, int] = {}
        limiter = trio.CapacityLimiter(parallel)

        async def open_one(i: int, nursery: trio.Nursery) -> None:
            async with limiter:
                n = i % len(sessions)
                started = trio.current_time()
                try:
                    with trio.fail_after(OPEN_TIMEOUT):
                        ws = await _open_ws(host, port, _token(sessions[n]), tokens[n])
                except (
                    trio.TooSlowError,
                    trio.BrokenResourceError,
                    trio.ClosedResourceError,
                    OSError,
                    WsProtocolError,
                    ValueError,
                ) as exc:
                    failed[0] += 1
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                    return
                open_times.append(trio.current_time() - started)
                opened[0] += 1
                if opened[0] % 1000 == 0:
                    print(f"connections: {opened[0]} open", file=sys.stderr)
            nursery.start_soon(_hold, ws, dropped)

        started = trio.current_time()
        delivery: float | None = None
        held: dict[str, int] = {}
        async with trio.open_nursery() as holders:
            with trio.move_on_after(MAX_OPEN_SECONDS):
                async with trio.open_nursery() as openers:
                    for i in range(connections):
                        openers.start_soon(open_one, i, holders)
            open_seconds = trio.current_time() - started
            await trio.sleep(hold)
            if pid:
                held = read_rss_kib(pid)
            delivery = await _delivery_while_held(
                host, port, sender, receiver, receiver_since, room_id
            )
            still_open = opened[0] - dropped[0]
            holders.cancel_scope.cancel()
    result: dict[str, Any] = {
        "benchmark": "connections",
        "transport": "ws",
        "connections": connections,
        "opened": opened[0],
        "failed": failed[0],
        "dropped_while_held": dropped[0],
        "held": still_open,
        "errors": errors,
        "users": len(sessions),
        "open_seconds": round(open_seconds, 2),
        "opened_per_s": round(opened[0] / open_seconds, 1) if open_seconds > 0 else 0.0,
        "open_ms": summary_ms(open_times),
        "delivery_while_held_ms": None if delivery is None else round(delivery * 1000, 2),
    }
    if pid:
        rss_before, rss_held = before.get("VmRSS", 0), held.get("VmRSS", 0)
        result["rss_kib"] = {"before": rss_before, "held": rss_held, "hwm": held.get("VmHWM", 0)}
        result["kib_per_connection"] = kib_per_connection(rss_before, rss_held, still_open)
    return result


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plait bench connections", description=__doc__.split("\n")[0]
    )
    add_base_url(parser)
    parser.add_argument("--transport", choices=list(DEFAULT_CONNECTIONS), default="longpoll")
    parser.add_argument("--connections", type=int, help="default 10,000 for ws, 2,000 for longpoll")
    parser.add_argument("--users", type=int, default=20, help="users the connections belong to")
    parser.add_argument("--hold", type=float, default=5.0, help="seconds to hold before measuring")
    parser.add_argument("--parallel", type=int, default=64, help="ws: sockets opening at once")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--pid", type=int, help="server process to read VmRSS/VmHWM of")
    target.add_argument(
        "--spawn", action="store_true", help="start a fresh Plait (SQLite, temp dir) and measure it"
    )
    return parser


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    if args.connections is None:
        args.connections = DEFAULT_CONNECTIONS[args.transport]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def scenario() -> int:
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
                parallel=args.parallel,
            ),
        )

    if not args.spawn:
        return scenario()
    from tools.bench.compare import free_port, start_plait
    from tools.bench.synapse.launcher import LaunchError, stop

    raise_fd_limit(args.connections + 1024)  # the child inherits it
    with tempfile.TemporaryDirectory(prefix="plait-bench-conn-") as data_dir:
        port = free_port()
        try:
            process = start_plait(Path(data_dir), port, None)
        except (LaunchError, OSError) as exc:
            print(f"plait bench connections: {exc}", file=sys.stderr)
            return 1
        try:
            args.base_url, args.pid = f"http://127.0.0.1:{port}", process.pid
            return scenario()
        finally:
            stop(process)


if __name__ == "__main__":
    sys.exit(main())
