"""Our HS256 JWS against PyJWT as an oracle: the same bytes out, the same verdicts in."""

from __future__ import annotations

import base64
import json
import sys
from typing import Any

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from homeserver.accounts import tokens
from homeserver.accounts.tokens import AccessClaims, InvalidToken

SECRET = b"k" * 32


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def pyjwt_claims(claims: AccessClaims) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "sub": claims.user_id,
        "dev": claims.device_id,
        "sid": claims.session_id,
        "gen": claims.generation,
        "iat": claims.issued_at,
    }
    if claims.expires_at is not None:
        payload["exp"] = claims.expires_at
    return payload


claims_strategy = st.builds(
    AccessClaims,
    st.text(min_size=1, max_size=40),
    st.text(min_size=1, max_size=20),
    st.text(min_size=1, max_size=20),
    st.integers(min_value=0, max_value=2**40),
    st.integers(min_value=0, max_value=2**40),
    st.one_of(st.none(), st.integers(min_value=0, max_value=2**40)),
)


@given(claims_strategy)
def test_tokens_are_byte_for_byte_what_pyjwt_makes(claims: AccessClaims) -> None:
    ours = tokens.encode_access_token(claims, SECRET)
    assert ours == jwt.encode(pyjwt_claims(claims), SECRET, algorithm="HS256")
    # And PyJWT verifies ours; we verify PyJWT's (tokens minted before this change).
    assert jwt.decode(
        ours, SECRET, algorithms=["HS256"], options={"verify_exp": False, "verify_iat": False}
    ) == (pyjwt_claims(claims))
    token = jwt.encode(pyjwt_claims(claims), SECRET, algorithm="HS256", headers={"kid": "1"})
    assert tokens.decode_access_token(token, SECRET, now=-1) == claims


def signed(header: dict[str, Any] | bytes, payload: dict[str, Any] | bytes, key: bytes) -> str:
    import hashlib
    import hmac

    h = header if isinstance(header, bytes) else json.dumps(header).encode()
    p = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    signing_input = f"{b64(h)}.{b64(p)}"
    mac = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


GOOD = {"sub": "@a:t", "dev": "D", "sid": "s"}


@pytest.mark.parametrize(
    "token",
    [
        # alg none, unsigned
        jwt.encode(GOOD, key=None, algorithm="none"),
        # another algorithm, even with our key
        jwt.encode(GOOD, SECRET, algorithm="HS512"),
        # right MAC, but the header names another algorithm or none
        signed({"alg": "none", "typ": "JWT"}, GOOD, SECRET),
        signed({"alg": "RS256", "typ": "JWT"}, GOOD, SECRET),
        signed({"typ": "JWT"}, GOOD, SECRET),
        # a critical header extension we do not understand
        signed({"alg": "HS256", "crit": ["exp"]}, GOOD, SECRET),
        # header or payload not a JSON object
        signed(b"[1]", GOOD, SECRET),
        signed({"alg": "HS256"}, b"[1]", SECRET),
        signed({"alg": "HS256"}, b"not json", SECRET),
        signed(b"not json", GOOD, SECRET),
        # missing claims
        signed({"alg": "HS256"}, {"sub": "@a:t", "dev": "D"}, SECRET),
        # another key
        jwt.encode(GOOD, b"x" * 32, algorithm="HS256"),
        # shapes
        "",
        "a.b",
        "a.b.c.d",
        "..",
        "é.b.c",
    ],
)
def test_what_is_refused(token: str) -> None:
    with pytest.raises(InvalidToken):
        tokens.decode_access_token(token, SECRET, now=0)
    # The oracle refuses them too (where it parses them at all).
    with pytest.raises(jwt.PyJWTError):
        jwt.decode(
            token,
            SECRET,
            algorithms=["HS256"],
            options={"verify_exp": False, "require": ["sub", "dev", "sid"]},
        )


def test_a_signed_header_with_the_right_algorithm_is_accepted() -> None:
    token = signed({"alg": "HS256"}, GOOD, SECRET)
    assert tokens.decode_access_token(token, SECRET, now=0).user_id == "@a:t"


@given(st.text(max_size=200))
def test_arbitrary_text_is_refused_with_invalid_token_only(text: str) -> None:
    with pytest.raises(InvalidToken):
        tokens.decode_access_token(text, SECRET, now=0)


def test_signature_padding_and_alphabet_are_strict() -> None:
    token = tokens.encode_access_token(AccessClaims("@a:t", "D", "s", 0, 0, None), SECRET)
    head, body, sig = token.split(".")
    for bad in (sig + "=", sig.replace("-", "+").replace("_", "/") + "+/", sig[:-1] + "!"):
        if bad == sig:
            continue
        with pytest.raises(InvalidToken):
            tokens.decode_access_token(f"{head}.{body}.{bad}", SECRET, now=0)


def test_the_token_module_does_not_import_pyjwt_or_cryptography() -> None:
    import subprocess

    code = (
        "import sys; import homeserver.accounts.tokens, homeserver.http.tls, tools.serve; "
        "print(sorted(m for m in ('jwt', 'cryptography') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
