"""Limits and timeouts: oversized headers and bodies, malformed requests, slow peers."""

from __future__ import annotations

import logging

import attrs
import httpx
import pytest
import trio
from http_harness import TEST_CONFIG, Running, raw_exchange, start, wait_until


async def test_oversized_headers_get_431_and_close(running: Running) -> None:
    big = b"X-Big: " + b"a" * (TEST_CONFIG.max_header_bytes + 100) + b"\r\n"
    reply = await raw_exchange(
        running.port, b"GET /_matrix/client/versions HTTP/1.1\r\nHost: x\r\n" + big + b"\r\n"
    )
    assert reply.startswith(b"HTTP/1.1 431")
    assert b'"errcode":"M_TOO_LARGE"' in reply
    assert b"connection: close" in reply.lower()


async def test_body_over_content_length_limit_is_413(running: Running) -> None:
    async with httpx.AsyncClient(base_url=running.base_url) as client:
        response = await client.post("/json", content=b"x" * (TEST_CONFIG.max_json_body + 1))
        assert response.status_code == 413
        assert response.json()["errcode"] == "M_TOO_LARGE"
        # The client reconnects transparently: the server is still there.
        assert (await client.get("/_matrix/client/versions")).status_code == 200


async def test_route_specific_limit_applies(running: Running) -> None:
    async with httpx.AsyncClient(base_url=running.base_url) as client:
        fits = await client.put("/small/a", json={"k": "v" * 10})
        too_big = await client.put("/small/a", json={"k": "v" * 100})
    assert fits.status_code == 200
    assert too_big.status_code == 413


async def test_chunked_body_over_limit_is_413(running: Running) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(10):
            yield b"y" * 200

    async with httpx.AsyncClient(base_url=running.base_url) as client:
        response = await client.post("/json", content=chunks())
    assert response.status_code == 413
    assert response.json()["errcode"] == "M_TOO_LARGE"


async def test_chunked_body_within_limit_is_read(running: Running) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        yield b'{"a":'
        yield b'"b"}'

    async with httpx.AsyncClient(base_url=running.base_url) as client:
        response = await client.post("/json", content=chunks())
    assert response.status_code == 200
    assert response.json()["body"] == {"a": "b"}


async def test_404_with_unread_body_closes_after_answer(running: Running) -> None:
    # The body is never sent: the server must not wait for it before answering.
    raw = b"POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\nabc"
    reply = await raw_exchange(running.port, raw)
    assert reply.startswith(b"HTTP/1.1 404")
    assert b"connection: close" in reply.lower()


async def test_expect_100_continue(running: Running) -> None:
    stream = await trio.open_tcp_stream("127.0.0.1", running.port)
    async with stream:
        await stream.send_all(
            b"POST /json HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n"
            b"Expect: 100-continue\r\nConnection: close\r\n\r\n"
        )
        with trio.fail_after(5):
            interim = await stream.receive_some(1000)
        assert interim.startswith(b"HTTP/1.1 100")
        await stream.send_all(b'{"a":1}')
        reply = b""
        with trio.fail_after(5):
            while chunk := await stream.receive_some(65536):
                reply += chunk
    assert reply.startswith(b"HTTP/1.1 200")
    assert b'"body":{"a":1}' in reply


async def test_malformed_request_gets_400_close_and_server_lives_on(running: Running) -> None:
    for garbage in (
        b"GARBAGE\r\n\r\n",
        b"GET /x HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
        b"GET /x HTTP/1.1\r\nBad Header\r\n\r\n",
        b"POST /json HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ):
        reply = await raw_exchange(running.port, garbage)
        assert reply.startswith(b"HTTP/1.1 400"), (garbage, reply)
        assert b"connection: close" in reply.lower()
    reply = await raw_exchange(running.port, b"GET / HTTP/9.9\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 505")
    async with httpx.AsyncClient(base_url=running.base_url) as client:
        assert (await client.get("/_matrix/client/versions")).status_code == 200


async def _closed_by_server(port: int, data: bytes) -> bytes:
    """Send ``data``, then wait for the server to close; returns what it sent."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    received = b""
    async with stream:
        await stream.send_all(data)
        with trio.fail_after(10):  # a safety net, not a timing assertion
            while True:
                try:
                    chunk = await stream.receive_some(65536)
                except trio.BrokenResourceError:
                    break
                if not chunk:
                    break
                received += chunk
    return received


async def test_idle_header_and_body_timeouts_close_connection(nursery: trio.Nursery) -> None:
    config = attrs.evolve(TEST_CONFIG, idle_timeout=0.2, header_timeout=0.2, body_timeout=0.2)
    running = await start(nursery, config)
    # Idle: a keep-alive connection after one answered request.
    reply = await _closed_by_server(
        running.port, b"GET /_matrix/client/versions HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    assert reply.startswith(b"HTTP/1.1 200")
    # Header: a request line that never finishes (slow-loris).
    assert await _closed_by_server(running.port, b"GET /_matrix/client/vers") == b""
    # Body: a promised body that never arrives.
    assert (
        await _closed_by_server(
            running.port, b"POST /json HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{"
        )
        == b""
    )
    # Idle with nothing ever sent.
    assert await _closed_by_server(running.port, b"") == b""
    # The server's tasks end too, not just the sockets.
    await wait_until(lambda: running.server.statistics().connections == 0)


async def test_handler_time_is_not_limited_by_body_timeout(nursery: trio.Nursery) -> None:
    config = attrs.evolve(TEST_CONFIG, idle_timeout=0.1, header_timeout=0.1, body_timeout=0.1)
    running = await start(nursery, config)
    async with httpx.AsyncClient(base_url=running.base_url) as client:
        response = await client.get("/slow?s=0.4")
    assert response.json() == {"slept": True}


async def test_max_connections_holds_extra_clients_until_a_slot_frees(
    nursery: trio.Nursery,
) -> None:
    config = attrs.evolve(TEST_CONFIG, max_connections=1)
    running = await start(nursery, config)
    first = await trio.open_tcp_stream("127.0.0.1", running.port)
    await first.send_all(b"GET /_matrix/client/versions HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await first.receive_some(65536)).startswith(b"HTTP/1.1 200")
    # The second connection sits in the backlog, unanswered, while the first is open.
    second = await trio.open_tcp_stream("127.0.0.1", running.port)
    await second.send_all(
        b"GET /_matrix/client/versions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    with trio.move_on_after(0.3) as waited:
        await second.receive_some(65536)
    assert waited.cancelled_caught
    assert running.server.statistics().connections == 1
    await first.aclose()
    with trio.fail_after(10):
        reply = await second.receive_some(65536)
    assert reply.startswith(b"HTTP/1.1 200")
    await second.aclose()


async def test_oversized_headers_arriving_slowly_get_431(running: Running) -> None:
    stream = await trio.open_tcp_stream("127.0.0.1", running.port)
    async with stream:
        await stream.send_all(b"GET /_matrix/client/versions HTTP/1.1\r\nHost: x\r\n")
        piece = b"X-Filler: " + b"f" * 1000 + b"\r\n"
        reply = b""
        with trio.fail_after(10):
            try:
                # Never finish the head: h11's bound on an incomplete head must trip.
                for _ in range(2 * TEST_CONFIG.max_header_bytes // len(piece)):
                    await stream.send_all(piece)
                    await trio.sleep(0.01)
            except trio.BrokenResourceError:
                pass
            while True:
                try:
                    chunk = await stream.receive_some(65536)
                except trio.BrokenResourceError:
                    break
                if not chunk:
                    break
                reply += chunk
    assert reply.startswith(b"HTTP/1.1 431")


async def test_malformed_request_bytes_are_not_logged_or_echoed(
    running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for raw in (
        b"GET /?access_token=sekrit1 HTTP/1.1 junk\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nAuthorization Bearer sekrit2\r\n\r\n",
    ):
        reply = await raw_exchange(running.port, raw)
        assert reply.startswith(b"HTTP/1.1 400")
        assert b"sekrit" not in reply
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("plait.")]
    assert ours and not any("sekrit" in m for m in ours)


async def test_client_that_never_reads_is_dropped(nursery: trio.Nursery) -> None:
    config = attrs.evolve(TEST_CONFIG, body_timeout=0.2)
    running = await start(nursery, config)
    stream = await trio.open_tcp_stream("127.0.0.1", running.port)
    async with stream:
        await stream.send_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        await wait_until(lambda: running.server.statistics().requests == 1)
        # We never read: the server's send stalls, its deadline passes, it lets go.
        await wait_until(lambda: running.server.statistics().connections == 0)
