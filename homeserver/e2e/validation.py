"""Pure checks of uploaded key objects (client-server-api "End-to-end encryption").

Each function takes plain JSON values and either returns the parsed value or
raises a 400 ``MatrixError`` naming the field; signature checks go through
:mod:`homeserver.core.signing` (ed25519, PyNaCl).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeserver.core.canonical_json import CanonicalJSONError, encode_canonical_json
from homeserver.core.signing import SignatureError, decode_verify_key, verify_signed_json
from homeserver.errors import MatrixError, bad_json, invalid_param

# Limits (documented in client_api/keys.py): they protect storage, clients stay far below.
MAX_KEY_ID_LENGTH = 255
MAX_KEY_JSON_BYTES = 8 * 1024
MAX_DEVICE_KEYS_BYTES = 16 * 1024
MAX_ALGORITHMS = 32


def without_signatures(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")}


def encoded_size(value: Any, field: str) -> int:
    try:
        return len(encode_canonical_json(value))
    except CanonicalJSONError as e:
        raise bad_json(f"'{field}' is not canonical JSON: {e}") from None


def split_key_id(key_id: Any, field: str) -> tuple[str, str]:
    """``<algorithm>:<id>`` -> (algorithm, id)."""
    if not isinstance(key_id, str) or len(key_id) > MAX_KEY_ID_LENGTH:
        raise bad_json(f"'{field}' has a key ID that is not a short string")
    algorithm, sep, ident = key_id.partition(":")
    if not sep or not algorithm or not ident:
        raise bad_json(f"'{field}' key ID {key_id!r} is not of the form <algorithm>:<id>")
    return algorithm, ident


def check_signature(obj: Mapping[str, Any], user_id: str, key_id: str, public_key: str) -> None:
    """Raise SignatureError unless ``user_id`` signed ``obj`` with ed25519 ``public_key``."""
    try:
        verify_key = decode_verify_key(public_key)
    except ValueError as e:
        raise SignatureError(f"{key_id} is not an ed25519 public key: {e}") from None
    verify_signed_json(obj, user_id, verify_key, key_id)


def validate_device_keys(value: Any, user_id: str, device_id: str) -> dict[str, Any]:
    """The ``device_keys`` of ``/keys/upload``: must belong to the caller and be self-signed."""
    if not isinstance(value, dict):
        raise bad_json("'device_keys' must be an object")
    if encoded_size(value, "device_keys") > MAX_DEVICE_KEYS_BYTES:
        raise invalid_param("'device_keys' is too large")
    # matrix_brief pitfall 16 / CVE-2025-61672: keys for another user or device.
    if value.get("user_id") != user_id:
        raise bad_json("'device_keys.user_id' must be the authenticated user")
    if value.get("device_id") != device_id:
        raise bad_json("'device_keys.device_id' must be the authenticated device")
    algorithms = value.get("algorithms")
    if (
        not isinstance(algorithms, list)
        or len(algorithms) > MAX_ALGORITHMS
        or not all(isinstance(a, str) for a in algorithms)
    ):
        raise bad_json("'device_keys.algorithms' must be a list of strings")
    keys = value.get("keys")
    if not isinstance(keys, dict) or not keys:
        raise bad_json("'device_keys.keys' must be a non-empty object")
    for key_id, key in keys.items():
        split_key_id(key_id, "device_keys.keys")
        if not isinstance(key, str):
            raise bad_json("'device_keys.keys' values must be strings")
    ed_id = f"ed25519:{device_id}"
    ed_key = keys.get(ed_id)
    if not isinstance(ed_key, str):
        raise bad_json(f"'device_keys.keys' must hold {ed_id}")
    if not isinstance(value.get("signatures"), dict):
        raise bad_json("'device_keys.signatures' must be an object")
    try:
        check_signature(value, user_id, ed_id, ed_key)
    except SignatureError as e:
        raise MatrixError(400, "M_INVALID_SIGNATURE", f"device_keys: {e}") from None
    return {k: v for k, v in value.items() if k != "unsigned"}


def validate_key_map(value: Any, field: str, max_keys: int) -> list[tuple[str, str, Any]]:
    """``one_time_keys`` / ``fallback_keys``: ``{"<alg>:<id>": str | {key, signatures}}``."""
    if not isinstance(value, dict):
        raise bad_json(f"'{field}' must be an object")
    if len(value) > max_keys:
        raise invalid_param(f"'{field}' has too many keys (at most {max_keys})")
    out: list[tuple[str, str, Any]] = []
    for key_id, key in value.items():
        algorithm, _ = split_key_id(key_id, field)
        if isinstance(key, dict):
            if not isinstance(key.get("key"), str):
                raise bad_json(f"'{field}.{key_id}.key' must be a string")
        elif not isinstance(key, str):
            raise bad_json(f"'{field}.{key_id}' must be a string or an object")
        if encoded_size(key, field) > MAX_KEY_JSON_BYTES:
            raise invalid_param(f"'{field}.{key_id}' is too large")
        out.append((algorithm, key_id, key))
    return out


def one_time_keys_match(old: Any, new: Any) -> bool:
    """The same key re-uploaded: equal once ``signatures`` are ignored (synapse#19392)."""
    if isinstance(old, dict) and isinstance(new, dict):
        return without_signatures(old) == without_signatures(new)
    return bool(old == new)


CROSS_SIGNING_USAGES = {
    "master_key": "master",
    "self_signing_key": "self_signing",
    "user_signing_key": "user_signing",
}


def validate_cross_signing_key(value: Any, field: str, user_id: str) -> tuple[str, dict[str, Any]]:
    """A cross-signing key object -> (public key, object). Exactly one ed25519 key."""
    if not isinstance(value, dict):
        raise bad_json(f"'{field}' must be an object")
    if encoded_size(value, field) > MAX_DEVICE_KEYS_BYTES:
        raise invalid_param(f"'{field}' is too large")
    if value.get("user_id") != user_id:
        raise bad_json(f"'{field}.user_id' must be the authenticated user")
    usage = value.get("usage")
    if (
        not isinstance(usage, list)
        or len(usage) > MAX_ALGORITHMS
        or CROSS_SIGNING_USAGES[field] not in usage
        or not all(isinstance(u, str) for u in usage)
    ):
        raise bad_json(f"'{field}.usage' must be a list including {CROSS_SIGNING_USAGES[field]!r}")
    keys = value.get("keys")
    if not isinstance(keys, dict) or len(keys) != 1:
        raise bad_json(f"'{field}.keys' must hold exactly one key")
    ((key_id, public_key),) = keys.items()
    algorithm, ident = split_key_id(key_id, f"{field}.keys")
    if algorithm != "ed25519" or not isinstance(public_key, str) or ident != public_key:
        raise bad_json(f"'{field}.keys' must be {{'ed25519:<key>': '<key>'}}")
    try:
        decode_verify_key(public_key)
    except ValueError as e:
        raise bad_json(f"'{field}' key is not an ed25519 public key: {e}") from None
    signatures = value.get("signatures", {})
    if not isinstance(signatures, dict):
        raise bad_json(f"'{field}.signatures' must be an object")
    return public_key, {k: v for k, v in value.items() if k != "unsigned"}
