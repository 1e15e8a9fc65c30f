"""Building a new local PDU: pure steps with no I/O, so each is testable alone.

The creation service (``creation.py``) gathers the inputs from storage (forward
extremities, the state at them) and calls these in order:
:func:`select_prev_events`, :func:`select_auth_events`, :func:`build_pdu`,
:func:`finish_pdu`. Spec: ``server-server-api.md`` "PDUs", "Auth events
selection", "Adding hashes and signatures to outgoing events".
"""

from __future__ import annotations

import hashlib
import secrets
import string
from collections.abc import Mapping, Sequence
from typing import Any

import nacl.signing

from homeserver.core.auth_rules import auth_types_for_event
from homeserver.core.canonical_json import encode_validated, validate_canonical_value
from homeserver.core.hashing import compute_event_id, hash_and_sign_event
from homeserver.core.redaction import redact_event
from homeserver.core.room_versions import RoomVersion
from homeserver.core.signing import encode_base64

StateKey = tuple[str, str]

# A PDU may cite at most 20 prev_events (Synapse rejects more, handlers/federation_event.py).
MAX_PREV_EVENTS = 20
# pdu_v11.yaml: depth is an integer in canonical JSON range; keep it there.
MAX_DEPTH = 2**53 - 1

_ROOM_ID_ALPHABET = string.ascii_letters


def select_prev_events(
    extremities: Sequence[tuple[str, int]], limit: int = MAX_PREV_EVENTS
) -> list[str]:
    """The deepest ``limit`` forward extremities (``(event_id, depth)`` pairs).

    Citing every extremity merges the room's forks; beyond the limit the
    deepest win, as Synapse does, and the rest are merged by later events.
    """
    ordered = sorted(extremities, key=lambda pair: (-pair[1], pair[0]))
    return [event_id for event_id, _ in ordered[:limit]]


def next_depth(prev_depths: Sequence[int]) -> int:
    """``max(depth of prev_events) + 1``, capped (spec: PDU ``depth``)."""
    return min(max(prev_depths, default=0) + 1, MAX_DEPTH)


def select_auth_events(
    room_version: RoomVersion, event: Mapping[str, Any], state: Mapping[StateKey, str]
) -> list[str]:
    """The IDs of the state events that authorise ``event`` ("Auth events selection").

    In v12 the create event is implied by the room ID and must not be listed
    (rooms/v12.md, MSC4291), so it is dropped even if the selection names it.
    """
    selected: list[str] = []
    for key in sorted(auth_types_for_event(room_version, event)):
        if room_version.room_id_from_create_event and key[0] == "m.room.create":
            continue
        event_id = state.get(key)
        if event_id is not None and event_id not in selected:
            selected.append(event_id)
    return selected


def random_room_id(server_name: str) -> str:
    """``!opaque:server_name`` for room versions 1-11 (appendices "Room IDs")."""
    opaque = "".join(secrets.choice(_ROOM_ID_ALPHABET) for _ in range(18))
    return f"!{opaque}:{server_name}"


def build_pdu(
    *,
    room_id: str | None,
    event_type: str,
    sender: str,
    content: Mapping[str, Any],
    state_key: str | None,
    prev_events: Sequence[str],
    auth_events: Sequence[str],
    depth: int,
    origin_server_ts: int,
) -> dict[str, Any]:
    """The unsigned PDU skeleton; ``room_id`` is None only for a v12 create event."""
    pdu: dict[str, Any] = {
        "type": event_type,
        "sender": sender,
        "content": dict(content),
        "prev_events": list(prev_events),
        "auth_events": list(auth_events),
        "depth": depth,
        "origin_server_ts": origin_server_ts,
    }
    if room_id is not None:
        pdu["room_id"] = room_id
    if state_key is not None:
        pdu["state_key"] = state_key
    return pdu


def finish_pdu(
    pdu: Mapping[str, Any],
    room_version: RoomVersion,
    server_name: str,
    signing_key: nacl.signing.SigningKey,
    key_id: str,
) -> tuple[str, dict[str, Any]]:
    """Hash, sign and name the PDU: ``(event_id, signed_pdu)``.

    The event ID is the reference hash, which covers the content hash but not the
    signatures, so it can be computed after signing.

    A fresh skeleton (no ``hashes``, ``signatures``, ``unsigned``, ``age_ts``) is
    validated once and encoded twice: the content hash covers the skeleton as it
    is, and the signature and the reference hash cover the very same bytes, the
    canonical JSON of the redacted hashed event. That is what
    :func:`homeserver.core.hashing.hash_and_sign_event` and
    :func:`homeserver.core.hashing.compute_event_id` compute, with four validated
    encodings instead of two (a test checks both agree).
    """
    if not _FRESH_KEYS.isdisjoint(pdu):
        signed = hash_and_sign_event(pdu, server_name, signing_key, key_id, room_version)
        return compute_event_id(signed, room_version), signed
    validate_canonical_value(pdu)
    hashed = dict(pdu)
    content_hash = hashlib.sha256(encode_validated(pdu)).digest()
    hashed["hashes"] = {"sha256": encode_base64(content_hash)}
    # Redaction keeps only validated values (and the hash just added): no new checks needed.
    signable = encode_validated(redact_event(hashed, room_version))
    signature = signing_key.sign(signable).signature
    event_id = "$" + encode_base64(hashlib.sha256(signable).digest(), urlsafe=True)
    signed = hashed
    signed["signatures"] = {server_name: {key_id: encode_base64(signature)}}
    return event_id, signed


# Keys a fresh skeleton never has; with any of them, take the general path.
_FRESH_KEYS = frozenset(("hashes", "signatures", "unsigned", "age_ts"))
