"""openapi.json lists exactly the routes the server serves (OPTIONS/HEAD aside).

The router is built the way ``plait serve`` builds it (``client_api.build_router``),
so a route someone adds without documenting it fails here, and so does a
documented route that nobody serves.
"""

from __future__ import annotations

import json
import re

from plait_fixtures import RunningServer
from spec_helpers import HTTP_METHODS, SPEC_DIR, documented_operations, normalise, openapi

from client_api import build_router


def served_operations(server: RunningServer) -> set[tuple[str, str]]:
    router = build_router(server.hs)
    return {
        (route.method, normalise(route.template))
        for route in router.routes()
        if route.method not in ("OPTIONS", "HEAD")
    }


async def test_every_served_route_is_documented(server: RunningServer) -> None:
    missing = sorted(served_operations(server) - documented_operations())
    assert not missing, f"served but not in spec/openapi.json: {missing}"


async def test_every_documented_route_is_served(server: RunningServer) -> None:
    extra = sorted(documented_operations() - served_operations(server))
    assert not extra, f"in spec/openapi.json but not served: {extra}"


def test_openapi_json_is_what_build_openapi_writes() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_openapi", SPEC_DIR / "build_openapi.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert json.loads(module.render()) == openapi(), "run: python spec/build_openapi.py"


def _refs(value: object) -> list[str]:
    if isinstance(value, dict):
        found = [value["$ref"]] if isinstance(value.get("$ref"), str) else []
        for item in value.values():
            found.extend(_refs(item))
        return found
    if isinstance(value, list):
        return [r for item in value for r in _refs(item)]
    return []


def test_openapi_document_is_well_formed() -> None:
    doc = openapi()
    assert doc["openapi"].startswith("3.1")
    # Every $ref points at something that exists.
    for pointer in set(_refs(doc)):
        assert pointer.startswith("#/"), pointer
        node: object = doc
        for token in pointer[2:].split("/"):
            assert isinstance(node, dict) and token in node, f"dangling $ref {pointer}"
            node = node[token]
    error_ref = {"$ref": "#/components/schemas/Error"}
    for name, response in doc["components"]["responses"].items():
        assert response["content"]["application/json"]["schema"] == error_ref, name
    for path, item in doc["paths"].items():
        declared = {p["name"] for p in item.get("parameters", [])}
        in_path = {seg[1:-1] for seg in path.split("/") if seg.startswith("{")}
        assert declared == in_path, path
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            assert {"200", "101"} & set(operation["responses"]), (method, path)
            for status, response in operation["responses"].items():
                if int(status) >= 400 and "$ref" in response:
                    assert response["$ref"] == f"#/components/responses/E{status}"


_PROSE_PATH = re.compile(r"(/_matrix/[A-Za-z0-9_./{}\-]*|/\.well-known/[a-z/]+)")


def test_prose_documents_every_route() -> None:
    """Each v1/v3 path of openapi.json is written out in some spec/*.md page.

    Aliases (r0, unstable) and the web client's paths are documented as groups
    (http.md), so they are not looked for one by one.
    """
    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted(SPEC_DIR.glob("*.md")))
    mentioned = {normalise(m.rstrip(".")) for m in _PROSE_PATH.findall(text)}
    missing = [
        path
        for path in openapi()["paths"]
        if path.startswith(("/_matrix/", "/.well-known/"))
        and "/r0/" not in path
        and "/unstable/" not in path
        and normalise(path) not in mentioned
    ]
    assert not missing, f"routes no spec/*.md page writes out: {missing}"


async def test_body_limits_match_the_router(server: RunningServer) -> None:
    """``x-max-body`` in openapi.json is each route's own request-body limit (limits.md)."""
    media_limit = server.config.media.max_upload_size
    wrong = []
    for route in build_router(server.hs).routes():
        key = (route.method, normalise(route.template))
        documented = None
        for path, item in openapi()["paths"].items():
            operation = item.get(route.method.lower())
            if operation is not None and normalise(path) == key[1]:
                documented = operation.get("x-max-body")
        if documented == "media.max_upload_size":
            documented = media_limit
        if route.max_body != documented:
            wrong.append((route.method, route.template, route.max_body, documented))
    assert not wrong, f"(method, path, served limit, documented limit): {wrong}"
