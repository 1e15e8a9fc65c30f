"""A lean WebSocket client for holding thousands of sockets from one bench process.

trio-websocket costs a reader task, channels and a wsproto state machine per
connection on the *client* side too; ten thousand of them are more than one
bench process can open quickly. This client is a plain trio socket plus the
few lines of RFC 6455 a bench needs: the upgrade request, masked text frames
out, unmasked frames in (text, ping, close), pongs for pings. Loopback only
(the caller checks the URL with ``loopback_target``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from typing import Any

import trio

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_TEXT = 0x1
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA
MAX_HEAD = 16 * 1024
MAX_FRAME = 64 * 1024 * 1024
RECEIVE_CHUNK = 65536


class WsProtocolError(Exception):
    """The server broke the handshake or the framing (or closed the socket)."""


def upgrade_request(host: str, port: int, path: str, key: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode("ascii")


def accept_key(key: str) -> str:
    """RFC 6455 §4.2.2: the Sec-WebSocket-Accept a server must answer ``key`` with."""
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + GUID).digest()).decode("ascii")


def check_upgrade_response(head: bytes, key: str) -> None:
    """Raise unless ``head`` (up to the blank line) is a 101 with the right accept key."""
    lines = head.decode("latin-1").split("\r\n")
    status = lines[0].split(" ", 2)
    if len(status) < 2 or status[1] != "101":
        raise WsProtocolError(f"upgrade refused: {lines[0]!r}")
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    if headers.get("sec-websocket-accept") != accept_key(key):
        raise WsProtocolError("wrong Sec-WebSocket-Accept")


def encode_frame(opcode: int, payload: bytes, mask: bytes) -> bytes:
    """One final client frame (clients must mask, RFC 6455 §5.3)."""
    length = len(payload)
    if length < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    elif length < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


def parse_frame(buffer: bytearray) -> tuple[int, bool, bytes] | None:
    """Take one server frame off ``buffer``: (opcode, fin, payload), or None if incomplete."""
    if len(buffer) < 2:
        return None
    first, second = buffer[0], buffer[1]
    if second & 0x80:
        raise WsProtocolError("server frames must not be masked")
    length = second & 0x7F
    offset = 2
    if length == 126:
        if len(buffer) < 4:
            return None
        (length,) = struct.unpack_from("!H", buffer, 2)
        offset = 4
    elif length == 127:
        if len(buffer) < 10:
            return None
        (length,) = struct.unpack_from("!Q", buffer, 2)
        offset = 10
    if length > MAX_FRAME:
        raise WsProtocolError(f"frame of {length} bytes")
    if len(buffer) < offset + length:
        return None
    payload = bytes(buffer[offset : offset + length])
    del buffer[: offset + length]
    return first & 0x0F, bool(first & 0x80), payload


class LeanWebSocket:
    """One client connection: send JSON frames, receive JSON frames, answer pings."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = bytearray()
        self._parts: list[bytes] = []

    @classmethod
    async def connect(cls, host: str, port: int, path: str) -> LeanWebSocket:
        stream = await trio.open_tcp_stream(host, port)
        try:
            key = base64.b64encode(os.urandom(16)).decode("ascii")
            await stream.send_all(upgrade_request(host, port, path, key))
            ws = cls(stream)
            while b"\r\n\r\n" not in ws.buffer:
                if len(ws.buffer) > MAX_HEAD:
                    raise WsProtocolError("upgrade response too long")
                await ws._fill()
            end = ws.buffer.index(b"\r\n\r\n") + 4
            check_upgrade_response(bytes(ws.buffer[:end]), key)
            del ws.buffer[:end]
            return ws
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise

    async def _fill(self) -> None:
        data = await self.stream.receive_some(RECEIVE_CHUNK)
        if not data:
            raise WsProtocolError("connection closed")
        self.buffer += data

    async def send_json(self, frame: dict[str, Any]) -> None:
        payload = json.dumps(frame).encode("utf-8")
        await self.stream.send_all(encode_frame(OP_TEXT, payload, os.urandom(4)))

    async def receive_json(self) -> dict[str, Any]:
        """The next text message; pings are answered on the way, a close raises."""
        while True:
            parsed = parse_frame(self.buffer)
            if parsed is None:
                await self._fill()
                continue
            opcode, fin, payload = parsed
            if opcode == OP_PING:
                await self.stream.send_all(encode_frame(OP_PONG, payload, os.urandom(4)))
            elif opcode == OP_CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                raise WsProtocolError(f"closed by the server with {code}")
            elif opcode in (OP_TEXT, 0x0):
                self._parts.append(payload)
                if fin:
                    message = b"".join(self._parts)
                    self._parts.clear()
                    value: dict[str, Any] = json.loads(message)
                    return value

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self.stream)
