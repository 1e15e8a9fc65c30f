"""Media metadata: media rows, their thumbnails, and reference-counted blobs.

Bytes live in a content-addressed blob store (``homeserver/media/store.py``);
these tables say which ``mxc://`` URI names which blob. One blob may be named
by many media rows and thumbnails (identical uploads are stored once), so
``media_blobs.refcount`` counts the rows naming it; it is changed in the same
transaction as the row that adds or drops the reference.

``media`` is keyed by ``(server_name, media_id)`` so the same table holds our
own uploads and, once federation lands, cached remote media. A row whose
``sha256`` is NULL is a pending asynchronous upload (``POST /media/v1/create``)
that expires at ``expires_ts`` unless its content arrives first.
"""

from __future__ import annotations

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from homeserver.storage.metadata import metadata
from homeserver.storage.upsert import dialect_insert

media = sa.Table(
    "media",
    metadata,
    sa.Column("server_name", sa.Text, primary_key=True),
    sa.Column("media_id", sa.Text, primary_key=True),
    # NULL for remote media: the uploader lives on another server.
    sa.Column("uploader", sa.Text, nullable=True),
    sa.Column("content_type", sa.Text, nullable=True),
    sa.Column("upload_name", sa.Text, nullable=True),
    sa.Column("size", sa.BigInteger, nullable=True),
    # NULL until the content exists (pending async upload).
    sa.Column("sha256", sa.Text, nullable=True),
    sa.Column("created_ts", sa.BigInteger, nullable=False),
    # Pending uploads only: when the unused media id lapses.
    sa.Column("expires_ts", sa.BigInteger, nullable=True),
    sa.Column("quarantined", sa.Boolean, nullable=False, default=False),
    # For retention of the remote cache (and local, if configured) later.
    sa.Column("last_access_ts", sa.BigInteger, nullable=True),
    sa.Index("media_uploader_idx", "uploader"),
    sa.Index("media_sha256_idx", "sha256"),
)

media_thumbnails = sa.Table(
    "media_thumbnails",
    metadata,
    sa.Column("server_name", sa.Text, primary_key=True),
    sa.Column("media_id", sa.Text, primary_key=True),
    sa.Column("width", sa.Integer, primary_key=True),
    sa.Column("height", sa.Integer, primary_key=True),
    sa.Column("method", sa.Text, primary_key=True),
    sa.Column("animated", sa.Boolean, primary_key=True),
    sa.Column("content_type", sa.Text, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.Text, nullable=False),
    sa.Column("created_ts", sa.BigInteger, nullable=False),
    sa.ForeignKeyConstraint(
        ["server_name", "media_id"],
        ["media.server_name", "media.media_id"],
        ondelete="CASCADE",
    ),
)

media_blobs = sa.Table(
    "media_blobs",
    metadata,
    sa.Column("sha256", sa.Text, primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("refcount", sa.Integer, nullable=False),
    sa.Column("created_ts", sa.BigInteger, nullable=False),
)


@attrs.frozen
class MediaRow:
    server_name: str
    media_id: str
    uploader: str | None
    content_type: str | None
    upload_name: str | None
    size: int | None
    sha256: str | None
    created_ts: int
    expires_ts: int | None
    quarantined: bool

    @property
    def pending(self) -> bool:
        return self.sha256 is None


@attrs.frozen
class ThumbnailRow:
    width: int
    height: int
    method: str
    animated: bool
    content_type: str
    size: int
    sha256: str


class MediaIdTaken(Exception):
    """A media id collided (astronomically unlikely with random ids; retried)."""


def _media_row(row: sa.Row[tuple[object, ...]]) -> MediaRow:
    m = row._mapping
    return MediaRow(
        server_name=m["server_name"],
        media_id=m["media_id"],
        uploader=m["uploader"],
        content_type=m["content_type"],
        upload_name=m["upload_name"],
        size=m["size"],
        sha256=m["sha256"],
        created_ts=m["created_ts"],
        expires_ts=m["expires_ts"],
        quarantined=bool(m["quarantined"]),
    )


def get_media(conn: Connection, server_name: str, media_id: str) -> MediaRow | None:
    row = conn.execute(
        sa.select(media).where(media.c.server_name == server_name, media.c.media_id == media_id)
    ).first()
    return _media_row(row) if row is not None else None


def add_blob_reference(conn: Connection, sha256: str, size: int, now: int) -> None:
    """Count one more row naming ``sha256`` (creating the blob row on first use).

    An upsert, so two transactions adding the first references to the same new
    blob at once (PostgreSQL runs them concurrently) both succeed.
    """
    insert = dialect_insert(conn)
    stmt = insert(media_blobs).values(sha256=sha256, size=size, refcount=1, created_ts=now)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[media_blobs.c.sha256],
            set_={"refcount": media_blobs.c.refcount + 1},
        )
    )


def drop_blob_reference(conn: Connection, sha256: str) -> bool:
    """Count one row fewer; True when nothing names the blob any more (delete its bytes)."""
    conn.execute(
        media_blobs.update()
        .where(media_blobs.c.sha256 == sha256)
        .values(refcount=media_blobs.c.refcount - 1)
    )
    refcount = conn.execute(
        sa.select(media_blobs.c.refcount).where(media_blobs.c.sha256 == sha256)
    ).scalar()
    if refcount is not None and refcount <= 0:
        conn.execute(media_blobs.delete().where(media_blobs.c.sha256 == sha256))
        return True
    return refcount is None


def blob_refcount(conn: Connection, sha256: str) -> int:
    value = conn.execute(
        sa.select(media_blobs.c.refcount).where(media_blobs.c.sha256 == sha256)
    ).scalar()
    return int(value) if value is not None else 0


def insert_media(
    conn: Connection,
    *,
    server_name: str,
    media_id: str,
    uploader: str | None,
    content_type: str,
    upload_name: str | None,
    size: int,
    sha256: str,
    now: int,
) -> None:
    """A completed upload: its row and its blob reference, in the caller's transaction."""
    if get_media(conn, server_name, media_id) is not None:
        raise MediaIdTaken(media_id)
    conn.execute(
        media.insert().values(
            server_name=server_name,
            media_id=media_id,
            uploader=uploader,
            content_type=content_type,
            upload_name=upload_name,
            size=size,
            sha256=sha256,
            created_ts=now,
            expires_ts=None,
            quarantined=False,
        )
    )
    add_blob_reference(conn, sha256, size, now)


def insert_pending_media(
    conn: Connection, *, server_name: str, media_id: str, uploader: str, now: int, expires_ts: int
) -> None:
    if get_media(conn, server_name, media_id) is not None:
        raise MediaIdTaken(media_id)
    conn.execute(
        media.insert().values(
            server_name=server_name,
            media_id=media_id,
            uploader=uploader,
            created_ts=now,
            expires_ts=expires_ts,
            quarantined=False,
        )
    )


def complete_pending_media(
    conn: Connection,
    *,
    server_name: str,
    media_id: str,
    content_type: str,
    upload_name: str | None,
    size: int,
    sha256: str,
    now: int,
) -> bool:
    """Fill in a pending upload; False if its content arrived first from elsewhere."""
    updated = conn.execute(
        media.update()
        .where(
            media.c.server_name == server_name,
            media.c.media_id == media_id,
            media.c.sha256.is_(None),
        )
        .values(
            content_type=content_type,
            upload_name=upload_name,
            size=size,
            sha256=sha256,
            expires_ts=None,
        )
    ).rowcount
    if updated:
        add_blob_reference(conn, sha256, size, now)
    return bool(updated)


def count_pending(conn: Connection, uploader: str, now: int) -> tuple[int, int | None]:
    """(pending uploads of ``uploader`` still alive, earliest expiry among them)."""
    row = conn.execute(
        sa.select(sa.func.count(), sa.func.min(media.c.expires_ts)).where(
            media.c.uploader == uploader,
            media.c.sha256.is_(None),
            media.c.expires_ts > now,
        )
    ).one()
    return int(row[0]), (int(row[1]) if row[1] is not None else None)


def delete_expired_pending(conn: Connection, now: int) -> int:
    """Forget created media ids whose content never came (no blob to release)."""
    return conn.execute(
        media.delete().where(media.c.sha256.is_(None), media.c.expires_ts <= now)
    ).rowcount


def used_bytes(conn: Connection, server_name: str, uploader: str) -> int:
    """Bytes ``uploader`` has uploaded, for the quota (dedup does not make it cheaper)."""
    value = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(media.c.size), 0)).where(
            media.c.server_name == server_name, media.c.uploader == uploader
        )
    ).scalar()
    return int(value or 0)


def get_thumbnail(
    conn: Connection,
    server_name: str,
    media_id: str,
    *,
    width: int,
    height: int,
    method: str,
    animated: bool,
) -> ThumbnailRow | None:
    t = media_thumbnails
    row = conn.execute(
        sa.select(t).where(
            t.c.server_name == server_name,
            t.c.media_id == media_id,
            t.c.width == width,
            t.c.height == height,
            t.c.method == method,
            t.c.animated == animated,
        )
    ).first()
    if row is None:
        return None
    m = row._mapping
    return ThumbnailRow(
        m["width"],
        m["height"],
        m["method"],
        bool(m["animated"]),
        m["content_type"],
        m["size"],
        m["sha256"],
    )


def insert_thumbnail(
    conn: Connection,
    server_name: str,
    media_id: str,
    row: ThumbnailRow,
    now: int,
) -> bool:
    """Cache a generated thumbnail; False if an identical one was cached meanwhile."""
    existing = get_thumbnail(
        conn,
        server_name,
        media_id,
        width=row.width,
        height=row.height,
        method=row.method,
        animated=row.animated,
    )
    if existing is not None:
        return False
    conn.execute(
        media_thumbnails.insert().values(
            server_name=server_name,
            media_id=media_id,
            width=row.width,
            height=row.height,
            method=row.method,
            animated=row.animated,
            content_type=row.content_type,
            size=row.size,
            sha256=row.sha256,
            created_ts=now,
        )
    )
    add_blob_reference(conn, row.sha256, row.size, now)
    return True


def delete_media(conn: Connection, server_name: str, media_id: str) -> list[str]:
    """Remove a media row and its thumbnails; the blobs no longer named by anything."""
    unreferenced: list[str] = []
    thumbs = (
        conn.execute(
            sa.select(media_thumbnails.c.sha256).where(
                media_thumbnails.c.server_name == server_name,
                media_thumbnails.c.media_id == media_id,
            )
        )
        .scalars()
        .all()
    )
    row = get_media(conn, server_name, media_id)
    conn.execute(
        media_thumbnails.delete().where(
            media_thumbnails.c.server_name == server_name, media_thumbnails.c.media_id == media_id
        )
    )
    conn.execute(
        media.delete().where(media.c.server_name == server_name, media.c.media_id == media_id)
    )
    for sha256 in [*thumbs, *([row.sha256] if row is not None and row.sha256 else [])]:
        if drop_blob_reference(conn, sha256):
            unreferenced.append(sha256)
    return unreferenced


def set_quarantined(conn: Connection, server_name: str, media_id: str, quarantined: bool) -> bool:
    return bool(
        conn.execute(
            media.update()
            .where(media.c.server_name == server_name, media.c.media_id == media_id)
            .values(quarantined=quarantined)
        ).rowcount
    )
