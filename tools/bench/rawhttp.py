"""The raw keep-alive GET generator of ``tools.bench.http``, also reading chunked answers.

``tools.bench.http`` frames responses by Content-Length only, which Plait
sends; Synapse (Twisted) answers small JSON chunked. This reader takes either
framing, so ``make bench-compare`` measures both servers with the same cheap
client (httpx costs the client more CPU than the servers spend on the request).
"""

from __future__ import annotations

import time
from typing import Any

import trio

from tools.bench.common import check_range, summary_ms
from tools.bench.http import loopback_target

MAX_HEAD = 65536


async def _fill(stream: trio.SocketStream, buffer: bytearray, size: int) -> None:
    while len(buffer) < size:
        chunk = await stream.receive_some(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        buffer += chunk


async def _find(stream: trio.SocketStream, buffer: bytearray, marker: bytes, start: int) -> int:
    while (index := buffer.find(marker, start)) == -1:
        if len(buffer) > MAX_HEAD + start:
            raise ConnectionError("header or chunk line too long")
        await _fill(stream, buffer, len(buffer) + 1)
    return index


async def read_response(stream: trio.SocketStream, buffer: bytearray) -> int:
    """Read one response (Content-Length or chunked) from ``stream``; returns the status."""
    end = await _find(stream, buffer, b"\r\n\r\n", 0)
    head = bytes(buffer[:end]).lower()
    status = int(head[9:12])
    del buffer[: end + 4]
    marker = head.find(b"content-length:")
    if marker != -1:
        line_end = head.find(b"\r\n", marker)
        length = int(head[marker + 15 : line_end if line_end != -1 else len(head)])
        await _fill(stream, buffer, length)
        del buffer[:length]
        return status
    if b"transfer-encoding: chunked" not in head:
        raise ConnectionError("response with neither Content-Length nor chunked framing")
    while True:
        line_end = await _find(stream, buffer, b"\r\n", 0)
        size = int(bytes(buffer[:line_end]).split(b";")[0], 16)
        del buffer[: line_end + 2]
        if size == 0:
            trailer_end = await _find(stream, buffer, b"\r\n", 0)
            while trailer_end != 0:  # skip trailers up to the empty line
                del buffer[: trailer_end + 2]
                trailer_end = await _find(stream, buffer, b"\r\n", 0)
            del buffer[:2]
            return status
        await _fill(stream, buffer, size + 2)
        del buffer[: size + 2]


async def bench_raw(
    base_url: str,
    *,
    connections: int = 20,
    duration: float = 3.0,
    path: str = "/_matrix/client/versions",
    max_requests: int = 10_000_000,
) -> dict[str, Any]:
    """``GET path`` over ``connections`` keep-alive sockets for ``duration`` seconds."""
    host, port = loopback_target(base_url)
    check_range("connections", connections, 1, 2000)
    check_range("duration", duration, 0.1, 300.0)
    payload = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: plait-bench\r\n\r\n"
    request = payload.encode("ascii")
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors: dict[str, int] = {}
    budget = [max_requests]

    async def worker() -> None:
        buffer = bytearray()
        stream: trio.SocketStream | None = None
        try:
            while budget[0] > 0:
                budget[0] -= 1
                if stream is None:
                    stream = await trio.open_tcp_stream(host, port)
                    buffer.clear()
                started = time.perf_counter()
                try:
                    await stream.send_all(request)
                    status = await read_response(stream, buffer)
                except (ConnectionError, trio.BrokenResourceError, OSError, ValueError) as exc:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                    await trio.aclose_forcefully(stream)
                    stream = None
                    continue
                latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            if stream is not None:
                await trio.aclose_forcefully(stream)

    started = time.perf_counter()
    with trio.move_on_after(duration):
        async with trio.open_nursery() as nursery:
            for _ in range(connections):
                nursery.start_soon(worker)
    elapsed = time.perf_counter() - started
    ok = sum(n for status, n in statuses.items() if 200 <= status < 300)
    summary = summary_ms(latencies)
    return {
        "target": f"http://{host}:{port}{path}",
        "client": "raw",
        "connections": connections,
        "duration_s": round(elapsed, 3),
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / elapsed, 1) if elapsed > 0 else 0.0,
        "latency_ms": {k: summary[k] for k in ("p50", "p95", "p99", "max")},
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": sum(errors.values()) + len(latencies) - ok,
        "error_kinds": errors,
    }
