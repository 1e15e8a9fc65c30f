"""``plait bench connections``: argument parsing, /proc parsing, the lean WebSocket client, a run."""

from __future__ import annotations

import os
import struct

import pytest
from plait_fixtures import RunningServer

from tools.bench.common import kib_per_connection, parse_status
from tools.bench.connections import parse_args, run
from tools.bench.wsclient import (
    OP_CLOSE,
    OP_PING,
    OP_TEXT,
    WsProtocolError,
    accept_key,
    check_upgrade_response,
    encode_frame,
    parse_frame,
)

STATUS = """Name:\tpython3
Umask:\t0022
State:\tS (sleeping)
VmPeak:\t  500000 kB
VmHWM:\t  123456 kB
VmRSS:\t   98765 kB
RssAnon:\t   80000 kB
Threads:\t4
"""


def test_defaults_depend_on_the_transport() -> None:
    assert parse_args(["--transport", "ws"]).connections == 10_000
    assert parse_args([]).connections == 2000
    assert parse_args(["--transport", "ws", "--connections", "50"]).connections == 50
    args = parse_args(["--transport", "ws", "--pid", "123", "--parallel", "8"])
    assert (args.pid, args.parallel, args.spawn) == (123, 8, False)


def test_pid_and_spawn_exclude_each_other() -> None:
    with pytest.raises(SystemExit):
        parse_args(["--pid", "1", "--spawn"])


def test_rss_is_parsed_from_proc_status() -> None:
    assert parse_status(STATUS) == {"VmRSS": 98765, "VmHWM": 123456}
    assert parse_status("VmRSS:\tgarbage\nName:\tx\n") == {}


def test_kib_per_connection() -> None:
    assert kib_per_connection(100_000, 300_000, 10_000) == 20.0
    assert kib_per_connection(1000, 1000, 0) == 0.0
    assert kib_per_connection(1000, 1333, 3) == 111.0


def test_accept_key_is_the_rfc_example() -> None:
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_upgrade_response_is_checked() -> None:
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    good = (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
    )
    check_upgrade_response(good, key)
    with pytest.raises(WsProtocolError):
        check_upgrade_response(good.replace(b"xOo=", b"xOx="), key)
    with pytest.raises(WsProtocolError):
        check_upgrade_response(b"HTTP/1.1 400 Bad Request\r\n\r\n", key)


def _unmask(frame: bytes) -> tuple[int, bytes]:
    """Decode a masked client frame the way a server would (for the test)."""
    opcode, length = frame[0] & 0x0F, frame[1] & 0x7F
    offset = 2
    if length == 126:
        (length,) = struct.unpack_from("!H", frame, 2)
        offset = 4
    elif length == 127:
        (length,) = struct.unpack_from("!Q", frame, 2)
        offset = 10
    assert frame[1] & 0x80  # clients mask
    mask, payload = frame[offset : offset + 4], frame[offset + 4 :]
    assert len(payload) == length
    return opcode, bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


@pytest.mark.parametrize("size", [0, 5, 125, 126, 65535, 65536, 70000])
def test_client_frames_are_masked_and_sized(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    frame = encode_frame(OP_TEXT, payload, b"\x01\x02\x03\x04")
    assert frame[0] == 0x80 | OP_TEXT
    assert _unmask(frame) == (OP_TEXT, payload)


def test_server_frames_are_parsed_whole_or_not_at_all() -> None:
    long_payload = b"y" * 300
    data = (
        bytes([0x80 | OP_TEXT, 5])
        + b"hello"
        + bytes([0x80 | OP_TEXT, 126])
        + struct.pack("!H", 300)
        + long_payload
        + bytes([0x80 | OP_PING, 0])
        + bytes([0x80 | OP_CLOSE, 2])
        + struct.pack("!H", 4009)
    )
    buffer = bytearray(data[:3])
    assert parse_frame(buffer) is None  # incomplete: nothing taken
    assert len(buffer) == 3
    buffer = bytearray(data)
    assert parse_frame(buffer) == (OP_TEXT, True, b"hello")
    assert parse_frame(buffer) == (OP_TEXT, True, long_payload)
    assert parse_frame(buffer) == (OP_PING, True, b"")
    assert parse_frame(buffer) == (OP_CLOSE, True, struct.pack("!H", 4009))
    assert parse_frame(buffer) is None and not buffer
    with pytest.raises(WsProtocolError):
        parse_frame(bytearray([0x81, 0x85, 0, 0, 0, 0, 1, 2, 3, 4, 5]))  # masked by a server


async def test_ws_connections_are_opened_held_and_measured(server: RunningServer) -> None:
    # The test server runs in this process: its RSS is ours.
    result = await run(
        server.base_url, transport="ws", connections=30, users=3, hold=0.5, pid=os.getpid()
    )
    assert result["transport"] == "ws"
    assert (result["opened"], result["failed"], result["held"]) == (30, 0, 30)
    assert result["delivery_while_held_ms"] is not None
    assert result["rss_kib"]["held"] > 0
    assert server.hs.websockets.statistics().closes.get(4001, 0) == 0


def test_the_server_raises_its_open_files_limit_to_the_hard_limit() -> None:
    import resource

    from tools.serve import raise_open_files_limit

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    now = raise_open_files_limit()
    assert now >= soft
    if hard != resource.RLIM_INFINITY:
        assert now == resource.getrlimit(resource.RLIMIT_NOFILE)[0] == hard
