"""Signing: the spec's cryptographic test vectors, base64, and signedjson as an oracle."""

from __future__ import annotations

import copy
import json
from typing import Any

import nacl.signing
import pytest
import signedjson.key
import signedjson.sign
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from homeserver.core.hashing import hash_and_sign_event
from homeserver.core.room_versions import V10, V11, V12
from homeserver.core.signing import (
    SignatureError,
    decode_base64,
    decode_verify_key,
    encode_base64,
    encode_verify_key,
    is_valid_key_id,
    make_key_id,
    sign_event,
    sign_json,
    signature_key_ids,
    verify_event_signature,
    verify_signed_json,
)

# appendices.md "Cryptographic Test Vectors" / "Signing Key".
SEED_BASE64 = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1"
SERVER_NAME = "domain"
KEY_ID = "ed25519:1"
SIGNING_KEY = nacl.signing.SigningKey(decode_base64(SEED_BASE64))
VERIFY_KEY = SIGNING_KEY.verify_key
OTHER_KEY = nacl.signing.SigningKey(b"\x01" * 32)


# -- unpadded base64 (appendices "Unpadded Base64" examples) --------------------------


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        (b"", ""),
        (b"f", "Zg"),
        (b"fo", "Zm8"),
        (b"foo", "Zm9v"),
        (b"foob", "Zm9vYg"),
        (b"fooba", "Zm9vYmE"),
        (b"foobar", "Zm9vYmFy"),
    ],
)
def test_unpadded_base64_spec_examples(raw: bytes, encoded: str) -> None:
    assert encode_base64(raw) == encoded
    assert decode_base64(encoded) == raw
    assert decode_base64(encoded + "=" * (-len(encoded) % 4)) == raw


def test_urlsafe_base64() -> None:
    raw = b"\xfb\xff\xfe"
    assert encode_base64(raw) == "+//+"
    assert encode_base64(raw, urlsafe=True) == "-__-"
    assert decode_base64("-__-") == raw


@pytest.mark.parametrize("bad", ["Z", "Zm9vY", "Zm9v!", "Zm 9v", "+-__", "é"])
def test_decode_base64_rejects_garbage(bad: str) -> None:
    with pytest.raises(ValueError):
        decode_base64(bad)


@given(st.binary(max_size=100), st.booleans())
def test_base64_round_trip(raw: bytes, urlsafe: bool) -> None:
    encoded = encode_base64(raw, urlsafe=urlsafe)
    assert "=" not in encoded
    assert decode_base64(encoded) == raw


# -- key IDs and public keys ---------------------------------------------------------


def test_key_ids() -> None:
    assert make_key_id("a_Bc9") == "ed25519:a_Bc9"
    assert is_valid_key_id("ed25519:a_Bc9")
    for bad in ("ed25519:", "ed25519:a-b", "ed25519:a:b", "curve25519:abc", "abc"):
        assert not is_valid_key_id(bad)
    for bad_version in ("", "a-b", "a b", "é"):
        with pytest.raises(ValueError):
            make_key_id(bad_version)


def test_verify_key_round_trip() -> None:
    encoded = encode_verify_key(VERIFY_KEY)
    assert decode_verify_key(encoded) == VERIFY_KEY
    with pytest.raises(ValueError):
        decode_verify_key(encode_base64(b"short"))


# -- appendices "JSON Signing" vectors -------------------------------------------------


def test_json_signing_vector_empty_object() -> None:
    assert sign_json({}, SERVER_NAME, SIGNING_KEY, KEY_ID) == {
        "signatures": {
            "domain": {
                "ed25519:1": "K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ"
            }
        }
    }


def test_json_signing_vector_with_data() -> None:
    assert sign_json({"one": 1, "two": "Two"}, SERVER_NAME, SIGNING_KEY, KEY_ID) == {
        "one": 1,
        "signatures": {
            "domain": {
                "ed25519:1": "KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw"
            }
        },
        "two": "Two",
    }


# -- appendices "Event Signing" vectors ---------------------------------------------
# These events use the room version 1 redaction rules (they keep "origin" and
# "event_id"); room version 10 keeps the same top-level keys, so it reproduces them.


def test_event_signing_vector_minimal_event() -> None:
    event = {
        "room_id": "!x:domain",
        "sender": "@a:domain",
        "origin": "domain",
        "origin_server_ts": 1000000,
        "signatures": {},
        "hashes": {},
        "type": "X",
        "content": {},
        "prev_events": [],
        "auth_events": [],
        "depth": 3,
        "unsigned": {"age_ts": 1000000},
    }
    assert hash_and_sign_event(event, SERVER_NAME, SIGNING_KEY, KEY_ID, V10) == {
        "auth_events": [],
        "content": {},
        "depth": 3,
        "hashes": {"sha256": "5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos"},
        "origin": "domain",
        "origin_server_ts": 1000000,
        "prev_events": [],
        "room_id": "!x:domain",
        "sender": "@a:domain",
        "signatures": {
            "domain": {
                "ed25519:1": "KxwGjPSDEtvnFgU00fwFz+l6d2pJM6XBIaMEn81SXPTRl16AqLAYqfIReFGZlHi5KLjAWbOoMszkwsQma+lYAg"
            }
        },
        "type": "X",
        "unsigned": {"age_ts": 1000000},
    }


def test_event_signing_vector_redactable_content() -> None:
    event = {
        "content": {"body": "Here is the message content"},
        "event_id": "$0:domain",
        "origin": "domain",
        "origin_server_ts": 1000000,
        "type": "m.room.message",
        "room_id": "!r:domain",
        "sender": "@u:domain",
        "signatures": {},
        "unsigned": {"age_ts": 1000000},
    }
    signed = hash_and_sign_event(event, SERVER_NAME, SIGNING_KEY, KEY_ID, V10)
    assert signed == {
        "content": {"body": "Here is the message content"},
        "event_id": "$0:domain",
        "hashes": {"sha256": "onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g"},
        "origin": "domain",
        "origin_server_ts": 1000000,
        "type": "m.room.message",
        "room_id": "!r:domain",
        "sender": "@u:domain",
        "signatures": {
            "domain": {
                "ed25519:1": "Wm+VzmOUOz08Ds+0NTWb1d4CZrVsJSikkeRxh6aCcUwu6pNC78FunoD7KNWzqFn241eYHYMGCA5McEiVPdhzBA"
            }
        },
        "unsigned": {"age_ts": 1000000},
    }
    verify_event_signature(signed, SERVER_NAME, VERIFY_KEY, KEY_ID, V10)
    # The signature covers only the redacted form: editing the body keeps it valid
    # (the content hash is what catches that), editing a kept key breaks it.
    edited = {**signed, "content": {"body": "edited"}}
    verify_event_signature(edited, SERVER_NAME, VERIFY_KEY, KEY_ID, V10)
    with pytest.raises(SignatureError):
        verify_event_signature(
            {**signed, "sender": "@v:domain"}, SERVER_NAME, VERIFY_KEY, KEY_ID, V10
        )


# -- sign_json / verify_signed_json behaviour ------------------------------------------


def test_sign_json_keeps_unsigned_and_other_signatures_and_does_not_mutate() -> None:
    original = {
        "a": 1,
        "unsigned": {"age": 5},
        "signatures": {"other.org": {"ed25519:x": "sig"}, SERVER_NAME: {"ed25519:old": "s2"}},
    }
    before = copy.deepcopy(original)
    signed = sign_json(original, SERVER_NAME, SIGNING_KEY, KEY_ID)
    assert original == before
    assert signed["unsigned"] == {"age": 5}
    assert signed["signatures"]["other.org"] == {"ed25519:x": "sig"}
    assert signed["signatures"][SERVER_NAME]["ed25519:old"] == "s2"
    # unsigned and other signatures are not covered: the same signature as without them.
    bare = sign_json({"a": 1}, SERVER_NAME, SIGNING_KEY, KEY_ID)
    assert signed["signatures"][SERVER_NAME][KEY_ID] == bare["signatures"][SERVER_NAME][KEY_ID]
    verify_signed_json(signed, SERVER_NAME, VERIFY_KEY, KEY_ID)
    assert sorted(signature_key_ids(signed, SERVER_NAME)) == ["ed25519:1", "ed25519:old"]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda o: o.pop("signatures"), "no signatures"),
        (lambda o: o["signatures"].pop(SERVER_NAME), "no signature from domain"),
        (lambda o: o["signatures"][SERVER_NAME].pop(KEY_ID), "with key"),
        (lambda o: o["signatures"][SERVER_NAME].__setitem__(KEY_ID, "!!"), "not base64"),
        (lambda o: o["signatures"][SERVER_NAME].__setitem__(KEY_ID, "AAAA"), "bad signature"),
        (lambda o: o.__setitem__("a", 2), "bad signature"),
        (lambda o: o.__setitem__("a", 0.5), "not canonical"),
    ],
)
def test_verify_signed_json_failures(mutate: Any, message: str) -> None:
    signed = sign_json({"a": 1}, SERVER_NAME, SIGNING_KEY, KEY_ID)
    mutate(signed)
    with pytest.raises(SignatureError, match=message):
        verify_signed_json(signed, SERVER_NAME, VERIFY_KEY, KEY_ID)


def test_verify_with_wrong_key_fails() -> None:
    signed = sign_json({"a": 1}, SERVER_NAME, SIGNING_KEY, KEY_ID)
    with pytest.raises(SignatureError):
        verify_signed_json(signed, SERVER_NAME, OTHER_KEY.verify_key, KEY_ID)


def test_sign_event_requires_content_hash() -> None:
    with pytest.raises(ValueError, match="content hash"):
        sign_event({"type": "X", "content": {}}, SERVER_NAME, SIGNING_KEY, KEY_ID, V11)


# -- signedjson as an oracle -----------------------------------------------------------

json_scalars = (
    st.none() | st.booleans() | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1) | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)
json_objects = st.dictionaries(st.text(), json_values, max_size=6)
ORACLE_KEY = signedjson.key.decode_signing_key_base64("ed25519", "1", SEED_BASE64)
ORACLE_VERIFY_KEY = signedjson.key.get_verify_key(ORACLE_KEY)


@settings(max_examples=150, deadline=None)
@given(json_objects, json_objects)
def test_signatures_match_signedjson(obj: dict[str, Any], unsigned: dict[str, Any]) -> None:
    # signedjson only handles a well-formed "signatures" (name -> key ID -> signature);
    # ours also drops malformed entries, which the oracle cannot judge.
    existing = obj.get("signatures", {})
    assume(isinstance(existing, dict) and all(isinstance(v, dict) for v in existing.values()))
    obj = {**obj, "unsigned": unsigned}
    ours = sign_json(obj, SERVER_NAME, SIGNING_KEY, KEY_ID)
    theirs = signedjson.sign.sign_json(copy.deepcopy(obj), SERVER_NAME, ORACLE_KEY)
    assert ours == theirs
    signedjson.sign.verify_signed_json(ours, SERVER_NAME, ORACLE_VERIFY_KEY)
    verify_signed_json(theirs, SERVER_NAME, VERIFY_KEY, KEY_ID)


# -- events: signatures survive transport and redaction ---------------------------------

event_types = st.sampled_from(
    ["m.room.message", "m.room.member", "m.room.create", "m.room.power_levels", "X"]
)
events = st.fixed_dictionaries(
    {
        "type": event_types,
        "room_id": st.just("!r:example.org"),
        "sender": st.just("@a:example.org"),
        "origin_server_ts": st.integers(min_value=0, max_value=2**53 - 1),
        "depth": st.integers(min_value=1, max_value=2**53 - 1),
        "prev_events": st.lists(st.text(max_size=10), max_size=3),
        "auth_events": st.lists(st.text(max_size=10), max_size=3),
        "content": json_objects,
    },
    optional={"state_key": st.text(max_size=10), "origin": st.just("example.org")},
)


@settings(max_examples=100, deadline=None)
@given(events, st.sampled_from([V10, V11, V12]))
def test_signed_event_verifies_after_json_round_trip(
    event: dict[str, Any], room_version: Any
) -> None:
    signed = hash_and_sign_event(event, SERVER_NAME, SIGNING_KEY, KEY_ID, room_version)
    transported = json.loads(json.dumps(signed))
    verify_event_signature(transported, SERVER_NAME, VERIFY_KEY, KEY_ID, room_version)
    # Adding unsigned data or another server's signature in transit changes nothing.
    transported["unsigned"] = {"age": 1}
    transported["signatures"]["other.org"] = {"ed25519:z": "AAAA"}
    verify_event_signature(transported, SERVER_NAME, VERIFY_KEY, KEY_ID, room_version)
