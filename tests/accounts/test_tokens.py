"""Access-token JWTs and refresh tokens: pure encode/decode with an injected clock."""

from __future__ import annotations

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from homeserver.accounts import tokens
from homeserver.accounts.tokens import AccessClaims, ExpiredToken, InvalidToken

SECRET = b"s" * 32


def claims(expires_at: int | None = None) -> AccessClaims:
    return AccessClaims("@a:test.example", "DEV", "sid1", 3, 1000, expires_at)


@given(
    user=st.text(min_size=1, max_size=50),
    device=st.text(min_size=1, max_size=20),
    generation=st.integers(min_value=0, max_value=2**31),
    expires=st.one_of(st.none(), st.integers(min_value=2000, max_value=2**40)),
)
def test_round_trip(user: str, device: str, generation: int, expires: int | None) -> None:
    original = AccessClaims(user, device, "sid", generation, 1000, expires)
    token = tokens.encode_access_token(original, SECRET)
    assert tokens.decode_access_token(token, SECRET, now=1500) == original


def test_expiry_is_checked_against_the_given_clock() -> None:
    token = tokens.encode_access_token(claims(expires_at=2000), SECRET)
    assert tokens.decode_access_token(token, SECRET, now=1999.9).expires_at == 2000
    with pytest.raises(ExpiredToken):
        tokens.decode_access_token(token, SECRET, now=2000)
    # Without exp a token never expires.
    forever = tokens.encode_access_token(claims(), SECRET)
    assert tokens.decode_access_token(forever, SECRET, now=10**12).expires_at is None


def test_wrong_secret_or_tampering_is_invalid() -> None:
    token = tokens.encode_access_token(claims(), SECRET)
    with pytest.raises(InvalidToken):
        tokens.decode_access_token(token, b"x" * 32, now=0)
    header, _payload, signature = token.split(".")
    forged = jwt.encode(
        {"sub": "@admin:test.example", "dev": "D", "sid": "s"}, b"x" * 32, algorithm="HS256"
    )
    with pytest.raises(InvalidToken):
        tokens.decode_access_token(f"{header}.{forged.split('.')[1]}.{signature}", SECRET, now=0)
    with pytest.raises(InvalidToken):
        tokens.decode_access_token("not.a.jwt", SECRET, now=0)
    with pytest.raises(InvalidToken):
        tokens.decode_access_token("x" * 5000, SECRET, now=0)


def test_alg_none_and_malformed_claims_are_rejected() -> None:
    unsigned = jwt.encode({"sub": "@a:t", "dev": "D", "sid": "s"}, key=None, algorithm="none")
    with pytest.raises(InvalidToken):
        tokens.decode_access_token(unsigned, SECRET, now=0)
    for payload in (
        {"sub": "@a:t", "dev": "D"},
        {"sub": 5, "dev": "D", "sid": "s"},
        {"sub": "@a:t", "dev": "D", "sid": "s", "gen": "1"},
        {"sub": "@a:t", "dev": "D", "sid": "s", "exp": "soon"},
    ):
        token = jwt.encode(payload, SECRET, algorithm="HS256")
        with pytest.raises(InvalidToken):
            tokens.decode_access_token(token, SECRET, now=0)


def test_refresh_tokens_are_random_and_hashed() -> None:
    a, b = tokens.new_refresh_token(), tokens.new_refresh_token()
    assert a != b and len(a) > 40
    assert tokens.hash_refresh_token(a) == tokens.hash_refresh_token(a)
    assert tokens.hash_refresh_token(a) != tokens.hash_refresh_token(b)
    assert a not in tokens.hash_refresh_token(a)
