"""Request and response values passed between our HTTP server and handlers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import attrs

from homeserver.errors import bad_json, not_json

JSONValue = dict[str, Any] | list[Any] | str | int | float | bool | None

# Compact, UTF-8 JSON: what every response body uses.
_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


@attrs.define(slots=True)
class Request:
    """One parsed HTTP request.

    ``path`` is the raw (still percent-encoded) path; ``path_params`` holds the
    percent-decoded values the router matched. Header names are lower case;
    repeated headers are joined with ``", "``.
    """

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes = b""
    remote: str = ""
    request_id: str = ""
    path_params: dict[str, str] = attrs.field(factory=dict)
    # Anything the auth layer learns about the caller (user id, device id, ...).
    context: dict[str, Any] = attrs.field(factory=dict)
    # Routes added with ``stream_body=True``: the body as it arrives, in chunks,
    # instead of ``body`` (which stays empty). Read it at most once.
    body_stream: AsyncIterator[bytes] | None = None

    def json(self) -> dict[str, Any]:
        """The body as a JSON object, or a Matrix error saying why it is not one."""
        if not self.body.strip():
            # Clients send an empty body for POSTs that take no parameters
            # (matrix_brief 1.1): treat it as ``{}``.
            return {}
        try:
            value = json.loads(self.body, parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise not_json("Request body is not valid JSON.") from None
        if not isinstance(value, dict):
            raise bad_json("Request body must be a JSON object.")
        return value

    def query_one(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    @property
    def access_token(self) -> str | None:
        """The bearer token from ``Authorization`` or the deprecated ``access_token`` query."""
        auth = self.headers.get("authorization")
        if auth is not None:
            scheme, _, token = auth.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
        return self.query_one("access_token")


@attrs.define(slots=True)
class Response:
    """An HTTP response. ``stream``, when set, is sent instead of ``body``."""

    status: int = 200
    headers: list[tuple[str, str]] = attrs.field(factory=list)
    body: bytes = b""
    stream: AsyncIterator[bytes] | None = None
    # Length of ``stream`` if known; otherwise the body is sent chunked.
    content_length: int | None = None

    @classmethod
    def json(
        cls, value: JSONValue, status: int = 200, headers: list[tuple[str, str]] | None = None
    ) -> Response:
        hdrs = [("Content-Type", "application/json")]
        if headers:
            hdrs.extend(headers)
        return cls(status=status, headers=hdrs, body=encode_json(value))


def encode_json(value: JSONValue) -> bytes:
    return _encoder.encode(value).encode("utf-8")
