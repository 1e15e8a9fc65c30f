"""finish_pdu's one-validation path agrees with the general hash, sign and name functions."""

from __future__ import annotations

from typing import Any

import nacl.signing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from homeserver.core.canonical_json import CanonicalJSONError
from homeserver.core.hashing import (
    check_content_hash,
    compute_event_id,
    compute_room_id,
    hash_and_sign_event,
)
from homeserver.core.room_versions import V10, V11, V12, RoomVersion
from homeserver.core.signing import verify_event_signature
from homeserver.events.builder import build_pdu, finish_pdu

KEY = nacl.signing.SigningKey(b"\x07" * 32)
VERSIONS = [V10, V11, V12]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)


def general(pdu: dict[str, Any], version: RoomVersion) -> tuple[str, dict[str, Any]]:
    signed = hash_and_sign_event(pdu, "x.example", KEY, "ed25519:k", version)
    return compute_event_id(signed, version), signed


def skeleton(event_type: str, content: dict[str, Any], state_key: str | None) -> dict[str, Any]:
    return build_pdu(
        room_id="!room:x.example",
        event_type=event_type,
        sender="@a:x.example",
        content=content,
        state_key=state_key,
        prev_events=["$prev"],
        auth_events=["$create", "$pl"],
        depth=12,
        origin_server_ts=1_700_000_000_000,
    )


@settings(max_examples=150, deadline=None)
@given(
    version=st.sampled_from(VERSIONS),
    event_type=st.sampled_from(["m.room.message", "m.room.member", "m.room.power_levels", "x.y"]),
    content=st.dictionaries(st.text(max_size=8), json_values, max_size=5),
    state_key=st.none() | st.text(max_size=5),
)
def test_same_id_and_signed_event_as_the_general_path(
    version: RoomVersion,
    event_type: str,
    content: dict[str, Any],
    state_key: str | None,
) -> None:
    pdu = skeleton(event_type, content, state_key)
    event_id, signed = finish_pdu(pdu, version, "x.example", KEY, "ed25519:k")
    assert (event_id, signed) == general(pdu, version)
    assert check_content_hash(signed)
    verify_event_signature(signed, "x.example", KEY.verify_key, "ed25519:k", version)


def test_v12_create_event_without_room_id() -> None:
    pdu = build_pdu(
        room_id=None,
        event_type="m.room.create",
        sender="@a:x.example",
        content={"room_version": "12"},
        state_key="",
        prev_events=[],
        auth_events=[],
        depth=1,
        origin_server_ts=1,
    )
    event_id, signed = finish_pdu(pdu, V12, "x.example", KEY, "ed25519:k")
    assert (event_id, signed) == general(pdu, V12)
    assert compute_room_id(signed, V12) == "!" + event_id[1:]


def test_an_already_hashed_or_signed_event_takes_the_general_path() -> None:
    pdu = skeleton("m.room.message", {"body": "hi"}, None)
    pdu["hashes"] = {"sha256": "stale"}
    pdu["signatures"] = {"other.example": {"ed25519:o": "sig"}}
    pdu["unsigned"] = {"age": 1}
    event_id, signed = finish_pdu(pdu, V11, "x.example", KEY, "ed25519:k")
    assert (event_id, signed) == general(pdu, V11)
    assert "other.example" in signed["signatures"]


@pytest.mark.parametrize("bad", [1.5, 2**60, {1: "x"}, "\ud800"])
def test_values_without_canonical_form_are_refused(bad: Any) -> None:
    pdu = skeleton("m.room.message", {"body": bad}, None)
    with pytest.raises(CanonicalJSONError):
        finish_pdu(pdu, V10, "x.example", KEY, "ed25519:k")
