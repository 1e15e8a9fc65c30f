"""Our response writer, checked against h11's client-side parser as the oracle."""

from __future__ import annotations

import h11
import pytest
from hypothesis import given
from hypothesis import strategies as st

from homeserver.http import writer

TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
header_names = st.text(TOKEN_CHARS, min_size=1, max_size=20).filter(
    lambda n: n.lower() not in {"content-length", "transfer-encoding", "connection", "keep-alive"}
)
# Visible ASCII, inner spaces and tabs; no leading/trailing whitespace (RFC 9110 §5.5).
header_values = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.just("\t"), max_size=40
).map(str.strip)


def parse_as_client(method: bytes, data: bytes) -> tuple[h11.Response, bytes, bool]:
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method=method, target="/", headers=[("Host", "x")]))
    client.send(h11.EndOfMessage())
    client.receive_data(data)
    head = client.next_event()
    assert isinstance(head, h11.Response)
    body = b""
    while True:
        event = client.next_event()
        if isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            return head, body, True
        else:
            return head, body, False


@given(
    status=st.integers(200, 599),
    headers=st.lists(st.tuples(header_names, header_values), max_size=6),
    body=st.binary(max_size=200),
    close=st.booleans(),
)
def test_fixed_body_responses_parse_back(
    status: int, headers: list[tuple[str, str]], body: bytes, close: bool
) -> None:
    length = len(body) if writer.declares_length(status) else None
    head = writer.render_head(
        status, headers, "rid1", content_length=length, chunked=False, close=close
    )
    sent_body = body if writer.has_body(b"GET", status) else b""
    response, parsed_body, complete = parse_as_client(b"GET", head + sent_body)
    assert complete
    assert response.status_code == status
    assert parsed_body == sent_body
    got = [(n.decode(), v.decode()) for n, v in response.headers.raw_items()]
    assert got[: len(headers)] == headers
    names = {n.lower() for n, _ in got}
    assert {"server", "x-request-id", "access-control-allow-origin"} <= names
    assert ("connection" in names) == close


@given(chunks=st.lists(st.binary(min_size=1, max_size=50), max_size=5))
def test_chunked_body_parses_back(chunks: list[bytes]) -> None:
    data = writer.render_head(200, [], "r", content_length=None, chunked=True, close=False)
    data += b"".join(writer.chunk(c) for c in chunks) + writer.LAST_CHUNK
    _response, body, complete = parse_as_client(b"GET", data)
    assert complete and body == b"".join(chunks)


def test_head_response_declares_length_without_body() -> None:
    data = writer.render_head(200, [], "r", content_length=10, chunked=False, close=False)
    response, body, complete = parse_as_client(b"HEAD", data)
    assert complete and body == b""
    assert (b"content-length", b"10") in list(response.headers)


@pytest.mark.parametrize(
    "headers",
    [
        [("X-Bad", "a\r\nInjected: yes")],
        [("X-Bad", "a\nb")],
        [("X-Bad", "nul\x00")],
        [("Bad Name", "v")],
        [("Bad:Name", "v")],
        [("", "v")],
    ],
)
def test_injection_and_illegal_names_are_refused(headers: list[tuple[str, str]]) -> None:
    with pytest.raises(writer.InvalidResponse):
        writer.render_head(200, headers, "r", content_length=0, chunked=False, close=False)


@pytest.mark.parametrize("status", [100, 101, 199, 600, 1000, -1])
def test_illegal_status_is_refused(status: int) -> None:
    with pytest.raises(writer.InvalidResponse):
        writer.render_head(status, [], "r", content_length=0, chunked=False, close=False)


def test_handler_framing_headers_are_dropped() -> None:
    data = writer.render_head(
        200,
        [("Content-Length", "999"), ("Transfer-Encoding", "gzip"), ("Connection", "upgrade")],
        "r",
        content_length=2,
        chunked=False,
        close=False,
    )
    response, body, complete = parse_as_client(b"GET", data + b"ok")
    assert complete and body == b"ok"
    assert dict(response.headers)[b"content-length"] == b"2"
    assert b"transfer-encoding" not in dict(response.headers)


def test_non_ascii_header_value_is_sent_as_utf8() -> None:
    data = writer.render_head(
        200,
        [("Content-Disposition", "inline; filename=ä.png")],
        "r",
        content_length=0,
        chunked=False,
        close=False,
    )
    assert "filename=ä.png".encode() in data
