"""A keep-alive HTTP/1.1 load generator on raw trio sockets: ``plait bench http``.

Each connection sends one request, reads the whole response, records the
latency and sends the next (no pipelining, like ``wrk``). The parser only does
what a benchmark needs (status, and the framing: Content-Length, which Plait
sends, or chunked, which Synapse's Twisted sends for small JSON), so the
generator costs as little CPU as possible and measures both servers alike.
On a two-core machine it still competes with the server, so compare with
``wrk`` when the number matters.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import math
import socket
import sys
import time
from typing import Any
from urllib.parse import urlsplit

import trio

MAX_DURATION = 300.0
MAX_CONNECTIONS = 2000
MAX_HEAD = 65536


class BenchError(ValueError):
    """The benchmark was asked to do something it will not do."""


def loopback_target(base_url: str) -> tuple[str, int]:
    """(host, port) of ``base_url``, refusing anything that is not loopback."""
    parts = urlsplit(base_url)
    if parts.scheme != "http":
        raise BenchError(f"only http:// targets are supported, got {base_url!r}")
    host = parts.hostname or ""
    port = parts.port or 80
    if host == "localhost":
        host = "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise BenchError(f"refusing non-loopback target {base_url!r}: use 127.0.0.1") from None
    if not address.is_loopback:
        raise BenchError(f"refusing non-loopback target {base_url!r}: load tests stay local")
    return host, port


def _percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return math.nan
    index = min(len(sorted_values) - 1, max(0, math.ceil(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


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


async def read_response(
    stream: trio.SocketStream, buffer: bytearray, body: bytearray | None = None
) -> int:
    """Read one response (Content-Length or chunked) from ``stream``; returns the status.

    The body is skipped, or appended to ``body`` when one is given.
    """
    end = await _find(stream, buffer, b"\r\n\r\n", 0)
    head = bytes(buffer[:end]).lower()
    status = int(head[9:12])
    del buffer[: end + 4]
    marker = head.find(b"content-length:")
    if marker != -1:
        line_end = head.find(b"\r\n", marker)
        length = int(head[marker + 15 : line_end if line_end != -1 else len(head)])
        await _fill(stream, buffer, length)
        if body is not None:
            body += buffer[:length]
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
        if body is not None:
            body += buffer[:size]
        del buffer[: size + 2]


async def bench_http(
    base_url: str,
    *,
    connections: int = 50,
    duration: float = 5.0,
    path: str = "/_matrix/client/versions",
    max_requests: int = 10_000_000,
) -> dict[str, Any]:
    """Hammer ``GET path`` for ``duration`` seconds over ``connections`` keep-alive sockets."""
    host, port = loopback_target(base_url)
    if not 1 <= connections <= MAX_CONNECTIONS:
        raise BenchError(f"connections must be 1..{MAX_CONNECTIONS}")
    if not 0 < duration <= MAX_DURATION:
        raise BenchError(f"duration must be in (0, {MAX_DURATION}] seconds")
    if not path.startswith("/"):
        raise BenchError("path must start with '/'")
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: plait-bench\r\n\r\n"
    payload = request.encode("ascii")
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors: dict[str, int] = {}
    budget = [max_requests]

    async def worker() -> None:
        buffer = bytearray()
        stream: trio.SocketStream | None = None
        clock = time.perf_counter
        record = latencies.append
        try:
            while budget[0] > 0:
                budget[0] -= 1
                if stream is None:
                    stream = await trio.open_tcp_stream(host, port)
                    buffer.clear()
                started = clock()
                try:
                    await stream.send_all(payload)
                    status = await read_response(stream, buffer)
                except (ConnectionError, trio.BrokenResourceError, OSError, ValueError) as exc:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                    await trio.aclose_forcefully(stream)
                    stream = None
                    continue
                record(clock() - started)
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
    latencies.sort()
    ok = sum(count for status, count in statuses.items() if 200 <= status < 300)
    non_2xx = sum(statuses.values()) - ok
    return {
        "target": f"http://{host}:{port}{path}",
        "connections": connections,
        "duration_s": round(elapsed, 3),
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / elapsed, 1) if elapsed > 0 else 0.0,
        "latency_ms": {
            "p50": round(_percentile(latencies, 0.50) * 1000, 3),
            "p95": round(_percentile(latencies, 0.95) * 1000, 3),
            "p99": round(_percentile(latencies, 0.99) * 1000, 3),
            "max": round(latencies[-1] * 1000, 3) if latencies else math.nan,
        },
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": sum(errors.values()) + non_2xx,
        "error_kinds": errors,
    }


def format_table(result: dict[str, Any]) -> str:
    latency = result["latency_ms"]
    rows = [
        ("target", result["target"]),
        ("connections", str(result["connections"])),
        ("duration", f"{result['duration_s']:.2f} s"),
        ("requests", str(result["requests"])),
        ("requests/s", f"{result['requests_per_s']:.0f}"),
        ("latency p50", f"{latency['p50']:.2f} ms"),
        ("latency p95", f"{latency['p95']:.2f} ms"),
        ("latency p99", f"{latency['p99']:.2f} ms"),
        ("latency max", f"{latency['max']:.2f} ms"),
        ("errors", str(result["errors"])),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="plait bench http", description=__doc__.split("\n")[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8008")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--path", default="/_matrix/client/versions")
    parser.add_argument("--json", metavar="FILE", help="also write the result as JSON")
    args = parser.parse_args(argv)
    try:
        result = trio.run(
            lambda: bench_http(
                args.base_url,
                connections=args.connections,
                duration=args.duration,
                path=args.path,
            )
        )
    except BenchError as exc:
        print(f"plait bench http: {exc}", file=sys.stderr)
        return 2
    except (OSError, socket.gaierror) as exc:
        print(f"plait bench http: cannot reach {args.base_url}: {exc}", file=sys.stderr)
        return 1
    print(format_table(result))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(result, out, indent=2)
            out.write("\n")
    return 0 if result["requests"] and not result["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
