"""TLS listener, WebSocket upgrade, and graceful shutdown, end to end."""

from __future__ import annotations

import ssl
from pathlib import Path

import attrs
import httpx
import pytest
import trio
import trio_websocket
from http_harness import TEST_CONFIG, make_router, wait_until

from homeserver.http import HttpServer, Request, Response, Router
from homeserver.http.tls import load_ssl_context, make_self_signed_cert


async def test_tls_listener_serves_and_verifies(nursery: trio.Nursery, tmp_path: Path) -> None:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    make_self_signed_cert("matrix.example", cert, key)
    assert key.stat().st_mode & 0o077 == 0
    server = HttpServer(
        make_router(),
        host="127.0.0.1",
        port=0,
        config=TEST_CONFIG,
        ssl_context=load_ssl_context(cert, key),
    )
    port = await nursery.start(server.run)
    verify = ssl.create_default_context(cafile=str(cert))
    async with httpx.AsyncClient(verify=verify) as client:
        for host in ("127.0.0.1", "localhost"):
            response = await client.get(f"https://{host}:{port}/_matrix/client/versions")
            assert response.status_code == 200
            assert response.json() == {"versions": ["v1.11"]}
    # Plain HTTP to the TLS port is a failed handshake: closed quietly, server lives on.
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        with trio.fail_after(10):
            while await stream.receive_some(65536):
                pass
    async with httpx.AsyncClient(verify=verify) as client:
        response = await client.get(f"https://127.0.0.1:{port}/_matrix/client/versions")
    assert response.status_code == 200


async def test_tls_client_without_trust_is_rejected(nursery: trio.Nursery, tmp_path: Path) -> None:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    make_self_signed_cert("matrix.example", cert, key)
    server = HttpServer(
        make_router(),
        host="127.0.0.1",
        port=0,
        config=TEST_CONFIG,
        ssl_context=load_ssl_context(cert, key),
    )
    port = await nursery.start(server.run)
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"https://127.0.0.1:{port}/_matrix/client/versions")


async def echo_socket(request: Request, websocket: trio_websocket.WebSocketConnection) -> None:
    await websocket.send_message(f"hello {request.path_params['name']}")
    while True:
        message = await websocket.get_message()
        if message == "boom":
            raise RuntimeError("handler failure")
        await websocket.send_message(message)


def ws_router() -> Router:
    router = make_router()
    router.add_websocket("/ws/{name}", echo_socket)
    return router


async def test_websocket_echo(nursery: trio.Nursery) -> None:
    server = HttpServer(ws_router(), host="127.0.0.1", port=0, config=TEST_CONFIG)
    port = await nursery.start(server.run)
    async with trio_websocket.open_websocket_url(f"ws://127.0.0.1:{port}/ws/al%69ce") as ws:
        assert await ws.get_message() == "hello alice"
        await ws.send_message("ping")
        assert await ws.get_message() == "ping"
        await ws.send_message(b"\x00binary")
        assert await ws.get_message() == b"\x00binary"
    async with trio_websocket.open_websocket_url(f"ws://127.0.0.1:{port}/ws/bob") as ws:
        assert await ws.get_message() == "hello bob"
        await ws.send_message("boom")
        with pytest.raises(trio_websocket.ConnectionClosed) as closed:
            await ws.get_message()
        assert closed.value.reason.code == 1011
    # A plain GET on a WebSocket route is refused with a Matrix error.
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{port}/ws/carol")
    assert response.status_code == 400
    assert response.json()["errcode"] == "M_UNRECOGNIZED"


async def test_graceful_shutdown_finishes_in_flight_and_refuses_new(
    nursery: trio.Nursery,
) -> None:
    entered, release = trio.Event(), trio.Event()

    async def gated(request: Request) -> Response:
        entered.set()
        await release.wait()
        return Response.json({"released": True})

    router = make_router()
    router.add("GET", "/gated", gated)
    server = HttpServer(router, host="127.0.0.1", port=0, config=TEST_CONFIG)
    port = await nursery.start(server.run)
    base = f"http://127.0.0.1:{port}"
    results: dict[str, httpx.Response] = {}

    async def slow_client(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with httpx.AsyncClient() as client:
            task_status.started()
            results["slow"] = await client.get(f"{base}/gated")

    # An idle keep-alive connection, to see it closed at once.
    idle = await trio.open_tcp_stream("127.0.0.1", port)
    await idle.send_all(b"GET /_matrix/client/versions HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await idle.receive_some(65536)).startswith(b"HTTP/1.1 200")

    async with trio.open_nursery() as clients:
        await clients.start(slow_client)
        with trio.fail_after(10):
            await entered.wait()
        server.begin_shutdown()
        with trio.fail_after(10):
            await server.wait_not_accepting()
            assert await idle.receive_some(65536) == b""
        with pytest.raises(OSError):
            await trio.open_tcp_stream("127.0.0.1", port)
        release.set()  # the in-flight request finishes after shutdown began
    assert results["slow"].status_code == 200
    assert results["slow"].json() == {"released": True}
    assert results["slow"].headers["connection"] == "close"
    await idle.aclose()


async def test_shutdown_grace_cancels_stragglers(nursery: trio.Nursery) -> None:
    config = attrs.evolve(TEST_CONFIG, shutdown_grace=0.1)
    server = HttpServer(make_router(), host="127.0.0.1", port=0, config=config)
    done = trio.Event()

    async def run_server(task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        await server.run(task_status=task_status)
        done.set()

    port = await nursery.start(run_server)
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(b"GET /slow?s=1000 HTTP/1.1\r\nHost: x\r\n\r\n")
    await wait_until(lambda: server.statistics().requests >= 1)
    server.begin_shutdown()
    with trio.fail_after(10):
        await done.wait()  # run() returned although the handler would sleep for ages
        assert await stream.receive_some(65536) == b""
    await stream.aclose()


async def test_shutdown_closes_websockets(nursery: trio.Nursery) -> None:
    server = HttpServer(ws_router(), host="127.0.0.1", port=0, config=TEST_CONFIG)
    port = await nursery.start(server.run)
    async with trio_websocket.open_websocket_url(f"ws://127.0.0.1:{port}/ws/dave") as ws:
        assert await ws.get_message() == "hello dave"
        server.begin_shutdown()
        with trio.fail_after(10), pytest.raises(trio_websocket.ConnectionClosed) as closed:
            await ws.get_message()
        assert closed.value.reason.code == 1001
    await wait_until(lambda: server.statistics().connections == 0)
