"""The load generator behind ``plait bench http``: it measures, and it stays on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio
from http_harness import Running

from tools.bench.http import BenchError, bench_http, loopback_target, main


async def test_bench_measures_a_live_server(running: Running) -> None:
    result = await bench_http(running.base_url, connections=3, duration=0.5)
    assert result["requests"] > 0
    assert result["errors"] == 0
    assert result["statuses"] == {"200": result["requests"]}
    latency = result["latency_ms"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]
    # Every request the tool counted reached the server (in-flight ones are cut off).
    assert running.server.statistics().requests >= result["requests"]


async def test_bench_counts_non_2xx_as_errors(running: Running) -> None:
    result = await bench_http(running.base_url, connections=1, duration=0.3, path="/nowhere")
    assert result["requests"] > 0
    assert result["errors"] == result["requests"]
    assert set(result["statuses"]) == {"404"}


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1:8008",
        "http://example.org",
        "https://127.0.0.1:8448",
        "http://[2001:db8::1]:80",
    ],
)
def test_non_loopback_targets_are_refused(url: str) -> None:
    with pytest.raises(BenchError):
        loopback_target(url)


def test_loopback_targets_are_accepted() -> None:
    assert loopback_target("http://localhost:8008") == ("127.0.0.1", 8008)
    assert loopback_target("http://[::1]:9000") == ("::1", 9000)


def test_main_refuses_remote_target(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--base-url", "http://192.0.2.1:8008", "--duration", "1"]) == 2
    assert "non-loopback" in capsys.readouterr().err


async def test_main_writes_json(running: Running, tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    argv = ["--base-url", running.base_url, "--connections", "2", "--duration", "0.3"]
    code = await trio.to_thread.run_sync(main, [*argv, "--json", str(out)])
    assert code == 0
    assert json.loads(out.read_text())["requests"] > 0
