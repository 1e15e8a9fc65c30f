"""Reading typed fields out of request bodies, with Matrix errors that name the field.

Wrong type or shape: 400 ``M_BAD_JSON`` naming the field; a missing required
field: 400 ``M_MISSING_PARAM``; a string beyond its limit: 400 ``M_INVALID_PARAM``
(or ``M_BAD_JSON``: limits protect the server, the spec sets few of them).
"""

from __future__ import annotations

from typing import Any

from homeserver.accounts.auth import peer_ip
from homeserver.errors import bad_json, invalid_param, missing_param
from homeserver.http.types import Request

_MISSING = object()

# Account requests are small; a tighter body cap than the server default
# (``http.max_json_body``) keeps unauthenticated endpoints cheap to attack.
SMALL_BODY = 64 * 1024


def string(
    body: dict[str, Any],
    name: str,
    *,
    max_length: int,
    required: bool = False,
    max_bytes: int | None = None,
) -> str | None:
    """``body[name]`` as a string (None if absent or null and not required)."""
    value = body.get(name, _MISSING)
    if value is _MISSING or value is None:
        if required:
            raise missing_param(f"'{name}' is required")
        return None
    if not isinstance(value, str):
        raise bad_json(f"'{name}' must be a string")
    if len(value) > max_length or (max_bytes is not None and len(value.encode()) > max_bytes):
        raise invalid_param(f"'{name}' is too long")
    return value


def boolean(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name, _MISSING)
    if value is _MISSING or value is None:
        return default
    if not isinstance(value, bool):
        raise bad_json(f"'{name}' must be a boolean")
    return value


def string_list(body: dict[str, Any], name: str, *, max_items: int, max_length: int) -> list[str]:
    value = body.get(name, _MISSING)
    if value is _MISSING:
        raise missing_param(f"'{name}' is required")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad_json(f"'{name}' must be a list of strings")
    if len(value) > max_items:
        raise invalid_param(f"'{name}' has too many entries (at most {max_items})")
    if any(len(v) > max_length for v in value):
        raise invalid_param(f"an entry of '{name}' is too long")
    return list(value)


def client_ip(request: Request) -> str:
    """The peer's address without the port: the key of per-IP rate limits."""
    return peer_ip(request)
