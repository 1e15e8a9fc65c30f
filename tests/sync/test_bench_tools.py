"""The delivery and throughput benchmarks run end to end (tiny sizes; numbers not asserted)."""

from __future__ import annotations

import pytest
from plait_fixtures import RunningServer

from tools.bench import delivery, throughput, ws_delivery


async def test_delivery_benchmark_runs(server: RunningServer) -> None:
    result = await delivery.run(server.base_url, receivers=2, messages=3, gap=0.0)
    assert result["delivered"] == result["expected"] == 6
    assert result["latency"]["count"] == 6


async def test_ws_delivery_benchmark_runs(server: RunningServer) -> None:
    result = await ws_delivery.latency(server.base_url, receivers=2, messages=3, gap=0.0)
    assert not result["timed_out"]
    assert result["websocket"]["count"] == result["longpoll"]["count"] == 6


async def test_throughput_benchmark_runs(server: RunningServer) -> None:
    result = await throughput.run(server.base_url, senders=3, messages=4)
    assert result["sent"] == 12 and result["messages_per_second"] > 0


async def test_benchmarks_refuse_remote_targets_and_huge_runs() -> None:
    with pytest.raises(ValueError):
        await throughput.run("http://example.com:8008", senders=1, messages=1)
    with pytest.raises(ValueError):
        await delivery.run("http://127.0.0.1:1", receivers=10_000, messages=1)


def test_main_reports_bad_arguments() -> None:
    assert delivery.main(["--receivers", "0", "--base-url", "http://127.0.0.1:1"]) == 2
    assert throughput.main(["--senders", "0", "--base-url", "http://127.0.0.1:1"]) == 2
