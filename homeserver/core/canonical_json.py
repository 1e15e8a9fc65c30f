"""Canonical JSON: the one byte encoding that every hash and signature is computed over.

Two servers must produce the same bytes for the same value or no signature would
ever verify, so this module is strict in both directions: it refuses to *encode*
values that have no canonical form, and it refuses to *parse* input that a room
version 6+ event may not contain (so it can be rejected with ``M_BAD_JSON`` or
dropped over federation, as ``rooms/fragments/v6-canonical-json.md`` requires).

Spec: ``appendices.md`` "Canonical JSON" (and its grammar), room versions 6+.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

# appendices.md "Canonical JSON": "Numbers in the JSON must be integers in the range
# [-(2**53)+1, (2**53)-1]".
CANONICALJSON_MAX_INT = 2**53 - 1
CANONICALJSON_MIN_INT = -CANONICALJSON_MAX_INT

# Deepest nesting of objects and arrays we accept. The spec sets no bound; this one is
# far beyond anything a real event holds, yet keeps the recursive encoder and validator
# comfortably inside Python's default recursion limit (1000 frames) even when called
# from deep in a trio task stack.
MAX_JSON_DEPTH = 256

# Federation: "The complete event MUST NOT be larger than 65536 bytes, when formatted
# with the federation event format, including any signatures, and encoded as Canonical
# JSON." (client-server-api "Size limits").
MAX_PDU_SIZE = 65536

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

# The stdlib C encoder with these settings emits exactly the spec's grammar: keys
# sorted by code point, no whitespace, raw UTF-8 except `"`, `\\` and the C0 controls
# (as \b \t \n \f \r or lowercase \u00XX). We only ever hand it validated values.
_ENCODER = json.JSONEncoder(
    ensure_ascii=False,
    allow_nan=False,
    separators=(",", ":"),
    sort_keys=True,
    check_circular=False,
)


class CanonicalJSONError(ValueError):
    """The value has no canonical JSON form, or the input is not acceptable JSON.

    A ValueError so that callers that already map ValueError to ``M_BAD_JSON`` keep
    working; the message names the offending path.
    """


def encode_canonical_json(value: Any) -> bytes:
    """Encode ``value`` as canonical JSON bytes, or raise :class:`CanonicalJSONError`.

    Accepts dicts (not other mappings: the stdlib encoder cannot write them) with
    string keys, lists/tuples, strings, ints (bools are JSON
    booleans), and None. Floats are refused outright, even integral ones: a float in
    an event is a bug upstream, and guessing its canonical form would hide it.
    """
    validate_canonical_value(value)
    return _ENCODER.encode(value).encode("utf-8")


def encode_validated(value: Any) -> bytes:
    """:func:`encode_canonical_json` without the validation walk, for a value already
    validated (or built only from validated parts): the hot path of building events."""
    return _ENCODER.encode(value).encode("utf-8")


def validate_canonical_value(value: Any) -> None:
    """Raise :class:`CanonicalJSONError`, naming the path, if ``value`` has no canonical form."""
    try:
        _validate(value, 0)
    except _Invalid as e:
        path = "$" + "".join(reversed(e.path))
        raise CanonicalJSONError(f"{path}: {e.reason}") from None


class _Invalid(Exception):
    """Raised deep in the walk; each level adds its key on the way out, so the happy
    path never builds path strings."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.path: list[str] = []


def _validate(value: Any, depth: int) -> None:
    if value is None or value is True or value is False:
        return
    if isinstance(value, str):
        if _LONE_SURROGATE.search(value):
            # From "\ud800" in the input: a lone surrogate has no UTF-8 encoding.
            raise _Invalid("string contains a lone UTF-16 surrogate")
        return
    if isinstance(value, int):
        if not CANONICALJSON_MIN_INT <= value <= CANONICALJSON_MAX_INT:
            raise _Invalid(f"integer {value} is outside [-(2**53)+1, 2**53-1]")
        return
    if isinstance(value, float):
        raise _Invalid("floats are not allowed in canonical JSON")
    if depth >= MAX_JSON_DEPTH:
        raise _Invalid(f"nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise _Invalid(f"object key {key!r} is not a string")
            try:
                if _LONE_SURROGATE.search(key):
                    raise _Invalid("object key contains a lone UTF-16 surrogate")
                _validate(item, depth + 1)
            except _Invalid as e:
                e.path.append(f".{key}")
                raise
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            try:
                _validate(item, depth + 1)
            except _Invalid as e:
                e.path.append(f"[{index}]")
                raise
        return
    raise _Invalid(f"{type(value).__name__} is not a JSON value")


# -- strict parsing -----------------------------------------------------------------


def _reject_float(literal: str) -> Any:
    raise CanonicalJSONError(f"number {literal} is not an integer without fraction or exponent")


def _reject_constant(literal: str) -> Any:
    raise CanonicalJSONError(f"{literal} is not valid JSON")


def _parse_int(literal: str) -> int:
    # Check the length first: int() of a 100,000-digit literal is slow (and Python
    # refuses past 4300 digits anyway). 2**53 has 16 digits.
    if len(literal.lstrip("-")) > 16:
        raise CanonicalJSONError(f"integer {literal[:20]}... is outside [-(2**53)+1, 2**53-1]")
    value = int(literal)
    if not CANONICALJSON_MIN_INT <= value <= CANONICALJSON_MAX_INT:
        raise CanonicalJSONError(f"integer {literal} is outside [-(2**53)+1, 2**53-1]")
    return value


_DECODER = json.JSONDecoder(
    parse_float=_reject_float,
    parse_int=_parse_int,
    parse_constant=_reject_constant,
)


def parse_strict_json(data: bytes | str) -> Any:
    """Parse federation or event JSON, accepting only what canonical JSON can encode.

    Rejected: invalid UTF-8, NaN/Infinity, any number written with a fraction or an
    exponent (even ``1e10`` or ``1.0``, as Synapse and ruma reject them; only the
    spec's own canonicalisation example takes ``1e10`` as input), integers outside
    [-(2**53)+1, 2**53-1], lone surrogates, nesting deeper than ``MAX_JSON_DEPTH``.
    ``-0`` is accepted and reads as 0.

    Duplicate object keys: the last one wins, as in Synapse and serde_json. This is
    safe because every hash and signature is computed over our re-encoding of the
    parsed value, never over the received bytes, so a duplicate cannot make us verify
    one value and act on another.
    """
    if isinstance(data, bytes | bytearray):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as e:
            raise CanonicalJSONError(f"input is not valid UTF-8: {e}") from None
    else:
        text = data
    try:
        value = _DECODER.decode(text)
    except CanonicalJSONError:
        raise
    except RecursionError:
        raise CanonicalJSONError(f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as e:
        raise CanonicalJSONError(f"invalid JSON: {e}") from None
    validate_canonical_value(value)
    return value


class EventSizeError(CanonicalJSONError):
    """The event, or one of its size-limited keys, is too large (``M_TOO_LARGE``)."""


# client-server-api "Size limits": sender, room_id, event_id by their identifier
# limits (255 bytes each, appendices "Identifier Grammar"); state_key and type 255 bytes.
_KEY_BYTE_LIMITS = {"sender": 255, "room_id": 255, "event_id": 255, "state_key": 255, "type": 255}


def check_event_size(event: Mapping[str, Any]) -> None:
    """Raise :class:`EventSizeError` if the PDU or one of its keys is over its limit.

    ``event`` must be the federation form, with ``signatures`` (and ``unsigned``, if
    it will be sent): the 65,536-byte limit counts the complete event as sent.
    """
    for key, limit in _KEY_BYTE_LIMITS.items():
        item = event.get(key)
        if isinstance(item, str) and len(item.encode("utf-8", "surrogatepass")) > limit:
            raise EventSizeError(f"{key} is longer than {limit} bytes")
    size = len(encode_canonical_json(event))
    if size > MAX_PDU_SIZE:
        raise EventSizeError(f"event is {size} bytes, over the {MAX_PDU_SIZE}-byte limit")
