"""Third-party invite signatures: the one signature the authorisation rules verify themselves.

An invite standing in for a third-party invite carries a ``signed`` block that an identity
server signed with a key published in the room's ``m.room.third_party_invite`` event (rule
4.4.1.7 in v10/v11, 5.4.1.7 in v12). Checking it needs no key fetching, so it stays pure.

Spec: ``m.room.third_party_invite`` and ``m.room.member`` schemas; appendices "Signing JSON".
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Any

import nacl.exceptions
import nacl.signing

from homeserver.core.canonical_json import CanonicalJSONError, encode_canonical_json


def _content(event: Mapping[str, Any]) -> Mapping[str, Any]:
    content = event.get("content")
    return content if isinstance(content, Mapping) else {}


def third_party_invite_public_keys(invite_event: Mapping[str, Any]) -> list[str]:
    """The public keys of an ``m.room.third_party_invite``: ``public_key`` and ``public_keys``."""
    content = _content(invite_event)
    keys: list[str] = []
    if isinstance(content.get("public_key"), str):
        keys.append(content["public_key"])
    public_keys = content.get("public_keys")
    if isinstance(public_keys, list):
        for entry in public_keys:
            if isinstance(entry, Mapping) and isinstance(entry.get("public_key"), str):
                keys.append(entry["public_key"])
    return keys


def _decode_unpadded_base64(value: str) -> bytes | None:
    """Standard or URL-safe base64, padded or not (identity servers use both)."""
    text = value.strip().rstrip("=").replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def verify_third_party_signed(signed: Mapping[str, Any], public_keys: Sequence[str]) -> bool:
    """Whether any ed25519 signature in ``signed`` verifies under any of ``public_keys``.

    The signed bytes are the canonical JSON of ``signed`` without ``signatures`` and
    ``unsigned`` (appendices, "Signing JSON"). Pure: no key fetching, no revocation check.
    """
    signatures = signed.get("signatures")
    if not isinstance(signatures, Mapping):
        return False
    unsigned_object = {k: v for k, v in signed.items() if k not in ("signatures", "unsigned")}
    try:
        message = encode_canonical_json(unsigned_object)
    except (CanonicalJSONError, TypeError, ValueError, RecursionError):
        return False
    verify_keys: list[nacl.signing.VerifyKey] = []
    for encoded in public_keys:
        raw = _decode_unpadded_base64(encoded)
        if raw is not None and len(raw) == 32:
            verify_keys.append(nacl.signing.VerifyKey(raw))
    for server_signatures in signatures.values():
        if not isinstance(server_signatures, Mapping):
            continue
        for key_id, encoded_signature in server_signatures.items():
            if not (isinstance(key_id, str) and key_id.startswith("ed25519:")):
                continue
            if not isinstance(encoded_signature, str):
                continue
            signature = _decode_unpadded_base64(encoded_signature)
            if signature is None or len(signature) != 64:
                continue
            for verify_key in verify_keys:
                try:
                    verify_key.verify(message, signature)
                except nacl.exceptions.BadSignatureError:
                    continue
                return True
    return False
