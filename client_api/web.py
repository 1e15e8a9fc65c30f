"""The reference web client: the files Vite builds into ``web/dist``, served at ``/``.

The client is a single-page app, so every non-API path under ``/`` answers
``index.html`` (the app routes itself) with ``Cache-Control: no-cache``, while
the content-hashed files under ``/assets/`` never change and are cached for a
year. Paths under ``/_matrix/`` and ``/.well-known/`` keep their Matrix 404:
the router prefers static segments, so only paths no API route matches reach
the catch-all here.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from pathlib import Path

import trio

from homeserver.errors import not_found, unrecognized
from homeserver.homeserver import HomeServer
from homeserver.http.router import Router
from homeserver.http.types import Request, Response

DEFAULT_DIST = Path(__file__).resolve().parent.parent / "web" / "dist"

NO_CACHE = "no-cache"
IMMUTABLE = "public, max-age=31536000, immutable"
# The client only talks to its own origin; media previews are blob: URLs.
CSP = (
    "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
    "style-src 'self'; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
API_PREFIXES = ("/_matrix/", "/.well-known/", "/_synapse/", "/_plait/")

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".txt": "text/plain; charset=utf-8",
}

NOT_BUILT = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Plait</title></head>
<body><h1>Plait</h1>
<p>The web client is not built. Run <code>make run</code> (or
<code>cd web &amp;&amp; npm ci &amp;&amp; npm run build</code>) and reload.</p>
<p>The Matrix API is served under <code>/_matrix/</code>.</p>
</body></html>
"""


def content_type(path: Path) -> str:
    known = _TYPES.get(path.suffix.lower())
    if known is not None:
        return known
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"


def safe_file(dist: Path, relative: str) -> Path | None:
    """The regular file ``relative`` names inside ``dist``, or None.

    Refuses ``..``, absolute parts, backslashes and NUL before touching the
    file system, then checks the resolved path (symlinks included) stays inside.
    """
    if "\\" in relative or "\x00" in relative:
        return None
    parts = [p for p in relative.split("/") if p]
    if any(p in (".", "..") or ":" in p for p in parts) or not parts:
        return None
    root = dist.resolve()
    candidate = root.joinpath(*parts).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return candidate


def _page(body: bytes, cache: str, ctype: str, status: int = 200) -> Response:
    headers = [
        ("Content-Type", ctype),
        ("Cache-Control", cache),
        ("X-Content-Type-Options", "nosniff"),
    ]
    if ctype.startswith("text/html"):
        headers += [("Content-Security-Policy", CSP), ("Referrer-Policy", "no-referrer")]
    return Response(status=status, headers=headers, body=body)


def _validated(request: Request, response: Response) -> Response:
    """Add an ETag; answer 304 when the client already has these bytes.

    ``no-cache`` means "revalidate", so a reload of index.html costs a 304.
    """
    etag = '"' + hashlib.sha256(response.body).hexdigest()[:32] + '"'
    response.headers.append(("ETag", etag))
    wanted = request.headers.get("if-none-match", "")
    # Weak comparison (RFC 9110 13.1.2): the gzip variant carries W/ tags.
    tags = {t.strip().removeprefix("W/") for t in wanted.split(",")}
    if etag in tags or wanted.strip() == "*":
        return Response(status=304, headers=response.headers)
    return response


_COMPRESSIBLE = ("text/", "application/json", "application/manifest+json", "image/svg+xml")


def _accepts_gzip(request: Request) -> bool:
    for part in request.headers.get("accept-encoding", "").split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() == "gzip":
            return params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def _not_found() -> Response:
    # The Matrix error body, as for every other 404 of the server (spec/openapi.json).
    return Response.json(
        not_found("No such file").to_json(),
        status=404,
        headers=[("Cache-Control", NO_CACHE), ("X-Content-Type-Options", "nosniff")],
    )


def add_routes(router: Router, hs: HomeServer | None, *, dist: Path | None = None) -> None:
    root = dist if dist is not None else DEFAULT_DIST

    def load_index() -> bytes | None:
        index = root / "index.html"
        return index.read_bytes() if index.is_file() else None

    async def index(request: Request) -> Response:
        body = await trio.to_thread.run_sync(load_index)
        if body is None:
            return _page(NOT_BUILT, NO_CACHE, _TYPES[".html"])
        return _validated(request, _page(body, NO_CACHE, _TYPES[".html"]))

    # (path, mtime, size) -> gzip of the file: the bundle is compressed once.
    gzipped: dict[tuple[Path, int, int], bytes] = {}

    def load(relative: str, want_gzip: bool) -> tuple[Path, bytes, bytes | None] | None:
        found = safe_file(root, relative)
        if found is None:
            return None
        body = found.read_bytes()
        if not want_gzip or len(body) < 1024 or not content_type(found).startswith(_COMPRESSIBLE):
            return found, body, None
        stat = found.stat()
        key = (found, stat.st_mtime_ns, stat.st_size)
        packed = gzipped.get(key)
        if packed is None:
            if len(gzipped) > 256:
                gzipped.clear()
            packed = gzipped[key] = gzip.compress(body, mtime=0)
        return found, body, packed

    async def file_or_app(request: Request) -> Response:
        path = "/" + request.path_params.get("path", "")
        if path.startswith(API_PREFIXES):
            raise unrecognized(404, "Unrecognized request")
        relative = request.path_params.get("path", "")
        segments = [s for s in relative.split("/") if s]
        if any(s in (".", "..") for s in segments) or "\\" in relative or "\x00" in relative:
            return _not_found()
        found = await trio.to_thread.run_sync(load, relative, _accepts_gzip(request))
        if found is not None:
            file, body, packed = found
            cache = IMMUTABLE if segments[0] == "assets" else NO_CACHE
            response = _validated(request, _page(body, cache, content_type(file)))
            if packed is not None and response.status == 200:
                response.body = packed
                response.headers = [
                    (k, "W/" + v if k == "ETag" else v) for k, v in response.headers
                ] + [("Content-Encoding", "gzip"), ("Vary", "Accept-Encoding")]
            elif packed is not None:
                response.headers.append(("Vary", "Accept-Encoding"))
            return response
        # A missing hashed asset is a 404, not the app: HTML is no script.
        if segments and segments[0] == "assets":
            return _not_found()
        return await index(request)

    async def not_api(request: Request) -> Response:
        # The catch-all matches every path no API route does; other methods
        # there keep the Matrix answer for an unknown endpoint (404, not 405).
        raise unrecognized(404, "Unrecognized request")

    router.add("GET", "/", index)
    router.add("GET", "/{path:path}", file_or_app)
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        router.add(method, "/{path:path}", not_api)
