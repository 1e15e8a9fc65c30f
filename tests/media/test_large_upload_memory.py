"""A 200 MiB upload and download stream through the server with flat memory.

The server runs in this test process, so this process's resident set size is
the server's (plus the client's, which streams too). It is sampled at every
chunk; the growth over the baseline must stay far below the file size. Part of
``make test`` on purpose: a change that buffers bodies fails here.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import httpx
import pytest
from media_helpers import media_path

MIB = 1024 * 1024
SIZE = 200 * MIB
CHUNK = MIB
# Generous: Python's allocator, thread stacks and socket buffers all count.
MAX_GROWTH = 64 * MIB


def rss_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.mark.server_config(media={"max_upload_size": 256 * MIB})
async def test_200_mib_upload_and_download_keep_memory_flat(alice: httpx.AsyncClient) -> None:
    block = bytes(range(256)) * (CHUNK // 256)
    expected = hashlib.sha256()
    samples: list[int] = []
    baseline = rss_bytes()

    async def body() -> AsyncIterator[bytes]:
        for i in range(SIZE // CHUNK):
            # Vary each chunk so nothing upstream could deduplicate or compress it away.
            chunk = i.to_bytes(4, "big") + block[4:]
            expected.update(chunk)
            samples.append(rss_bytes())
            yield chunk

    r = await alice.post(
        "/_matrix/media/v3/upload",
        content=body(),
        headers={"Content-Type": "application/octet-stream"},
        params={"filename": "big.bin"},
    )
    assert r.status_code == 200, r.text
    upload_growth = max(samples) - baseline
    assert upload_growth < MAX_GROWTH, f"RSS grew by {upload_growth / MIB:.1f} MiB during upload"

    samples.clear()
    got = hashlib.sha256()
    received = 0
    async with alice.stream("GET", media_path(r.json()["content_uri"])) as response:
        assert response.status_code == 200
        assert response.headers["content-length"] == str(SIZE)
        async for chunk in response.aiter_raw():
            got.update(chunk)
            received += len(chunk)
            if received % (4 * MIB) < len(chunk):
                samples.append(rss_bytes())
    assert received == SIZE
    assert got.hexdigest() == expected.hexdigest()
    download_growth = max(samples) - baseline
    assert download_growth < MAX_GROWTH, (
        f"RSS grew by {download_growth / MIB:.1f} MiB during download"
    )
