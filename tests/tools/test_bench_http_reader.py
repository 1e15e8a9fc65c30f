"""The raw benchmark client frames Content-Length and chunked responses (no sockets)."""

from __future__ import annotations

import functools
from typing import Any

import pytest
import trio
import trio.testing

from tools.bench.common import BenchError
from tools.bench.http import bench_http, read_response
from tools.bench.matrix_client import RawLongPoll

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


async def test_keeps_the_body_when_asked() -> None:
    send, receive = trio.testing.memory_stream_one_way_pair()
    await send.send_all(RESPONSES)
    await send.aclose()
    buffer = bytearray()
    stream: Any = receive
    bodies = [bytearray() for _ in range(3)]
    assert [await read_response(stream, buffer, body) for body in bodies] == [200, 201, 404]
    assert bodies == [b"hello", b"abcdefg", b""]


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


async def test_raw_long_poll_decodes_reconnects_and_reports_errors() -> None:
    """RawLongPoll against a loopback server that closes after each answer."""
    requests: list[bytes] = []
    answers = [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        b'9\r\n{"next_ba\r\n9\r\ntch":"a"}\r\n0\r\n\r\n',
        b'HTTP/1.1 200 OK\r\nContent-Length: 18\r\n\r\n{"next_batch":"b"}',
        b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 2\r\n\r\n{}",
    ]

    async def handler(stream: trio.SocketStream) -> None:
        received = b""
        while b"\r\n\r\n" not in received:
            received += await stream.receive_some(65536)
        requests.append(received)
        await stream.send_all(answers[len(requests) - 1])
        await stream.aclose()  # every answer ends its connection

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, handler, 0, host="127.0.0.1")
        )
        port = listeners[0].socket.getsockname()[1]
        poll = RawLongPoll(f"http://127.0.0.1:{port}", "tok")
        before = trio.current_time()
        arrived, body = await poll.sync(None, 0)
        assert body == {"next_batch": "a"} and arrived >= before
        _, body = await poll.sync("a", 30_000)  # the first connection was closed
        assert body == {"next_batch": "b"}
        with pytest.raises(RuntimeError, match="401"):
            await poll.sync("b", 30_000)
        await poll.aclose()
        nursery.cancel_scope.cancel()
    first = requests[0].split(b"\r\n")[0]
    assert first.startswith(b"GET /_matrix/client/v3/sync?timeout=0&filter=")
    assert b"since=" not in first and b"since=a" in requests[1]
    assert b"Authorization: Bearer tok\r\n" in requests[0]


def test_raw_long_poll_refuses_remote_targets() -> None:
    with pytest.raises(BenchError):
        RawLongPoll("http://192.0.2.1:80", "tok")
