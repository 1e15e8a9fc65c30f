"""Every scenario against one homeserver, one after another: ``plait bench all``.

Runs http, register, delivery, throughput (engineer S's modules, when
present), fanout, history, initial-sync and connections with modest sizes
(``--quick``: a one-to-two-minute run), one progress line per scenario on
stderr, then a table of the headline figures; ``--json FILE`` keeps it all.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import trio

from tools.bench import connections, fanout, history, initial_sync, register
from tools.bench.common import BenchError, add_base_url, bench_get, loopback_target
from tools.bench.http import bench_http
from tools.bench.report import format_table

SCENARIOS = [
    "http",
    "register",
    "delivery",
    "throughput",
    "fanout",
    "history",
    "initial_sync",
    "connections",
]

# Sizes per scenario: "quick" fits in a couple of minutes on a busy two-core machine.
SETTINGS: dict[str, dict[str, dict[str, Any]]] = {
    "quick": {
        "http": {"connections": 20, "duration": 3.0},
        "register": {"users": 20, "concurrency": 4},
        "delivery": {"receivers": 10, "messages": 20},
        "throughput": {"senders": 5, "messages": 40},
        "fanout": {"members": 50, "settle": 1.0},
        "history": {"messages": 1000},
        "initial_sync": {"rooms": 20, "history": 5, "runs": 3},
        "connections": {"connections": 500, "users": 5, "hold": 3.0},
    },
    "modest": {
        "http": {"connections": 50, "duration": 10.0},
        "register": {"users": 100, "concurrency": 8},
        "delivery": {"receivers": 20, "messages": 50},
        "throughput": {"senders": 10, "messages": 100},
        "fanout": {"members": 200, "settle": 2.0},
        "history": {"messages": 10_000},
        "initial_sync": {"rooms": 100, "history": 10, "runs": 5},
        "connections": {"connections": 2000, "users": 20, "hold": 5.0},
    },
}
SCENARIO_TIMEOUT = 900.0


def _runner(name: str, http_client: str = "raw") -> Callable[..., Awaitable[dict[str, Any]]] | None:
    """The coroutine function behind a scenario, or None if its module is not there yet."""
    if name == "http":

        async def http(base_url: str, **kw: Any) -> dict[str, Any]:
            if http_client == "httpx":
                return await bench_get(base_url, **kw)
            return await bench_http(base_url, **kw)

        return http
    local: dict[str, Callable[..., Awaitable[dict[str, Any]]]] = {
        "register": register.run,
        "fanout": fanout.run,
        "history": history.run,
        "initial_sync": initial_sync.run,
        "connections": connections.run,
    }
    if name in local:
        return local[name]
    try:
        module = importlib.import_module(f"tools.bench.{name}")
    except ImportError:
        return None
    run: Callable[..., Awaitable[dict[str, Any]]] | None = getattr(module, "run", None)
    return run


def describe(exc: BaseException) -> str:
    """One line for a failure; an exception group is named by its first leaf."""
    count = 1
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        count = max(count, len(exc.exceptions))
        exc = exc.exceptions[0]
    text = f"{type(exc).__name__}: {exc!r}" if not str(exc) else f"{type(exc).__name__}: {exc}"
    if count > 1:
        text += f" (and {count - 1} more)"
    return text[:300]


def plan(
    *, quick: bool, only: Sequence[str] | None = None, pid: int | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """(scenario, keyword arguments) in running order; refuses unknown scenario names."""
    names = list(only) if only else list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise BenchError(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    settings = SETTINGS["quick" if quick else "modest"]
    steps = []
    for name in SCENARIOS:
        if name in names:
            kwargs = dict(settings[name])
            if name == "connections":
                kwargs["pid"] = pid
            steps.append((name, kwargs))
    return steps


async def run_all(
    base_url: str,
    *,
    quick: bool = True,
    only: Sequence[str] | None = None,
    pid: int | None = None,
    progress: Callable[[str], None] | None = None,
    http_client: str = "raw",
) -> dict[str, Any]:
    """Every planned scenario in turn; a failing scenario is recorded, not fatal.

    ``http_client`` picks the http scenario's client: "raw" (tools.bench.http,
    either framing) or "httpx"; two servers are compared with the same one.
    """
    loopback_target(base_url)
    steps = plan(quick=quick, only=only, pid=pid)
    say = progress or (lambda line: None)
    results: dict[str, Any] = {}
    for number, (name, kwargs) in enumerate(steps, 1):
        runner = _runner(name, http_client)
        prefix = f"[{number}/{len(steps)}] {name:<13}"
        if runner is None:
            results[name] = {"error": "module not available"}
            say(f"{prefix} skipped (module not available)")
            continue
        say(f"{prefix} running {kwargs}")
        started = time.monotonic()
        try:
            with trio.fail_after(SCENARIO_TIMEOUT):
                results[name] = await runner(base_url, **kwargs)
            status = "ok"
        except Exception as exc:  # one scenario failing must not lose the others
            results[name] = {"error": describe(exc)}
            status = f"FAILED {results[name]['error'][:80]}"
        results[name]["elapsed_s"] = round(time.monotonic() - started, 2)
        say(f"{prefix} {results[name]['elapsed_s']:7.1f} s  {status}")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="plait bench all", description=__doc__.split("\n")[0])
    add_base_url(parser)
    parser.add_argument("--quick", action="store_true", help="small sizes: a 1-2 minute run")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(SCENARIOS)}")
    parser.add_argument("--pid", type=int, help="server process for the memory figures")
    args = parser.parse_args(argv)
    only = [s.strip().replace("-", "_") for s in args.only.split(",")] if args.only else None

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        loopback_target(args.base_url)
        plan(quick=args.quick, only=only, pid=args.pid)
        results = trio.run(
            lambda: run_all(
                args.base_url, quick=args.quick, only=only, pid=args.pid, progress=progress
            )
        )
    except BenchError as exc:
        print(f"plait bench all: {exc}", file=sys.stderr)
        return 2
    print(format_table(results))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(
                {"base_url": args.base_url, "quick": args.quick, "results": results}, out, indent=2
            )
            out.write("\n")
    return 1 if any("error" in r for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
