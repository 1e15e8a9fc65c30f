"""Path-template routing: ``/_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}``.

Static paths are a dict lookup; templated paths are matched segment by segment,
so routing cost does not grow with regular-expression backtracking. Matched
segments are percent-decoded (Matrix IDs such as ``!room:server`` and ``@u:s``
arrive encoded).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

import attrs

from homeserver.errors import unrecognized
from homeserver.http.types import Request, Response

Handler = Callable[[Request], Awaitable[Response]]
# A WebSocket handler gets the upgrade request and the open trio-websocket connection.
WebSocketHandler = Callable[[Request, Any], Awaitable[None]]


@attrs.frozen
class Route:
    method: str
    template: str
    handler: Handler | None
    # Largest request body accepted, in bytes; None means the server default.
    max_body: int | None = None
    websocket: WebSocketHandler | None = None
    # Free-form labels (e.g. the rate-limit class), for middleware.
    tags: frozenset[str] = frozenset()
    # The handler reads the body itself from ``Request.body_stream`` (media
    # uploads), so a large body never sits in memory; ``max_body`` still applies.
    stream_body: bool = False


@attrs.define
class _Node:
    static: dict[str, _Node] = attrs.field(factory=dict)
    param: _Node | None = None
    param_name: str = ""
    # Trailing ``{name:path}`` parameter: swallows the remaining segments.
    rest_name: str | None = None
    rest_routes: dict[str, Route] = attrs.field(factory=dict)
    routes: dict[str, Route] = attrs.field(factory=dict)


class Router:
    """Maps (method, path) to a :class:`Route`, or raises the Matrix 404/405."""

    def __init__(self) -> None:
        self._static: dict[str, dict[str, Route]] = {}
        self._root = _Node()

    def add(
        self,
        method: str,
        template: str,
        handler: Handler,
        *,
        max_body: int | None = None,
        tags: frozenset[str] | set[str] = frozenset(),
        stream_body: bool = False,
    ) -> Route:
        route = Route(
            method.upper(), template, handler, max_body, None, frozenset(tags), stream_body
        )
        self._insert(route)
        return route

    def add_websocket(self, template: str, handler: WebSocketHandler) -> Route:
        route = Route("GET", template, None, 0, handler)
        self._insert(route)
        return route

    def routes(self) -> list[Route]:
        out: list[Route] = []
        for by_method in self._static.values():
            out.extend(by_method.values())

        def walk(node: _Node) -> None:
            out.extend(node.routes.values())
            out.extend(node.rest_routes.values())
            for child in node.static.values():
                walk(child)
            if node.param is not None:
                walk(node.param)

        walk(self._root)
        return out

    def _insert(self, route: Route) -> None:
        if "{" not in route.template:
            by_method = self._static.setdefault(route.template, {})
            if route.method in by_method:
                raise ValueError(f"duplicate route {route.method} {route.template}")
            by_method[route.method] = route
            return
        node = self._root
        segments = route.template.split("/")
        for i, seg in enumerate(segments):
            if seg.startswith("{") and seg.endswith("}"):
                name = seg[1:-1]
                if name.endswith(":path"):
                    if i != len(segments) - 1:
                        raise ValueError("a {name:path} parameter must be last")
                    node.rest_name = name[: -len(":path")]
                    if route.method in node.rest_routes:
                        raise ValueError(f"duplicate route {route.method} {route.template}")
                    node.rest_routes[route.method] = route
                    return
                if node.param is None:
                    node.param = _Node()
                    node.param_name = name
                elif node.param_name != name:
                    raise ValueError(
                        f"{route.template}: parameter {{{name}}} conflicts with "
                        f"{{{node.param_name}}} at the same position"
                    )
                node = node.param
            else:
                node = node.static.setdefault(seg, _Node())
        if route.method in node.routes:
            raise ValueError(f"duplicate route {route.method} {route.template}")
        node.routes[route.method] = route

    def resolve(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        """Find the route for a request, with its decoded path parameters."""
        by_method = self._static.get(path)
        if by_method is None:
            found = self._match(path)
            if found is not None:
                by_method, params = found
            else:
                raise unrecognized(404, "Unrecognized request")
        else:
            params = {}
        route = by_method.get(method)
        if route is None and method == "HEAD":
            route = by_method.get("GET")
        if route is None:
            raise unrecognized(405, f"Method {method} not allowed here")
        return route, params

    def allowed_methods(self, path: str) -> list[str]:
        by_method = self._static.get(path)
        if by_method is None:
            found = self._match(path)
            by_method = found[0] if found else {}
        return sorted(by_method)

    def _match(self, path: str) -> tuple[dict[str, Route], dict[str, str]] | None:
        segments = path.split("/")
        params: dict[str, str] = {}
        return self._walk(self._root, segments, 0, params)

    def _walk(
        self, node: _Node, segments: list[str], i: int, params: dict[str, str]
    ) -> tuple[dict[str, Route], dict[str, str]] | None:
        if i == len(segments):
            return (node.routes, params) if node.routes else None
        seg = segments[i]
        child = node.static.get(seg)
        if child is not None:
            found = self._walk(child, segments, i + 1, params)
            if found is not None:
                return found
        # An empty segment only binds a parameter at the end of the path: clients
        # send the empty state key as a trailing slash (``/state/m.room.name/``).
        if node.param is not None and (seg or i == len(segments) - 1):
            params[node.param_name] = unquote(seg)
            found = self._walk(node.param, segments, i + 1, params)
            if found is not None:
                return found
            params.pop(node.param_name, None)
        if node.rest_name is not None and node.rest_routes:
            params[node.rest_name] = unquote("/".join(segments[i:]))
            return node.rest_routes, params
        return None
