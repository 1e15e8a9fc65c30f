"""The listener: accepts connections and owns their tasks and their shutdown.

Follows trio's shape for long-lived things: ``run(task_status=...)`` started
with ``nursery.start()``, which reports the bound port, and ``statistics()``.
Shutdown is two-step so a deploy drops no request: ``begin_shutdown()`` stops
accepting and closes idle connections at once; requests in flight get
``shutdown_grace`` seconds to finish, then everything left is cancelled.
"""

from __future__ import annotations

import errno
import logging
import ssl
import time

import attrs
import trio

from homeserver.config import HttpConfig
from homeserver.http import memory, writer
from homeserver.http.connection import HttpConnection
from homeserver.http.router import Router
from homeserver.http.wire import format_peer

log = logging.getLogger("plait.http")

# accept() failures that mean "out of resources, try again soon", not "broken".
_TRANSIENT_ACCEPT_ERRORS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}


@attrs.frozen
class HttpServerStatistics:
    connections: int
    requests: int
    shutting_down: bool


class HttpServer:
    def __init__(
        self,
        router: Router,
        *,
        host: str,
        port: int,
        config: HttpConfig,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._router = router
        self._host = host
        self._port = port
        self._config = config
        self._ssl_context = ssl_context
        self._shutting_down = False
        self._requests = 0
        self._connections: set[HttpConnection] = set()
        self._slots = trio.Semaphore(config.max_connections)
        self._accept_scope: trio.CancelScope | None = None
        self._not_accepting = trio.Event()
        self.port: int | None = None
        # Refreshed by the reaper's tick: formatting a date per request is waste.
        self._date_line = writer.date_line(time.time())
        self._trim = memory.TrimSchedule()

    # -- what connections see (ConnectionOwner) ----------------------------

    @property
    def router(self) -> Router:
        return self._router

    @property
    def config(self) -> HttpConfig:
        return self._config

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def count_request(self) -> None:
        self._requests += 1

    @property
    def date_line(self) -> bytes:
        return self._date_line

    # -- lifetime -----------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Bind, report the port, serve until cancelled or shut down."""
        listeners = await trio.open_tcp_listeners(self._port, host=self._host)
        if self._port == 0 and len(listeners) > 1:
            # Port 0 binds each address family to a different port: keep one.
            for extra in listeners[1:]:
                await extra.aclose()
            listeners = listeners[:1]
        self.port = int(listeners[0].socket.getsockname()[1])
        try:
            async with trio.open_nursery() as housekeeping:
                housekeeping.start_soon(self._reap_expired)
                await self._serve(listeners, self.port, task_status)
                housekeeping.cancel_scope.cancel()
        finally:
            for listener in listeners:
                await trio.aclose_forcefully(listener)
            self._not_accepting.set()

    async def _serve(
        self, listeners: list[trio.SocketListener], port: int, task_status: trio.TaskStatus[int]
    ) -> None:
        async with trio.open_nursery() as connections:
            async with trio.open_nursery() as acceptors:
                self._accept_scope = acceptors.cancel_scope
                if self._shutting_down:
                    acceptors.cancel_scope.cancel()
                for listener in listeners:
                    acceptors.start_soon(self._accept_loop, listener, connections)
                task_status.started(port)
            # Only shutdown cancels the acceptors: stop listening, let
            # in-flight requests finish within the grace period.
            for listener in listeners:
                await trio.aclose_forcefully(listener)
            self._not_accepting.set()
            connections.cancel_scope.deadline = trio.current_time() + self._config.shutdown_grace

    async def _reap_expired(self) -> None:
        """Close connections whose current wait outlived its timeout.

        Timeouts fire up to one tick late; in exchange, moving a deadline costs
        the request path a float store instead of a cancel scope.
        """
        config = self._config
        shortest = min(config.idle_timeout, config.header_timeout, config.body_timeout)
        tick = min(1.0, max(0.01, shortest / 4))
        while True:
            await trio.sleep(tick)
            self._date_line = writer.date_line(time.time())
            now = trio.current_time()
            for connection in self._connections:
                if connection.deadline <= now:
                    connection.cancel()
            if self._trim.due(self._requests, now):
                # Freed heap back to the OS after a burst (see memory.py).
                await trio.to_thread.run_sync(memory.release_free_memory)

    def begin_shutdown(self) -> None:
        """Stop accepting; idle connections close now, busy ones after their request."""
        self._shutting_down = True
        if self._accept_scope is not None:
            self._accept_scope.cancel()
        for connection in list(self._connections):
            connection.on_shutdown()

    async def wait_not_accepting(self) -> None:
        """Wait until the listening sockets are closed (after ``begin_shutdown``)."""
        await self._not_accepting.wait()

    def statistics(self) -> HttpServerStatistics:
        return HttpServerStatistics(len(self._connections), self._requests, self._shutting_down)

    # -- connections --------------------------------------------------------

    async def _accept_loop(self, listener: trio.SocketListener, nursery: trio.Nursery) -> None:
        while True:
            # Beyond max_connections we stop accepting; the kernel backlog waits.
            await self._slots.acquire()
            try:
                stream = await listener.accept()
            except OSError as exc:
                self._slots.release()
                if exc.errno in _TRANSIENT_ACCEPT_ERRORS:
                    log.warning("accept() failed (%s); retrying shortly", exc)
                    await trio.sleep(0.1)
                    continue
                raise
            except BaseException:
                self._slots.release()
                raise
            nursery.start_soon(self._serve_connection, stream)

    async def _serve_connection(self, socket_stream: trio.SocketStream) -> None:
        try:
            try:
                remote = format_peer(socket_stream.socket.getpeername())
            except OSError:
                await trio.aclose_forcefully(socket_stream)
                return  # gone before we looked
            stream: trio.abc.Stream = socket_stream
            if self._ssl_context is not None:
                stream = trio.SSLStream(
                    socket_stream, self._ssl_context, server_side=True, https_compatible=True
                )
            connection = HttpConnection(self, stream, remote)
            self._connections.add(connection)
            try:
                await connection.serve()
            finally:
                self._connections.discard(connection)
        finally:
            self._slots.release()


async def serve_http(
    router: Router,
    *,
    host: str,
    port: int,
    config: HttpConfig,
    ssl_context: ssl.SSLContext | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``router`` until cancelled; ``nursery.start`` returns the bound port."""
    server = HttpServer(router, host=host, port=port, config=config, ssl_context=ssl_context)
    await server.run(task_status=task_status)
