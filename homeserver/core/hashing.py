"""Content hashes, reference hashes, event IDs and (room version 12) room IDs.

Two hashes with different jobs: the *content hash* covers the whole unredacted
event, so a receiver can tell whether it got the full content; the *reference
hash* covers only the redacted form (which includes the content hash), so it stays
the same when the event is redacted and can serve as the event's ID.

Spec: ``server-server-api.md`` "Calculating the content hash for an event",
"Calculating the reference hash for an event", "Adding hashes and signatures to
outgoing events"; ``rooms/fragments/v4-event-ids.md``; ``rooms/v12.md``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import nacl.signing

from homeserver.core.canonical_json import encode_canonical_json
from homeserver.core.redaction import redact_event
from homeserver.core.room_versions import RoomVersion
from homeserver.core.signing import decode_base64, encode_base64, sign_event


def compute_content_hash(event: Mapping[str, Any]) -> bytes:
    """SHA-256 over the canonical JSON of the event without unsigned, signatures, hashes.

    ``unsigned`` changes in transit, signatures depend on the hash, and ``hashes``
    may one day hold other algorithms, so none of them can be covered.
    """
    hashed = {
        key: value
        for key, value in event.items()
        if key not in ("unsigned", "signatures", "hashes")
    }
    return hashlib.sha256(encode_canonical_json(hashed)).digest()


def add_content_hash(event: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``event`` with ``hashes.sha256`` set; other algorithms are kept."""
    hashed = dict(event)
    existing = event.get("hashes")
    hashes = dict(existing) if isinstance(existing, Mapping) else {}
    hashes["sha256"] = encode_base64(compute_content_hash(event))
    hashed["hashes"] = hashes
    return hashed


def check_content_hash(event: Mapping[str, Any]) -> bool:
    """True if ``hashes.sha256`` matches the event's content.

    False means the sender's content was altered or removed (or the hash is missing
    or malformed): the receiver then keeps only the redacted form (server-server-api
    "Validating hashes and signatures on received events").
    Raises CanonicalJSONError for an event with no canonical form (floats, huge
    integers): parse received events with ``parse_strict_json`` first.
    """
    hashes = event.get("hashes")
    if not isinstance(hashes, Mapping):
        return False
    claimed = hashes.get("sha256")
    if not isinstance(claimed, str):
        return False
    try:
        expected = decode_base64(claimed)
    except ValueError:
        return False
    return expected == compute_content_hash(event)


def compute_reference_hash(event: Mapping[str, Any], room_version: RoomVersion) -> bytes:
    """SHA-256 over the canonical JSON of the redacted event without signatures and unsigned.

    ``age_ts`` is dropped too, as Synapse does (a relic of room version 1 events);
    redaction already removes it, so this only documents the agreement. Note that
    an ``event_id`` key, if present, is kept by redaction and therefore hashed, as
    by Synapse: never store the computed ID inside the dict before hashing it.
    """
    redacted = redact_event(event, room_version)
    for key in ("signatures", "unsigned", "age_ts"):
        redacted.pop(key, None)
    return hashlib.sha256(encode_canonical_json(redacted)).digest()


def compute_event_id(event: Mapping[str, Any], room_version: RoomVersion) -> str:
    """``$`` + URL-safe unpadded base64 of the reference hash (room versions 4+)."""
    return "$" + encode_base64(compute_reference_hash(event, room_version), urlsafe=True)


def compute_room_id(create_event: Mapping[str, Any], room_version: RoomVersion) -> str:
    """Room version 12: the room ID is the create event's ID with sigil ``!`` for ``$``.

    rooms/v12.md auth rule 1.2: "The room ID is the event ID of the event with sigil
    ``!`` instead of ``$``", i.e. ``!`` + URL-safe unpadded base64 of its reference hash.
    """
    if not room_version.room_id_from_create_event:
        raise ValueError(f"room version {room_version.identifier} does not hash room IDs")
    if create_event.get("type") != "m.room.create":
        raise ValueError("only an m.room.create event defines a room ID")
    return "!" + compute_event_id(create_event, room_version)[1:]


def hash_and_sign_event(
    event: Mapping[str, Any],
    server_name: str,
    signing_key: nacl.signing.SigningKey,
    key_id: str,
    room_version: RoomVersion,
) -> dict[str, Any]:
    """Add the content hash, then sign the redacted form: a new event ready to send.

    The order matters: the signature covers ``hashes``, and through it the full
    content (server-server-api "Adding hashes and signatures to outgoing events").
    """
    return sign_event(add_content_hash(event), server_name, signing_key, key_id, room_version)
