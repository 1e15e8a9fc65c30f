"""Access tokens (JWT, HS256) and refresh tokens (opaque), as pure functions.

An access token names the user (``sub``), device (``dev``), login session
(``sid``) and the session's refresh generation (``gen``); it expires (``exp``)
only for clients that can refresh it. The signature proves we minted it; the
session row, checked on every request, says whether it is still wanted. Expiry
is checked here against a ``now`` passed in, so tests control the clock.

The JWT itself (RFC 7519, a JWS in compact form signed with HMAC-SHA256, RFC
7515) is made and checked here with the standard library rather than PyJWT:
PyJWT imports ``cryptography`` (all its asymmetric algorithms and OpenSSL)
whenever it is installed, about 20 MB of resident memory in every serving
process for the one algorithm we use. Only headers naming ``"alg": "HS256"``
(and no ``crit``) are accepted, never ``none`` or another algorithm; the signature is
compared in constant time before anything else of the token is trusted, and
the tests hold this to PyJWT as an oracle (same bytes out, same verdicts in).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from typing import Any

import attrs

ALGORITHM = "HS256"
# Spec "Access tokens": opaque to clients, but keep them reasonably short.
MAX_TOKEN_LENGTH = 2048
_REFRESH_PREFIX = "plr_"


@attrs.frozen
class AccessClaims:
    user_id: str
    device_id: str
    session_id: str
    generation: int
    issued_at: int
    expires_at: int | None


class InvalidToken(Exception):
    """Not a token we minted (bad signature, malformed claims)."""


class ExpiredToken(Exception):
    """A token we minted whose lifetime is over: the client should refresh (soft logout)."""


def new_secret() -> bytes:
    return secrets.token_bytes(32)


def encode_access_token(claims: AccessClaims, secret: bytes) -> str:
    payload: dict[str, object] = {
        "sub": claims.user_id,
        "dev": claims.device_id,
        "sid": claims.session_id,
        "gen": claims.generation,
        "iat": claims.issued_at,
    }
    if claims.expires_at is not None:
        payload["exp"] = claims.expires_at
    return _sign(payload, secret)


def decode_access_token(token: str, secret: bytes, now: float) -> AccessClaims:
    """Verify the signature and expiry at ``now`` (seconds since the epoch)."""
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken("token too long")
    payload = _verify(token, secret)
    if not all(key in payload for key in ("sub", "dev", "sid")):
        raise InvalidToken("missing claims")
    user_id, device_id, session_id = payload.get("sub"), payload.get("dev"), payload.get("sid")
    generation, issued_at, expires_at = (
        payload.get("gen", 0),
        payload.get("iat", 0),
        payload.get("exp"),
    )
    if not (
        isinstance(user_id, str) and isinstance(device_id, str) and isinstance(session_id, str)
    ):
        raise InvalidToken("malformed claims")
    if not isinstance(generation, int) or not isinstance(issued_at, int):
        raise InvalidToken("malformed claims")
    if expires_at is not None and (not isinstance(expires_at, int) or isinstance(expires_at, bool)):
        raise InvalidToken("malformed claims")
    claims = AccessClaims(user_id, device_id, session_id, generation, issued_at, expires_at)
    if expires_at is not None and now >= expires_at:
        raise ExpiredToken()
    return claims


# The one header we mint and accept (PyJWT's, byte for byte: sorted, no spaces).
_HEADER = {"alg": ALGORITHM, "typ": "JWT"}
_HEADER_SEGMENT = base64.urlsafe_b64encode(
    json.dumps(_HEADER, separators=(",", ":"), sort_keys=True).encode()
).rstrip(b"=")


def _b64url_decode(segment: str) -> bytes:
    if not segment or len(segment) % 4 == 1 or "=" in segment:
        raise InvalidToken("bad base64")
    try:
        return base64.b64decode(segment + "=" * (-len(segment) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise InvalidToken("bad base64") from None


def _sign(payload: dict[str, object], secret: bytes) -> str:
    body = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode())
    signing_input = _HEADER_SEGMENT + b"." + body.rstrip(b"=")
    mac = hmac.new(secret, signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + base64.urlsafe_b64encode(mac).rstrip(b"=")).decode("ascii")


def _verify(token: str, secret: bytes) -> dict[str, Any]:
    """The claims of a compact HS256 JWS we signed; InvalidToken for anything else."""
    if not token.isascii():
        raise InvalidToken("not ascii")
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("not a compact JWS")
    header_segment, payload_segment, signature_segment = parts
    signature = _b64url_decode(signature_segment)
    signing_input = f"{header_segment}.{payload_segment}".encode("ascii")
    expected = hmac.new(secret, signing_input, hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        raise InvalidToken("bad signature")
    try:
        header = json.loads(_b64url_decode(header_segment))
        payload = json.loads(_b64url_decode(payload_segment))
    except (ValueError, RecursionError):
        raise InvalidToken("bad JSON") from None
    if not isinstance(header, dict) or header.get("alg") != ALGORITHM:
        raise InvalidToken("unexpected algorithm")
    if header.get("crit") is not None or not isinstance(payload, dict):
        raise InvalidToken("unsupported token")
    return payload


def new_refresh_token() -> str:
    return _REFRESH_PREFIX + secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> str:
    """SHA-256 is enough: the token has 256 random bits, so no stretching is needed."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_session_id() -> str:
    return secrets.token_urlsafe(16)
