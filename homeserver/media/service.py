"""The media service: uploads, asynchronous uploads, downloads and thumbnails.

It owns the rules (limits, quota, who may fill a created media id, waiting for
content that has not arrived) and composes the blob store with the metadata
tables. It knows nothing about HTTP: handlers in ``client_api/media.py`` give it
a stream of body chunks and turn what it returns into responses.

Order of work for an upload: stream the bytes into the store first (no
transaction is held open while a slow client sends 50 MiB), then record the row
and the blob reference in one short transaction. A blob whose recording fails
is deleted again if nothing else names it.
"""

from __future__ import annotations

import functools
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

import attrs
import trio
from sqlalchemy.engine import Connection

from homeserver.config import MediaConfig
from homeserver.core.identifiers import is_valid_server_name
from homeserver.errors import (
    MatrixError,
    forbidden,
    invalid_param,
    limit_exceeded,
    not_found,
    too_large,
    unrecognized,
)
from homeserver.media.preview import (
    MAX_IMAGE_BYTES,
    MAX_PAGE_BYTES,
    PreviewCache,
    UrlFetcher,
    parse_networks,
)
from homeserver.media.serving import clean_upload_name, essence, normalize_content_type
from homeserver.media.store import BlobStore, BlobTooLarge, StoredBlob, iterate_bytes
from homeserver.media.thumbnailer import (
    THUMBNAILABLE_TYPES,
    CannotThumbnail,
    Thumbnail,
    ThumbnailSpec,
    TooLargeToThumbnail,
    choose_spec,
    make_thumbnail,
    parse_thumbnail_sizes,
)
from homeserver.storage import media as media_db
from homeserver.storage.database import Database
from homeserver.storage.media import MediaRow, ThumbnailRow

log = logging.getLogger(__name__)

# Spec, "Matrix Content URIs": a media id is [A-Za-z0-9_-]+ (no traversal tricks).
_MEDIA_ID = re.compile(r"[A-Za-z0-9_-]{1,255}")
# timeout_ms: the spec's default, and our ceiling (the spec asks for one).
DEFAULT_WAIT_MS = 20_000
MAX_WAIT_MS = 60_000
# How often a waiter re-reads the database, for uploads finished by another worker.
_WAIT_POLL_S = 1.0
# Thumbnail decodes at once: they are CPU and memory heavy.
_THUMBNAIL_THREADS = 2


@attrs.frozen
class MediaStatistics:
    # Downloads waiting for an asynchronous upload to arrive.
    waiting_downloads: int
    # Thumbnails being generated right now.
    thumbnails_in_progress: int


@attrs.frozen
class ServedThumbnail:
    sha256: str
    size: int
    content_type: str


def not_yet_uploaded() -> MatrixError:
    return MatrixError(504, "M_NOT_YET_UPLOADED", "The content has not been uploaded yet")


def cannot_overwrite() -> MatrixError:
    return MatrixError(409, "M_CANNOT_OVERWRITE_MEDIA", "Media already uploaded")


def valid_media_ref(server_name: str, media_id: str) -> bool:
    """Spec "Security considerations": sanitise both parts before any lookup."""
    return is_valid_server_name(server_name) and _MEDIA_ID.fullmatch(media_id) is not None


class MediaService:
    def __init__(
        self,
        *,
        db: Database,
        store: BlobStore,
        config: MediaConfig,
        server_name: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self.store = store
        self.config = config
        self.server_name = server_name
        self._clock = clock
        self.thumbnail_specs: list[ThumbnailSpec] = parse_thumbnail_sizes(config.thumbnail_sizes)
        # Waiters for pending uploads in this process, woken when the content lands.
        self._arrivals: dict[tuple[str, str], trio.Event] = {}
        self._waiters: dict[tuple[str, str], int] = {}
        # Thumbnails being generated now, so concurrent requests share one decode.
        self._generating: dict[tuple[object, ...], trio.Event] = {}
        self._thumbnail_limiter = trio.CapacityLimiter(_THUMBNAIL_THREADS)
        # Serialises "record a blob reference" with "delete an unreferenced blob",
        # so a blob cannot vanish between being written and being recorded.
        self._blob_lock = trio.Lock()
        self._fetcher = UrlFetcher(parse_networks(config.url_preview_ip_allowlist))
        self._previews = PreviewCache(clock)

    def statistics(self) -> MediaStatistics:
        return MediaStatistics(sum(self._waiters.values()), len(self._generating))

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def mxc(self, media_id: str) -> str:
        return f"mxc://{self.server_name}/{media_id}"

    # -- uploads --------------------------------------------------------------

    async def upload(
        self,
        *,
        user_id: str,
        chunks: AsyncIterator[bytes],
        content_type: str | None,
        upload_name: str | None,
        declared_length: int | None,
    ) -> str:
        """``POST /_matrix/media/v3/upload``: store the body, return its ``mxc://`` URI."""
        blob = await self._receive(user_id, chunks, declared_length)
        content_type = normalize_content_type(content_type)
        upload_name = clean_upload_name(upload_name)
        for _ in range(3):
            media_id = secrets.token_urlsafe(18)
            try:
                await self._record(
                    blob,
                    user_id,
                    functools.partial(
                        media_db.insert_media,
                        server_name=self.server_name,
                        media_id=media_id,
                        uploader=user_id,
                        content_type=content_type,
                        upload_name=upload_name,
                        size=blob.size,
                        sha256=blob.sha256,
                        now=self._now_ms(),
                    ),
                )
            except media_db.MediaIdTaken:
                continue
            return self.mxc(media_id)
        raise MatrixError(500, "M_UNKNOWN", "Could not allocate a media id")

    async def create_pending(self, user_id: str) -> tuple[str, int]:
        """``POST /_matrix/media/v1/create``: a media id to fill later, and its expiry."""
        now = self._now_ms()
        expires_ts = now + self.config.unused_expiry_s * 1000
        limit = self.config.max_pending_uploads
        media_id = secrets.token_urlsafe(18)

        def create(conn: Connection) -> int | None:
            count, earliest = media_db.count_pending(conn, user_id, now)
            if count >= limit:
                return max(1, (earliest or now) - now)
            media_db.insert_pending_media(
                conn,
                server_name=self.server_name,
                media_id=media_id,
                uploader=user_id,
                now=now,
                expires_ts=expires_ts,
            )
            return None

        retry_after = await self._db.run(create)
        if retry_after is not None:
            # Spec: too many pending uploads is 429 M_LIMIT_EXCEEDED.
            raise limit_exceeded(retry_after)
        return self.mxc(media_id), expires_ts

    async def upload_pending(
        self,
        *,
        user_id: str,
        server_name: str,
        media_id: str,
        chunks: AsyncIterator[bytes],
        content_type: str | None,
        upload_name: str | None,
        declared_length: int | None,
    ) -> None:
        """``PUT /_matrix/media/v3/upload/{serverName}/{mediaId}``: fill a created id, once."""
        if server_name != self.server_name or not valid_media_ref(server_name, media_id):
            raise not_found("Unknown media ID")
        # Check before reading the body, so a refused upload costs no bandwidth...
        self._check_pending(
            await self._db.read(lambda c: media_db.get_media(c, server_name, media_id)), user_id
        )
        blob = await self._receive(user_id, chunks, declared_length)
        now = self._now_ms()

        def complete(conn: Connection) -> None:
            # ... and again in the transaction: it may have been filled or expired since.
            self._check_pending(media_db.get_media(conn, server_name, media_id), user_id)
            if not media_db.complete_pending_media(
                conn,
                server_name=server_name,
                media_id=media_id,
                content_type=normalize_content_type(content_type),
                upload_name=clean_upload_name(upload_name),
                size=blob.size,
                sha256=blob.sha256,
                now=now,
            ):
                raise cannot_overwrite()

        await self._record(blob, user_id, complete)
        event = self._arrivals.pop((server_name, media_id), None)
        if event is not None:
            event.set()

    def _check_pending(self, row: MediaRow | None, user_id: str) -> None:
        """Spec order of refusals for PUT upload: unknown, not yours, already there, expired."""
        if row is None:
            raise not_found("Unknown media ID")
        if row.uploader != user_id:
            raise forbidden("This media ID was created by another user")
        if not row.pending:
            raise cannot_overwrite()
        if row.expires_ts is not None and row.expires_ts <= self._now_ms():
            raise not_found("This media ID has expired")

    async def _receive(
        self, user_id: str, chunks: AsyncIterator[bytes], declared_length: int | None
    ) -> StoredBlob:
        """Stream the body into the store under the size limit and the user's quota."""
        limit = self.config.max_upload_size
        if declared_length is not None and declared_length > limit:
            raise too_large(f"Upload is larger than the limit of {limit} bytes")
        quota_left: int | None = None
        if self.config.per_user_quota:
            used = await self._db.read(lambda c: media_db.used_bytes(c, self.server_name, user_id))
            quota_left = self.config.per_user_quota - used
            if quota_left <= 0 or (declared_length is not None and declared_length > quota_left):
                raise _quota_exceeded()
        cap = limit if quota_left is None else min(limit, quota_left)
        try:
            return await self.store.put(chunks, max_size=cap)
        except BlobTooLarge:
            if quota_left is not None and quota_left < limit:
                raise _quota_exceeded() from None
            raise too_large(f"Upload is larger than the limit of {limit} bytes") from None

    async def _record(
        self, blob: StoredBlob, user_id: str, write: Callable[[Connection], None]
    ) -> None:
        """Run ``write`` (which adds a reference to ``blob``) with a final quota check."""
        quota = self.config.per_user_quota

        def transaction(conn: Connection) -> None:
            if quota and media_db.used_bytes(conn, self.server_name, user_id) + blob.size > quota:
                raise _quota_exceeded()  # concurrent uploads raced past the first check
            write(conn)

        async with self._blob_lock:
            if not await self.store.exists(blob.sha256):
                # An earlier failed upload of the same bytes deleted it meanwhile.
                raise MatrixError(503, "M_UNKNOWN", "Upload interrupted; please retry")
            try:
                await self._db.run(transaction)
            except BaseException:
                with trio.CancelScope(shield=True):
                    await self._discard_if_unreferenced(blob.sha256)
                raise

    async def _discard_if_unreferenced(self, sha256: str) -> None:
        try:
            if await self._db.read(lambda c: media_db.blob_refcount(c, sha256)) == 0:
                await self.store.delete(sha256)
        except Exception:
            log.exception("Could not clean up unreferenced blob %s", sha256)

    # -- downloads ------------------------------------------------------------

    async def get_media(
        self, server_name: str, media_id: str, *, timeout_ms: int | None = None
    ) -> MediaRow:
        """The completed media, waiting up to ``timeout_ms`` for a pending upload.

        Unknown, remote (until federation lands), expired and quarantined media
        all answer 404 ``M_NOT_FOUND``; content still on its way answers 504
        ``M_NOT_YET_UPLOADED`` once the wait is over.
        """
        if not valid_media_ref(server_name, media_id):
            raise not_found("Unknown media")
        wait_ms = DEFAULT_WAIT_MS if timeout_ms is None else max(0, min(timeout_ms, MAX_WAIT_MS))
        deadline = trio.current_time() + wait_ms / 1000
        while True:
            row = await self._db.read(lambda c: media_db.get_media(c, server_name, media_id))
            if row is None or row.quarantined:
                raise not_found("Unknown media")
            if not row.pending:
                return row
            if row.expires_ts is not None and row.expires_ts <= self._now_ms():
                raise not_found("Unknown media")
            left = deadline - trio.current_time()
            if left <= 0:
                raise not_yet_uploaded()
            await self._wait_for_arrival((server_name, media_id), min(left, _WAIT_POLL_S))

    async def _wait_for_arrival(self, key: tuple[str, str], seconds: float) -> None:
        """Sleep until the upload of ``key`` completes here, or ``seconds`` pass.

        The event is shared by all waiters and dropped with the last of them, so
        media that never arrives leaves nothing behind.
        """
        event = self._arrivals.setdefault(key, trio.Event())
        self._waiters[key] = self._waiters.get(key, 0) + 1
        try:
            with trio.move_on_after(seconds):
                await event.wait()
        finally:
            self._waiters[key] -= 1
            if not self._waiters[key]:
                del self._waiters[key]
                if self._arrivals.get(key) is event:
                    del self._arrivals[key]

    def read(self, sha256: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        return self.store.open_range(sha256, start, end)

    # -- thumbnails -----------------------------------------------------------

    async def get_thumbnail(
        self,
        server_name: str,
        media_id: str,
        *,
        width: int,
        height: int,
        method: Literal["crop", "scale"],
        animated: bool,
        timeout_ms: int | None = None,
    ) -> ServedThumbnail:
        """A cached thumbnail of the configured size covering the request, made if missing."""
        row = await self.get_media(server_name, media_id, timeout_ms=timeout_ms)
        assert row.sha256 is not None and row.content_type is not None
        if row.content_type.split(";", 1)[0].strip().lower() not in THUMBNAILABLE_TYPES:
            raise MatrixError(
                400, "M_UNKNOWN", "Cannot generate thumbnails for the requested content"
            )
        spec = choose_spec(self.thumbnail_specs, width, height, method)
        key = (server_name, media_id, spec.width, spec.height, spec.method, animated)
        while True:
            cached = await self._db.read(
                lambda c: media_db.get_thumbnail(
                    c,
                    server_name,
                    media_id,
                    width=spec.width,
                    height=spec.height,
                    method=spec.method,
                    animated=animated,
                )
            )
            if cached is not None:
                return ServedThumbnail(cached.sha256, cached.size, cached.content_type)
            in_flight = self._generating.get(key)
            if in_flight is None:
                break
            await in_flight.wait()
        done = self._generating[key] = trio.Event()
        try:
            thumb = await self._generate(row.sha256, spec, animated)
            blob = await self.store.put(iterate_bytes(thumb.data))
            thumb_row = ThumbnailRow(
                spec.width,
                spec.height,
                spec.method,
                animated,
                thumb.content_type,
                blob.size,
                blob.sha256,
            )
            now = self._now_ms()
            async with self._blob_lock:
                if not await self.store.exists(blob.sha256):
                    raise MatrixError(503, "M_UNKNOWN", "Thumbnail interrupted; please retry")
                await self._db.run(
                    lambda c: media_db.insert_thumbnail(c, server_name, media_id, thumb_row, now)
                )
            return ServedThumbnail(blob.sha256, blob.size, thumb.content_type)
        finally:
            del self._generating[key]
            done.set()

    async def _generate(self, sha256: str, spec: ThumbnailSpec, animated: bool) -> Thumbnail:
        path = self.store.local_path(sha256)
        source: Path | bytes
        if path is not None:
            source = path
        else:
            source = b"".join([chunk async for chunk in self.store.open_range(sha256)])
        try:
            return await trio.to_thread.run_sync(
                functools.partial(
                    make_thumbnail,
                    source,
                    spec,
                    animated=animated,
                    max_pixels=self.config.max_thumbnail_pixels,
                ),
                limiter=self._thumbnail_limiter,
            )
        except TooLargeToThumbnail:
            raise MatrixError(413, "M_TOO_LARGE", "Content is too large to thumbnail") from None
        except CannotThumbnail:
            raise MatrixError(
                400, "M_UNKNOWN", "Cannot generate thumbnails for the requested content"
            ) from None

    # -- housekeeping ---------------------------------------------------------

    async def delete_media(self, server_name: str, media_id: str) -> None:
        """Remove media, its thumbnails, and blobs nothing else names (admin API, retention)."""
        async with self._blob_lock:
            unreferenced = await self._db.run(
                lambda c: media_db.delete_media(c, server_name, media_id)
            )
            for sha256 in unreferenced:
                await self.store.delete(sha256)

    async def expire_pending(self) -> int:
        return await self._db.run(lambda c: media_db.delete_expired_pending(c, self._now_ms()))

    # -- URL previews -----------------------------------------------------------

    async def preview_url(self, user_id: str, url: str) -> dict[str, Any]:
        """OpenGraph data for ``url``, with its ``og:image`` stored here as ``mxc://``.

        Off unless ``url_preview_enabled``: then the endpoint does not exist.
        """
        if not self.config.url_preview_enabled:
            raise unrecognized(404, "URL previews are disabled on this server")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise invalid_param("'url' must be an absolute http or https URL")
        cached = self._previews.get(url)
        if cached is not None:
            return cached
        page = await self._fetcher.fetch(
            url, max_bytes=MAX_PAGE_BYTES, accept="text/html,application/xhtml+xml;q=0.9"
        )
        og: dict[str, Any] = {}
        if essence(page.content_type) in ("text/html", "application/xhtml+xml"):
            from homeserver.media.opengraph import parse_open_graph

            og = dict(parse_open_graph(page.body, page.content_type))
        image_url = og.pop("og:image", None)
        if image_url:
            og.update(await self._preview_image(user_id, urljoin(page.url, image_url)))
        self._previews.put(url, og)
        return og

    async def _preview_image(self, user_id: str, url: str) -> dict[str, Any]:
        """Fetch a page's image into the media repository; nothing if that fails."""
        try:
            image = await self._fetcher.fetch(
                url,
                max_bytes=min(MAX_IMAGE_BYTES, self.config.max_upload_size),
                accept="image/*",
            )
            content_type = essence(image.content_type)
            if not content_type.startswith("image/"):
                return {}
            mxc = await self.upload(
                user_id=user_id,
                chunks=iterate_bytes(image.body),
                content_type=content_type,
                upload_name=None,
                declared_length=len(image.body),
            )
        except MatrixError as e:
            log.info("URL preview image %s not stored: %s", url, e)
            return {}
        return {
            "og:image": mxc,
            "og:image:type": content_type,
            "matrix:image:size": len(image.body),
        }

    async def config_json(self) -> dict[str, int]:
        return {"m.upload.size": self.config.max_upload_size}


def _quota_exceeded() -> MatrixError:
    # Spec, content repository security: too many/too large uploads are 403 M_FORBIDDEN.
    return forbidden("Media quota exceeded")
