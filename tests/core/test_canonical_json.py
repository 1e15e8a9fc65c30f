"""Canonical JSON: the spec's examples exactly, strict parsing, and canonicaljson as an oracle."""

from __future__ import annotations

import json
from typing import Any

import canonicaljson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from homeserver.core.canonical_json import (
    CANONICALJSON_MAX_INT,
    CANONICALJSON_MIN_INT,
    MAX_JSON_DEPTH,
    MAX_PDU_SIZE,
    CanonicalJSONError,
    EventSizeError,
    check_event_size,
    encode_canonical_json,
    parse_strict_json,
)

# appendices.md "Canonical JSON" / "Examples": (input JSON text, expected canonical JSON).
SPEC_EXAMPLES = [
    ("{}", "{}"),
    ('{\n    "one": 1,\n    "two": "Two"\n}', '{"one":1,"two":"Two"}'),
    ('{\n    "b": "2",\n    "a": "1"\n}', '{"a":"1","b":"2"}'),
    ('{"b":"2","a":"1"}', '{"a":"1","b":"2"}'),
    (
        """{
    "auth": {
        "success": true,
        "mxid": "@john.doe:example.com",
        "profile": {
            "display_name": "John Doe",
            "three_pids": [
                {
                    "medium": "email",
                    "address": "john.doe@example.org"
                },
                {
                    "medium": "msisdn",
                    "address": "123456789"
                }
            ]
        }
    }
}""",
        '{"auth":{"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe",'
        '"three_pids":[{"address":"john.doe@example.org","medium":"email"},'
        '{"address":"123456789","medium":"msisdn"}]},"success":true}}',
    ),
    ('{\n    "a": "日本語"\n}', '{"a":"日本語"}'),
    ('{\n    "本": 2,\n    "日": 1\n}', '{"日":1,"本":2}'),
    ('{\n    "a": "\\u65E5"\n}', '{"a":"日"}'),
    ('{\n    "a": null\n}', '{"a":null}'),
]


@pytest.mark.parametrize(("source", "expected"), SPEC_EXAMPLES)
def test_spec_examples(source: str, expected: str) -> None:
    assert encode_canonical_json(parse_strict_json(source.encode())) == expected.encode("utf-8")


def test_spec_example_negative_zero_and_exponent() -> None:
    # The spec's last example, {"a": -0, "b": 1e10} -> {"a":0,"b":10000000000}: -0
    # parses as the integer 0; 1e10 is the integer 10**10. Our strict parser refuses
    # exponent notation (as Synapse and ruma do), so the value is given directly.
    assert parse_strict_json(b'{"a": -0}') == {"a": 0}
    value = {"a": parse_strict_json(b"-0"), "b": 10**10}
    assert encode_canonical_json(value) == b'{"a":0,"b":10000000000}'


def test_escapes_follow_the_grammar() -> None:
    # Grammar: only ", \ and C0 controls are escaped; \b\t\n\f\r short, others \u00XX
    # lowercase; DEL, non-ASCII and U+2028 go out raw.
    value = '"\\\b\t\n\f\r\x00\x1f\x7f/é\u2028😀'
    expected = '"\\"\\\\\\b\\t\\n\\f\\r\\u0000\\u001f\x7f/é\u2028😀"'.encode()
    assert encode_canonical_json(value) == expected


def test_keys_sorted_by_code_point_not_utf16() -> None:
    # U+FF61 sorts before U+1F600 by code point, after it by UTF-16 code unit.
    value = {"😀": 1, "｡": 2}
    assert encode_canonical_json(value) == '{"｡":2,"😀":1}'.encode()


@pytest.mark.parametrize(
    "value",
    [
        1.5,
        1.0,
        float("nan"),
        float("inf"),
        CANONICALJSON_MAX_INT + 1,
        CANONICALJSON_MIN_INT - 1,
        {"a": [1, {"b": 0.5}]},
        {1: "int key"},
        b"bytes",
        {"a": {1, 2}},
        "\ud800",
        {"\udc00": 1},
    ],
)
def test_encode_rejects_values_without_canonical_form(value: Any) -> None:
    with pytest.raises(CanonicalJSONError):
        encode_canonical_json(value)


def test_encode_error_names_the_path() -> None:
    with pytest.raises(CanonicalJSONError, match=r"\$\.content\.list\[1\]\.x"):
        encode_canonical_json({"content": {"list": [0, {"x": 0.5}]}})


def test_integer_bounds_are_inclusive() -> None:
    assert encode_canonical_json([CANONICALJSON_MIN_INT, CANONICALJSON_MAX_INT]) == (
        b"[-9007199254740991,9007199254740991]"
    )


@pytest.mark.parametrize(
    "data",
    [
        b'{"a": 1.0}',
        b'{"a": 1e10}',
        b'{"a": 1E2}',
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b'{"a": -Infinity}',
        b'{"a": 9007199254740992}',
        b'{"a": -9007199254740992}',
        b'{"a": 1' + b"0" * 5000 + b"}",
        b'{"a": "\\ud800"}',
        b'{"\\udfff": 1}',
        b'{"a": "\xff"}',
        b"{'a': 1}",
        b'{"a": 1,}',
        b"",
        b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1),
        b"[" * 100_000 + b"]" * 100_000,
    ],
)
def test_strict_parser_rejects(data: bytes) -> None:
    with pytest.raises(CanonicalJSONError):
        parse_strict_json(data)


def test_strict_parser_accepts_the_bounds() -> None:
    deep = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    assert encode_canonical_json(parse_strict_json(deep)) == deep
    assert parse_strict_json(b"[-9007199254740991, 9007199254740991]") == [
        CANONICALJSON_MIN_INT,
        CANONICALJSON_MAX_INT,
    ]


def test_strict_parser_duplicate_keys_last_wins() -> None:
    assert parse_strict_json(b'{"a": 1, "a": 2}') == {"a": 2}


def test_check_event_size() -> None:
    event: dict[str, Any] = {"type": "m.room.message", "content": {"body": ""}}
    overhead = len(encode_canonical_json(event))
    event["content"]["body"] = "x" * (MAX_PDU_SIZE - overhead)
    check_event_size(event)  # exactly at the limit
    event["content"]["body"] += "x"
    with pytest.raises(EventSizeError):
        check_event_size(event)


def test_check_event_size_counts_utf8_bytes_and_signatures() -> None:
    event: dict[str, Any] = {"content": {"body": "é" * (MAX_PDU_SIZE // 2 - 20)}}
    check_event_size(event)
    event["signatures"] = {"example.org": {"ed25519:a": "s" * 100}}
    with pytest.raises(EventSizeError):
        check_event_size(event)


@pytest.mark.parametrize("key", ["type", "state_key", "sender", "room_id", "event_id"])
def test_check_event_size_key_limits(key: str) -> None:
    check_event_size({key: "a" * 255})
    with pytest.raises(EventSizeError, match=key):
        check_event_size({key: "a" * 254 + "é"})


# -- canonicaljson as an oracle ------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=CANONICALJSON_MIN_INT, max_value=CANONICALJSON_MAX_INT)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_matches_canonicaljson(value: Any) -> None:
    assert encode_canonical_json(value) == canonicaljson.encode_canonical_json(value)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_parse_encode_round_trip(value: Any) -> None:
    pretty = json.dumps(value, indent=2, ensure_ascii=True).encode()
    encoded = encode_canonical_json(value)
    assert parse_strict_json(pretty) == value
    assert encode_canonical_json(parse_strict_json(encoded)) == encoded
