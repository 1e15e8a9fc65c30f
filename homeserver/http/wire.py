"""What every response carries, and turning h11 requests into :class:`Request` values.

Kept apart from the connection loop so the per-request work is easy to see and
to measure: the constant headers are encoded once, at import.
"""

from __future__ import annotations

import itertools
import os
from urllib.parse import parse_qs

import h11

from homeserver.errors import MatrixError
from homeserver.http.types import Request, Response, encode_json

# Client-Server API, "Web Browser Clients": every response carries these, so a
# browser's preflight and its real request both pass (matrix_brief.md §1.1).
CORS_HEADERS: list[tuple[bytes, bytes]] = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-allow-methods", b"GET, POST, PUT, DELETE, OPTIONS"),
    (b"access-control-allow-headers", b"X-Requested-With, Content-Type, Authorization"),
]

# A request id is a per-process random prefix plus a counter: unique across the
# workers of one deployment, short in logs, and free of per-request randomness.
_ID_PREFIX = os.urandom(3).hex()
_ID_COUNTER = itertools.count(1)


# Decoded header names, and the values of headers that repeat from request to
# request (one client sends the same Host, Accept, User-Agent every time): each
# request then shares these strings instead of holding its own copies, which
# matters while thousands of requests wait (idle /sync long-polls). Bounded:
# once full, further names and values are decoded per request as before.
# Credentials (Authorization, Cookie) are never kept here.
MAX_CACHED_HEADER_NAMES = 256
MAX_CACHED_HEADER_VALUES = 1024
MAX_CACHED_VALUE_BYTES = 128
SHARED_VALUE_HEADERS = frozenset(
    {
        b"host",
        b"user-agent",
        b"accept",
        b"accept-encoding",
        b"accept-language",
        b"connection",
        b"content-type",
        b"origin",
        b"referer",
        b"sec-fetch-mode",
        b"sec-fetch-site",
        b"sec-fetch-dest",
    }
)
_header_names: dict[bytes, str] = {}
_header_values: dict[bytes, str] = {}


def header_name(raw: bytes) -> str:
    name = _header_names.get(raw)
    if name is None:
        name = raw.decode("ascii")
        if len(_header_names) < MAX_CACHED_HEADER_NAMES:
            _header_names[raw] = name
    return name


def header_value(raw_name: bytes, raw: bytes) -> str:
    if raw_name not in SHARED_VALUE_HEADERS or len(raw) > MAX_CACHED_VALUE_BYTES:
        return raw.decode("latin-1")
    value = _header_values.get(raw)
    if value is None:
        value = raw.decode("latin-1")
        if len(_header_values) < MAX_CACHED_HEADER_VALUES:
            _header_values[raw] = value
    return value


def next_request_id() -> str:
    return f"{_ID_PREFIX}{next(_ID_COUNTER):x}"


def build_request(event: h11.Request, remote: str, request_id: str, max_head_bytes: int) -> Request:
    """The handler-facing view of an h11 request.

    Header names arrive lower-cased from h11; repeated headers are joined with
    ``", "`` (RFC 9110 §5.3). The path stays percent-encoded: the router decodes
    the parameters it matches.

    h11's ``max_incomplete_event_size`` only bounds a head that is still
    arriving; one that arrived whole in a single read is measured here.
    """
    headers: dict[str, str] = {}
    head_size = len(event.target) + 16
    for raw_name, raw_value in event.headers:
        head_size += len(raw_name) + len(raw_value) + 4
        name = header_name(raw_name)
        value = header_value(raw_name, raw_value)
        previous = headers.get(name)
        headers[name] = value if previous is None else f"{previous}, {value}"
    if head_size > max_head_bytes:
        raise MatrixError(431, "M_TOO_LARGE", "Request line and headers are too large")
    target = event.target.decode("latin-1")
    path, _, query_string = target.partition("?")
    if not path.startswith("/"):
        path = _origin_form(path)
    query = parse_qs(query_string, keep_blank_values=True) if query_string else {}
    return Request(
        method=event.method.decode("ascii"),
        path=path,
        query=query,
        headers=headers,
        remote=remote,
        request_id=request_id,
    )


def _origin_form(path: str) -> str:
    """Reduce an absolute-form target (``http://host/p``, RFC 9112 §3.2.2) to its path."""
    scheme_sep = path.find("://")
    if scheme_sep == -1:
        return path  # "*" (OPTIONS) or garbage: routing answers it
    slash = path.find("/", scheme_sep + 3)
    return path[slash:] if slash != -1 else "/"


def error_response(error: MatrixError) -> Response:
    return Response(
        status=error.status,
        headers=[("Content-Type", "application/json"), *error.headers],
        body=encode_json(error.to_json()),
    )


def internal_error(request_id: str) -> Response:
    body = {"errcode": "M_UNKNOWN", "error": f"Internal server error (request id {request_id})"}
    return Response(
        status=500, headers=[("Content-Type", "application/json")], body=encode_json(body)
    )


def plain_error(status: int, errcode: str, error: str) -> Response:
    return error_response(MatrixError(status, errcode, error))


def strip_query(target: bytes) -> str:
    """The path of a raw target, for logs: the query may carry ``access_token``."""
    return target.partition(b"?")[0].decode("latin-1")


def format_peer(address: object) -> str:
    """``ip:port`` (``[ip]:port`` for IPv6) of a socket address tuple."""
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        if isinstance(host, str) and ":" in host:
            return f"[{host}]:{port}"
        return f"{host}:{port}"
    return str(address)
