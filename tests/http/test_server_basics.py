"""End to end over loopback: routing, errors, CORS, HEAD, keep-alive, streaming."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
import pytest
from http_harness import Running, raw_exchange


async def test_versions_ok_with_standard_headers(running: Running) -> None:
    async with httpx.AsyncClient(base_url=running.base_url) as client:
        response = await client.get("/_matrix/client/versions")
    assert response.status_code == 200
    assert response.json() == {"versions": ["v1.11"]}
    assert response.headers["content-type"] == "application/json"
    assert response.headers["server"] == "Plait"
    assert response.headers["content-length"] == str(len(response.content))
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["x-request-id"]
    sent_at = parsedate_to_datetime(response.headers["date"])
    assert abs((datetime.now(UTC) - sent_at).total_seconds()) < 600


async def test_unknown_path_is_404_unrecognized(running: Running) -> None:
    async with httpx.AsyncClient(base_url=running.base_url) as client:
        response = await client.get("/_matrix/client/v3/nothing")
    assert response.status_code == 404
    assert response.json()["errcode"] == "M_UNRECOGNIZED"
    assert response.headers["access-control-allow-origin"] == "*"


async def test_wrong_method_is_405_unrecognized(running: Running) -> None:
    async with httpx.AsyncClient(base_url=running.base_url) as client:
        response = await client.delete("/_matrix/client/versions")
    assert response.status_code == 405
    assert response.json()["errcode"] == "M_UNRECOGNIZED"


async def test_path_params_decoded_and_query_parsed(running: Running) -> None:
    async with httpx.AsyncClient(base_url=running.base_url) as client:
        response = await client.get(
            "/echo/%21room%3Aexample.org/m.room.message?a=1&a=2&empty=&x=%40u%3As"
        )
    body = response.json()
    assert body["params"] == {"roomId": "!room:example.org", "eventType": "m.room.message"}
    assert body["query"] == {"a": ["1", "2"], "empty": [""], "x": ["@u:s"]}
    assert body["path"] == "/echo/%21room%3Aexample.org/m.room.message"
    assert body["remote"].startswith("127.0.0.1:")
    assert body["request_id"] == response.headers["x-request-id"]


async def test_header_names_lowercased_and_repeats_joined(running: Running) -> None:
    raw = (
        b"GET /echo/r/t HTTP/1.1\r\nHost: x\r\nX-Thing: one\r\nx-thing: two\r\n"
        b"Connection: close\r\n\r\n"
    )
    reply = await raw_exchange(running.port, raw)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b'"x-thing":"one, two"' in body


async def test_json_body_round_trip(running: Running) -> None:
    async with httpx.AsyncClient(base_url=running.base_url) as client:
        response = await client.post("/json", json={"hello": "wörld"})
    assert response.status_code == 200
    assert response.json()["body"] == {"hello": "wörld"}


async def test_invalid_json_is_matrix_error(running: Running) -> None:
    async with httpx.AsyncClient(base_url=running.base_url) as client:
        response = await client.post("/json", content=b"{nope")
    assert response.status_code == 400
    assert response.json()["errcode"] == "M_NOT_JSON"


async def test_matrix_error_rendering_with_extra_fields_and_headers(running: Running) -> None:
    async with httpx.AsyncClient(base_url=running.base_url) as client:
        forbidden = await client.get("/forbidden")
        limited = await client.get("/limited")
    assert forbidden.status_code == 403
    assert forbidden.json() == {"errcode": "M_FORBIDDEN", "error": "Not yours", "extra_field": 1}
    assert limited.status_code == 429
    assert limited.json()["retry_after_ms"] == 2500
    assert limited.headers["retry-after"] == "3"


async def test_handler_exception_is_500_with_request_id_and_no_details(
    running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with httpx.AsyncClient(base_url=running.base_url) as client:
        response = await client.get("/boom?access_token=sekrit")
    assert response.status_code == 500
    request_id = response.headers["x-request-id"]
    assert response.json() == {
        "errcode": "M_UNKNOWN",
        "error": f"Internal server error (request id {request_id})",
    }
    assert b"secret internal detail" not in response.content
    assert b"Traceback" not in response.content
    errors = [r for r in caplog.records if r.name == "plait.http" and r.levelno >= logging.ERROR]
    assert errors and request_id in errors[0].getMessage()
    ours = [r for r in caplog.records if r.name.startswith("plait.")]
    assert ours and not any("sekrit" in r.getMessage() for r in ours)


async def test_invalid_response_headers_from_handler_become_500(running: Running) -> None:
    async with httpx.AsyncClient(base_url=running.base_url) as client:
        response = await client.get("/bad_header")
        assert response.status_code == 500
        assert "injected" not in response.headers
        wrong_type = await client.get("/not_a_response")
        assert wrong_type.status_code == 500
        assert wrong_type.json()["errcode"] == "M_UNKNOWN"


async def test_access_log_line_without_query_or_token(
    running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="plait.access")
    async with httpx.AsyncClient(base_url=running.base_url) as client:
        response = await client.get(
            "/echo/r/t?access_token=sekrit", headers={"Authorization": "Bearer sekrit2"}
        )
    lines = [r.getMessage() for r in caplog.records if r.name == "plait.access"]
    assert len(lines) == 1
    line = lines[0]
    assert "GET /echo/r/t 200" in line
    assert response.headers["x-request-id"] in line
    assert line.startswith("127.0.0.1:")
    ours = [r for r in caplog.records if r.name.startswith("plait.")]
    assert not any("sekrit" in r.getMessage() for r in ours)


async def test_cors_preflight_on_any_path_skips_handler(running: Running) -> None:
    async with httpx.AsyncClient(base_url=running.base_url) as client:
        for path in ("/boom", "/no/such/path", "/_matrix/client/versions"):
            response = await client.options(
                path,
                headers={
                    "Origin": "https://app.example",
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization",
                },
            )
            assert response.status_code == 204, path
            assert response.headers["access-control-allow-origin"] == "*"
            assert response.headers["access-control-allow-methods"] == (
                "GET, POST, PUT, DELETE, OPTIONS"
            )
            assert response.headers["access-control-allow-headers"] == (
                "X-Requested-With, Content-Type, Authorization"
            )
            assert response.content == b""


async def test_head_sends_headers_without_body(running: Running) -> None:
    reply = await raw_exchange(
        running.port,
        b"HEAD /_matrix/client/versions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    get_body = b'{"versions":["v1.11"]}'
    assert b"content-length: %d" % len(get_body) in head.lower()
    assert body == b""


async def test_keep_alive_serves_many_requests_on_one_connection(running: Running) -> None:
    async with httpx.AsyncClient(base_url=running.base_url) as client:
        for _ in range(20):
            response = await client.get("/_matrix/client/versions")
            assert response.status_code == 200
    assert running.server.statistics().requests == 20
    # httpx pooled one connection: the server saw exactly one.


async def test_pipelined_requests_answered_in_order(running: Running) -> None:
    raw = (
        b"".join(f"GET /echo/r{i}/t HTTP/1.1\r\nHost: x\r\n\r\n".encode() for i in range(5))
        + b"GET /echo/last/t HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    reply = await raw_exchange(running.port, raw)
    assert reply.count(b"HTTP/1.1 200") == 6
    positions = [reply.index(f'"roomId":"r{i}"'.encode()) for i in range(5)]
    assert positions == sorted(positions)
    assert reply.index(b'"roomId":"last"') > positions[-1]


async def test_connection_close_and_http10_are_honoured(running: Running) -> None:
    # raw_exchange reads until the server closes: it returns only if it did.
    reply = await raw_exchange(running.port, b"GET /_matrix/client/versions HTTP/1.0\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200")
    assert reply.endswith(b'{"versions":["v1.11"]}')
    reply = await raw_exchange(
        running.port,
        b"GET /_matrix/client/versions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    assert b"connection: close" in reply.lower()


async def test_streaming_response_chunked_and_with_length(running: Running) -> None:
    expected = b"".join(f"chunk{i};".encode() for i in range(5))
    async with httpx.AsyncClient(base_url=running.base_url) as client:
        chunked = await client.get("/stream")
        sized = await client.get(f"/stream?length={len(expected)}")
        after = await client.get("/_matrix/client/versions")
    assert chunked.content == expected
    assert chunked.headers["transfer-encoding"] == "chunked"
    assert sized.content == expected
    assert sized.headers["content-length"] == str(len(expected))
    assert after.status_code == 200


async def test_streaming_with_wrong_length_closes_connection(running: Running) -> None:
    reply = await raw_exchange(running.port, b"GET /stream?length=1000 HTTP/1.1\r\nHost: x\r\n\r\n")
    # The server promised 1000 bytes, had 40: it must close, not hang.
    assert reply.startswith(b"HTTP/1.1 200")
    assert len(reply.partition(b"\r\n\r\n")[2]) < 1000


async def test_errors_and_preflights_keep_the_connection_alive(running: Running) -> None:
    raw = (
        b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n"
        b"DELETE /_matrix/client/versions HTTP/1.1\r\nHost: x\r\n\r\n"
        b"OPTIONS /json HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
        b"POST /small/x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
        b"GET /_matrix/client/versions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    reply = await raw_exchange(running.port, raw)
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", reply)
    assert statuses == [b"404", b"405", b"204", b"405", b"200"]
    assert reply.lower().count(b"connection: close") == 1


async def test_streaming_head_and_http10(running: Running) -> None:
    reply = await raw_exchange(
        running.port, b"HEAD /stream?length=40 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    head, _, body = reply.partition(b"\r\n\r\n")
    assert b"Content-Length: 40" in head and body == b""
    # HTTP/1.0 cannot read chunks: the body is delimited by the close.
    reply = await raw_exchange(running.port, b"GET /stream HTTP/1.0\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding" not in head and b"Content-Length" not in head
    assert body == b"".join(f"chunk{i};".encode() for i in range(5))


async def test_stream_failing_midway_cuts_connection_and_logs(
    running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    reply = await raw_exchange(running.port, b"GET /stream?fail=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200")
    assert not reply.endswith(b"0\r\n\r\n")  # no terminating chunk: the client sees the cut
    assert any("Streamed body failed" in r.getMessage() for r in caplog.records)
    async with httpx.AsyncClient(base_url=running.base_url) as client:
        assert (await client.get("/_matrix/client/versions")).status_code == 200


async def test_declined_upgrade_offer_keeps_connection(running: Running) -> None:
    raw = (
        b"GET /_matrix/client/versions HTTP/1.1\r\nHost: x\r\n"
        b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n"
        b"GET /echo/second/t HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    reply = await raw_exchange(running.port, raw)
    assert re.findall(rb"HTTP/1\.1 (\d{3}) ", reply) == [b"200", b"200"]
    assert b'"roomId":"second"' in reply
