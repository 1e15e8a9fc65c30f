"""Serialising responses: status line, headers and body framing (RFC 9112 §4, §6, §7).

h11 parses our requests; responses we write ourselves. Measured on this
(busy, shared) machine: sending a small JSON response through h11 (event
validation, state machine, writer) cost about 55 µs, joining the bytes here
about 1 µs. With the deadline reaper (connection.py) this took the versions
benchmark from about 5,000 to about 12,000 requests/s on one core. The price
is that this module must get framing right on its own, so it is small, its
output is checked against h11's client-side parser in the tests, and every
header a handler supplies is checked for line breaks.
"""

from __future__ import annotations

import re
from email.utils import formatdate
from http import HTTPStatus

from homeserver.http.wire import CORS_HEADERS


class InvalidResponse(Exception):
    """A handler built a response that cannot be sent (bad status or header)."""


STATUS_LINES: dict[int, bytes] = {
    int(status): b"HTTP/1.1 %d %s\r\n" % (status, status.phrase.encode("ascii"))
    for status in HTTPStatus
    if status >= 200
}

# Sent on every response: the Server header and CORS (Client-Server API,
# "Web Browser Clients").
FIXED_HEADERS = b"Server: Plait\r\n" + b"".join(
    name.title() + b": " + value + b"\r\n" for name, value in CORS_HEADERS
)
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
LAST_CHUNK = b"0\r\n\r\n"

# RFC 9110 §5.1 token; §5.5 field values may not hold CR, LF, NUL or other controls.
_TOKEN = re.compile(r"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# Framing is ours alone: a handler's own value for these would contradict it.
_FRAMING = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive"})

# Header names are a small, fixed set of literals in practice: validate each once.
_name_cache: dict[str, bytes | None] = {}
_NAME_CACHE_LIMIT = 4096


def _encoded_name(name: str) -> bytes | None:
    """``b"Name: "`` for a valid header name, ``None`` for one we drop (framing)."""
    cached = _name_cache.get(name, False)
    if cached is not False:
        return cached  # type: ignore[return-value]
    if not _TOKEN.fullmatch(name):
        raise InvalidResponse(f"illegal header name {name!r}")
    encoded = None if name.lower() in _FRAMING else name.encode("ascii") + b": "
    if len(_name_cache) < _NAME_CACHE_LIMIT:
        _name_cache[name] = encoded
    return encoded


def status_line(status: int) -> bytes:
    line = STATUS_LINES.get(status)
    if line is None:
        if not isinstance(status, int) or not 200 <= status <= 599:
            raise InvalidResponse(f"illegal final status {status!r}")
        line = b"HTTP/1.1 %d \r\n" % status
    return line


def render_head(
    status: int,
    headers: list[tuple[str, str]],
    request_id: str,
    *,
    content_length: int | None,
    chunked: bool,
    close: bool,
    date_line: bytes = b"",
) -> bytes:
    """The status line and header block, ending in the blank line."""
    parts = [status_line(status)]
    for name, value in headers:
        encoded = _encoded_name(name)
        if encoded is None:
            continue
        if _BAD_VALUE.search(value):
            raise InvalidResponse(f"illegal value for header {name!r}")
        parts.append(encoded + value.encode("utf-8") + b"\r\n")
    parts.append(FIXED_HEADERS)
    parts.append(date_line)
    parts.append(b"X-Request-Id: " + request_id.encode("ascii") + b"\r\n")
    if content_length is not None:
        parts.append(b"Content-Length: %d\r\n" % content_length)
    if chunked:
        parts.append(b"Transfer-Encoding: chunked\r\n")
    if close:
        parts.append(b"Connection: close\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


def date_line(unix_time: float) -> bytes:
    """The Date header for ``unix_time``, in the IMF-fixdate form (RFC 9110 §5.6.7)."""
    return b"Date: " + formatdate(unix_time, usegmt=True).encode("ascii") + b"\r\n"


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body (RFC 9112 §7.1)."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def has_body(method: bytes, status: int) -> bool:
    """RFC 9110 §6.4.1: HEAD answers and 204/304 carry no content."""
    return method != b"HEAD" and status != 204 and status != 304


def declares_length(status: int) -> bool:
    """204 must not carry Content-Length (RFC 9110 §8.6); 304 need not."""
    return status != 204 and status != 304
