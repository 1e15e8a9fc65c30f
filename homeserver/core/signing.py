"""Signing JSON with ed25519: server keys, request authentication, events.

A signature covers the canonical JSON of an object without ``signatures`` and
``unsigned``, so that other servers can add their own signatures and transit data
without breaking ours. Events are signed in their *redacted* form so the signature
still verifies after a redaction removes their content.

Spec: ``appendices.md`` "Unpadded Base64", "Signing JSON", "Checking for a
Signature"; ``server-server-api.md`` "Signing Events".
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

import nacl.exceptions
import nacl.signing

from homeserver.core.canonical_json import CanonicalJSONError, encode_canonical_json
from homeserver.core.redaction import redact_event
from homeserver.core.room_versions import RoomVersion

# appendices.md "Signing Details": the only signing algorithm is ed25519.
ED25519 = "ed25519"
# A key ID is "<algorithm>:<version>"; "The version must have characters matching the
# regular expression [a-zA-Z0-9_]" (server-server-api "Retrieving server keys",
# data/api/server-server/definitions/keys.yaml).
_KEY_VERSION_RE = re.compile(r"[a-zA-Z0-9_]+")


class SignatureError(Exception):
    """A signature is missing, malformed or does not verify; the message says which."""


# -- unpadded base64 (appendices "Unpadded Base64") ---------------------------------


def encode_base64(data: bytes, *, urlsafe: bool = False) -> str:
    """Unpadded base64; ``urlsafe`` uses ``-`` and ``_`` (appendices "URL-safe unpadded")."""
    encoded = base64.urlsafe_b64encode(data) if urlsafe else base64.b64encode(data)
    return encoded.rstrip(b"=").decode("ascii")


def decode_base64(value: str) -> bytes:
    """Decode standard or URL-safe base64, padded or not ("implementations SHOULD
    accept input with or without padding characters").

    Raises ValueError on characters outside the alphabet or an impossible length.
    """
    stripped = value.rstrip("=")
    if len(stripped) % 4 == 1:
        raise ValueError("invalid base64: impossible length")
    padded = (stripped + "=" * (-len(stripped) % 4)).encode("ascii", "replace")
    try:
        if "-" in stripped or "_" in stripped:
            if "+" in stripped or "/" in stripped:
                raise ValueError("invalid base64: mixes the standard and URL-safe alphabets")
            return base64.b64decode(padded, altchars=b"-_", validate=True)
        return base64.b64decode(padded, validate=True)
    except binascii.Error as e:
        raise ValueError(f"invalid base64: {e}") from None


# -- key IDs --------------------------------------------------------------------------


def make_key_id(version: str) -> str:
    """``ed25519:<version>``, refusing a version other servers would reject."""
    if not _KEY_VERSION_RE.fullmatch(version):
        raise ValueError(f"key version {version!r} must match [a-zA-Z0-9_]+")
    return f"{ED25519}:{version}"


def is_valid_key_id(key_id: str) -> bool:
    """True for ``ed25519:<version>`` with a well-formed version."""
    algorithm, _, version = key_id.partition(":")
    return algorithm == ED25519 and bool(_KEY_VERSION_RE.fullmatch(version))


def encode_verify_key(verify_key: nacl.signing.VerifyKey) -> str:
    """The public key as published in ``verify_keys`` (unpadded base64)."""
    return encode_base64(bytes(verify_key))


def decode_verify_key(key_base64: str) -> nacl.signing.VerifyKey:
    """Parse a published ed25519 public key; ValueError if it is not 32 bytes of base64."""
    raw = decode_base64(key_base64)
    if len(raw) != 32:
        raise ValueError(f"an ed25519 public key is 32 bytes, got {len(raw)}")
    return nacl.signing.VerifyKey(raw)


# -- signing and checking JSON ---------------------------------------------------


def _signable_bytes(obj: Mapping[str, Any]) -> bytes:
    """The bytes a signature covers: canonical JSON without signatures and unsigned."""
    return encode_canonical_json(
        {key: value for key, value in obj.items() if key not in ("signatures", "unsigned")}
    )


def sign_json(
    obj: Mapping[str, Any],
    server_name: str,
    signing_key: nacl.signing.SigningKey,
    key_id: str,
) -> dict[str, Any]:
    """Return a copy of ``obj`` with our signature added; ``obj`` is untouched.

    Signatures already present (ours under other key IDs, other servers') are kept;
    ``unsigned`` is carried over unchanged.
    """
    signature = signing_key.sign(_signable_bytes(obj)).signature
    signed = dict(obj)
    existing = obj.get("signatures")
    signatures = (
        {name: dict(sigs) for name, sigs in existing.items() if isinstance(sigs, Mapping)}
        if isinstance(existing, Mapping)
        else {}
    )
    signatures.setdefault(server_name, {})[key_id] = encode_base64(signature)
    signed["signatures"] = signatures
    return signed


def signature_key_ids(obj: Mapping[str, Any], server_name: str) -> list[str]:
    """The ed25519 key IDs ``server_name`` signed ``obj`` with: the keys to look up.

    appendices "Checking for a Signature" step 2: IDs with unknown algorithms are
    dropped. The version part is not checked here: a remote server whose key version
    strays from the grammar still signed what it signed.
    """
    signatures = obj.get("signatures")
    if not isinstance(signatures, Mapping):
        return []
    ours = signatures.get(server_name)
    if not isinstance(ours, Mapping):
        return []
    return [key_id for key_id in ours if key_id.startswith(f"{ED25519}:")]


def verify_signed_json(
    obj: Mapping[str, Any],
    server_name: str,
    verify_key: nacl.signing.VerifyKey,
    key_id: str,
) -> None:
    """Raise :class:`SignatureError` unless ``server_name`` signed ``obj`` with this key.

    appendices "Checking for a Signature", steps 1 and 4-7 (finding the key, steps
    2-3, is the caller's job: see :func:`signature_key_ids`).
    """
    signatures = obj.get("signatures")
    if not isinstance(signatures, Mapping):
        raise SignatureError("the object has no signatures")
    ours = signatures.get(server_name)
    if not isinstance(ours, Mapping):
        raise SignatureError(f"no signature from {server_name}")
    signature_base64 = ours.get(key_id)
    if not isinstance(signature_base64, str):
        raise SignatureError(f"no signature from {server_name} with key {key_id}")
    try:
        signature = decode_base64(signature_base64)
    except ValueError as e:
        raise SignatureError(f"signature from {server_name} {key_id} is not base64: {e}") from None
    try:
        message = _signable_bytes(obj)
    except CanonicalJSONError as e:
        raise SignatureError(f"the signed object is not canonical JSON: {e}") from None
    try:
        verify_key.verify(message, signature)
    except (nacl.exceptions.BadSignatureError, ValueError):
        # ValueError: the signature is not 64 bytes.
        raise SignatureError(f"bad signature from {server_name} {key_id}") from None


# -- events (server-server-api "Signing Events") --------------------------------------


def sign_event(
    event: Mapping[str, Any],
    server_name: str,
    signing_key: nacl.signing.SigningKey,
    key_id: str,
    room_version: RoomVersion,
) -> dict[str, Any]:
    """Sign the redacted event and copy the signature onto a copy of the full event.

    The content hash must already be in ``hashes``: the signature covers it, which is
    what ties the unredacted content to the signature. Use
    :func:`homeserver.core.hashing.hash_and_sign_event` to do both.
    """
    hashes = event.get("hashes")
    if not isinstance(hashes, Mapping) or not isinstance(hashes.get("sha256"), str):
        raise ValueError("add the content hash (hashes.sha256) before signing an event")
    signed_redacted = sign_json(redact_event(event, room_version), server_name, signing_key, key_id)
    signed = dict(event)
    signed["signatures"] = signed_redacted["signatures"]
    return signed


def verify_event_signature(
    event: Mapping[str, Any],
    server_name: str,
    verify_key: nacl.signing.VerifyKey,
    key_id: str,
    room_version: RoomVersion,
) -> None:
    """Raise :class:`SignatureError` unless ``server_name`` signed ``event``.

    Checks the redacted form, so it succeeds for the full event and for a redacted
    copy alike (server-server-api "Validating hashes and signatures on received
    events"). The content hash is a separate check.
    """
    verify_signed_json(redact_event(event, room_version), server_name, verify_key, key_id)
