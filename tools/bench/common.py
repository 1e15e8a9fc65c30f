"""What every Client-Server benchmark shares: statistics, limits, loopback, a small client.

The client speaks only the standard Matrix Client-Server API (register with
m.login.dummy, login, createRoom, join, send, sync, messages), so a scenario
can target any homeserver by ``--base-url``. Targets are loopback only, and
every count and duration a scenario accepts is checked against a ceiling
here before anything is sent.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import secrets
import statistics
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx
import trio

from tools.bench.http import BenchError, loopback_target
from tools.bench.matrix_client import V3, percentile

__all__ = [
    "V3",
    "BenchError",
    "Client",
    "MatrixError",
    "Session",
    "add_base_url",
    "check_range",
    "gather_bounded",
    "kib_per_connection",
    "loopback_target",
    "parse_status",
    "percentile",
    "raise_fd_limit",
    "read_rss_kib",
    "run_main",
    "summary_ms",
]


def summary_ms(samples: Sequence[float]) -> dict[str, float]:
    """count/p50/p95/p99/max/mean of durations given in seconds, in milliseconds."""
    ordered = sorted(samples)
    if not ordered:
        nan = math.nan
        return {"count": 0, "p50": nan, "p95": nan, "p99": nan, "max": nan, "mean": nan}
    return {
        "count": len(ordered),
        "p50": round(percentile(ordered, 0.50) * 1000, 3),
        "p95": round(percentile(ordered, 0.95) * 1000, 3),
        "p99": round(percentile(ordered, 0.99) * 1000, 3),
        "max": round(ordered[-1] * 1000, 3),
        "mean": round(statistics.fmean(ordered) * 1000, 3),
    }


def check_range(name: str, value: float, low: float, high: float) -> None:
    """Refuse a count or duration outside [low, high] with a message naming the flag."""
    if not low <= value <= high:
        raise BenchError(f"--{name.replace('_', '-')} must be in {low:g}..{high:g}, got {value:g}")


def raise_fd_limit(wanted: int) -> int:
    """Raise RLIMIT_NOFILE's soft limit towards the hard limit; returns the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, wanted)
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def parse_status(text: str) -> dict[str, int]:
    """VmRSS and VmHWM (KiB) from the text of a /proc/PID/status file."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields = rest.split()
            if len(fields) == 2 and fields[1] == "kB" and fields[0].isdigit():
                values[key] = int(fields[0])
    return values


def read_rss_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (KiB) of a local process, from /proc/PID/status."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        return parse_status(status.read())


def kib_per_connection(before_kib: int, held_kib: int, connections: int) -> float:
    """The server's resident memory grown per held connection (0 connections: 0)."""
    if connections <= 0:
        return 0.0
    return round((held_kib - before_kib) / connections, 2)


class MatrixError(RuntimeError):
    """A homeserver answered something other than 200."""


class Session:
    """One logged-in device: its access token and the requests a benchmark makes."""

    def __init__(self, http: httpx.AsyncClient, user_id: str, token: str) -> None:
        self.http = http
        self.user_id = user_id
        self.access_token = token
        self.headers = {"Authorization": f"Bearer {token}"}
        self._txn = 0
        self._prefix = secrets.token_hex(3)

    async def request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = await self.http.request(method, path, headers=self.headers, **kwargs)
        if response.status_code != 200:
            raise MatrixError(f"{method} {path}: {response.status_code} {response.text[:200]}")
        body: dict[str, Any] = response.json()
        return body

    async def create_room(self, name: str | None = None) -> str:
        content: dict[str, Any] = {"preset": "public_chat"}
        if name:
            content["name"] = name
        body = await self.request("POST", f"{V3}/createRoom", json=content)
        return str(body["room_id"])

    async def join(self, room_id: str) -> None:
        await self.request("POST", f"{V3}/join/{room_id}", json={})

    async def send(self, room_id: str, text: str) -> str:
        self._txn += 1
        body = await self.request(
            "PUT",
            f"{V3}/rooms/{room_id}/send/m.room.message/b{self._prefix}{self._txn}",
            json={"msgtype": "m.text", "body": text},
        )
        return str(body["event_id"])

    async def sync(
        self, since: str | None = None, timeout_ms: int = 0, *, timeline_limit: int = 10
    ) -> dict[str, Any]:
        params = {
            "timeout": str(timeout_ms),
            "filter": json.dumps({"room": {"timeline": {"limit": timeline_limit}}}),
        }
        if since is not None:
            params["since"] = since
        return await self.request("GET", f"{V3}/sync", params=params)

    async def messages(self, room_id: str, from_token: str, limit: int = 100) -> dict[str, Any]:
        params = {"from": from_token, "dir": "b", "limit": str(limit)}
        return await self.request("GET", f"{V3}/rooms/{room_id}/messages", params=params)


class Client:
    """An httpx client with a pool of ``connections`` sockets to one loopback homeserver."""

    def __init__(self, base_url: str, *, connections: int = 16, timeout: float = 120.0) -> None:
        loopback_target(base_url)
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self.http = httpx.AsyncClient(base_url=base_url, timeout=timeout, limits=limits)
        self.password = secrets.token_hex(10)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()

    async def register(self, prefix: str = "bench") -> Session:
        name = f"{prefix}{secrets.token_hex(5)}"
        response = await self.http.post(
            f"{V3}/register",
            json={
                "username": name,
                "password": self.password,
                "auth": {"type": "m.login.dummy"},
                "initial_device_display_name": "plait-bench",
            },
        )
        if response.status_code == 401:  # a UIA round first (Synapse wants the session back)
            session = response.json().get("session")
            response = await self.http.post(
                f"{V3}/register",
                json={
                    "username": name,
                    "password": self.password,
                    "auth": {"type": "m.login.dummy", "session": session},
                },
            )
        if response.status_code != 200:
            raise MatrixError(f"register: {response.status_code} {response.text[:200]}")
        body = response.json()
        return Session(self.http, body["user_id"], body["access_token"])

    async def login(self, user_id: str) -> Session:
        body = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user_id},
            "password": self.password,
        }
        response = await self.http.post(f"{V3}/login", json=body)
        if response.status_code != 200:
            raise MatrixError(f"login: {response.status_code} {response.text[:200]}")
        data = response.json()
        return Session(self.http, data["user_id"], data["access_token"])

    async def register_many(self, count: int, prefix: str, concurrency: int = 8) -> list[Session]:
        """``count`` new users, ``concurrency`` registrations in flight at a time."""
        sessions: list[Session] = []
        limiter = trio.CapacityLimiter(max(1, concurrency))

        async def one() -> None:
            async with limiter:
                sessions.append(await self.register(prefix))

        async with trio.open_nursery() as nursery:
            for _ in range(count):
                nursery.start_soon(one)
        return sessions


async def gather_bounded(jobs: Sequence[Callable[[], Awaitable[object]]], concurrency: int) -> None:
    """Run ``jobs`` with at most ``concurrency`` in flight."""
    limiter = trio.CapacityLimiter(max(1, concurrency))

    async def one(job: Callable[[], Awaitable[object]]) -> None:
        async with limiter:
            await job()

    async with trio.open_nursery() as nursery:
        for job in jobs:
            nursery.start_soon(one, job)


def add_base_url(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base-url", default="http://127.0.0.1:8008", help="loopback only")
    parser.add_argument("--json", metavar="FILE", help="also write the result as JSON")


def run_main(
    name: str,
    args: argparse.Namespace,
    scenario: Callable[[], Awaitable[dict[str, Any]]],
) -> int:
    """Run one scenario under trio; print its result (JSON); 2 on refusal, 1 on failure."""
    try:
        loopback_target(args.base_url)
        result = trio.run(scenario)
    except BenchError as exc:
        print(f"plait bench {name}: {exc}", file=sys.stderr)
        return 2
    except (MatrixError, httpx.HTTPError, OSError) as exc:
        print(f"plait bench {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    if getattr(args, "json", None):
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(result, out, indent=2)
            out.write("\n")
    return 0


async def bench_get(
    base_url: str,
    *,
    connections: int = 20,
    duration: float = 3.0,
    path: str = "/_matrix/client/versions",
    max_requests: int = 1_000_000,
) -> dict[str, Any]:
    """``GET path`` over ``connections`` keep-alive httpx connections for ``duration`` seconds.

    The same shape as ``tools.bench.http.bench_http``, but through httpx, which
    reads any framing (Synapse answers chunked; the raw generator wants
    Content-Length). Slower per request on the client side, so compare servers
    with the same client.
    """
    check_range("connections", connections, 1, 2000)
    check_range("duration", duration, 0.1, 300.0)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors: dict[str, int] = {}
    budget = [max_requests]
    async with Client(base_url, connections=connections, timeout=30.0) as client:

        async def worker() -> None:
            while budget[0] > 0:
                budget[0] -= 1
                started = trio.current_time()
                try:
                    response = await client.http.get(path)
                except httpx.HTTPError as exc:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                    continue
                latencies.append(trio.current_time() - started)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        started = trio.current_time()
        with trio.move_on_after(duration):
            async with trio.open_nursery() as nursery:
                for _ in range(connections):
                    nursery.start_soon(worker)
        elapsed = trio.current_time() - started
    ok = sum(n for status, n in statuses.items() if 200 <= status < 300)
    summary = summary_ms(latencies)
    return {
        "target": f"{base_url}{path}",
        "client": "httpx",
        "connections": connections,
        "duration_s": round(elapsed, 3),
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / elapsed, 1) if elapsed > 0 else 0.0,
        "latency_ms": {k: summary[k] for k in ("p50", "p95", "p99", "max")},
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": sum(errors.values()) + len(latencies) - ok,
        "error_kinds": errors,
    }
