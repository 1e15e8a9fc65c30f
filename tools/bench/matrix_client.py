"""The small Client-Server API client the delivery and throughput benchmarks share.

Standard endpoints only (register with m.login.dummy, createRoom, join, send,
sync), over httpx on trio, to loopback servers only; and ``RawLongPoll``, a
minimal client for the /sync long-polls whose arrival times are measured.
"""

from __future__ import annotations

import json
import math
import secrets
from typing import Any, Protocol
from urllib.parse import urlencode

import httpx
import trio

from tools.bench.http import loopback_target, read_response

V3 = "/_matrix/client/v3"


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return math.nan
    index = min(len(sorted_values) - 1, max(0, math.ceil(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


def summary_ms(samples: list[float]) -> dict[str, float]:
    """p50/p95/p99/max of latencies given in seconds, in milliseconds."""
    ordered = sorted(samples)
    return {
        "count": float(len(ordered)),
        "p50_ms": round(percentile(ordered, 0.50) * 1000, 2),
        "p95_ms": round(percentile(ordered, 0.95) * 1000, 2),
        "p99_ms": round(percentile(ordered, 0.99) * 1000, 2),
        "max_ms": round((ordered[-1] if ordered else math.nan) * 1000, 2),
    }


def open_client(base_url: str, connections: int) -> httpx.AsyncClient:
    loopback_target(base_url)  # refuses anything but 127.0.0.1 / ::1
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=base_url, timeout=120.0, limits=limits)


class User:
    def __init__(self, client: httpx.AsyncClient, user_id: str, token: str) -> None:
        self.client = client
        self.user_id = user_id
        self.access_token = token
        self.headers = {"Authorization": f"Bearer {token}"}
        self._txn = 0

    async def request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = await self.client.request(method, path, headers=self.headers, **kwargs)
        if response.status_code != 200:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:200]}")
        body: dict[str, Any] = response.json()
        return body

    async def create_room(self) -> str:
        body = await self.request("POST", f"{V3}/createRoom", json={"preset": "public_chat"})
        return str(body["room_id"])

    async def join(self, room_id: str) -> None:
        await self.request("POST", f"{V3}/rooms/{room_id}/join", json={})

    async def send(self, room_id: str, text: str) -> str:
        self._txn += 1
        body = await self.request(
            "PUT",
            f"{V3}/rooms/{room_id}/send/m.room.message/bench{self._txn}",
            json={"msgtype": "m.text", "body": text},
        )
        return str(body["event_id"])

    async def sync(self, since: str | None, timeout_ms: int) -> dict[str, Any]:
        return await self.request("GET", f"{V3}/sync", params=sync_params(since, timeout_ms))


class Sender(Protocol):
    async def send(self, room_id: str, text: str) -> str: ...


async def send_numbered(
    sender: Sender, room_id: str, count: int, gap: float, sent_at: dict[str, float]
) -> None:
    """Send "bench 0" to "bench {count - 1}", ``gap`` seconds apart; note when each
    send started (the trio clock) in ``sent_at``."""
    for n in range(count):
        text = f"bench {n}"
        sent_at[text] = trio.current_time()
        await sender.send(room_id, text)
        await trio.sleep(gap)


SYNC_FILTER = '{"room":{"timeline":{"limit":1000}}}'


def sync_params(
    since: str | None, timeout_ms: int, sync_filter: str = SYNC_FILTER
) -> dict[str, str]:
    params = {"timeout": str(timeout_ms), "filter": sync_filter}
    if since is not None:
        params["since"] = since
    return params


class RawLongPoll:
    """``/sync`` over one keep-alive connection with the raw client of ``plait bench http``.

    A latency sample ends when a receiver has the response, so the receiving
    side should cost as little as it can: through httpx, the benchmark's one
    process spent about 0.3 ms of CPU per response (parsing it and building the
    next request), and with K receivers woken together the last one's sample
    included the others' (measured: a few milliseconds at K = 10, on both
    servers alike). This client reads the bytes (Content-Length or chunked),
    notes the time, and only then decodes the JSON.
    """

    def __init__(self, base_url: str, access_token: str, *, timeline_limit: int = 1000) -> None:
        self.host, self.port = loopback_target(base_url)
        self._filter = json.dumps({"room": {"timeline": {"limit": timeline_limit}}})
        self._head = (
            f"Host: {self.host}:{self.port}\r\nAuthorization: Bearer {access_token}\r\n"
            "User-Agent: plait-bench\r\n\r\n"
        )
        self._stream: trio.SocketStream | None = None
        self._buffer = bytearray()

    async def sync(self, since: str | None, timeout_ms: int) -> tuple[float, dict[str, Any]]:
        """(when the whole response had arrived, on the trio clock; its JSON body)."""
        request = (
            f"GET {V3}/sync?{urlencode(sync_params(since, timeout_ms, self._filter))} HTTP/1.1\r\n"
            f"{self._head}"
        ).encode("ascii")
        for attempt in range(2):
            if self._stream is None:
                self._stream = await trio.open_tcp_stream(self.host, self.port)
                self._buffer.clear()
            body = bytearray()
            try:
                await self._stream.send_all(request)
                status = await read_response(self._stream, self._buffer, body)
            except (ConnectionError, trio.BrokenResourceError, OSError):
                # The server closed the kept-alive connection: one new one.
                await self.aclose()
                if attempt:
                    raise
                continue
            arrived = trio.current_time()
            if status != 200:
                raise RuntimeError(f"GET /sync: {status} {bytes(body[:200])!r}")
            decoded: dict[str, Any] = json.loads(body)
            return arrived, decoded
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            await trio.aclose_forcefully(stream)


async def register(client: httpx.AsyncClient, prefix: str) -> User:
    name = f"{prefix}{secrets.token_hex(4)}"
    response = await client.post(
        f"{V3}/register",
        json={
            "username": name,
            "password": secrets.token_hex(12),
            "auth": {"type": "m.login.dummy"},
        },
    )
    if response.status_code != 200:
        raise RuntimeError(f"register: {response.status_code} {response.text[:200]}")
    body = response.json()
    return User(client, body["user_id"], body["access_token"])
