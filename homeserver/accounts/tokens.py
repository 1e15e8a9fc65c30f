"""Access tokens (JWT, HS256) and refresh tokens (opaque), as pure functions.

An access token names the user (``sub``), device (``dev``), login session
(``sid``) and the session's refresh generation (``gen``); it expires (``exp``)
only for clients that can refresh it. The signature proves we minted it; the
session row, checked on every request, says whether it is still wanted. Expiry
is checked here against a ``now`` passed in, so tests control the clock.
"""

from __future__ import annotations

import hashlib
import secrets

import attrs
import jwt

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
    return jwt.encode(payload, secret, algorithm=ALGORITHM)


def decode_access_token(token: str, secret: bytes, now: float) -> AccessClaims:
    """Verify the signature and expiry at ``now`` (seconds since the epoch)."""
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken("token too long")
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            # Expiry is ours to check, against the injected clock.
            options={"verify_exp": False, "verify_iat": False, "require": ["sub", "dev", "sid"]},
        )
    except jwt.PyJWTError as e:
        raise InvalidToken(type(e).__name__) from None
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


def new_refresh_token() -> str:
    return _REFRESH_PREFIX + secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> str:
    """SHA-256 is enough: the token has 256 random bits, so no stretching is needed."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_session_id() -> str:
    return secrets.token_urlsafe(16)
