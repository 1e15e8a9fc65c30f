"""Argument validation, bounds and the loopback-only rule of every scenario (nothing is sent)."""

from __future__ import annotations

import pytest

from tools.bench import all as bench_all
from tools.bench import compare, connections, fanout, history, initial_sync, register
from tools.bench.common import BenchError, Client, bench_get, loopback_target
from tools.cli import BENCH_SCENARIOS, build_parser

REMOTE = [
    "http://10.0.0.1:8008",
    "http://example.org",
    "https://127.0.0.1:8448",
    "http://[2001:db8::1]:80",
]
MAINS = [
    register.main,
    fanout.main,
    history.main,
    initial_sync.main,
    connections.main,
    bench_all.main,
]


@pytest.mark.parametrize("url", REMOTE)
@pytest.mark.parametrize("main", MAINS)
def test_every_scenario_refuses_non_loopback(
    main: object, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert callable(main)
    assert main(["--base-url", url]) == 2
    assert "plait bench" in capsys.readouterr().err


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:1", "http://localhost:8008", "http://[::1]:8008", "http://127.8.9.10:80"],
)
def test_loopback_is_accepted(url: str) -> None:
    loopback_target(url)
    Client(url)  # constructing does not connect


@pytest.mark.parametrize("url", REMOTE)
async def test_runs_refuse_non_loopback_before_sending(url: str) -> None:
    for run in (register.run, fanout.run, history.run, initial_sync.run):
        with pytest.raises(BenchError):
            await run(url)
    with pytest.raises(BenchError):
        await connections.run(url, connections=1)
    with pytest.raises(BenchError):
        await bench_get(url)
    with pytest.raises(BenchError):
        await bench_all.run_all(url)


LOCAL = "http://127.0.0.1:1"  # nothing listens: a bounds error must come first


@pytest.mark.parametrize(
    ("run", "kwargs"),
    [
        (register.run, {"users": 0}),
        (register.run, {"users": 10**6}),
        (register.run, {"concurrency": 0}),
        (register.run, {"max_duration": 10**6}),
        (fanout.run, {"members": 0}),
        (fanout.run, {"members": 10**6}),
        (fanout.run, {"settle": -1}),
        (history.run, {"messages": 0}),
        (history.run, {"messages": 10**7}),
        (history.run, {"page": 0}),
        (initial_sync.run, {"rooms": 0}),
        (initial_sync.run, {"runs": 0}),
        (initial_sync.run, {"history": -1}),
        (connections.run, {"connections": 0}),
        (connections.run, {"connections": 10**6}),
        (connections.run, {"transport": "ws", "connections": 10**6}),
        (connections.run, {"transport": "ws", "parallel": 0}),
        (connections.run, {"transport": "pigeon"}),
        (bench_get, {"connections": 0}),
        (bench_get, {"duration": 0}),
    ],
)
async def test_out_of_bounds_arguments_are_refused(run: object, kwargs: dict[str, object]) -> None:
    assert callable(run)
    with pytest.raises(BenchError):
        await run(LOCAL, **kwargs)


def test_main_reports_bounds_with_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert fanout.main(["--base-url", LOCAL, "--members", "0"]) == 2
    assert "--members" in capsys.readouterr().err
    assert connections.main(["--base-url", LOCAL, "--transport", "ws", "--connections", "0"]) == 2
    assert "--connections" in capsys.readouterr().err


def test_all_plans_every_scenario_and_refuses_unknown_ones() -> None:
    quick = bench_all.plan(quick=True, pid=42)
    assert [name for name, _ in quick] == bench_all.SCENARIOS
    assert dict(quick)["connections"]["pid"] == 42
    assert [n for n, _ in bench_all.plan(quick=False, only=["history", "http"])] == [
        "http",
        "history",
    ]
    with pytest.raises(BenchError, match="nope"):
        bench_all.plan(quick=True, only=["nope"])
    assert bench_all.main(["--base-url", LOCAL, "--only", "nope"]) == 2


def test_quick_sizes_are_smaller_than_modest_ones() -> None:
    quick, modest = bench_all.SETTINGS["quick"], bench_all.SETTINGS["modest"]
    assert quick.keys() == modest.keys() == set(bench_all.SCENARIOS)
    for name in quick:
        for key, value in quick[name].items():
            assert value <= modest[name][key], (name, key)


def test_cli_knows_every_scenario() -> None:
    parser = build_parser()
    for scenario in ("http", "register", "fanout", "history", "initial-sync", "connections", "all"):
        assert scenario in BENCH_SCENARIOS
        args = parser.parse_args(["bench", scenario, "--base-url", LOCAL])
        assert args.scenario == scenario and args.rest == ["--base-url", LOCAL]
    with pytest.raises(SystemExit):
        parser.parse_args(["bench", "nope"])


def test_compare_refuses_unknown_databases(capsys: pytest.CaptureFixture[str]) -> None:
    assert compare.main(["--databases", "mysql"]) == 2
    assert "sqlite" in capsys.readouterr().err
