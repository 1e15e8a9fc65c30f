"""Content hashes, reference hashes, event IDs and v12 room IDs."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

import nacl.signing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from homeserver.core.hashing import (
    add_content_hash,
    check_content_hash,
    compute_content_hash,
    compute_event_id,
    compute_reference_hash,
    compute_room_id,
    hash_and_sign_event,
)
from homeserver.core.room_versions import V10, V11, V12, RoomVersion
from homeserver.core.signing import decode_base64, encode_base64

# appendices.md "Event Signing": the minimal event and its content hash.
MINIMAL_EVENT = {
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
MINIMAL_EVENT_CONTENT_HASH = "5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos"

EVENT_ID_RE = re.compile(r"^\$[A-Za-z0-9\-_]{43}$")


def test_content_hash_spec_vector() -> None:
    assert encode_base64(compute_content_hash(MINIMAL_EVENT)) == MINIMAL_EVENT_CONTENT_HASH
    hashed = add_content_hash(MINIMAL_EVENT)
    assert hashed["hashes"] == {"sha256": MINIMAL_EVENT_CONTENT_HASH}
    assert MINIMAL_EVENT["hashes"] == {}  # input untouched
    assert check_content_hash(hashed)


def test_add_content_hash_keeps_other_algorithms() -> None:
    hashed = add_content_hash({**MINIMAL_EVENT, "hashes": {"sha512": "x"}})
    assert hashed["hashes"] == {"sha256": MINIMAL_EVENT_CONTENT_HASH, "sha512": "x"}


def test_check_content_hash_detects_changes_and_malformed_hashes() -> None:
    hashed = add_content_hash({**MINIMAL_EVENT, "content": {"body": "hi"}})
    assert check_content_hash(hashed)
    assert not check_content_hash({**hashed, "content": {"body": "ho"}})
    assert not check_content_hash({**hashed, "content": {}})
    assert not check_content_hash({**hashed, "origin": "evil"})
    for hashes in [None, {}, [], {"sha256": 5}, {"sha256": "!!!"}, {"sha512": "x"}]:
        assert not check_content_hash({**hashed, "hashes": hashes})


def test_reference_hash_by_hand() -> None:
    # An independent computation: the redacted v11 event written out as canonical JSON
    # by hand (origin, unsigned, signatures and the message body all gone).
    event = {
        "type": "m.room.message",
        "room_id": "!r:example.org",
        "sender": "@a:example.org",
        "origin": "example.org",
        "origin_server_ts": 5,
        "depth": 2,
        "prev_events": ["$p"],
        "auth_events": ["$a"],
        "hashes": {"sha256": "h"},
        "content": {"body": "secret"},
        "signatures": {"example.org": {"ed25519:a": "s"}},
        "unsigned": {"age": 1},
    }
    canonical = (
        b'{"auth_events":["$a"],"content":{},"depth":2,"hashes":{"sha256":"h"},'
        b'"origin_server_ts":5,"prev_events":["$p"],"room_id":"!r:example.org",'
        b'"sender":"@a:example.org","type":"m.room.message"}'
    )
    digest = hashlib.sha256(canonical).digest()
    assert compute_reference_hash(event, V11) == digest
    expected_id = "$" + base64.urlsafe_b64encode(digest).decode().rstrip("=")
    assert compute_event_id(event, V11) == expected_id
    assert EVENT_ID_RE.match(expected_id)
    # Room version 10 keeps "origin", so the same event has a different ID there.
    assert compute_event_id(event, V10) != expected_id


def test_v12_room_id_is_the_create_event_id_with_bang() -> None:
    create = {
        "type": "m.room.create",
        "state_key": "",
        "sender": "@a:example.org",
        "origin_server_ts": 1,
        "depth": 1,
        "prev_events": [],
        "auth_events": [],
        "content": {"room_version": "12"},
    }
    room_id = compute_room_id(add_content_hash(create), V12)
    event_id = compute_event_id(add_content_hash(create), V12)
    assert room_id == "!" + event_id[1:]
    assert re.match(r"^![A-Za-z0-9\-_]{43}$", room_id)


def test_compute_room_id_refuses_other_versions_and_types() -> None:
    create = {"type": "m.room.create", "content": {}}
    for version in (V10, V11):
        with pytest.raises(ValueError):
            compute_room_id(create, version)
    with pytest.raises(ValueError):
        compute_room_id({"type": "m.room.member", "content": {}}, V12)


def test_hash_and_sign_event_produces_a_checkable_event() -> None:
    key = nacl.signing.SigningKey(b"\x02" * 32)
    event = {k: v for k, v in MINIMAL_EVENT.items() if k not in ("hashes", "signatures")}
    signed = hash_and_sign_event(event, "domain", key, "ed25519:k", V11)
    assert check_content_hash(signed)
    assert "ed25519:k" in signed["signatures"]["domain"]
    # The signature is not part of the reference hash.
    assert compute_event_id(signed, V11) == compute_event_id(add_content_hash(event), V11)


# -- properties ---------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)
ROOM_VERSIONS = st.sampled_from([V10, V11, V12])
events = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["m.room.message", "m.room.member", "m.room.power_levels", "X"]),
        "room_id": st.just("!r:example.org"),
        "sender": st.just("@a:example.org"),
        "origin_server_ts": st.integers(min_value=0, max_value=2**40),
        "depth": st.integers(min_value=1, max_value=2**40),
        "prev_events": st.lists(st.text(max_size=8), max_size=3),
        "auth_events": st.lists(st.text(max_size=8), max_size=3),
        "content": st.dictionaries(st.text(max_size=8), json_values, max_size=5),
    },
    optional={"state_key": st.text(max_size=8), "origin": st.just("example.org")},
).map(add_content_hash)


@settings(max_examples=150, deadline=None)
@given(events, json_values, json_values)
def test_content_hash_ignores_unsigned_signatures_hashes(
    event: dict[str, Any], unsigned: Any, signatures: Any
) -> None:
    decorated = {**event, "unsigned": unsigned, "signatures": signatures, "hashes": {"x": 1}}
    assert compute_content_hash(decorated) == compute_content_hash(event)
    assert check_content_hash({**decorated, "hashes": event["hashes"]})


@settings(max_examples=150, deadline=None)
@given(events, ROOM_VERSIONS, st.text(min_size=1, max_size=8))
def test_event_id_depends_only_on_the_redacted_form(
    event: dict[str, Any], room_version: RoomVersion, junk: str
) -> None:
    event_id = compute_event_id(event, room_version)
    assert EVENT_ID_RE.match(event_id)
    # Keys that redaction drops do not move the ID...
    dropped = {
        **event,
        "unsigned": {"age": junk},
        "signatures": {"x": {"ed25519:y": junk}},
        "extra_top_level_key": junk,
    }
    if event["type"] == "m.room.message":
        dropped["content"] = {**event["content"], "body": junk}
    assert compute_event_id(dropped, room_version) == event_id
    # ...keys that it keeps do.
    for key, value in [
        ("origin_server_ts", event["origin_server_ts"] + 1),
        ("depth", event["depth"] + 1),
        ("sender", "@b:example.org"),
        ("hashes", {"sha256": junk}),
        ("prev_events", [*event["prev_events"], junk]),
    ]:
        assert compute_event_id({**event, key: value}, room_version) != event_id


@settings(max_examples=50, deadline=None)
@given(events, st.text(min_size=1, max_size=8))
def test_origin_moves_the_event_id_only_in_v10(event: dict[str, Any], origin: str) -> None:
    base = {k: v for k, v in event.items() if k != "origin"}
    with_origin = {**base, "origin": origin}
    assert compute_event_id(with_origin, V10) != compute_event_id(base, V10)
    assert compute_event_id(with_origin, V11) == compute_event_id(base, V11)
    assert compute_event_id(with_origin, V12) == compute_event_id(base, V12)


def test_decode_of_event_id_is_the_reference_hash() -> None:
    event = add_content_hash(MINIMAL_EVENT)
    event_id = compute_event_id(event, V11)
    assert decode_base64(event_id[1:]) == compute_reference_hash(event, V11)
