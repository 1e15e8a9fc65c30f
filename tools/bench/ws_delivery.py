"""WebSocket sync vs long-poll: delivery latency, and server memory per idle WebSocket.

``latency``: one sender and K receivers per transport share a room; K receive
over the WebSocket transport (spec/websocket.md), K over long-poll ``/sync``.
The sender sends M messages one at a time; a sample is "send started -> this
receiver has it". ``idle``: open C authenticated, subscribed WebSockets spread
over U users and hold them; with ``--pid`` (a local server) VmRSS before and
while they are held gives the memory per connection. Loopback only, bounded.

    python -m tools.bench.ws_delivery latency --base-url http://127.0.0.1:8008 --receivers 20
    python -m tools.bench.ws_delivery idle --connections 2000 --pid 1234
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import trio
import trio_websocket

from tools.bench.common import (
    BenchError,
    Client,
    Session,
    add_base_url,
    check_range,
    raise_fd_limit,
    read_rss_kib,
    run_main,
    summary_ms,
)
from tools.bench.matrix_client import send_numbered

WS_PATH = "/_plait/client/v1/ws"
MAX_RECEIVERS = 500
MAX_MESSAGES = 5000
MAX_CONNECTIONS = 10_000
MAX_DURATION = 600.0
OPEN_IN_PARALLEL = 32
OPEN_TIMEOUT = 30.0
FILTER = {"room": {"timeline": {"limit": 1000}}}


def _ws_url(base_url: str) -> str:
    return base_url.replace("http://", "ws://", 1).rstrip("/") + WS_PATH


def _token(session: Session) -> str:
    return session.headers["Authorization"].removeprefix("Bearer ")


async def _open_subscribed(
    base_url: str, session: Session, nursery: trio.Nursery, since: str | None = None
) -> trio_websocket.WebSocketConnection:
    ws = await trio_websocket.connect_websocket_url(nursery, _ws_url(base_url))
    await ws.send_message(json.dumps({"type": "auth", "access_token": _token(session)}))
    reply = json.loads(await ws.get_message())
    if reply.get("type") != "auth_ok":
        raise BenchError(f"WebSocket auth failed: {reply}")
    await ws.send_message(json.dumps({"type": "subscribe", "since": since, "filter": FILTER}))
    return ws


def _note(body: dict[str, Any], room_id: str, arrivals: dict[str, float], now: float) -> None:
    room = body.get("rooms", {}).get("join", {}).get(room_id)
    if room is None:
        return
    for event in room["timeline"]["events"]:
        text = event.get("content", {}).get("body", "")
        if event["type"] == "m.room.message" and text.startswith("bench "):
            arrivals.setdefault(text, now)


class _Countdown:
    """Set when every receiver has every message."""

    def __init__(self, count: int) -> None:
        self.left = count
        self.done = trio.Event()

    def one_done(self) -> None:
        self.left -= 1
        if self.left <= 0:
            self.done.set()


async def _receive_ws(
    ws: trio_websocket.WebSocketConnection,
    room_id: str,
    arrivals: dict[str, float],
    n: int,
    countdown: _Countdown,
) -> None:
    while len(arrivals) < n:
        frame = json.loads(await ws.get_message())
        if frame.get("type") == "sync":
            _note(frame["body"], room_id, arrivals, trio.current_time())
    countdown.one_done()


async def _receive_poll(
    session: Session,
    room_id: str,
    since: str,
    arrivals: dict[str, float],
    n: int,
    countdown: _Countdown,
) -> None:
    while len(arrivals) < n:
        body = await session.sync(since, 30_000, timeline_limit=1000)
        _note(body, room_id, arrivals, trio.current_time())
        since = body["next_batch"]
    countdown.one_done()


async def latency(
    base_url: str, *, receivers: int = 20, messages: int = 50, gap: float = 0.02
) -> dict[str, Any]:
    check_range("receivers", receivers, 1, MAX_RECEIVERS)
    check_range("messages", messages, 1, MAX_MESSAGES)
    raise_fd_limit(4 * receivers + 256)
    async with Client(base_url, connections=receivers + 8) as client:
        sender = await client.register("bwsend")
        room_id = await sender.create_room()
        ws_users = await client.register_many(receivers, "bwsrecv")
        poll_users = await client.register_many(receivers, "bpollrecv")
        for user in ws_users + poll_users:
            await user.join(room_id)
        starts = [(await u.sync(None, 0, timeline_limit=1))["next_batch"] for u in poll_users]
        sent_at: dict[str, float] = {}
        ws_arrivals: list[dict[str, float]] = [{} for _ in ws_users]
        poll_arrivals: list[dict[str, float]] = [{} for _ in poll_users]
        countdown = _Countdown(2 * receivers)
        with trio.move_on_after(MAX_DURATION) as scope:
            async with trio.open_nursery() as nursery:
                sockets = [await _open_subscribed(base_url, u, nursery) for u in ws_users]
                for ws, got in zip(sockets, ws_arrivals, strict=True):
                    nursery.start_soon(_receive_ws, ws, room_id, got, messages, countdown)
                for user, since, got in zip(poll_users, starts, poll_arrivals, strict=True):
                    nursery.start_soon(
                        _receive_poll, user, room_id, since, got, messages, countdown
                    )
                await trio.sleep(0.5)  # let every receiver start waiting
                await send_numbered(sender, room_id, messages, gap, sent_at)
                with trio.move_on_after(60):
                    await countdown.done.wait()
                nursery.cancel_scope.cancel()

    def samples(arrivals: list[dict[str, float]]) -> list[float]:
        return [got[t] - sent_at[t] for got in arrivals for t in got if t in sent_at]

    return {
        "benchmark": "ws-delivery latency",
        "receivers_per_transport": receivers,
        "messages": messages,
        "timed_out": scope.cancelled_caught,
        "websocket": summary_ms(samples(ws_arrivals)),
        "longpoll": summary_ms(samples(poll_arrivals)),
    }


async def idle(
    base_url: str, *, connections: int = 1000, users: int = 20, hold: float = 5.0, pid: int | None
) -> dict[str, Any]:
    check_range("connections", connections, 1, MAX_CONNECTIONS)
    check_range("users", users, 1, 1000)
    check_range("hold", hold, 0.5, 60.0)
    soft = raise_fd_limit(connections * 2 + 256)
    if soft < connections + 128:
        raise BenchError(f"only {soft} file descriptors; --connections {connections} needs more")
    async with Client(base_url, connections=users + 4) as client:
        sessions = await client.register_many(min(users, connections), "bwsidle", 8)
        # Subscribing from a current token: each socket goes straight to waiting.
        tokens = [(await s.sync(None, 0, timeline_limit=1))["next_batch"] for s in sessions]
        before = read_rss_kib(pid) if pid else {}
        opened = failed = 0
        limiter = trio.CapacityLimiter(OPEN_IN_PARALLEL)
        all_open = _Countdown(connections)

        async def hold_one(i: int) -> None:
            nonlocal opened, failed
            async with limiter:
                n = i % len(sessions)
                try:
                    with trio.fail_after(OPEN_TIMEOUT):
                        ws = await _open_subscribed(base_url, sessions[n], nursery, tokens[n])
                except (trio.TooSlowError, OSError, trio_websocket.HandshakeError):
                    failed += 1
                    all_open.one_done()
                    return
                opened += 1
                if opened % 500 == 0:
                    print(f"ws-delivery: {opened} open", file=sys.stderr)
                all_open.one_done()
            await _drain(ws)

        started = trio.current_time()
        async with trio.open_nursery() as nursery:
            for i in range(connections):
                nursery.start_soon(hold_one, i)
            with trio.move_on_after(MAX_DURATION):
                await all_open.done.wait()
            open_seconds = trio.current_time() - started
            await trio.sleep(hold)
            held = read_rss_kib(pid) if pid else {}
            nursery.cancel_scope.cancel()
    result: dict[str, Any] = {
        "benchmark": "ws-delivery idle",
        "connections": opened,
        "users": len(sessions),
        "failed": failed,
        "open_seconds": round(open_seconds, 2),
    }
    if pid:
        rss_before, rss_held = before.get("VmRSS", 0), held.get("VmRSS", 0)
        result["rss_kib"] = {"before": rss_before, "held": rss_held, "hwm": held.get("VmHWM", 0)}
        result["kib_per_connection"] = round((rss_held - rss_before) / max(opened, 1), 2)
    return result


async def _drain(ws: trio_websocket.WebSocketConnection) -> None:
    """Read (and drop) whatever the server pushes, as a live client would."""
    try:
        while True:
            await ws.get_message()
    except trio_websocket.ConnectionClosed:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.bench.ws_delivery", description=__doc__.split("\n")[0]
    )
    parser.add_argument("mode", choices=["latency", "idle"])
    add_base_url(parser)
    parser.add_argument("--receivers", type=int, default=20, help="latency: per transport")
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--gap", type=float, default=0.02, help="seconds between sends")
    parser.add_argument("--connections", type=int, default=1000, help="idle: sockets to hold")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--hold", type=float, default=5.0)
    parser.add_argument("--pid", type=int, help="idle: server process to read VmRSS of")
    args = parser.parse_args(argv)
    if args.mode == "latency":
        return run_main(
            "ws-delivery",
            args,
            lambda: latency(
                args.base_url, receivers=args.receivers, messages=args.messages, gap=args.gap
            ),
        )
    return run_main(
        "ws-delivery",
        args,
        lambda: idle(
            args.base_url,
            connections=args.connections,
            users=args.users,
            hold=args.hold,
            pid=args.pid,
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
