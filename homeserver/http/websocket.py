"""Handing an upgraded connection to trio-websocket.

h11 has already parsed the upgrade request, but trio-websocket wants to read
the handshake itself (through wsproto). Rather than reach into its private
reader, we replay the request bytes in front of the socket with a small stream
wrapper and use its public ``wrap_server_stream``: the handshake is then done
and validated by wsproto, exactly as if it had read the socket first.
"""

from __future__ import annotations

import importlib
import logging
import math
import time
from types import ModuleType
from typing import TYPE_CHECKING, Any

import h11
import trio

from homeserver.errors import MatrixError
from homeserver.http import wire
from homeserver.http.router import WebSocketHandler
from homeserver.http.types import Request

if TYPE_CHECKING:
    import trio_websocket

    from homeserver.http.connection import HttpConnection

log = logging.getLogger("plait.http")
access_log = logging.getLogger("plait.access")


class ReplayStream(trio.abc.Stream):
    """A stream that yields ``prefix`` before whatever ``inner`` receives."""

    def __init__(self, inner: trio.abc.Stream, prefix: bytes) -> None:
        self._inner = inner
        self._prefix = prefix

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._prefix:
            size = len(self._prefix) if max_bytes is None else max_bytes
            chunk, self._prefix = self._prefix[:size], self._prefix[size:]
            await trio.lowlevel.checkpoint()
            return chunk
        return bytes(await self._inner.receive_some(max_bytes))

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._inner.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self._inner.aclose()


def is_websocket_upgrade(request: Request) -> bool:
    """RFC 6455 §4.2.1: the opening handshake a server must see before upgrading."""
    headers = request.headers
    upgrade = headers.get("upgrade", "").lower()
    connection = headers.get("connection", "").lower()
    return (
        request.method == "GET"
        and "websocket" in (token.strip() for token in upgrade.split(","))
        and "upgrade" in (token.strip() for token in connection.split(","))
        and bool(headers.get("sec-websocket-key"))
        and headers.get("sec-websocket-version", "").strip() == "13"
    )


async def load_trio_websocket() -> ModuleType:
    """trio-websocket, imported by the first upgrade, in a worker thread.

    Its import reads its own version through ``importlib.metadata``, which
    pulls in the ``email`` and ``zipfile`` packages: about 5 MB of heap that a
    server no WebSocket client talks to never needs. The thread keeps the
    first upgrade's import from stalling every other connection.
    """
    global _trio_websocket
    # Not ``sys.modules``: while one upgrade's thread runs the import, the module
    # is already there, half initialized (a burst of first upgrades failed on it).
    # Concurrent imports in threads wait for the first on the import lock.
    if _trio_websocket is None:
        _trio_websocket = await trio.to_thread.run_sync(importlib.import_module, "trio_websocket")
    return _trio_websocket


_trio_websocket: ModuleType | None = None


def raw_request_head(event: h11.Request) -> bytes:
    """The request line and headers as they came (original header case)."""
    parts = [event.method, b" ", event.target, b" HTTP/1.1\r\n"]
    for name, value in event.headers.raw_items():
        parts += [name, b": ", value, b"\r\n"]
    parts.append(b"\r\n")
    return b"".join(parts)


async def serve_upgrade(
    connection: HttpConnection,
    slot: list[h11.Request],
    request: Request,
    handler: WebSocketHandler,
    started: float,
) -> None:
    """Complete the WebSocket handshake and run ``handler`` until it returns.

    ``slot`` holds the h11 event of the upgrade request; it is taken out and,
    like the handshake objects, dropped before the session runs, so an idle
    socket keeps neither.
    """
    event = slot.pop()
    conn = connection.h11_connection
    if not is_websocket_upgrade(request) or type(conn.next_event()) is not h11.EndOfMessage:
        error = MatrixError(400, "M_UNRECOGNIZED", "This endpoint expects a WebSocket upgrade")
        await connection.send_plain(event.method, wire.error_response(error), request.request_id)
        return
    trailing, _ = conn.trailing_data
    replay = ReplayStream(connection.stream, raw_request_head(event) + bytes(trailing))
    del event, trailing, conn
    ws_module = await load_trio_websocket()
    async with trio.open_nursery() as nursery:
        ws_request = await ws_module.wrap_server_stream(nursery, replay)
        websocket = await ws_request.accept(
            extra_headers=[(b"x-request-id", request.request_id.encode("ascii"))]
        )
        del ws_request, replay
        connection.deadline = math.inf
        _release_handshake(websocket)
        if access_log.isEnabledFor(logging.INFO):
            access_log.info(
                "%s %s %s 101 0 %.1fms %s",
                connection.remote,
                request.method,
                request.path,
                (time.perf_counter() - started) * 1000.0,
                request.request_id,
            )
        code, reason = 1000, ""
        connection.websocket_scope = handler_scope = trio.CancelScope()
        with handler_scope:
            try:
                await handler(request, websocket)
            except ws_module.ConnectionClosed:
                pass
            except Exception:
                log.exception(
                    "Unhandled error in WebSocket %s (request id %s)",
                    request.path,
                    request.request_id,
                )
                code, reason = 1011, "Internal server error"
        connection.websocket_scope = None
        if handler_scope.cancelled_caught:
            code, reason = 1001, "Server shutting down"  # RFC 6455 §7.4.1
        await websocket.aclose(code, reason)


def _release_handshake(websocket: trio_websocket.WebSocketConnection) -> None:
    """Drop wsproto's handshake parser once the connection is open.

    wsproto keeps its ``H11Handshake`` (an h11 parser and its buffers) for the
    life of the connection although only its (empty) event queue is read after
    the upgrade; with thousands of idle sockets that is kilobytes each. Guarded
    with ``getattr``: if the library's layout changes, this does nothing.
    """
    handshake: Any = getattr(getattr(websocket, "_wsproto", None), "handshake", None)
    if (
        getattr(handshake, "_h11_connection", None) is not None
        and getattr(handshake, "connection", None) is not None
    ):
        handshake._h11_connection = None
