"""Our HTTP/1.1 server on h11 + trio, and the request/response/router types.

API packages build a :class:`Router`, add handlers ``async def h(req) -> Response``
and hand the router to :func:`serve`.
"""

from homeserver.http.types import JSONValue, Request, Response
from homeserver.http.router import Handler, Route, Router

__all__ = ["Handler", "JSONValue", "Request", "Response", "Route", "Router"]
