"""Our HTTP/1.1 server on h11 + trio, and the request/response/router types.

API packages build a :class:`Router`, add handlers ``async def h(req) -> Response``
and hand the router to :func:`serve_http` (or an :class:`HttpServer`).
"""

from homeserver.http.router import Handler, Route, Router
from homeserver.http.server import HttpServer, HttpServerStatistics, serve_http
from homeserver.http.types import JSONValue, Request, Response

__all__ = [
    "Handler",
    "HttpServer",
    "HttpServerStatistics",
    "JSONValue",
    "Request",
    "Response",
    "Route",
    "Router",
    "serve_http",
]
