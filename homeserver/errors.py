"""The one error type that crosses from handlers and services to the HTTP layer.

A handler raises :class:`MatrixError`; the HTTP layer renders it as the Matrix
standard error body ``{"errcode": ..., "error": ...}`` with the right status.
"""

from __future__ import annotations

from typing import Any


class MatrixError(Exception):
    """A Matrix error response: HTTP status, ``errcode``, human message, extra fields."""

    def __init__(
        self,
        status: int,
        errcode: str,
        error: str,
        *,
        headers: list[tuple[str, str]] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(f"{status} {errcode}: {error}")
        self.status = status
        self.errcode = errcode
        self.error = error
        self.headers = headers or []
        self.extra = extra

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"errcode": self.errcode, "error": self.error}
        body.update(self.extra)
        return body


# Constructors for the common cases, so call sites read as what went wrong.


def bad_json(error: str) -> MatrixError:
    return MatrixError(400, "M_BAD_JSON", error)


def not_json(error: str = "Content not JSON.") -> MatrixError:
    return MatrixError(400, "M_NOT_JSON", error)


def invalid_param(error: str) -> MatrixError:
    return MatrixError(400, "M_INVALID_PARAM", error)


def missing_param(error: str) -> MatrixError:
    return MatrixError(400, "M_MISSING_PARAM", error)


def forbidden(error: str) -> MatrixError:
    return MatrixError(403, "M_FORBIDDEN", error)


def not_found(error: str = "Not found") -> MatrixError:
    return MatrixError(404, "M_NOT_FOUND", error)


def unrecognized(status: int = 404, error: str = "Unrecognized request") -> MatrixError:
    return MatrixError(status, "M_UNRECOGNIZED", error)


def too_large(error: str = "Request body too large") -> MatrixError:
    return MatrixError(413, "M_TOO_LARGE", error)


def missing_token(error: str = "Missing access token") -> MatrixError:
    return MatrixError(401, "M_MISSING_TOKEN", error)


def unknown_token(error: str = "Unknown or revoked access token", *, soft_logout: bool = False) -> MatrixError:
    if soft_logout:
        return MatrixError(401, "M_UNKNOWN_TOKEN", error, soft_logout=True)
    return MatrixError(401, "M_UNKNOWN_TOKEN", error)


def limit_exceeded(retry_after_ms: int) -> MatrixError:
    seconds = max(1, (retry_after_ms + 999) // 1000)
    return MatrixError(
        429,
        "M_LIMIT_EXCEEDED",
        "Too many requests",
        headers=[("Retry-After", str(seconds))],
        retry_after_ms=retry_after_ms,
    )
