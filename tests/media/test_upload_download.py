"""Upload and authenticated download over HTTP, with the safe-serving headers."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest
import trio
from media_helpers import media_path, upload

from homeserver.media.serving import CONTENT_SECURITY_POLICY
from homeserver.storage import media as media_db


async def test_upload_then_download_round_trips_bytes_and_type(alice: httpx.AsyncClient) -> None:
    data = b"hello media\n" * 100
    uri = await upload(alice, data, "text/plain", "hello.txt")
    r = await alice.get(media_path(uri))
    assert r.status_code == 200
    assert r.content == data
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["content-length"] == str(len(data))
    assert r.headers["content-disposition"] == 'inline; filename="hello.txt"'
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert r.headers["cross-origin-resource-policy"] == "cross-origin"
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert r.headers["accept-ranges"] == "bytes"


async def test_download_with_filename_overrides_the_uploaded_name(alice: httpx.AsyncClient) -> None:
    uri = await upload(alice, b"\x89PNG not really", "image/png", "orig.png")
    r = await alice.get(media_path(uri) + "/other%20name.png")
    assert r.status_code == 200
    assert r.headers["content-disposition"] == 'inline; filename="other name.png"'


async def test_html_is_served_as_attachment_with_nosniff_and_csp(alice: httpx.AsyncClient) -> None:
    page = b"<html><script>alert(document.cookie)</script></html>"
    uri = await upload(alice, page, "text/html", "evil.html")
    r = await alice.get(media_path(uri))
    assert r.status_code == 200
    assert r.content == page
    assert r.headers["content-disposition"].startswith("attachment;")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in r.headers["content-security-policy"]
    assert "script-src 'none'" in r.headers["content-security-policy"]


@pytest.mark.parametrize(
    ("content_type", "disposition"),
    [
        ("image/svg+xml", "attachment"),
        ("application/pdf", "attachment"),
        ("image/jpeg", "inline"),
        ("video/mp4", "inline"),
        ("audio/ogg", "inline"),
        ("Image/PNG; foo=bar", "inline"),
        ("not a type\r\nX-Evil: 1", "attachment"),
    ],
)
async def test_disposition_depends_on_the_type(
    alice: httpx.AsyncClient, content_type: str, disposition: str
) -> None:
    r = await alice.post(
        "/_matrix/media/v3/upload",
        content=b"x",
        headers={"Content-Type": content_type.replace("\r\n", " ")},
    )
    assert r.status_code == 200, r.text
    got = await alice.get(media_path(r.json()["content_uri"]))
    assert got.headers["content-disposition"] == disposition
    assert "x-evil" not in got.headers


async def test_non_ascii_filename_is_encoded_per_rfc_6266(alice: httpx.AsyncClient) -> None:
    name = 'résumé "final";.pdf'
    uri = await upload(alice, b"%PDF-1.4", "application/pdf", name)
    r = await alice.get(media_path(uri))
    disposition = r.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="r_sum_ _final_;.pdf"; ')
    assert disposition.endswith("filename*=utf-8''r%C3%A9sum%C3%A9%20%22final%22%3B.pdf")
    # The header must not be splittable: the raw quotes never appear unescaped.
    assert disposition.count('"') == 2


async def test_upload_without_content_type_is_octet_stream(alice: httpx.AsyncClient) -> None:
    r = await alice.post("/_matrix/media/v3/upload", content=b"abc")
    assert r.status_code == 200
    got = await alice.get(media_path(r.json()["content_uri"]))
    assert got.headers["content-type"] == "application/octet-stream"
    assert got.headers["content-disposition"] == "attachment"


async def test_empty_upload_is_allowed(alice: httpx.AsyncClient) -> None:
    uri = await upload(alice, b"", "text/plain")
    r = await alice.get(media_path(uri))
    assert r.status_code == 200
    assert r.content == b""


async def test_range_request_returns_206_and_content_range(alice: httpx.AsyncClient) -> None:
    data = bytes(range(256)) * 40
    uri = await upload(alice, data, "video/mp4")
    r = await alice.get(media_path(uri), headers={"Range": "bytes=100-199"})
    assert r.status_code == 206
    assert r.content == data[100:200]
    assert r.headers["content-range"] == f"bytes 100-199/{len(data)}"
    assert r.headers["content-length"] == "100"
    r = await alice.get(media_path(uri), headers={"Range": "bytes=-10"})
    assert r.status_code == 206
    assert r.content == data[-10:]
    r = await alice.get(media_path(uri), headers={"Range": "bytes=10000-"})
    assert r.status_code == 206
    assert r.content == data[10000:]
    r = await alice.get(media_path(uri), headers={"Range": "bytes=5-99999999"})
    assert r.status_code == 206
    assert r.content == data[5:]


async def test_unsatisfiable_range_is_416(alice: httpx.AsyncClient) -> None:
    data = b"0123456789"
    uri = await upload(alice, data, "video/mp4")
    r = await alice.get(media_path(uri), headers={"Range": "bytes=10-20"})
    assert r.status_code == 416
    assert r.headers["content-range"] == "bytes */10"
    assert r.json()["errcode"] == "M_INVALID_PARAM"
    # A header we do not understand is ignored: the whole body, 200.
    r = await alice.get(media_path(uri), headers={"Range": "bytes=1-2,4-5"})
    assert r.status_code == 200
    assert r.content == data


async def test_head_returns_headers_without_body(alice: httpx.AsyncClient) -> None:
    uri = await upload(alice, b"x" * 1000, "image/png")
    r = await alice.head(media_path(uri))
    assert r.status_code == 200
    assert r.headers["content-length"] == "1000"
    assert r.content == b""


async def test_download_requires_authentication(
    alice: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    uri = await upload(alice, b"secret", "text/plain")
    r = await client.get(media_path(uri))
    assert r.status_code == 401
    assert r.json()["errcode"] == "M_MISSING_TOKEN"
    r = await client.get(media_path(uri), headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401
    assert r.json()["errcode"] == "M_UNKNOWN_TOKEN"


async def test_upload_requires_authentication(client: httpx.AsyncClient) -> None:
    r = await client.post("/_matrix/media/v3/upload", content=b"x")
    assert r.status_code == 401
    assert r.json()["errcode"] == "M_MISSING_TOKEN"


@pytest.mark.parametrize(
    "path",
    [
        "/_matrix/client/v1/media/download/test.example/doesNotExist",
        "/_matrix/client/v1/media/download/test.example/bad.id",
        "/_matrix/client/v1/media/download/test.example/..%2F..%2Fetc%2Fpasswd",
        "/_matrix/client/v1/media/download/bad%20server/abc",
        "/_matrix/client/v1/media/download/other.example/abc",
        "/_matrix/client/v1/media/thumbnail/test.example/doesNotExist?width=32&height=32",
    ],
)
async def test_unknown_media_is_404_not_found(alice: httpx.AsyncClient, path: str) -> None:
    r = await alice.get(path)
    assert r.status_code == 404
    assert r.json()["errcode"] == "M_NOT_FOUND"


async def test_another_user_can_download(alice: httpx.AsyncClient, bob: httpx.AsyncClient) -> None:
    uri = await upload(alice, b"shared", "text/plain")
    r = await bob.get(media_path(uri))
    assert r.status_code == 200
    assert r.content == b"shared"


async def test_quarantined_media_is_404(alice: httpx.AsyncClient, server: Any) -> None:
    uri = await upload(alice, b"bad stuff", "text/plain")
    media_id = uri.rsplit("/", 1)[1]
    await server.hs.database.run(
        lambda c: media_db.set_quarantined(c, "test.example", media_id, True)
    )
    r = await alice.get(media_path(uri))
    assert r.status_code == 404
    assert r.json()["errcode"] == "M_NOT_FOUND"


async def test_config_reports_upload_size(
    alice: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    r = await alice.get("/_matrix/client/v1/media/config")
    assert r.status_code == 200
    assert r.json() == {"m.upload.size": 50 * 1024 * 1024}
    r = await client.get("/_matrix/client/v1/media/config")
    assert r.status_code == 401


async def test_preview_url_is_off(alice: httpx.AsyncClient) -> None:
    r = await alice.get("/_matrix/client/v1/media/preview_url", params={"url": "http://127.0.0.1/"})
    assert r.status_code == 404
    assert r.json()["errcode"] == "M_UNRECOGNIZED"


async def test_legacy_endpoints_are_frozen_by_default(
    alice: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    uri = await upload(alice, b"old", "text/plain")
    legacy = media_path(uri).replace("/_matrix/client/v1/media/", "/_matrix/media/v3/")
    for c in (client, alice):
        r = await c.get(legacy)
        assert r.status_code == 404
        assert r.json()["errcode"] == "M_NOT_FOUND"
    r = await client.get("/_matrix/media/v3/config")
    assert r.status_code == 404


@pytest.mark.server_config(media={"enable_legacy_unauthenticated": True})
async def test_legacy_endpoints_serve_when_enabled(
    alice: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    uri = await upload(alice, b"old", "text/plain")
    legacy = media_path(uri).replace("/_matrix/client/v1/media/", "/_matrix/media/v3/")
    r = await client.get(legacy)
    assert r.status_code == 200
    assert r.content == b"old"
    assert r.headers["x-content-type-options"] == "nosniff"
    r = await client.get("/_matrix/media/v3/config")
    assert r.json() == {"m.upload.size": 50 * 1024 * 1024}


async def test_identical_content_is_stored_once(
    alice: httpx.AsyncClient, bob: httpx.AsyncClient, server: Any
) -> None:
    data = b"the same bytes" * 1000
    first = await upload(alice, data, "text/plain", "a.txt")
    second = await upload(bob, data, "application/octet-stream", "b.bin")
    assert first != second
    rows = [
        await server.hs.database.read(
            lambda c, u=u: media_db.get_media(c, "test.example", u.rsplit("/", 1)[1])
        )
        for u in (first, second)
    ]
    assert rows[0].sha256 == rows[1].sha256
    assert await server.hs.database.read(lambda c: media_db.blob_refcount(c, rows[0].sha256)) == 2
    media_dir = server.hs.media.store.root
    stored = [p for p in media_dir.rglob("*") if p.is_file() and p.parent.name != "tmp"]
    assert [p.name for p in stored] == [rows[0].sha256]
    # Each keeps its own metadata.
    r1, r2 = await alice.get(media_path(first)), await alice.get(media_path(second))
    assert r1.content == r2.content == data
    assert r1.headers["content-disposition"] == 'inline; filename="a.txt"'
    assert r2.headers["content-disposition"] == 'attachment; filename="b.bin"'
    # Deleting one keeps the bytes for the other; deleting both removes the file.
    await server.hs.media.delete_media("test.example", first.rsplit("/", 1)[1])
    assert (await alice.get(media_path(second))).content == data
    await server.hs.media.delete_media("test.example", second.rsplit("/", 1)[1])
    assert not [p for p in media_dir.rglob("*") if p.is_file() and p.parent.name != "tmp"]


async def test_concurrent_identical_uploads_share_one_blob(
    alice: httpx.AsyncClient, server: Any
) -> None:
    data = b"raced bytes" * 5000
    uris: list[str] = []

    async def one() -> None:
        uris.append(await upload(alice, data, "application/octet-stream"))

    async with trio.open_nursery() as nursery:
        for _ in range(6):
            nursery.start_soon(one)
    assert len(set(uris)) == 6
    sha256 = hashlib.sha256(data).hexdigest()
    assert await server.hs.database.read(lambda c: media_db.blob_refcount(c, sha256)) == 6
    for uri in uris:
        assert (await alice.get(media_path(uri))).content == data


async def _raw_exchange(server: Any, head: bytes) -> trio.SocketStream:
    port = int(server.base_url.rsplit(":", 1)[1])
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(head)
    return stream


async def _read_until(stream: trio.SocketStream, marker: bytes) -> bytes:
    data = b""
    with trio.fail_after(10):
        while marker not in data:
            chunk = await stream.receive_some(65536)
            if not chunk:
                break
            data += chunk
    return data


async def test_expect_100_continue_is_answered_only_after_authentication(
    server: Any, client: httpx.AsyncClient, register_user: Any
) -> None:
    token = (await register_user(client, "carol"))["access_token"]
    # Unauthenticated: refused at once, the body is never asked for.
    stream = await _raw_exchange(
        server,
        b"POST /_matrix/media/v3/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
        b"Expect: 100-continue\r\n\r\n",
    )
    reply = await _read_until(stream, b"}")
    assert reply.startswith(b"HTTP/1.1 401 ")
    assert b"100 Continue" not in reply
    await stream.aclose()
    # Authenticated: 100 Continue, then the body, then the content URI.
    stream = await _raw_exchange(
        server,
        b"POST /_matrix/media/v3/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
        b"Expect: 100-continue\r\nAuthorization: Bearer " + token.encode() + b"\r\n\r\n",
    )
    assert (await _read_until(stream, b"\r\n\r\n")).startswith(b"HTTP/1.1 100 ")
    await stream.send_all(b"hello")
    reply = await _read_until(stream, b"}")
    assert reply.startswith(b"HTTP/1.1 200 ")
    assert b"mxc://test.example/" in reply
    await stream.aclose()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/_matrix/media/v3/upload"),
        ("POST", "/_matrix/media/v1/create"),
        ("PUT", "/_matrix/media/v3/upload/test.example/abc"),
        ("GET", "/_matrix/client/v1/media/config"),
        ("GET", "/_matrix/client/v1/media/download/test.example/abc"),
        ("GET", "/_matrix/client/v1/media/download/test.example/abc/name.txt"),
        ("GET", "/_matrix/client/v1/media/thumbnail/test.example/abc?width=1&height=1"),
        ("GET", "/_matrix/client/v1/media/preview_url?url=http://example.org/"),
    ],
)
async def test_every_authenticated_endpoint_refuses_anonymous_callers(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    r = await client.request(method, path, content=b"x" if method != "GET" else None)
    assert r.status_code == 401
    assert r.json()["errcode"] == "M_MISSING_TOKEN"
