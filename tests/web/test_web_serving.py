"""client_api/web.py: the built client at ``/``, cache headers, traversal, missing build."""

from __future__ import annotations

import gzip
from pathlib import Path

import httpx
import pytest

from client_api import web
from homeserver.errors import MatrixError
from homeserver.http.router import Router
from homeserver.http.types import Request, Response

INDEX = b"<!doctype html><title>Plait</title><div id=root></div>"


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_bytes(INDEX)
    (root / "assets" / "index-abc123.js").write_bytes(b"console.log(1)")
    (root / "assets" / "index-abc123.css").write_bytes(b"body{}")
    (root / "favicon.svg").write_bytes(b"<svg/>")
    (tmp_path / "secret.txt").write_bytes(b"top secret")
    return root


async def get(
    router: Router, path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> Response:
    route, params = router.resolve(method, path)
    assert route.handler is not None
    request = Request(method=method, path=path, query={}, headers=headers or {}, path_params=params)
    return await route.handler(request)


def header(response: Response, name: str) -> str:
    values = [v for k, v in response.headers if k.lower() == name.lower()]
    assert len(values) == 1, (name, response.headers)
    return values[0]


def routed(dist: Path) -> Router:
    router = Router()
    router.add("GET", "/_matrix/client/versions", lambda r: None)  # type: ignore[arg-type,return-value]
    web.add_routes(router, None, dist=dist)
    return router


async def test_index_at_root_is_not_cached(dist: Path) -> None:
    response = await get(routed(dist), "/")
    assert response.status == 200
    assert response.body == INDEX
    assert header(response, "Content-Type") == "text/html; charset=utf-8"
    assert header(response, "Cache-Control") == "no-cache"
    assert "default-src 'self'" in header(response, "Content-Security-Policy")


@pytest.mark.parametrize("path", ["/rooms/!abc:example.org", "/login", "/a/b/c"])
async def test_unknown_app_paths_answer_index(dist: Path, path: str) -> None:
    response = await get(routed(dist), path)
    assert (response.status, response.body) == (200, INDEX)
    assert header(response, "Cache-Control") == "no-cache"


@pytest.mark.parametrize(
    ("path", "ctype"),
    [
        ("/assets/index-abc123.js", "text/javascript; charset=utf-8"),
        ("/assets/index-abc123.css", "text/css; charset=utf-8"),
    ],
)
async def test_hashed_assets_are_immutable(dist: Path, path: str, ctype: str) -> None:
    response = await get(routed(dist), path)
    assert response.status == 200
    assert header(response, "Content-Type") == ctype
    assert header(response, "Cache-Control") == "public, max-age=31536000, immutable"


async def test_other_files_are_served_uncached(dist: Path) -> None:
    response = await get(routed(dist), "/favicon.svg")
    assert (response.status, response.body) == (200, b"<svg/>")
    assert header(response, "Content-Type") == "image/svg+xml"
    assert header(response, "Cache-Control") == "no-cache"


@pytest.mark.parametrize("path", ["/", "/assets/index-abc123.js"])
async def test_etag_revalidation_answers_304(dist: Path, path: str) -> None:
    router = routed(dist)
    first = await get(router, path)
    etag = header(first, "ETag")
    again = await get(router, path, headers={"if-none-match": f'"other", {etag}'})
    assert (again.status, again.body) == (304, b"")
    assert header(again, "ETag") == etag
    changed = await get(router, path, headers={"if-none-match": '"stale"'})
    assert changed.status == 200 and changed.body


async def test_text_assets_are_gzipped_when_asked(dist: Path) -> None:
    script = b"console.log('plait');\n" * 200
    (dist / "assets" / "big-1.js").write_bytes(script)
    router = routed(dist)
    packed = await get(router, "/assets/big-1.js", headers={"accept-encoding": "br, gzip"})
    assert header(packed, "Content-Encoding") == "gzip"
    assert header(packed, "Vary") == "Accept-Encoding"
    assert gzip.decompress(packed.body) == script
    plain = await get(router, "/assets/big-1.js")
    assert plain.body == script
    assert not [v for k, v in plain.headers if k == "Content-Encoding"]
    refused = await get(router, "/assets/big-1.js", headers={"accept-encoding": "gzip;q=0"})
    assert refused.body == script
    # The gzip variant's tag is weak, and revalidates.
    tag = header(packed, "ETag")
    assert tag.startswith('W/"')
    again = await get(
        router, "/assets/big-1.js", headers={"accept-encoding": "gzip", "if-none-match": tag}
    )
    assert again.status == 304


async def test_missing_asset_is_404_not_the_app(dist: Path) -> None:
    response = await get(routed(dist), "/assets/index-gone.js")
    assert response.status == 404
    assert response.body != INDEX


@pytest.mark.parametrize(
    "path",
    [
        "/../secret.txt",
        "/assets/../../secret.txt",
        "/assets/..%2F..%2Fsecret.txt",
        "/%2E%2E/secret.txt",
        "/assets/%2e%2e/%2e%2e/secret.txt",
        "/assets/..\\..\\secret.txt",
        "/assets/%00index-abc123.js",
    ],
)
async def test_directory_traversal_is_refused(dist: Path, path: str) -> None:
    response = await get(routed(dist), path)
    assert b"top secret" not in response.body
    assert response.status in (200, 404)
    if response.status == 200:
        assert response.body == INDEX


def test_safe_file_refuses_escapes_and_symlinks(dist: Path, tmp_path: Path) -> None:
    (dist / "link.txt").symlink_to(tmp_path / "secret.txt")
    assert web.safe_file(dist, "../secret.txt") is None
    assert web.safe_file(dist, "/etc/passwd") is None
    assert web.safe_file(dist, "link.txt") is None
    assert web.safe_file(dist, "assets") is None  # a directory
    assert (
        web.safe_file(dist, "assets/index-abc123.js") == (dist / "assets/index-abc123.js").resolve()
    )


async def test_missing_build_answers_a_page_saying_so(tmp_path: Path) -> None:
    router = routed(tmp_path / "nowhere")
    for path in ("/", "/some/app/path"):
        response = await get(router, path)
        assert response.status == 200
        assert b"not built" in response.body
        assert header(response, "Content-Type").startswith("text/html")


@pytest.mark.parametrize("path", ["/_matrix/client/v3/nothing", "/.well-known/matrix/nothing"])
async def test_api_paths_keep_the_matrix_404(dist: Path, path: str) -> None:
    router = routed(dist)
    for method in ("GET", "POST", "PUT", "DELETE"):
        with pytest.raises(MatrixError) as info:
            await get(router, path, method)
        assert (info.value.status, info.value.errcode) == (404, "M_UNRECOGNIZED")


async def test_static_api_routes_win_over_the_catch_all(dist: Path) -> None:
    route, _ = routed(dist).resolve("GET", "/_matrix/client/versions")
    assert route.template == "/_matrix/client/versions"


async def test_served_by_the_real_server(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-cache"
    unknown = await client.get("/_matrix/client/v3/no/such/endpoint")
    assert (unknown.status_code, unknown.json()["errcode"]) == (404, "M_UNRECOGNIZED")
    versions = await client.get("/_matrix/client/versions")
    assert versions.status_code == 200 and "versions" in versions.json()
    traversal = await client.get("/assets/..%2F..%2Fpyproject.toml")
    assert b"[project]" not in traversal.content
