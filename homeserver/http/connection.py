"""One HTTP/1.1 connection: h11 parses, we route, call the handler and answer.

h11 handles one request at a time, so pipelined requests are answered in order
without any extra bookkeeping. Timeouts: the connection carries one cancel
scope and a ``deadline`` that we move as it passes through its phases (idle,
reading, handling, sending); the server's reaper cancels the scope once the
deadline has passed. A float store per phase is cheaper than a ``fail_after``
scope per wait (measurably so at 10,000 requests/s), and when a deadline
passes the whole connection closes, which is what a slow-loris deserves.
"""

from __future__ import annotations

import enum
import logging
import math
import time
from collections.abc import AsyncIterator
from typing import Protocol

import h11
import trio

from homeserver.config import HttpConfig
from homeserver.errors import MatrixError, too_large
from homeserver.http import wire, writer
from homeserver.http.router import Route, Router
from homeserver.http.types import Request, Response
from homeserver.http.websocket import serve_upgrade

log = logging.getLogger("plait.http")
access_log = logging.getLogger("plait.access")

RECEIVE_SIZE = 65536
# After answering a request whose body we did not read, read and discard at
# most this much (for at most DRAIN_SECONDS) before closing, so the peer sees
# our response instead of a TCP reset.
DRAIN_BYTES = 16 * 1024 * 1024
DRAIN_SECONDS = 1.0


class Phase(enum.Enum):
    IDLE = "idle"  # waiting for the first byte of the next request
    READING = "reading"  # request line, headers or body
    HANDLING = "handling"  # the handler runs
    SENDING = "sending"
    UPGRADED = "upgraded"  # handed over to the WebSocket handler


class ConnectionOwner(Protocol):
    """What a connection needs from the server that accepted it."""

    @property
    def router(self) -> Router: ...

    @property
    def config(self) -> HttpConfig: ...

    @property
    def shutting_down(self) -> bool: ...

    def count_request(self) -> None: ...

    @property
    def date_line(self) -> bytes:
        """``Date: ...\\r\\n`` for the current second (RFC 9110 §6.6.1)."""
        ...


class _CloseConnection(Exception):
    """Abort the connection without a response (the response already started)."""


class HttpConnection:
    def __init__(self, owner: ConnectionOwner, stream: trio.abc.Stream, remote: str) -> None:
        self._owner = owner
        self._config = owner.config
        self._router = owner.router
        self._stream = stream
        self.remote = remote
        self._h11 = self._new_parser()
        self._scope = trio.CancelScope()
        self.phase = Phase.IDLE
        # When the current wait must end (trio clock); the server's reaper
        # cancels the connection once it has passed. Plain float writes keep
        # the hot path free of per-wait cancel scopes.
        self.deadline = math.inf
        # Set while a WebSocket handler runs: cancelling it stops the handler only.
        self.websocket_scope: trio.CancelScope | None = None

    def _new_parser(self) -> h11.Connection:
        return h11.Connection(h11.SERVER, max_incomplete_event_size=self._config.max_header_bytes)

    # -- lifetime -----------------------------------------------------------

    async def serve(self) -> None:
        """Answer requests until the peer leaves, a deadline passes, or we shut down."""
        drain = False
        try:
            with self._scope:
                try:
                    drain = await self._serve_requests()
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass  # the peer went away, or the TLS handshake failed
                except _CloseConnection:
                    pass
                except Exception:
                    # Our bug, not the peer's: lose this connection, never the server.
                    log.exception("HTTP connection from %s failed", self.remote)
            self.deadline = math.inf
            await self._close(drain)
        finally:
            # Also when the shutdown grace ran out and cancelled us.
            await trio.aclose_forcefully(self._stream)

    def on_shutdown(self) -> None:
        """Close now if nothing is in flight; otherwise the current request finishes first.

        A WebSocket session never finishes by itself: its handler is stopped and
        the socket closed with 1001 "going away" so the client reconnects elsewhere.
        """
        if self.phase is Phase.UPGRADED and self.websocket_scope is not None:
            self.websocket_scope.cancel()
        elif self.phase is Phase.IDLE or self.phase is Phase.UPGRADED:
            self._scope.cancel()

    def cancel(self) -> None:
        self._scope.cancel()

    async def _close(self, drain: bool) -> None:
        stream = self._stream
        if drain and isinstance(stream, trio.SocketStream):
            # RFC 9112 §9.6: close in stages so the peer can read our answer.
            with trio.move_on_after(DRAIN_SECONDS):
                try:
                    await stream.send_eof()
                    drained = 0
                    while drained < DRAIN_BYTES:
                        data = await stream.receive_some(RECEIVE_SIZE)
                        if not data:
                            break
                        drained += len(data)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass
        await trio.aclose_forcefully(stream)

    # -- the request loop ---------------------------------------------------

    async def _serve_requests(self) -> bool:
        """Returns whether unread request bytes may remain (the close should drain)."""
        config = self._config
        while True:
            if self._owner.shutting_down:
                return False
            conn = self._h11
            if conn.trailing_data[0]:
                self.phase = Phase.READING
                self.deadline = trio.current_time() + config.header_timeout
            else:
                self.phase = Phase.IDLE
                self.deadline = trio.current_time() + config.idle_timeout
            try:
                event = await self._next_event()
            except h11.RemoteProtocolError as exc:
                await self._answer_protocol_error(exc)
                return True
            if type(event) is not h11.Request:
                return False  # ConnectionClosed: the peer is done
            # Handed over in a one-slot list that _answer empties: while a handler
            # waits (a /sync long-poll, minutes), no frame keeps h11's event and
            # its raw header lists alive next to the Request built from them.
            slot = [event]
            del event
            if not await self._answer(slot):
                return not _request_complete(conn)
            # A fresh parser per request: h11 never sees our responses (see
            # writer.py), so its state machine cannot be cycled. It starts
            # with whatever the peer has already pipelined.
            data, closed = conn.trailing_data
            self._h11 = conn = self._new_parser()
            if data:
                conn.receive_data(data)
            if closed:
                conn.receive_data(b"")

    async def _next_event(self) -> h11.Event | type[h11.NEED_DATA] | type[h11.PAUSED]:
        conn = self._h11
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await self._stream.receive_some(RECEIVE_SIZE)
            if self.phase is Phase.IDLE and data:
                # The first byte of a request starts the header clock.
                self.phase = Phase.READING
                self.deadline = trio.current_time() + self._config.header_timeout
            conn.receive_data(bytes(data))

    async def _answer(self, slot: list[h11.Request]) -> bool:
        """Route, read the body, run the handler, respond. Returns keep-alive.

        ``slot`` holds the h11 event; it is taken out so that only this frame
        refers to it, and dropped before the handler runs.
        """
        event = slot.pop()
        started = time.perf_counter()
        request_id = wire.next_request_id()
        self._owner.count_request()
        conn = self._h11
        try:
            if event.http_version != b"1.1" and event.http_version != b"1.0":
                raise MatrixError(505, "M_UNRECOGNIZED", "Only HTTP/1.0 and HTTP/1.1 are served")
            request = wire.build_request(
                event, self.remote, request_id, self._config.max_header_bytes
            )
        except MatrixError as exc:
            log.info("Refused request from %s (request id %s): %s", self.remote, request_id, exc)
            self._discard_buffered_body()
            await self._send_response(b"GET", wire.error_response(exc), request_id, True, False)
            return False
        method = event.method
        http10 = event.http_version == b"1.0"
        # RFC 9112 §9.3: HTTP/1.0 and "Connection: close" end the connection.
        close = http10 or _asks_to_close(request)
        route: Route | None = None
        response: Response | None = None
        if method == b"OPTIONS":
            # Client-Server API "Web Browser Clients": a preflight never runs the endpoint.
            response = Response(status=204)
        else:
            try:
                route, request.path_params = self._router.resolve(request.method, request.path)
            except MatrixError as exc:
                response = wire.error_response(exc)
        if route is not None:
            if route.websocket is not None:
                self.phase = Phase.UPGRADED
                # As for a long-poll: the session (hours) does not keep h11's event.
                upgrade = [event]
                del event
                await serve_upgrade(self, upgrade, request, route.websocket, started)
                return False
            del event
            try:
                if route.stream_body:
                    request.body_stream = self._start_body_stream(request, route)
                else:
                    request.body = await self._read_body(request, route)
            except MatrixError as exc:
                response = wire.error_response(exc)
            except h11.RemoteProtocolError as exc:
                response = protocol_error(exc)
            else:
                response = await self._call(route, request)
        assert response is not None
        if not _request_complete(conn):
            # Answered without reading the body (404, 413, OPTIONS, ...): keep
            # the connection only if the rest of the request is already here.
            self._discard_buffered_body()
            close = close or not _request_complete(conn)
        close = close or self._owner.shutting_down
        sent = await self._send_response(method, response, request_id, close, http10)
        if access_log.isEnabledFor(logging.INFO):
            access_log.info(
                "%s %s %s %d %d %.1fms %s",
                self.remote,
                request.method,
                request.path,
                response.status,
                sent,
                (time.perf_counter() - started) * 1000.0,
                request_id,
            )
        return not close

    async def _read_body(self, request: Request, route: Route) -> bytes:
        """The whole body, or 413 ``M_TOO_LARGE`` as soon as it is clearly too big."""
        conn = self._h11
        declared = request.headers.get("content-length")
        if declared is None and "transfer-encoding" not in request.headers:
            # No body at all; h11 yields EndOfMessage without any I/O.
            event = conn.next_event()
            if type(event) is h11.EndOfMessage:
                return b""
            raise AssertionError(f"unexpected h11 event {event!r}")  # pragma: no cover
        limit = route.max_body if route.max_body is not None else self._config.max_json_body
        if declared is not None and _content_length(declared) > limit:
            raise too_large(f"Request body exceeds the limit of {limit} bytes")
        if conn.they_are_waiting_for_100_continue:
            await self._stream.send_all(writer.CONTINUE)
        self.deadline = trio.current_time() + self._config.body_timeout
        chunks: list[bytes] = []
        total = 0
        while True:
            event = await self._next_event()
            if type(event) is h11.Data:
                total += len(event.data)
                if total > limit:
                    raise too_large(f"Request body exceeds the limit of {limit} bytes")
                chunks.append(bytes(event.data))
            elif type(event) is h11.EndOfMessage:
                return b"".join(chunks)
            else:  # pragma: no cover - h11 yields only Data/EndOfMessage here
                raise AssertionError(f"unexpected h11 event {event!r}")

    def _start_body_stream(self, request: Request, route: Route) -> AsyncIterator[bytes]:
        """For ``stream_body`` routes (media uploads): check the declared length now
        (413 before the handler runs), then hand the handler the body chunk by chunk.

        Whatever the handler leaves unread is handled as for any unread body:
        the connection closes after the response.
        """
        limit = route.max_body if route.max_body is not None else self._config.max_json_body
        declared = request.headers.get("content-length")
        if declared is None and "transfer-encoding" not in request.headers:
            event = self._h11.next_event()
            if type(event) is not h11.EndOfMessage:  # pragma: no cover
                raise AssertionError(f"unexpected h11 event {event!r}")
            return _empty_body()
        if declared is not None and _content_length(declared) > limit:
            raise too_large(f"Request body exceeds the limit of {limit} bytes")
        return self._body_chunks(limit)

    async def _body_chunks(self, limit: int) -> AsyncIterator[bytes]:
        if self._h11.they_are_waiting_for_100_continue:
            await self._stream.send_all(writer.CONTINUE)
        total = 0
        while True:
            # Each wait for the peer gets body_timeout; the handler's own work does not.
            self.deadline = trio.current_time() + self._config.body_timeout
            try:
                event = await self._next_event()
            except h11.RemoteProtocolError as exc:
                raise MatrixError(
                    400, "M_UNRECOGNIZED", f"Malformed request body: {describe_protocol_error(exc)}"
                ) from None
            finally:
                self.deadline = math.inf
            if type(event) is h11.Data:
                total += len(event.data)
                if total > limit:
                    raise too_large(f"Request body exceeds the limit of {limit} bytes")
                yield bytes(event.data)
            elif type(event) is h11.EndOfMessage:
                return
            else:  # pragma: no cover - h11 yields only Data/EndOfMessage here
                raise AssertionError(f"unexpected h11 event {event!r}")

    def _discard_buffered_body(self) -> None:
        """Skip what is already buffered of a body we will not read; never waits."""
        conn = self._h11
        try:
            while conn.their_state is h11.SEND_BODY:
                event = conn.next_event()
                if event is h11.NEED_DATA or event is h11.PAUSED:
                    return
        except h11.RemoteProtocolError:
            return

    async def _call(self, route: Route, request: Request) -> Response:
        handler = route.handler
        assert handler is not None
        self.phase = Phase.HANDLING
        self.deadline = math.inf
        try:
            response = await handler(request)
        except MatrixError as exc:
            return wire.error_response(exc)
        except Exception:
            log.exception(
                "Unhandled error in %s %s (request id %s)",
                request.method,
                request.path,
                request.request_id,
            )
            return wire.internal_error(request.request_id)
        if not isinstance(response, Response):
            log.error(
                "Handler for %s %s returned %s, not a Response (request id %s)",
                request.method,
                request.path,
                type(response).__name__,
                request.request_id,
            )
            return wire.internal_error(request.request_id)
        return response

    # -- responses ----------------------------------------------------------

    async def _answer_protocol_error(self, exc: h11.RemoteProtocolError) -> None:
        """A malformed request: 400 (or 431 for oversized headers), then close."""
        request_id = wire.next_request_id()
        log.info(
            "Malformed request from %s (request id %s): %s",
            self.remote,
            request_id,
            describe_protocol_error(exc),
        )
        await self._send_response(b"GET", protocol_error(exc), request_id, True, False)

    async def _send_response(
        self, method: bytes, response: Response, request_id: str, close: bool, http10: bool
    ) -> int:
        """Send one response; returns the number of body bytes sent."""
        self.phase = Phase.SENDING
        self.deadline = trio.current_time() + self._config.body_timeout
        status = response.status
        try:
            if response.stream is not None:
                return await self._send_stream(method, response, request_id, close, http10)
            body = response.body
            head = writer.render_head(
                status,
                response.headers,
                request_id,
                content_length=len(body) if writer.declares_length(status) else None,
                chunked=False,
                close=close,
                date_line=self._owner.date_line,
            )
        except writer.InvalidResponse:
            log.exception("Handler produced an invalid response (request id %s)", request_id)
            fallback = wire.internal_error(request_id)
            return await self._send_response(method, fallback, request_id, close, http10)
        if writer.has_body(method, status) and body:
            await self._stream.send_all(head + body)
            return len(body)
        await self._stream.send_all(head)
        return 0

    async def _send_stream(
        self, method: bytes, response: Response, request_id: str, close: bool, http10: bool
    ) -> int:
        body = response.stream
        assert body is not None
        length = response.content_length
        status = response.status
        try:
            # An HTTP/1.0 peer cannot read chunks: it gets a close-delimited body
            # (and ``close`` is already set for it).
            chunked = length is None and not http10 and writer.declares_length(status)
            head = writer.render_head(
                status,
                response.headers,
                request_id,
                content_length=length if writer.declares_length(status) else None,
                chunked=chunked,
                close=close,
                date_line=self._owner.date_line,
            )
            await self._stream.send_all(head)
            if not writer.has_body(method, status):
                return 0
            return await self._send_chunks(body, length, chunked, request_id)
        finally:
            aclose = getattr(body, "aclose", None)
            if aclose is not None:
                with trio.CancelScope(shield=True), trio.move_on_after(1.0):
                    await aclose()

    async def _send_chunks(
        self, body: AsyncIterator[bytes], length: int | None, chunked: bool, request_id: str
    ) -> int:
        timeout = self._config.body_timeout
        sent = 0
        try:
            async for data in body:
                if not data:
                    continue
                sent += len(data)
                if length is not None and sent > length:
                    raise writer.InvalidResponse(f"stream exceeds its length {length}")
                # The producer may be slow (remote media); only our sends are timed.
                self.deadline = trio.current_time() + timeout
                await self._stream.send_all(writer.chunk(data) if chunked else data)
                self.deadline = math.inf
            if length is not None and sent != length:
                raise writer.InvalidResponse(f"stream ended at {sent} of {length} bytes")
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise
        except Exception:
            # The status is already sent: all we can do is cut the body short.
            log.exception("Streamed body failed (request id %s)", request_id)
            raise _CloseConnection from None
        if chunked:
            self.deadline = trio.current_time() + timeout
            await self._stream.send_all(writer.LAST_CHUNK)
        return sent

    # -- for the WebSocket upgrade -------------------------------------------

    @property
    def stream(self) -> trio.abc.Stream:
        return self._stream

    @property
    def h11_connection(self) -> h11.Connection:
        return self._h11

    async def send_plain(self, method: bytes, response: Response, request_id: str) -> None:
        """Answer (and then close) without the normal request bookkeeping."""
        await self._send_response(method, response, request_id, True, False)


# Documented h11 state, missing from h11's __all__.
MIGHT_SWITCH_PROTOCOL = h11.MIGHT_SWITCH_PROTOCOL  # type: ignore[attr-defined]


def _request_complete(conn: h11.Connection) -> bool:
    """The whole request has been read (an upgrade offer we ignore counts as read)."""
    state = conn.their_state
    return state is h11.DONE or state is MIGHT_SWITCH_PROTOCOL


def _asks_to_close(request: Request) -> bool:
    value = request.headers.get("connection")
    return value is not None and "close" in (t.strip() for t in value.lower().split(","))


def protocol_error(exc: h11.RemoteProtocolError) -> Response:
    """The answer to a request h11 could not parse: whose fault it was, and why."""
    status = exc.error_status_hint if 400 <= exc.error_status_hint < 500 else 400
    if status == 431:
        return wire.plain_error(431, "M_TOO_LARGE", "Request line and headers are too large")
    return wire.plain_error(
        status, "M_UNRECOGNIZED", f"Malformed HTTP request: {describe_protocol_error(exc)}"
    )


def describe_protocol_error(exc: h11.RemoteProtocolError) -> str:
    """h11's reason without the bytes it quotes: they may hold a token or a password."""
    message = str(exc)
    if "b'" in message or 'b"' in message:
        message = message.partition(":")[0]
    return message[:200]


def _content_length(value: str) -> int:
    # h11 has already checked the value is digits and that repeats agree.
    try:
        return int(value.partition(",")[0])
    except ValueError:
        return 0


async def _empty_body() -> AsyncIterator[bytes]:
    return
    yield  # an async generator that yields nothing
