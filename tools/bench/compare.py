"""Plait and Synapse side by side: ``make bench-compare``.

Installs Synapse into its own virtualenv (``.bench/synapse-venv``), then for
SQLite and for PostgreSQL starts each server in turn on a free loopback port
(Plait with rate limits off, Synapse with them raised out of reach), runs the
same ``plait bench all`` scenarios against it with quick settings, stops it,
and prints every figure with the ratio Plait/Synapse. Writes bench/REPORT.md
and bench/report.json. PostgreSQL gets a schema for Plait (in database
``test``) and a database ``synapse_bench`` (C collation) for Synapse; both are
dropped afterwards.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from homeserver import __version__ as plait_version
from tools.bench.all import SETTINGS, run_all
from tools.bench.report import comparison_rows, format_comparison, render_report
from tools.bench.synapse.launcher import (
    DEFAULT_VENV,
    LaunchError,
    ensure_installed,
    start_synapse,
    stop,
    venv_python,
    wait_ready,
)

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USER = "postgres"
PLAIT_PG_DATABASE = "test"
SYNAPSE_PG_DATABASE = "synapse_bench"
SERVER_RUN_TIMEOUT = 1800.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def machine_info() -> dict[str, Any]:
    model = "?"
    memory_gib = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gib = f"{int(line.split()[1]) / 1024 / 1024:.1f}"
    except OSError:
        pass
    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "memory_gib": memory_gib,
        "platform": platform.platform(),
        "load_at_start": load_average(),
    }


def git_commit() -> str:
    """The checkout's commit, so a report says exactly which Plait it measured."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown commit"
    return done.stdout.strip() or "unknown commit"


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def psql(sql: str, database: str = "postgres") -> None:
    subprocess.run(
        [
            "psql",
            "-h",
            PG_HOST,
            "-p",
            str(PG_PORT),
            "-U",
            PG_USER,
            "-d",
            database,
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


def start_plait(data_dir: Path, port: int, database_url: str | None) -> subprocess.Popen[bytes]:
    data_dir.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "tools.cli",
        "serve",
        "--listen",
        f"127.0.0.1:{port}",
        "--data-dir",
        str(data_dir),
        "--registration",
        "open",
    ]
    if database_url:
        command += ["--database-url", database_url]
    env = {**os.environ, "PLAIT_RATE_LIMITS_ENABLED": "false"}
    log = open(data_dir / "plait.log", "wb")  # noqa: SIM115 - the child owns it until stop()
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    log.close()
    try:
        wait_ready(f"http://127.0.0.1:{port}", process, timeout=120)
    except LaunchError as exc:
        stop(process)
        tail = (data_dir / "plait.log").read_text(errors="replace")[-1500:]
        raise LaunchError(f"plait: {exc}; log tail:\n{tail}") from None
    return process


def bench_one(
    name: str,
    start: Callable[[int], subprocess.Popen[bytes]],
    *,
    quick: bool,
    only: list[str] | None,
) -> dict[str, Any]:
    """Start one server, run every scenario against it, stop it; errors become results."""
    port = free_port()
    say(f"== {name}: starting on 127.0.0.1:{port}")
    try:
        process = start(port)
    except (LaunchError, OSError, subprocess.SubprocessError) as exc:
        say(f"== {name}: could not start: {exc}")
        return {"error": f"could not start: {exc}"[:2000]}
    try:

        async def go() -> dict[str, Any]:
            with trio.fail_after(SERVER_RUN_TIMEOUT):
                return await run_all(
                    f"http://127.0.0.1:{port}",
                    quick=quick,
                    only=only,
                    pid=process.pid,
                    http_client="raw",
                    progress=lambda line: say(f"   {name} {line}"),
                )

        return trio.run(go)
    except trio.TooSlowError:
        return {"error": f"whole run exceeded {SERVER_RUN_TIMEOUT:.0f} s"}
    finally:
        stop(process)


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def compare_on(
    database: str, *, work: Path, venv: Path, quick: bool, only: list[str] | None
) -> dict[str, Any]:
    plait_url: str | None = None
    schema = f"plait_bench_{secrets.token_hex(4)}"
    if database == "postgres":
        try:
            psql(f'CREATE SCHEMA "{schema}"', PLAIT_PG_DATABASE)
            psql(f'DROP DATABASE IF EXISTS "{SYNAPSE_PG_DATABASE}" WITH (FORCE)')
            psql(
                f"CREATE DATABASE \"{SYNAPSE_PG_DATABASE}\" ENCODING 'UTF8' "
                "LC_COLLATE='C' LC_CTYPE='C' TEMPLATE template0"
            )
        except (OSError, subprocess.SubprocessError) as exc:
            detail = getattr(exc, "stderr", b"") or b""
            return {"error": f"PostgreSQL setup failed: {exc} {detail.decode(errors='replace')}"}
        plait_url = (
            f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{PLAIT_PG_DATABASE}"
            f"?options=-csearch_path%3D{schema}"
        )
    try:
        plait = bench_one(
            f"plait/{database}",
            lambda port: start_plait(work / f"plait-{database}", port, plait_url),
            quick=quick,
            only=only,
        )
        synapse = bench_one(
            f"synapse/{database}",
            lambda port: start_synapse(
                venv=venv, data_dir=work / f"synapse-{database}", port=port, database=database
            ),
            quick=quick,
            only=only,
        )
    finally:
        if database == "postgres":
            for sql, db in (
                (f'DROP SCHEMA IF EXISTS "{schema}" CASCADE', PLAIT_PG_DATABASE),
                (f'DROP DATABASE IF EXISTS "{SYNAPSE_PG_DATABASE}" WITH (FORCE)', "postgres"),
            ):
                try:
                    psql(sql, db)
                except (OSError, subprocess.SubprocessError) as exc:
                    say(f"cleanup failed ({sql}): {exc}")
    rows = comparison_rows(plait, synapse)
    block: dict[str, Any] = {"plait": plait, "synapse": synapse, "rows": rows}
    for server, result in (("plait", plait), ("synapse", synapse)):
        if "error" in result and len(result) == 1:
            block["error"] = f"{server}: {result['error']}"
    return block


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="plait bench compare", description=__doc__.split("\n")[0])
    parser.add_argument("--databases", default="sqlite,postgres", help="sqlite,postgres")
    parser.add_argument("--full", action="store_true", help="modest sizes instead of quick ones")
    parser.add_argument("--only", help="comma-separated subset of scenarios")
    parser.add_argument("--synapse-venv", default=str(DEFAULT_VENV))
    parser.add_argument("--out-dir", default="bench")
    args = parser.parse_args(argv)
    databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    if not databases or any(d not in ("sqlite", "postgres") for d in databases):
        print("plait bench compare: --databases takes sqlite and/or postgres", file=sys.stderr)
        return 2
    only = [s.strip().replace("-", "_") for s in args.only.split(",")] if args.only else None
    quick = not args.full
    venv = Path(args.synapse_venv)
    report: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_info(),
        "versions": {
            "plait": f"{plait_version} ({git_commit()})",
            "python": platform.python_version(),
        },
        "settings": {
            "sizes": "quick" if quick else "modest",
            **{
                k: v
                for k, v in SETTINGS["quick" if quick else "modest"].items()
                if only is None or k in only
            },
            "plait": "one process, rate limits off, open registration, argon2id t=3 m=64MiB",
            "synapse": "one process, rc_* limits 1e6/s, sync response cache off, bcrypt 12",
        },
        "databases": {},
        "notes": [
            "One server runs at a time; the load generator shares the same cores.",
            "Ratios are Plait/Synapse; see the 'better' column for the direction.",
            "The http scenario uses the same raw keep-alive client for both (tools/bench/http.py).",
        ],
    }
    say(f"machine: {report['machine']['cores']} cores, load {report['machine']['load_at_start']}")
    try:
        say(f"synapse: installing into {venv} (if needed)")
        report["versions"]["synapse"] = ensure_installed(venv)
        probe = subprocess.run(
            [str(venv_python(venv)), "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            check=False,
        )
        report["versions"]["synapse_python"] = probe.stdout.strip()
    except (LaunchError, OSError, subprocess.SubprocessError) as exc:
        report["versions"]["synapse"] = "not installed"
        for database in databases:
            report["databases"][database] = {"error": f"Synapse could not be installed: {exc}"}
        databases = []
    work = Path(
        tempfile.mkdtemp(
            prefix="run-", dir=Path(".bench").resolve() if Path(".bench").is_dir() else None
        )
    )
    try:
        for database in databases:
            say(f"=== {database}")
            block = compare_on(database, work=work, venv=venv, quick=quick, only=only)
            report["databases"][database] = block
            if "rows" in block:
                print(f"\n{database}:\n{format_comparison(block['rows'])}\n", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report["machine"]["load_at_end"] = load_average()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (out / "REPORT.md").write_text(render_report(report))
    say(f"wrote {out / 'REPORT.md'} and {out / 'report.json'}")
    return 0 if all("error" not in b for b in report["databases"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
