"""One conformance suite for every blob store backend (local disk, memory; S3 later).

A new backend passes when it is added to ``BACKENDS`` and this file is green.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import trio

from homeserver.media.store import (
    CHUNK_SIZE,
    BlobNotFound,
    BlobStore,
    BlobTooLarge,
    LocalDiskStore,
    MemoryStore,
)

BACKENDS: dict[str, Callable[[Path], BlobStore]] = {
    "local_disk": lambda tmp: LocalDiskStore(tmp / "media"),
    "memory": lambda tmp: MemoryStore(),
}


@pytest.fixture(params=sorted(BACKENDS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    return BACKENDS[request.param](tmp_path)


async def chunks(data: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


async def read_all(store: BlobStore, sha256: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([c async for c in store.open_range(sha256, start, end)])


async def test_put_returns_sha256_and_size(store: BlobStore) -> None:
    data = bytes(range(256)) * 2000  # spans several internal chunks
    blob = await store.put(chunks(data, 777))
    assert blob.sha256 == hashlib.sha256(data).hexdigest()
    assert blob.size == len(data)
    assert await store.exists(blob.sha256)
    assert await read_all(store, blob.sha256) == data


async def test_empty_blob(store: BlobStore) -> None:
    blob = await store.put(chunks(b""))
    assert blob.size == 0
    assert blob.sha256 == hashlib.sha256(b"").hexdigest()
    assert await read_all(store, blob.sha256) == b""


@pytest.mark.parametrize(
    ("start", "end"), [(0, 10), (5, 6), (CHUNK_SIZE - 3, CHUNK_SIZE + 3), (100, None), (0, 10**9)]
)
async def test_ranges(store: BlobStore, start: int, end: int | None) -> None:
    data = bytes(i % 251 for i in range(CHUNK_SIZE * 2 + 17))
    blob = await store.put(chunks(data, 4096))
    assert await read_all(store, blob.sha256, start, end) == data[start:end]


async def test_identical_content_has_one_name(store: BlobStore) -> None:
    a = await store.put(chunks(b"same" * 100, 7))
    b = await store.put(chunks(b"same" * 100, 100))
    assert a == b
    assert await read_all(store, a.sha256) == b"same" * 100


async def test_size_limit_is_enforced_while_streaming(store: BlobStore, tmp_path: Path) -> None:
    produced = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal produced
        while True:
            produced += 1000
            yield b"x" * 1000

    with pytest.raises(BlobTooLarge):
        await store.put(endless(), max_size=50_000)
    # It stopped reading soon after the limit, and left nothing behind.
    assert produced <= 50_000 + CHUNK_SIZE + 1000
    assert not await store.exists(hashlib.sha256(b"x" * 50_000).hexdigest())
    leftovers = files_under(tmp_path)
    assert leftovers == []
    # Exactly at the limit is fine.
    blob = await store.put(chunks(b"y" * 50_000), max_size=50_000)
    assert blob.size == 50_000


async def test_failed_stream_leaves_nothing(store: BlobStore, tmp_path: Path) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"a" * 10_000
        raise ConnectionError("client went away")

    with pytest.raises(ConnectionError):
        await store.put(broken())
    assert files_under(tmp_path) == []


async def test_cancelled_stream_leaves_nothing(store: BlobStore, tmp_path: Path) -> None:
    async def slow() -> AsyncIterator[bytes]:
        yield b"a" * 10_000
        await trio.sleep_forever()
        yield b""  # pragma: no cover

    with trio.move_on_after(0.1):
        await store.put(slow())
    assert files_under(tmp_path) == []


async def test_delete(store: BlobStore) -> None:
    blob = await store.put(chunks(b"gone soon"))
    await store.delete(blob.sha256)
    assert not await store.exists(blob.sha256)
    with pytest.raises(BlobNotFound):
        await read_all(store, blob.sha256)
    await store.delete(blob.sha256)  # idempotent


async def test_missing_blob(store: BlobStore) -> None:
    missing = "0" * 64
    assert not await store.exists(missing)
    with pytest.raises(BlobNotFound):
        await read_all(store, missing)


@pytest.mark.parametrize("name", ["../../etc/passwd", "ABC", "a" * 63, "g" * 64, ""])
async def test_names_other_than_sha256_are_refused(store: BlobStore, name: str) -> None:
    with pytest.raises(ValueError):
        await store.exists(name)
    with pytest.raises(ValueError):
        await store.delete(name)


async def test_local_disk_layout_and_temporary_cleanup(tmp_path: Path) -> None:
    store = LocalDiskStore(tmp_path / "media")
    blob = await store.put(chunks(b"layout"))
    path = store.path_for(blob.sha256)
    assert path == tmp_path / "media" / blob.sha256[:2] / blob.sha256[2:4] / blob.sha256
    assert path.read_bytes() == b"layout"
    # A write that crashed mid-way leaves a temporary file; it is cleared once
    # it is stale (a recent one may be another worker's live write).
    tmp_dir = tmp_path / "media" / "tmp"
    (tmp_dir / "crashed").write_bytes(b"partial")
    (tmp_dir / "live").write_bytes(b"partial")
    os.utime(tmp_dir / "crashed", (0, 0))
    assert store.clear_temporary(older_than_s=3600) == 1
    assert [p.name for p in tmp_dir.iterdir()] == ["live"]
    assert store.clear_temporary() == 1
    assert list(tmp_dir.iterdir()) == []
    assert path.exists()


async def test_local_disk_sweeps_stale_temporaries_on_first_write(tmp_path: Path) -> None:
    tmp_dir = tmp_path / "media" / "tmp"
    tmp_dir.mkdir(parents=True)
    (tmp_dir / "crashed").write_bytes(b"partial")
    os.utime(tmp_dir / "crashed", (0, 0))
    store = LocalDiskStore(tmp_path / "media")
    await store.put(chunks(b"first"))
    assert files_under(tmp_dir) == []
