"""The raw benchmark client frames Content-Length and chunked responses (no sockets)."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from tools.bench.common import BenchError
from tools.bench.http import bench_http, read_response

RESPONSES = (
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
    b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\nX-Trailer: 1\r\n\r\n"
    b"HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n"
)


@pytest.mark.parametrize("piece", [1, 7, len(RESPONSES)])
async def test_reads_both_framings_back_to_back(piece: int) -> None:
    send, receive = trio.testing.memory_stream_one_way_pair()
    for start in range(0, len(RESPONSES), piece):
        await send.send_all(RESPONSES[start : start + piece])
    await send.aclose()
    buffer = bytearray()
    stream: Any = receive
    assert await read_response(stream, buffer) == 200
    assert await read_response(stream, buffer) == 201
    assert await read_response(stream, buffer) == 404
    assert buffer == b""


async def test_unframed_response_is_an_error() -> None:
    send, receive = trio.testing.memory_stream_one_way_pair()
    await send.send_all(b"HTTP/1.1 200 OK\r\n\r\nbody")
    stream: Any = receive
    with pytest.raises(ConnectionError):
        await read_response(stream, bytearray())


async def test_refuses_remote_targets_and_bad_sizes() -> None:
    with pytest.raises(BenchError):
        await bench_http("http://192.0.2.1:80")
    with pytest.raises(BenchError):
        await bench_http("http://127.0.0.1:1", connections=0)
