"""One WebSocket connection: authenticate, stream /sync, answer commands (spec/websocket.md).

A session is a small nursery owned by the HTTP connection's task:

* the *reader* authenticates the first frame, then handles commands in order;
* the *writer* is the only task that writes messages: it drains the bounded
  :class:`Outbox`, so nothing else ever waits for a slow consumer;
* the *heartbeat* pings every ``heartbeat_interval_s`` and re-checks the access
  token (expiry and revocation take effect on a live socket too);
* the *stream*, started by ``subscribe``, is the long-poll /sync loop run on the
  server: ``since`` = the last ``next_batch``, so frames are exactly /sync bodies.

Closing is decided in one place, :meth:`Session.close`: the first code chosen
wins, the nursery is cancelled, queued frames are flushed (except after 4008)
and the close frame is sent within ``send_timeout_s``, else the TCP connection
is dropped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import trio
import trio_websocket

from client_api.websocket import commands
from homeserver.accounts.auth import Requester, peer_ip
from homeserver.errors import MatrixError, bad_json, forbidden, invalid_param, missing_token
from homeserver.homeserver import HomeServer
from homeserver.http.types import Request
from homeserver.sync.filters import DEFAULT_FILTER, Filter, parse_filter
from homeserver.sync.service import SyncRequest, parse_since
from homeserver.ws import Outbox, OutboxFull

log = logging.getLogger("plait.ws")

# Close codes (spec/websocket.md "Close codes"). 1001 (server shutting down) and
# 1009 (frame over 1 MiB, from the WebSocket layer) come from below us.
CLOSE_NORMAL = 1000
CLOSE_UNAUTHENTICATED = 4001
CLOSE_SESSION_ENDED = 4003
CLOSE_TOO_SLOW = 4008
CLOSE_NO_PONG = 4009

PRESENCE_STATES = ("online", "offline", "unavailable")
MAX_ID_LENGTH = 255

Frame = dict[str, Any]
Command = Callable[[HomeServer, Requester, Frame], Awaitable[dict[str, Any]]]

COMMANDS: dict[str, Command] = {
    "send": commands.send,
    "typing": commands.typing,
    "receipt": commands.receipt,
    "read_markers": commands.read_markers,
}


class _BadFrame(Exception):
    def __init__(self, error: MatrixError, frame_id: Any = None) -> None:
        self.error = error
        self.frame_id = frame_id


def encode(frame: Frame) -> str:
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))


def error_frame(error: MatrixError, frame_id: Any = None) -> Frame:
    frame: Frame = {"type": "error"}
    if frame_id is not None:
        frame["id"] = frame_id
    frame.update(error.to_json())
    return frame


class Session:
    def __init__(self, hs: HomeServer, request: Request, ws: trio_websocket.WebSocketConnection):
        self.hs = hs
        self.ws = ws
        self.config = hs.config.websocket
        self.ip = peer_ip(request) or None
        self.hub = hs.websockets
        self.outbox = Outbox(self.hub, self.config.queue_frames, self.config.queue_bytes)
        self.access_token = ""
        self.requester: Requester | None = None
        self.close_code: int | None = None
        self.close_reason = ""
        # A frame's send was cut off midway: the byte stream is unusable.
        self.broken = False
        self.subscribed = False
        self.refreshed: trio.Event | None = None
        # The nursery's own scope (set in run): one cancel scope per session, not two.
        self._scope: trio.CancelScope | None = None
        self._nursery: trio.Nursery | None = None
        # Tasks start only when needed: an idle socket has no writer (it starts
        # when a frame is queued and ends when the queue is empty), and once
        # subscribed its heartbeat runs inside the stream's wait.
        self._writing = False
        self._heartbeat_scope: trio.CancelScope | None = None

    # -- lifetime ----------------------------------------------------------------

    async def run(self) -> None:
        self.hub.opened()
        try:
            async with trio.open_nursery() as nursery:
                self._nursery, self._scope = nursery, nursery.cancel_scope
                # The reader runs in this (the connection's) task: one task fewer.
                await self._task(self._reader)
            if self.close_code is not None:
                await self._finish()
        finally:
            if self.requester is not None:
                self.hub.authenticated -= 1
            self.hub.ended()

    async def _task(self, body: Callable[[], Awaitable[None]]) -> None:
        """Run one of the session's tasks; the peer going away ends the whole session."""
        try:
            await body()
        except trio_websocket.ConnectionClosed:
            self._cancel()

    def _cancel(self) -> None:
        if self._scope is not None:
            self._scope.cancel()

    def close(self, code: int, reason: str) -> None:
        """Decide to close (the first decision wins) and stop every task of the session."""
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
            self.hub.record_close(code)
            log.info("ws: closing %s with %d (%s)", self._who(), code, reason)
        self._cancel()

    async def _finish(self) -> None:
        assert self.close_code is not None
        with trio.move_on_after(0 if self.broken else self.config.send_timeout_s):
            try:
                if self.close_code != CLOSE_TOO_SLOW:
                    while len(self.outbox):
                        await self.ws.send_message(await self.outbox.get())
                await self.ws.aclose(self.close_code, self.close_reason)
                return
            except trio_websocket.ConnectionClosed:
                return
        # Could not close cleanly in time: aborting (aclose under cancellation) drops TCP.
        with trio.CancelScope() as abort:
            abort.cancel()
            await self.ws.aclose(self.close_code, self.close_reason)

    def _who(self) -> str:
        if self.requester is None:
            return f"unauthenticated peer {self.ip}"
        return f"{self.requester.user_id}/{self.requester.device_id}"

    # -- writing -----------------------------------------------------------------

    def push(self, frame: Frame) -> None:
        """Queue a frame for the writer; a full queue means the consumer is too slow."""
        try:
            self.outbox.put(encode(frame))
        except OutboxFull:
            self.close(CLOSE_TOO_SLOW, "Too slow: resume from your last next_batch")
            return
        if not self._writing and self._nursery is not None and self.close_code is None:
            self._writing = True
            self._nursery.start_soon(self._task, self._writer)

    async def _writer(self) -> None:
        """Send queued frames in order until the queue is empty, then end (restarted by push)."""
        while len(self.outbox):
            frame = await self.outbox.get()
            # Shielded: cancelling a send midway would corrupt the frame stream; the
            # deadline still bounds how long a stalled consumer can hold it.
            with trio.CancelScope(shield=True) as scope:
                scope.deadline = trio.current_time() + self.config.send_timeout_s
                await self.ws.send_message(frame)
            if scope.cancelled_caught:
                self.broken = True
                self.close(CLOSE_TOO_SLOW, "Too slow: resume from your last next_batch")
                return
            self.hub.frames_sent += 1
        self._writing = False

    # -- reading -----------------------------------------------------------------

    async def _reader(self) -> None:
        if not await self._authenticate():
            return
        assert self._nursery is not None
        self._heartbeat_scope = trio.CancelScope()
        self._nursery.start_soon(self._task, self._heartbeat)
        while True:
            message = await self.ws.get_message()
            try:
                frame = self._parse(message)
                await self._handle(frame)
            except _BadFrame as bad:
                self.push(error_frame(bad.error, bad.frame_id))

    def _parse(self, message: str | bytes) -> Frame:
        if isinstance(message, bytes):
            raise _BadFrame(MatrixError(400, "M_NOT_JSON", "Frames are JSON text, not binary"))
        size = len(message) if message.isascii() else len(message.encode("utf-8"))
        if size > self.config.max_frame_bytes:
            raise _BadFrame(
                MatrixError(
                    413, "M_TOO_LARGE", f"Frames are limited to {self.config.max_frame_bytes} bytes"
                )
            )
        try:
            frame = json.loads(message)
        except (ValueError, RecursionError):
            raise _BadFrame(MatrixError(400, "M_NOT_JSON", "The frame is not JSON")) from None
        if not isinstance(frame, dict):
            raise _BadFrame(bad_json("A frame must be a JSON object"))
        frame_id = frame.get("id")
        if frame_id is not None and not (
            (isinstance(frame_id, str) and len(frame_id) <= MAX_ID_LENGTH)
            or (isinstance(frame_id, int) and not isinstance(frame_id, bool))
        ):
            raise _BadFrame(bad_json("'id' must be a string or an integer"))
        return frame

    async def _authenticate(self) -> bool:
        """The first frame must be ``{"type": "auth", "access_token": ...}`` (4001 otherwise)."""
        message: str | bytes | None = None
        with trio.move_on_after(self.config.auth_timeout_s):
            message = await self.ws.get_message()
        try:
            if message is None:
                raise _BadFrame(missing_token("No auth frame in time"))
            frame = self._parse(message)
            token = frame.get("access_token")
            if frame.get("type") != "auth" or not isinstance(token, str):
                raise _BadFrame(
                    missing_token('The first frame must be {"type": "auth", "access_token": ...}'),
                    frame.get("id"),
                )
            try:
                requester = await self.hs.auth.authenticate(token, self.ip)
            except MatrixError as e:
                raise _BadFrame(e, frame.get("id")) from None
        except _BadFrame as bad:
            self.push(error_frame(bad.error, bad.frame_id))
            self.close(CLOSE_UNAUTHENTICATED, "Not authenticated")
            return False
        self.access_token, self.requester = token, requester
        self.hub.authenticated += 1
        ok: Frame = {
            "type": "auth_ok",
            "user_id": requester.user_id,
            "device_id": requester.device_id,
        }
        if frame.get("id") is not None:
            ok["id"] = frame["id"]
        self.push(ok)
        return True

    async def _handle(self, frame: Frame) -> None:
        frame_id = frame.get("id")
        kind = frame.get("type")
        try:
            if kind == "ping":
                self.push({"type": "pong", **({"id": frame_id} if frame_id is not None else {})})
                return
            if kind == "pong":
                return
            if kind == "refresh":
                result = await self._refresh(frame)
            elif kind == "subscribe":
                result = await self._subscribe(frame)
            elif isinstance(kind, str) and kind in COMMANDS:
                requester = await self.hs.auth.authenticate(self.access_token, self.ip)
                result = await COMMANDS[kind](self.hs, requester, frame)
            else:
                raise MatrixError(400, "M_UNRECOGNIZED", f"Unknown frame type {kind!r}")
        except MatrixError as e:
            raise _BadFrame(e, frame_id) from None
        ack: Frame = {"type": "ack", "result": result}
        if frame_id is not None:
            ack["id"] = frame_id
        self.push(ack)

    # -- tokens ------------------------------------------------------------------

    async def _refresh(self, frame: Frame) -> dict[str, Any]:
        """``POST /refresh`` in-band: the socket continues as the refreshed session."""
        token = frame.get("refresh_token")
        if not isinstance(token, str):
            raise bad_json("'refresh_token' must be a string")
        result = await self.hs.auth.refresh(token)
        requester = await self.hs.auth.authenticate(result.access_token, self.ip)
        current = self.requester
        assert current is not None
        if (requester.user_id, requester.device_id) != (current.user_id, current.device_id):
            raise forbidden("That refresh token belongs to another device")
        self.access_token, self.requester = result.access_token, requester
        if self.refreshed is not None:
            self.refreshed.set()
            self.refreshed = None
        return result.to_json()

    async def _heartbeat(self) -> None:
        """Until subscribed: then the stream's wait takes the beats over (one task fewer)."""
        assert self._heartbeat_scope is not None
        with self._heartbeat_scope:
            while True:
                await trio.sleep(self.config.heartbeat_interval_s)
                await self._beat()

    async def _beat(self) -> None:
        """One heartbeat: ping (4009 without a pong in time), then check the token again."""
        with trio.move_on_after(self.config.heartbeat_timeout_s) as ping:
            await self.ws.ping()
        if ping.cancelled_caught:
            self.close(CLOSE_NO_PONG, "No pong in time")
            return
        await self._check_token()

    async def _check_token(self) -> None:
        """Spec "Soft logout": an expired token gets ``token_grace_s`` to be refreshed in-band."""
        if self.refreshed is not None:
            return  # already in the grace window
        try:
            await self.hs.auth.authenticate(self.access_token, self.ip)
        except MatrixError as e:
            self.push(error_frame(e))
            if e.extra.get("soft_logout"):
                self.refreshed = trio.Event()
                assert self._nursery is not None
                self._nursery.start_soon(self._grace, self.refreshed)
            else:
                self.close(CLOSE_SESSION_ENDED, "Session ended")

    async def _grace(self, refreshed: trio.Event) -> None:
        with trio.move_on_after(self.config.token_grace_s):
            await refreshed.wait()
            return
        self.close(CLOSE_SESSION_ENDED, "Access token expired and was not refreshed")

    # -- the /sync stream ----------------------------------------------------------

    async def _subscribe(self, frame: Frame) -> dict[str, Any]:
        if self.subscribed:
            raise invalid_param("Already subscribed; reconnect to change the subscription")
        requester = await self.hs.auth.authenticate(self.access_token, self.ip)
        since_raw = frame.get("since")
        if since_raw is not None and not isinstance(since_raw, str):
            raise bad_json("'since' must be a string or null")
        since = parse_since(since_raw)
        full_state = frame.get("full_state", False)
        if not isinstance(full_state, bool):
            raise bad_json("'full_state' must be a boolean")
        set_presence = frame.get("set_presence")
        if set_presence is not None and set_presence not in PRESENCE_STATES:
            raise invalid_param("'set_presence' must be online, offline or unavailable")
        raw_filter = frame.get("filter")
        sync_filter: Filter
        if raw_filter is None:
            sync_filter = DEFAULT_FILTER
        elif isinstance(raw_filter, dict):
            sync_filter = parse_filter(raw_filter)
        elif isinstance(raw_filter, str):
            sync_filter = await self.hs.sync.resolve_filter(requester.user_id, raw_filter)
        else:
            raise bad_json("'filter' must be a filter ID or a filter object")
        request = SyncRequest(
            user_id=requester.user_id,
            device_id=requester.device_id,
            since=since,
            full_state=full_state,
            filter=sync_filter,
            set_presence=set_presence,
        )
        self.subscribed = True
        if self._heartbeat_scope is not None:
            self._heartbeat_scope.cancel()
        assert self._nursery is not None
        self._nursery.start_soon(
            self._task, lambda: self._stream(request, since_raw, frame.get("id"))
        )
        return {}

    async def _stream(self, request: SyncRequest, since: str | None, subscribe_id: Any) -> None:
        """Push each /sync answer that moves the token; idle, it is a notifier wait."""
        try:
            await self.hs.ws_streams.run(
                request,
                since,
                lambda body: self.push({"type": "sync", "body": body}),
                beat=self._beat,
                beat_interval=self.config.heartbeat_interval_s,
            )
        except MatrixError as e:
            self.subscribed = False
            self.push(error_frame(e, subscribe_id))
            # Not subscribed any more: this task goes back to beating alone.
            self._heartbeat_scope = trio.CancelScope()
            await self._heartbeat()


async def serve_websocket(
    hs: HomeServer, request: Request, ws: trio_websocket.WebSocketConnection
) -> None:
    await Session(hs, request, ws).run()
