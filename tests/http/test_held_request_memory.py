"""What a waiting request keeps alive, shared header strings, and the heap trim after bursts."""

from __future__ import annotations

import gc

import h11
import httpx
import pytest
import trio
import trio_websocket
from http_harness import TEST_CONFIG, make_router, wait_until

from homeserver.http import HttpServer, Request, Response, memory, wire


async def test_a_waiting_handler_does_not_keep_the_h11_event(nursery: trio.Nursery) -> None:
    entered = trio.Event()
    release = trio.Event()

    async def wait(request: Request) -> Response:
        entered.set()
        await release.wait()
        return Response.json({"user_agent": request.headers.get("user-agent")})

    router = make_router()
    router.add("GET", "/wait", wait)
    server = HttpServer(router, host="127.0.0.1", port=0, config=TEST_CONFIG)
    port = await nursery.start(server.run)
    marker = b"/wait?marker=held-request-memory"
    answer: list[httpx.Response] = []

    async def ask() -> None:
        async with httpx.AsyncClient() as client:
            answer.append(
                await client.get(
                    f"http://127.0.0.1:{port}{marker.decode()}", headers={"User-Agent": "held/1"}
                )
            )

    nursery.start_soon(ask)
    await entered.wait()
    gc.collect()
    held = [obj for obj in gc.get_objects() if type(obj) is h11.Request and obj.target == marker]
    assert held == []
    release.set()
    await wait_until(lambda: bool(answer))
    assert answer[0].status_code == 200
    assert answer[0].json() == {"user_agent": "held/1"}


async def test_an_open_websocket_does_not_keep_the_h11_event(nursery: trio.Nursery) -> None:
    opened = trio.Event()

    async def session(request: Request, websocket: trio_websocket.WebSocketConnection) -> None:
        opened.set()
        message = await websocket.get_message()
        await websocket.send_message(f"{request.path_params['name']}: {message}")

    router = make_router()
    router.add_websocket("/held/{name}", session)
    server = HttpServer(router, host="127.0.0.1", port=0, config=TEST_CONFIG)
    port = await nursery.start(server.run)
    async with trio_websocket.open_websocket_url(f"ws://127.0.0.1:{port}/held/eve") as ws:
        await opened.wait()
        gc.collect()
        held = [
            obj
            for obj in gc.get_objects()
            if type(obj) is h11.Request and obj.target.startswith(b"/held/")
        ]
        assert held == []
        await ws.send_message("still works")
        assert await ws.get_message() == "eve: still works"


def _event(headers: list[tuple[str, str]], target: str = "/x") -> h11.Request:
    return h11.Request(method="GET", target=target, headers=[("Host", "example.org"), *headers])


def test_repeated_header_strings_are_shared_but_credentials_are_not() -> None:
    headers = [("User-Agent", "client/1.0"), ("Authorization", "Bearer secret-token")]
    first = wire.build_request(_event(headers), "peer", "r1", 8192)
    second = wire.build_request(_event(headers), "peer", "r2", 8192)
    assert first.headers == second.headers
    assert first.headers["host"] == "example.org"
    assert first.headers["user-agent"] is second.headers["user-agent"]
    assert next(iter(first.headers)) is next(iter(second.headers))
    assert first.headers["authorization"] == "Bearer secret-token"
    assert first.headers["authorization"] is not second.headers["authorization"]
    assert b"Bearer secret-token" not in wire._header_values


def test_header_string_caches_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wire, "_header_names", {})
    monkeypatch.setattr(wire, "_header_values", {})
    for i in range(wire.MAX_CACHED_HEADER_VALUES + 50):
        request = wire.build_request(
            _event([(f"x-custom-{i}", "v"), ("User-Agent", f"agent/{i}")]), "peer", "r", 8192
        )
        assert request.headers["user-agent"] == f"agent/{i}"
        assert request.headers[f"x-custom-{i}"] == "v"
    assert len(wire._header_names) == wire.MAX_CACHED_HEADER_NAMES
    assert len(wire._header_values) == wire.MAX_CACHED_HEADER_VALUES
    long_value = "a" * (wire.MAX_CACHED_VALUE_BYTES + 1)
    wire.build_request(_event([("Accept", long_value)]), "peer", "r", 8192)
    assert long_value.encode() not in wire._header_values


def test_trim_schedule_waits_for_activity_then_quiet_or_period() -> None:
    schedule = memory.TrimSchedule(period_s=5.0, quiet_s=1.0)
    # An idle server never trims.
    assert not schedule.due(0, 0.0)
    assert not schedule.due(0, 100.0)
    # Requests arrive: no trim while they keep coming, within the period...
    assert not schedule.due(3, 100.5)
    assert not schedule.due(9, 101.0)
    # ...until they stop for quiet_s.
    assert schedule.due(9, 102.0)
    # Nothing new since: no second trim.
    assert not schedule.due(9, 110.0)
    # A steady stream trims once per period.
    times = [110.0 + 0.5 * i for i in range(1, 30)]
    trims = [t for n, t in enumerate(times, 10) if schedule.due(n, t)]
    assert trims == [115.5, 121.0]


def test_release_free_memory_on_this_c_library() -> None:
    assert memory.release_free_memory() is True


async def test_server_trims_after_a_burst(
    nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    trims: list[int] = []

    def fake_release() -> bool:
        trims.append(1)
        return True

    monkeypatch.setattr(memory, "release_free_memory", fake_release)
    server = HttpServer(make_router(), host="127.0.0.1", port=0, config=TEST_CONFIG)
    server._trim = memory.TrimSchedule(period_s=60.0, quiet_s=0.0)
    port = await nursery.start(server.run)
    assert trims == []
    async with httpx.AsyncClient() as client:
        for _ in range(3):
            response = await client.get(f"http://127.0.0.1:{port}/_matrix/client/versions")
            assert response.status_code == 200
    await wait_until(lambda: bool(trims))
