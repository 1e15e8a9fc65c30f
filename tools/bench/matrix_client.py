"""The small Client-Server API client the delivery and throughput benchmarks share.

Standard endpoints only (register with m.login.dummy, createRoom, join, send,
sync), over httpx on trio, to loopback servers only.
"""

from __future__ import annotations

import math
import secrets
from typing import Any

import httpx

from tools.bench.http import loopback_target

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
        params = {"timeout": str(timeout_ms), "filter": '{"room":{"timeline":{"limit":1000}}}'}
        if since is not None:
            params["since"] = since
        return await self.request("GET", f"{V3}/sync", params=params)


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
