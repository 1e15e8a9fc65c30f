"""Where media bytes live: a small, content-addressed blob store interface.

The media service never touches files itself; it talks to a :class:`BlobStore`.
A blob is named by the SHA-256 of its bytes, so identical uploads are stored
once (the database counts references). The interface is what an S3-compatible
backend would need too: write a stream and learn its hash and size, read a
byte range, ask whether a blob exists, delete it.

Writes are streamed: the caller hands an async iterator of chunks, the store
hashes and writes each chunk as it arrives, so memory stays flat whatever the
size. A size limit is enforced while streaming (:class:`BlobTooLarge`), and a
failed or cancelled write leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Protocol

import attrs
import trio

# Read and write in chunks of this size: large enough that the per-chunk thread
# hop is cheap, small enough that memory stays flat.
CHUNK_SIZE = 256 * 1024

_STALE_TEMPORARY_S = 3600.0

# Chunks received but not yet written, at most (memory stays bounded by this).
_WRITE_QUEUE = 4

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class BlobTooLarge(Exception):
    """The stream passed the size limit; nothing was stored."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"blob larger than {limit} bytes")
        self.limit = limit


class BlobNotFound(Exception):
    """No blob with that hash is stored."""


@attrs.frozen
class StoredBlob:
    sha256: str
    size: int


def check_sha256(sha256: str) -> str:
    """Refuse anything but a lowercase hex digest: the name becomes a path."""
    if not _SHA256_HEX.fullmatch(sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    return sha256


class BlobStore(Protocol):
    """The storage backend interface (local disk now, S3-compatible later)."""

    async def put(self, chunks: AsyncIterator[bytes], *, max_size: int | None = None) -> StoredBlob:
        """Store the stream; return its hash and size. Raises :class:`BlobTooLarge`."""
        ...

    def open_range(
        self, sha256: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """Yield bytes ``start`` to ``end`` (exclusive; None = to the end) of a blob."""
        ...

    async def exists(self, sha256: str) -> bool: ...

    async def delete(self, sha256: str) -> None:
        """Remove a blob; deleting a missing blob is not an error."""
        ...

    def local_path(self, sha256: str) -> Path | None:
        """A filesystem path for the blob if the backend has one (the thumbnailer reads it)."""
        ...


class LocalDiskStore:
    """Blobs as files under ``root``: ``root/ab/cd/abcd...`` (two-level fan-out).

    A write goes to ``root/tmp`` first and is renamed into place once hashed,
    so a reader never sees a partial blob and a crashed write leaves only a
    temporary file (cleared at start by :meth:`clear_temporary`). Identical
    content renames onto the same name, which is harmless.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        # No I/O here (constructed on the trio thread): directories are made on first write.
        self.root = Path(root)
        self._tmp = self.root / "tmp"
        self._swept = False

    def path_for(self, sha256: str) -> Path:
        check_sha256(sha256)
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def local_path(self, sha256: str) -> Path | None:
        return self.path_for(sha256)

    def clear_temporary(self, older_than_s: float = 0.0) -> int:
        """Remove files left by writes that never finished (crash, kill).

        With ``older_than_s`` only files untouched for that long go: a write in
        progress (here or in another worker sharing the directory) touches its
        file at least once per HTTP body timeout.
        """
        removed = 0
        if self._tmp.is_dir():
            cutoff = time.time() - older_than_s
            for leftover in self._tmp.iterdir():
                try:
                    if older_than_s <= 0 or leftover.stat().st_mtime < cutoff:
                        leftover.unlink()
                        removed += 1
                except FileNotFoundError:
                    pass
        return removed

    async def put(self, chunks: AsyncIterator[bytes], *, max_size: int | None = None) -> StoredBlob:
        if not self._swept:
            # Once per process: clear what crashed writes left (an hour is far
            # beyond any live write's silence), without a start-up hook.
            self._swept = True
            await trio.to_thread.run_sync(self.clear_temporary, _STALE_TEMPORARY_S)
        tmp_path = self._tmp / secrets.token_hex(16)
        digest = hashlib.sha256()
        size = 0
        f: IO[bytes] = await trio.to_thread.run_sync(_create, tmp_path)

        def hash_and_write(chunk: bytes) -> None:
            digest.update(chunk)  # releases the GIL for large buffers
            f.write(chunk)

        # The first error of either side, re-raised as itself after the nursery
        # (callers match BlobTooLarge or the HTTP layer's MatrixError, not groups).
        failure: list[Exception] = []

        async def writer(
            receive: trio.MemoryReceiveChannel[bytes], cancel: trio.CancelScope
        ) -> None:
            try:
                async with receive:
                    async for chunk in receive:
                        await trio.to_thread.run_sync(hash_and_write, chunk)
            except Exception as e:
                failure.append(e)
                cancel.cancel()

        try:
            try:
                # Receiving the next chunk overlaps with hashing and writing the
                # previous one in a thread; the channel bounds what is in flight.
                send, receive = trio.open_memory_channel[bytes](_WRITE_QUEUE)
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(writer, receive, nursery.cancel_scope)
                    async with send:
                        try:
                            async for chunk in _rechunk(chunks):
                                size += len(chunk)
                                if max_size is not None and size > max_size:
                                    raise BlobTooLarge(max_size)
                                await send.send(chunk)
                        except Exception as e:
                            failure.append(e)
                            nursery.cancel_scope.cancel()
                if failure:
                    raise failure[0]
            finally:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(f.close)
            sha256 = digest.hexdigest()
            final = self.path_for(sha256)
            await trio.to_thread.run_sync(_move_into_place, tmp_path, final)
        except BaseException:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(lambda: tmp_path.unlink(missing_ok=True))
            raise
        return StoredBlob(sha256, size)

    async def open_range(
        self, sha256: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        path = self.path_for(sha256)
        try:
            f: IO[bytes] = await trio.to_thread.run_sync(open, path, "rb")
        except FileNotFoundError:
            raise BlobNotFound(sha256) from None
        try:
            if start:
                await trio.to_thread.run_sync(f.seek, start)
            remaining = None if end is None else max(0, end - start)
            while remaining is None or remaining > 0:
                want = CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining)
                chunk = await trio.to_thread.run_sync(f.read, want)
                if not chunk:
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(f.close)

    async def exists(self, sha256: str) -> bool:
        return await trio.to_thread.run_sync(self.path_for(sha256).is_file)

    async def delete(self, sha256: str) -> None:
        path = self.path_for(sha256)
        await trio.to_thread.run_sync(lambda: path.unlink(missing_ok=True))


def _create(path: Path) -> IO[bytes]:
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, "xb")  # closed by the caller, across awaits


def _move_into_place(tmp_path: Path, final: Path) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        # Same hash, same bytes: keep the stored copy (its inode may be in use).
        tmp_path.unlink(missing_ok=True)
        return
    os.replace(tmp_path, final)


class MemoryStore:
    """Blobs in a dict: for tests of the service without a disk, and the conformance suite."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def local_path(self, sha256: str) -> Path | None:
        return None

    async def put(self, chunks: AsyncIterator[bytes], *, max_size: int | None = None) -> StoredBlob:
        digest = hashlib.sha256()
        parts: list[bytes] = []
        size = 0
        async for chunk in chunks:
            size += len(chunk)
            if max_size is not None and size > max_size:
                raise BlobTooLarge(max_size)
            digest.update(chunk)
            parts.append(chunk)
        sha256 = digest.hexdigest()
        self.blobs.setdefault(sha256, b"".join(parts))
        return StoredBlob(sha256, size)

    async def open_range(
        self, sha256: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        data = self.blobs.get(check_sha256(sha256))
        if data is None:
            raise BlobNotFound(sha256)
        view = data[start:end]
        for i in range(0, len(view), CHUNK_SIZE):
            yield view[i : i + CHUNK_SIZE]

    async def exists(self, sha256: str) -> bool:
        return check_sha256(sha256) in self.blobs

    async def delete(self, sha256: str) -> None:
        self.blobs.pop(check_sha256(sha256), None)


async def _rechunk(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Coalesce tiny network reads into ``CHUNK_SIZE`` writes (fewer thread hops)."""
    buf = bytearray()
    async for chunk in chunks:
        buf += chunk
        if len(buf) >= CHUNK_SIZE:
            yield bytes(buf)
            buf.clear()
    if buf:
        yield bytes(buf)


async def iterate_bytes(data: bytes) -> AsyncIterator[bytes]:
    """An in-memory body as a one-chunk stream (thumbnails, small uploads)."""
    if data:
        yield data
