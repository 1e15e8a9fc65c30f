"""Asynchronous uploads (create, then PUT), waiting downloads, size limit and quota."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import trio
from media_helpers import media_path, upload


def put_path(uri: str) -> str:
    server_name, media_id = uri[len("mxc://") :].split("/")
    return f"/_matrix/media/v3/upload/{server_name}/{media_id}"


async def create(c: httpx.AsyncClient) -> dict[str, Any]:
    r = await c.post("/_matrix/media/v1/create")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def stored_files(server: Any) -> list[str]:
    root = server.hs.media.store.root
    return sorted(p.name for p in root.rglob("*") if p.is_file())


async def test_create_then_put_then_download(alice: httpx.AsyncClient, server: Any) -> None:
    now_ms = int(server.hs.clock.time() * 1000)
    body = await create(alice)
    assert body["content_uri"].startswith("mxc://test.example/")
    expires = body["unused_expires_at"]
    assert now_ms + 23 * 3600_000 < expires <= now_ms + 24 * 3600_000 + 60_000
    r = await alice.put(
        put_path(body["content_uri"]),
        content=b"later",
        headers={"Content-Type": "text/plain"},
        params={"filename": "later.txt"},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {}
    got = await alice.get(media_path(body["content_uri"]))
    assert got.status_code == 200
    assert got.content == b"later"
    assert got.headers["content-disposition"] == 'inline; filename="later.txt"'


async def test_download_before_upload_is_504_not_yet_uploaded(
    alice: httpx.AsyncClient, server: Any
) -> None:
    uri = (await create(alice))["content_uri"]
    for timeout in ("0", "50"):
        r = await alice.get(media_path(uri), params={"timeout_ms": timeout})
        assert r.status_code == 504
        assert r.json()["errcode"] == "M_NOT_YET_UPLOADED"
    # The waits left nothing behind.
    assert server.hs.media.statistics().waiting_downloads == 0
    assert not server.hs.media._arrivals
    r = await alice.get(
        media_path(uri, "thumbnail"), params={"timeout_ms": "0", "width": "32", "height": "32"}
    )
    assert r.status_code == 504
    assert r.json()["errcode"] == "M_NOT_YET_UPLOADED"
    r = await alice.get(media_path(uri), params={"timeout_ms": "soon"})
    assert r.status_code == 400
    assert r.json()["errcode"] == "M_INVALID_PARAM"


async def test_download_waits_for_the_upload_when_asked(
    alice: httpx.AsyncClient, bob: httpx.AsyncClient, server: Any
) -> None:
    uri = (await create(alice))["content_uri"]
    result: dict[str, httpx.Response] = {}

    async def wait_for_it() -> None:
        result["r"] = await bob.get(media_path(uri), params={"timeout_ms": "30000"})

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait_for_it)
        with trio.fail_after(10):
            while server.hs.media.statistics().waiting_downloads == 0:  # noqa: ASYNC110
                await trio.sleep(0.01)
        r = await alice.put(
            put_path(uri), content=b"arrived", headers={"Content-Type": "text/plain"}
        )
        assert r.status_code == 200
    assert result["r"].status_code == 200
    assert result["r"].content == b"arrived"


async def test_put_by_another_user_is_forbidden(
    alice: httpx.AsyncClient, bob: httpx.AsyncClient
) -> None:
    uri = (await create(alice))["content_uri"]
    r = await bob.put(put_path(uri), content=b"mine now")
    assert r.status_code == 403
    assert r.json()["errcode"] == "M_FORBIDDEN"
    # Still Alice's to fill.
    assert (await alice.put(put_path(uri), content=b"alice")).status_code == 200


async def test_put_twice_cannot_overwrite(alice: httpx.AsyncClient) -> None:
    uri = (await create(alice))["content_uri"]
    assert (await alice.put(put_path(uri), content=b"first")).status_code == 200
    r = await alice.put(put_path(uri), content=b"second")
    assert r.status_code == 409
    assert r.json()["errcode"] == "M_CANNOT_OVERWRITE_MEDIA"
    assert (await alice.get(media_path(uri))).content == b"first"
    # An ordinary upload cannot be overwritten either.
    plain = await upload(alice, b"plain")
    r = await alice.put(put_path(plain), content=b"again")
    assert r.status_code == 409
    assert r.json()["errcode"] == "M_CANNOT_OVERWRITE_MEDIA"


@pytest.mark.parametrize(
    "path",
    [
        "/_matrix/media/v3/upload/test.example/neverCreated",
        "/_matrix/media/v3/upload/other.example/neverCreated",
        "/_matrix/media/v3/upload/test.example/bad.id",
    ],
)
async def test_put_to_unknown_id_is_404(alice: httpx.AsyncClient, path: str) -> None:
    r = await alice.put(path, content=b"x")
    assert r.status_code == 404
    assert r.json()["errcode"] == "M_NOT_FOUND"


async def test_expired_creation_is_404(alice: httpx.AsyncClient, server: Any) -> None:
    uri = (await create(alice))["content_uri"]
    server.hs.clock.advance(24 * 3600 + 1)
    r = await alice.put(put_path(uri), content=b"too late")
    assert r.status_code == 404
    assert r.json()["errcode"] == "M_NOT_FOUND"
    r = await alice.get(media_path(uri), params={"timeout_ms": "0"})
    assert r.status_code == 404
    assert await server.hs.media.expire_pending() == 1


@pytest.mark.server_config(media={"max_pending_uploads": 2})
async def test_pending_creations_are_limited_per_user(
    alice: httpx.AsyncClient, bob: httpx.AsyncClient, server: Any
) -> None:
    first = (await create(alice))["content_uri"]
    await create(alice)
    r = await alice.post("/_matrix/media/v1/create")
    assert r.status_code == 429
    assert r.json()["errcode"] == "M_LIMIT_EXCEEDED"
    assert r.json()["retry_after_ms"] > 0
    await create(bob)  # per user
    # Completing one frees a slot.
    assert (await alice.put(put_path(first), content=b"done")).status_code == 200
    await create(alice)
    assert (await alice.post("/_matrix/media/v1/create")).status_code == 429
    # Expired creations no longer count.
    server.hs.clock.advance(24 * 3600 + 1)
    await create(alice)


@pytest.mark.server_config(media={"max_upload_size": 1000})
async def test_upload_size_limit(alice: httpx.AsyncClient, server: Any) -> None:
    r = await alice.get("/_matrix/client/v1/media/config")
    assert r.json() == {"m.upload.size": 1000}
    await upload(alice, b"x" * 1000)
    # Declared too large: refused before the body is read.
    r = await alice.post("/_matrix/media/v3/upload", content=b"x" * 1001)
    assert r.status_code == 413
    assert r.json()["errcode"] == "M_TOO_LARGE"

    # Undeclared (chunked) and too large: refused while streaming, nothing kept.
    async def body() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"y" * 100

    before = stored_files(server)
    r = await alice.post("/_matrix/media/v3/upload", content=body())
    assert r.status_code == 413
    assert r.json()["errcode"] == "M_TOO_LARGE"
    assert stored_files(server) == before
    # The PUT of an async upload obeys the same limit.
    uri = (await create(alice))["content_uri"]
    r = await alice.put(put_path(uri), content=b"z" * 1001)
    assert r.status_code == 413
    r = await alice.put(put_path(uri), content=body())
    assert r.status_code == 413
    assert (await alice.put(put_path(uri), content=b"z" * 10)).status_code == 200


@pytest.mark.server_config(media={"max_upload_size": 1000, "per_user_quota": 1500})
async def test_per_user_quota(
    alice: httpx.AsyncClient, bob: httpx.AsyncClient, server: Any
) -> None:
    await upload(alice, b"a" * 1000)
    r = await alice.post("/_matrix/media/v3/upload", content=b"b" * 600)
    assert r.status_code == 403
    assert r.json()["errcode"] == "M_FORBIDDEN"

    async def chunked(n: int) -> AsyncIterator[bytes]:
        yield b"c" * n

    before = stored_files(server)
    r = await alice.post("/_matrix/media/v3/upload", content=chunked(600))
    assert r.status_code == 403
    assert r.json()["errcode"] == "M_FORBIDDEN"
    assert stored_files(server) == before
    await upload(alice, b"d" * 500)  # exactly at the quota
    r = await alice.post("/_matrix/media/v3/upload", content=b"e")
    assert r.status_code == 403
    # Another user has a quota of their own.
    await upload(bob, b"f" * 1000)
