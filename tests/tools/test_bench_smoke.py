"""The Client-Server scenarios run end to end against a real server (tiny sizes; shapes only)."""

from __future__ import annotations

import os

from plait_fixtures import RunningServer

from tools.bench import all as bench_all
from tools.bench import connections, fanout, history, initial_sync, register


async def test_register_scenario(server: RunningServer) -> None:
    result = await register.run(server.base_url, users=3, concurrency=2)
    assert result["benchmark"] == "register"
    assert result["registered"] == 3 and not result["timed_out"]
    assert result["latency_ms"]["count"] == 3
    assert result["users_per_second"] > 0


async def test_history_scenario(server: RunningServer) -> None:
    result = await history.run(server.base_url, messages=25, page=10, concurrency=2)
    assert result["benchmark"] == "history" and not result["timed_out"]
    assert result["events_seen"] >= 25  # plus the room's creation events
    assert result["pages"] >= 3 and result["page_ms"]["count"] == result["pages"]


async def test_initial_sync_fanout_and_connections_scenarios(server: RunningServer) -> None:
    synced = await initial_sync.run(server.base_url, rooms=2, history=1, runs=1)
    assert synced["rooms_in_sync"] == 2 and synced["median_ms"] is not None
    fanned = await fanout.run(server.base_url, members=3, settle=0.1, max_duration=60)
    assert fanned["delivered"] == 3 and fanned["all_delivered_ms"] is not None
    held = await connections.run(server.base_url, connections=4, users=2, hold=0.5, pid=os.getpid())
    assert held["errors"] == 0 and held["answered_early"] == 0
    assert held["rss_kib"]["held"] > 0


async def test_all_records_each_scenario(server: RunningServer) -> None:
    lines: list[str] = []
    results = await bench_all.run_all(
        server.base_url, only=["http", "register"], progress=lines.append
    )
    assert set(results) == {"http", "register"}
    assert results["http"]["requests"] > 0 and results["register"]["registered"] > 0
    assert len(lines) == 4 and all("elapsed_s" in r for r in results.values())
