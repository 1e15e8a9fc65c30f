"""A real server on a loopback port, with a small router of test handlers."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable

import attrs
import trio
import trio.lowlevel

from homeserver.config import HttpConfig
from homeserver.errors import MatrixError, limit_exceeded
from homeserver.http import HttpServer, Request, Response, Router


async def versions(request: Request) -> Response:
    return Response.json({"versions": ["v1.11"]})


async def echo(request: Request) -> Response:
    return Response.json(
        {
            "method": request.method,
            "path": request.path,
            "params": request.path_params,
            "query": request.query,
            "body": request.json() if request.body else None,
            "remote": request.remote,
            "request_id": request.request_id,
            "headers": request.headers,
        }
    )


async def boom(request: Request) -> Response:
    raise RuntimeError("secret internal detail")


async def limited(request: Request) -> Response:
    raise limit_exceeded(2500)


async def forbidden(request: Request) -> Response:
    raise MatrixError(403, "M_FORBIDDEN", "Not yours", extra_field=1)


async def slow(request: Request) -> Response:
    await trio.sleep(float(request.query_one("s", "0.5") or "0.5"))
    return Response.json({"slept": True})


async def bad_header(request: Request) -> Response:
    return Response(headers=[("X-Bad", "a\r\nInjected: yes")], body=b"x")


async def stream(request: Request) -> Response:
    fail = request.query_one("fail") is not None

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(5):
            if fail and i == 2:
                raise RuntimeError("storage went away")
            yield f"chunk{i};".encode()
            await trio.lowlevel.checkpoint()

    length = request.query_one("length")
    return Response(
        headers=[("Content-Type", "text/plain")],
        stream=chunks(),
        content_length=int(length) if length else None,
    )


async def big(request: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        block = b"b" * 65536
        for _ in range(1024):  # 64 MiB: more than any socket buffer holds
            yield block

    return Response(stream=chunks(), content_length=65536 * 1024)


async def not_a_response(request: Request) -> Response:
    return {"oops": True}  # type: ignore[return-value]


def make_router() -> Router:
    router = Router()
    router.add("GET", "/_matrix/client/versions", versions)
    router.add("GET", "/echo/{roomId}/{eventType}", echo)
    router.add("POST", "/echo/{roomId}/{eventType}", echo)
    router.add("PUT", "/small/{name}", echo, max_body=64)
    router.add("POST", "/json", echo)
    router.add("GET", "/boom", boom)
    router.add("GET", "/limited", limited)
    router.add("GET", "/forbidden", forbidden)
    router.add("GET", "/slow", slow)
    router.add("GET", "/bad_header", bad_header)
    router.add("GET", "/stream", stream)
    router.add("GET", "/big", big)
    router.add("GET", "/not_a_response", not_a_response)
    return router


TEST_CONFIG = HttpConfig(
    max_json_body=1024,
    max_header_bytes=4096,
    idle_timeout=5.0,
    header_timeout=5.0,
    body_timeout=5.0,
    shutdown_grace=5.0,
    max_connections=100,
)


@attrs.define
class Running:
    server: HttpServer
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


async def start(
    nursery: trio.Nursery, config: HttpConfig = TEST_CONFIG, **kwargs: object
) -> Running:
    server = HttpServer(make_router(), host="127.0.0.1", port=0, config=config, **kwargs)  # type: ignore[arg-type]
    port = await nursery.start(server.run)
    return Running(server, port)


async def raw_exchange(port: int, data: bytes, *, read_until_close: bool = True) -> bytes:
    """Send raw bytes, then read until the server closes (bounded by a timeout)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(data)
        received = b""
        with trio.move_on_after(10):
            while True:
                try:
                    chunk = await stream.receive_some(65536)
                except trio.BrokenResourceError:
                    break
                if not chunk:
                    break
                received += chunk
                if not read_until_close and b"\r\n\r\n" in received:
                    break
        return received


async def wait_until(predicate: Callable[[], bool]) -> None:
    """Poll a server statistic; the timeout is a safety net, not an assertion."""
    with trio.fail_after(10):
        for _ in itertools.count():
            if predicate():
                return
            await trio.sleep(0.01)
