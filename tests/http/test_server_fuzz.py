"""Throw malformed and random bytes at a live server; it must answer 4xx or close."""

from __future__ import annotations

import re

import attrs
import trio
from http_harness import TEST_CONFIG, make_router
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from homeserver.http import HttpServer

VALID = (
    b"GET /_matrix/client/versions HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /json HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b'Content-Length: 7\r\n\r\n{"a":1}',
    b"PUT /small/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    b"OPTIONS /any HTTP/1.1\r\nHost: x\r\n\r\n",
)

STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3}) ")


@st.composite
def mutated_request(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        chunk = draw(
            st.one_of(
                st.binary(min_size=1, max_size=8),
                st.sampled_from([b"\r\n", b"\n", b":", b" ", b"\x00", b"%", b"?", b"\xff", b"0"]),
            )
        )
        if action == "insert":
            data[position:position] = chunk
        elif action == "delete":
            del data[position : position + len(chunk)]
        else:
            data[position : position + len(chunk)] = chunk
    return bytes(data)


junk = st.one_of(
    st.binary(max_size=300),
    mutated_request(),
    st.lists(st.sampled_from(VALID), min_size=1, max_size=3)
    .map(b"".join)
    .map(lambda d: d + b"\x00garbage\r\n\r\n"),
)

CONFIG = attrs.evolve(TEST_CONFIG, idle_timeout=2.0, header_timeout=2.0, body_timeout=2.0)


async def _exchange(port: int, data: bytes) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    received = b""
    async with stream:
        try:
            await stream.send_all(data)
            await stream.send_eof()
        except trio.BrokenResourceError:
            return received
        # A safety net, not a timing assertion: the server must close by itself.
        with trio.fail_after(20):
            while True:
                try:
                    chunk = await stream.receive_some(65536)
                except trio.BrokenResourceError:
                    break
                if not chunk:
                    break
                received += chunk
    return received


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=junk)
async def test_random_bytes_get_4xx_or_close_and_server_survives(data: bytes) -> None:
    server = HttpServer(make_router(), host="127.0.0.1", port=0, config=CONFIG)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(server.run)
        reply = await _exchange(port, data)
        for status in STATUS_LINE.findall(reply):
            code = int(status)
            # Whatever happened to parse is answered; nothing is a server error.
            assert code < 500 or code == 505, (data, reply)
        fresh = await _exchange(
            port, b"GET /_matrix/client/versions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        assert fresh.startswith(b"HTTP/1.1 200 "), fresh
        assert server.statistics().connections <= 1
        nursery.cancel_scope.cancel()
