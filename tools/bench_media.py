"""Benchmark the media repository: upload and download MB/s, thumbnail time, server memory.

The homeserver runs in a child process (so client and server do not share one
event loop) on 127.0.0.1 with a throwaway data directory; the client speaks
HTTP/1.1 with h11 over raw trio sockets, streaming bodies both ways, so the
numbers are the server's. Server memory is its peak RSS (VmHWM) from /proc.

    python -m tools.bench_media --size-mib 200 --rounds 3
    python -m tools.bench_media --database-url postgresql://root@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import h11
import trio

MIB = 1024 * 1024
CHUNK = MIB


# -- the server, in a child process --------------------------------------------


def serve_child(data_dir: str, database_url: str, max_upload: int) -> None:
    """Run the homeserver and print its port on stdout (one line), until killed."""
    from homeserver.config import load_config
    from tools.serve import run_homeserver

    config = load_config(
        env={},
        overrides={
            "server_name": "bench.example",
            "listen": "127.0.0.1:0",
            "data_dir": data_dir,
            "database_url": database_url,
            "registration": "open",
            "rate_limits": {"enabled": False},
            "media": {"max_upload_size": max_upload},
            "log_level": "WARNING",
        },
    )

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            running: Any = await nursery.start(run_homeserver, config)
            print(running.port, flush=True)

    trio.run(main)


def peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def current_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# -- a minimal streaming HTTP/1.1 client -----------------------------------------


async def http(
    port: int,
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: AsyncIterator[bytes] | bytes = b"",
    length: int | None = None,
) -> tuple[int, bytes, int]:
    """One request on a fresh connection: (status, body if small, body length)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    conn = h11.Connection(h11.CLIENT)
    try:
        all_headers = [("Host", f"127.0.0.1:{port}"), *headers]
        if isinstance(body, bytes):
            all_headers.append(("Content-Length", str(len(body))))
        else:
            assert length is not None
            all_headers.append(("Content-Length", str(length)))
        await stream.send_all(
            conn.send(h11.Request(method=method, target=target, headers=all_headers))
        )
        if isinstance(body, bytes):
            if body:
                await stream.send_all(conn.send(h11.Data(data=body)))
        else:
            async for chunk in body:
                await stream.send_all(conn.send(h11.Data(data=chunk)))
        await stream.send_all(conn.send(h11.EndOfMessage()))
        status = 0
        kept = bytearray()
        received = 0
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await stream.receive_some(256 * 1024))
                continue
            if isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                received += len(event.data)
                if len(kept) < MIB:
                    kept += event.data
            elif isinstance(event, h11.EndOfMessage):
                return status, bytes(kept), received
    finally:
        await stream.aclose()


async def register(port: int) -> str:
    body = json.dumps(
        {"username": "bench", "password": "bench password", "auth": {"type": "m.login.dummy"}}
    ).encode()
    status, data, _ = await http(
        port, "POST", "/_matrix/client/v3/register", [("Content-Type", "application/json")], body
    )
    assert status == 200, data
    token: str = json.loads(data)["access_token"]
    return token


async def chunks(size: int, seed: int) -> AsyncIterator[bytes]:
    block = bytearray(os.urandom(CHUNK))
    for i in range(size // CHUNK):
        block[:8] = (seed * 100_000 + i).to_bytes(8, "big")  # no two uploads dedupe
        yield bytes(block)


def jpeg(width: int, height: int) -> bytes:
    from PIL import Image

    img = Image.radial_gradient("L").resize((width, height)).convert("RGB")
    out = io.BytesIO()
    img.save(out, "JPEG", quality=90)
    return out.getvalue()


async def run(port: int, pid: int, size_mib: int, rounds: int) -> dict[str, Any]:
    token = await register(port)
    auth = [("Authorization", f"Bearer {token}")]
    size = size_mib * MIB
    results: dict[str, Any] = {"size_mib": size_mib, "rounds": rounds}
    # Registration hashes a password with argon2 (64 MiB by default): take the
    # peak before any upload as the baseline, so the growth is the media's.
    rss_idle = current_rss_mib(pid)
    peak_before = peak_rss_mib(pid)
    up: list[float] = []
    down: list[float] = []
    for r in range(rounds):
        start = time.perf_counter()
        status, data, _ = await http(
            port,
            "POST",
            "/_matrix/media/v3/upload?filename=big.bin",
            [*auth, ("Content-Type", "application/octet-stream")],
            chunks(size, r),
            size,
        )
        up.append(size / MIB / (time.perf_counter() - start))
        assert status == 200, data
        media = json.loads(data)["content_uri"][len("mxc://") :]
        start = time.perf_counter()
        status, _, received = await http(
            port, "GET", f"/_matrix/client/v1/media/download/{media}", auth
        )
        down.append(size / MIB / (time.perf_counter() - start))
        assert status == 200 and received == size, (status, received)
    results["upload_mb_s"] = round(statistics.median(up), 1)
    results["download_mb_s"] = round(statistics.median(down), 1)
    results["server_rss_idle_mib"] = round(rss_idle, 1)
    results["server_peak_rss_before_uploads_mib"] = round(peak_before, 1)
    results["server_peak_rss_after_uploads_mib"] = round(peak_rss_mib(pid), 1)

    for width, height in ((4000, 3000), (1920, 1080)):
        source = jpeg(width, height)
        status, data, _ = await http(
            port,
            "POST",
            "/_matrix/media/v3/upload",
            [*auth, ("Content-Type", "image/jpeg")],
            source,
        )
        assert status == 200, data
        media = json.loads(data)["content_uri"][len("mxc://") :]
        cold: list[float] = []
        for w, h, method in (
            (32, 32, "crop"),
            (96, 96, "crop"),
            (320, 240, "scale"),
            (800, 600, "scale"),
        ):
            target = (
                f"/_matrix/client/v1/media/thumbnail/{media}?width={w}&height={h}&method={method}"
            )
            start = time.perf_counter()
            status, data, _ = await http(port, "GET", target, auth)
            cold.append((time.perf_counter() - start) * 1000)
            assert status == 200, data
        start = time.perf_counter()
        for _ in range(20):
            status, _, _ = await http(port, "GET", target, auth)
        cached_ms = (time.perf_counter() - start) * 1000 / 20
        results[f"thumbnail_{width}x{height}_cold_ms"] = [round(x, 1) for x in cold]
        results[f"thumbnail_{width}x{height}_cached_ms"] = round(cached_ms, 2)
    results["server_peak_rss_after_thumbnails_mib"] = round(peak_rss_mib(pid), 1)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default="", help="default: SQLite in the temp directory")
    parser.add_argument("--serve-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_child:
        serve_child(args.serve_child[0], args.serve_child[1], int(args.serve_child[2]))
        return 0
    with tempfile.TemporaryDirectory(prefix="plait-bench-media-") as tmp:
        database_url = args.database_url or f"sqlite:///{Path(tmp) / 'plait.db'}"
        if database_url.startswith("postgresql"):
            from homeserver.storage.database import with_search_path

            schema = f"bench_media_{os.getpid()}"
            import psycopg

            with psycopg.connect(database_url, autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA "{schema}"')
            database_url = with_search_path(database_url, schema)
        else:
            schema = ""
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tools.bench_media",
                "--serve-child",
                tmp,
                database_url,
                str((args.size_mib + 1) * MIB),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout is not None
            port = int(child.stdout.readline())
            results = trio.run(run, port, child.pid, args.size_mib, args.rounds)
            results["database"] = "postgresql" if schema else "sqlite"
            print(json.dumps(results, indent=2))
        finally:
            child.terminate()
            child.wait(timeout=30)
            if schema:
                import psycopg

                with psycopg.connect(args.database_url, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
