"""Turning h11 requests into Request values: pure, no sockets."""

from __future__ import annotations

import h11
import pytest
from hypothesis import given
from hypothesis import strategies as st

from homeserver.errors import MatrixError
from homeserver.http import wire


def parse(raw: bytes) -> h11.Request:
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(raw)
    event = conn.next_event()
    assert isinstance(event, h11.Request)
    return event


def test_absolute_form_target_is_reduced_to_its_path() -> None:
    event = parse(b"GET http://example.org/_matrix/x?a=b HTTP/1.1\r\nHost: example.org\r\n\r\n")
    request = wire.build_request(event, "1.2.3.4:5", "id", 65536)
    assert request.path == "/_matrix/x"
    assert request.query == {"a": ["b"]}
    assert request.remote == "1.2.3.4:5"


def test_head_larger_than_limit_is_431() -> None:
    event = parse(b"GET / HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 500 + b"\r\n\r\n")
    wire.build_request(event, "r", "id", 1000)
    with pytest.raises(MatrixError) as raised:
        wire.build_request(event, "r", "id", 400)
    assert raised.value.status == 431


@given(st.lists(st.text("abcdefghij0123456789", min_size=1, max_size=8), min_size=1, max_size=5))
def test_repeated_headers_join_in_order(values: list[str]) -> None:
    raw = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(
        b"X-Multi: " + v.encode() + b"\r\n" for v in values
    )
    request = wire.build_request(parse(raw + b"\r\n"), "r", "id", 65536)
    assert request.headers["x-multi"] == ", ".join(values)


def test_request_ids_are_unique() -> None:
    ids = {wire.next_request_id() for _ in range(10000)}
    assert len(ids) == 10000


@pytest.mark.parametrize(
    ("address", "expected"),
    [(("127.0.0.1", 80), "127.0.0.1:80"), (("::1", 8008, 0, 0), "[::1]:8008")],
)
def test_format_peer(address: tuple[object, ...], expected: str) -> None:
    assert wire.format_peer(address) == expected
