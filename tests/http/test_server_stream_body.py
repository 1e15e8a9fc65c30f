"""Routes with ``stream_body=True`` (media uploads): the handler reads the body in chunks."""

from __future__ import annotations

import hashlib

import attrs
import httpx
import trio
from http_harness import TEST_CONFIG, raw_exchange

from homeserver.config import HttpConfig
from homeserver.http import HttpServer, Request, Response, Router

LIMIT = 4096


async def upload(request: Request) -> Response:
    assert request.body_stream is not None and request.body == b""
    digest = hashlib.sha256()
    chunks = 0
    async for chunk in request.body_stream:
        digest.update(chunk)
        chunks += 1
    return Response.json({"sha256": digest.hexdigest(), "chunks": chunks})


async def ignore_body(request: Request) -> Response:
    return Response.json({"ignored": True})


async def start(nursery: trio.Nursery, config: HttpConfig = TEST_CONFIG) -> int:
    router = Router()
    router.add("POST", "/upload", upload, max_body=LIMIT, stream_body=True)
    router.add("POST", "/ignore", ignore_body, max_body=LIMIT, stream_body=True)
    router.add("GET", "/ok", ignore_body)
    server = HttpServer(router, host="127.0.0.1", port=0, config=config)
    port: int = await nursery.start(server.run)
    return port


async def test_streamed_bodies_arrive_whole(nursery: trio.Nursery) -> None:
    port = await start(nursery)
    data = bytes(range(256)) * 16  # exactly the limit

    async def chunked():  # type: ignore[no-untyped-def]
        for i in range(0, len(data), 1000):
            yield data[i : i + 1000]

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        sized = await client.post("/upload", content=data)
        streamed = await client.post("/upload", content=chunked())
        empty = await client.post("/upload")
    expected = hashlib.sha256(data).hexdigest()
    assert sized.json()["sha256"] == expected
    assert streamed.json()["sha256"] == expected
    assert empty.json() == {"sha256": hashlib.sha256(b"").hexdigest(), "chunks": 0}


async def test_streamed_bodies_over_the_limit_are_413(nursery: trio.Nursery) -> None:
    port = await start(nursery)
    too_big = b"z" * (LIMIT + 1)

    async def chunked():  # type: ignore[no-untyped-def]
        yield too_big[:3000]
        yield too_big[3000:]

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        declared = await client.post("/upload", content=too_big)
        streamed = await client.post("/upload", content=chunked())
        after = await client.get("/ok")
    assert declared.status_code == 413 and declared.json()["errcode"] == "M_TOO_LARGE"
    assert streamed.status_code == 413 and streamed.json()["errcode"] == "M_TOO_LARGE"
    assert after.status_code == 200


async def test_unread_streamed_body_closes_after_answer(nursery: trio.Nursery) -> None:
    port = await start(nursery)
    # The body is promised but never sent: the handler answers without it.
    reply = await raw_exchange(
        port, b"POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc"
    )
    assert reply.startswith(b"HTTP/1.1 200")
    assert b"Connection: close" in reply


async def test_stalled_streamed_body_times_out(nursery: trio.Nursery) -> None:
    port = await start(nursery, attrs.evolve(TEST_CONFIG, body_timeout=0.2))
    reply = await raw_exchange(
        port, b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc"
    )
    # raw_exchange returns once the server closes: the stalled upload did not hold it.
    assert not reply.startswith(b"HTTP/1.1 200")
