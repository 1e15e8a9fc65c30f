"""URL previews: off by default, SSRF refusals, OpenGraph extraction, images, caching.

A tiny web server on 127.0.0.1 plays the remote site. Loopback is refused
unless allowlisted, so the tests that fetch from it allowlist 127.0.0.1/32,
and the SSRF tests check the refusals that remain.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import AsyncIterator
from functools import partial

import httpx
import pytest
import trio
from media_helpers import image_bytes, media_path

from homeserver.media.opengraph import parse_open_graph
from homeserver.media.preview import is_blocked, parse_networks

PREVIEW = "/_matrix/client/v1/media/preview_url"
ENABLED = {"url_preview_enabled": True, "url_preview_ip_allowlist": "127.0.0.1/32"}

PAGE = b"""<!doctype html><html><head>
<title>  Ignored   title </title>
<meta property="og:title" content="Plait &amp; friends">
<meta property="og:description" content="A homeserver">
<meta property="og:image" content="/cat.png">
<meta name="description" content="fallback">
</head><body><p>hello</p></body></html>"""


class Site:
    def __init__(self) -> None:
        self.hits: list[str] = []
        self.port = 0
        self.routes: dict[str, tuple[int, list[tuple[str, str]], bytes]] = {
            "/page": (200, [("Content-Type", "text/html; charset=utf-8")], PAGE),
            "/plain": (
                200,
                [("Content-Type", "text/html")],
                b"<html><head><title>Just a title</title>"
                b'<meta name="description" content="Described"></head></html>',
            ),
            "/cat.png": (200, [("Content-Type", "image/png")], image_bytes((64, 48))),
            "/redirect": (302, [("Location", "/page")], b""),
            "/to-private": (302, [("Location", "http://10.1.2.3/page")], b""),
            "/loop": (302, [("Location", "/loop")], b""),
            "/huge": (200, [("Content-Type", "text/html")], b"<html>" + b"x" * (2 * 1024 * 1024)),
            "/pdf": (200, [("Content-Type", "application/pdf")], b"%PDF-1.4"),
        }

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def handle(self, stream: trio.SocketStream) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = await stream.receive_some(65536)
            if not chunk:
                return
            data += chunk
        path = data.split(b" ", 2)[1].decode()
        self.hits.append(path)
        status, headers, body = self.routes.get(path, (404, [], b"not found"))
        head = f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\nConnection: close\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers)
        # The fetcher may hang up early (a too-large body).
        with contextlib.suppress(trio.BrokenResourceError):
            await stream.send_all(head.encode() + b"\r\n" + body)
        await stream.aclose()


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    s = Site()
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, s.handle, 0, host="127.0.0.1"))
        s.port = listeners[0].socket.getsockname()[1]
        yield s
        nursery.cancel_scope.cancel()


async def test_off_by_default(alice: httpx.AsyncClient, site: Site) -> None:
    r = await alice.get(PREVIEW, params={"url": site.url("/page")})
    assert r.status_code == 404
    assert r.json()["errcode"] == "M_UNRECOGNIZED"
    assert site.hits == []


@pytest.mark.server_config(media=ENABLED)
async def test_preview_extracts_open_graph_and_stores_the_image(
    alice: httpx.AsyncClient, site: Site
) -> None:
    r = await alice.get(PREVIEW, params={"url": site.url("/page"), "ts": "0"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["og:title"] == "Plait & friends"
    assert body["og:description"] == "A homeserver"
    assert body["og:image"].startswith("mxc://test.example/")
    assert body["og:image:type"] == "image/png"
    image = site.routes["/cat.png"][2]
    assert body["matrix:image:size"] == len(image)
    got = await alice.get(media_path(body["og:image"]))
    assert got.content == image
    # Cached: asking again does not fetch again.
    hits = len(site.hits)
    assert (await alice.get(PREVIEW, params={"url": site.url("/page")})).json() == body
    assert len(site.hits) == hits


@pytest.mark.server_config(media=ENABLED)
async def test_title_and_description_fallbacks_and_redirects(
    alice: httpx.AsyncClient, site: Site
) -> None:
    r = await alice.get(PREVIEW, params={"url": site.url("/plain")})
    assert r.json() == {"og:title": "Just a title", "og:description": "Described"}
    r = await alice.get(PREVIEW, params={"url": site.url("/redirect")})
    assert r.status_code == 200
    assert r.json()["og:title"] == "Plait & friends"
    r = await alice.get(PREVIEW, params={"url": site.url("/pdf")})
    assert r.status_code == 200
    assert r.json() == {}


@pytest.mark.server_config(media={"url_preview_enabled": True})
@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",
        "[::1]",
        "10.0.0.1",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",
        "0.0.0.0",
        "[::ffff:127.0.0.1]",
        "[fe80::1]",
    ],
)
async def test_private_addresses_are_refused(
    alice: httpx.AsyncClient, site: Site, host: str
) -> None:
    url = f"http://{host}:{site.port}/page"
    r = await alice.get(PREVIEW, params={"url": url})
    assert r.status_code == 403, r.text
    assert r.json()["errcode"] == "M_FORBIDDEN"
    assert site.hits == []


@pytest.mark.server_config(media=ENABLED)
async def test_redirect_to_a_private_address_is_refused(
    alice: httpx.AsyncClient, site: Site
) -> None:
    r = await alice.get(PREVIEW, params={"url": site.url("/to-private")})
    assert r.status_code == 403
    assert r.json()["errcode"] == "M_FORBIDDEN"


@pytest.mark.server_config(media=ENABLED)
async def test_fetch_failures_are_matrix_errors(alice: httpx.AsyncClient, site: Site) -> None:
    r = await alice.get(PREVIEW, params={"url": site.url("/huge")})
    assert r.status_code == 502
    assert r.json()["errcode"] == "M_TOO_LARGE"
    r = await alice.get(PREVIEW, params={"url": site.url("/loop")})
    assert r.status_code == 502
    r = await alice.get(PREVIEW, params={"url": site.url("/missing")})
    assert r.status_code == 502
    assert r.json()["errcode"] == "M_UNKNOWN"


@pytest.mark.server_config(media=ENABLED)
@pytest.mark.parametrize(
    ("params", "errcode"),
    [
        ({}, "M_MISSING_PARAM"),
        ({"url": "ftp://127.0.0.1/x"}, "M_INVALID_PARAM"),
        ({"url": "not a url"}, "M_INVALID_PARAM"),
        ({"url": "http:///nohost"}, "M_INVALID_PARAM"),
    ],
)
async def test_bad_urls_are_400(
    alice: httpx.AsyncClient, params: dict[str, str], errcode: str
) -> None:
    r = await alice.get(PREVIEW, params=params)
    assert r.status_code == 400
    assert r.json()["errcode"] == errcode


@pytest.mark.server_config(media=ENABLED)
async def test_preview_requires_authentication(client: httpx.AsyncClient, site: Site) -> None:
    r = await client.get(PREVIEW, params={"url": site.url("/page")})
    assert r.status_code == 401
    assert site.hits == []


@pytest.mark.parametrize(
    ("address", "blocked"),
    [
        ("8.8.8.8", False),
        ("2606:4700:4700::1111", False),
        ("127.0.0.1", True),
        ("10.1.2.3", True),
        ("172.16.0.1", True),
        ("169.254.1.1", True),
        ("100.64.1.1", True),
        ("224.0.0.1", True),
        ("::1", True),
        ("fc00::1", True),
        ("::ffff:10.0.0.1", True),
        ("::ffff:8.8.8.8", False),
        ("64:ff9b::a00:1", True),
    ],
)
def test_is_blocked(address: str, blocked: bool) -> None:
    assert is_blocked(ipaddress.ip_address(address), []) is blocked


def test_allowlist_reopens_a_range() -> None:
    allow = parse_networks("127.0.0.1/32, 10.0.0.0/8")
    assert not is_blocked(ipaddress.ip_address("127.0.0.1"), allow)
    assert not is_blocked(ipaddress.ip_address("10.9.9.9"), allow)
    assert is_blocked(ipaddress.ip_address("127.0.0.2"), allow)
    with pytest.raises(ValueError):
        parse_networks("not-a-network")


def test_parse_open_graph_handles_hostile_html() -> None:
    assert parse_open_graph(
        b"<meta property='og:title' content='x'><<<>>>\xff\xfe", "text/html"
    ) == {"og:title": "x"}
    assert parse_open_graph(b"<title>caf\xe9</title>", "text/html; charset=latin-1") == {
        "og:title": "café"
    }
    assert parse_open_graph(b"<title>t</title>", "text/html; charset=bogus") == {"og:title": "t"}
    big = b"<meta property='og:x%d' content='y'>" * 1
    assert len(parse_open_graph(b"".join(big % i for i in range(200)), "text/html")) == 50
