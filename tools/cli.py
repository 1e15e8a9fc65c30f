"""``plait``: serve, generate-config, db upgrade, bench.

The command is the composition root: the only place that sees ``homeserver``,
``client_api`` and ``federation`` together (see DESIGN.md).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from homeserver import __version__
from homeserver.config import Config, ConfigError, load_config

CONFIG_FILE_NAME = "plait.toml"


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="TOML configuration file (default: DATA_DIR/plait.toml)")
    p.add_argument("--server-name", help="the domain in user IDs (@alice:SERVER_NAME)")
    p.add_argument(
        "--listen", metavar="HOST:PORT", help="client API address (default 127.0.0.1:8008)"
    )
    p.add_argument("--data-dir", help="database, keys and media directory (default ./data)")
    p.add_argument("--database-url", help="sqlite:///PATH or postgresql://...")
    p.add_argument("--redis-url", help="redis://HOST:PORT for several workers")
    p.add_argument(
        "--registration", choices=["open", "token", "closed"], help="who may create accounts"
    )


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "server_name": args.server_name,
        "listen": args.listen,
        "data_dir": args.data_dir,
        "database_url": args.database_url,
        "redis_url": args.redis_url,
        "registration": args.registration,
    }


def resolve_config(args: argparse.Namespace, *, create: bool) -> Config:
    """Load the configuration; on a first start (``create``) write a commented default file."""
    path = args.config or os.environ.get("PLAIT_CONFIG")
    if path is None:
        data_dir = args.data_dir or os.environ.get("PLAIT_DATA_DIR") or "./data"
        default = Path(data_dir) / CONFIG_FILE_NAME
        if default.exists():
            path = str(default)
        elif create:
            from tools.config_template import render

            default.parent.mkdir(parents=True, exist_ok=True)
            default.write_text(render(data_dir=data_dir))
            print(f"plait: wrote a default configuration to {default}", file=sys.stderr)
            path = str(default)
    return load_config(path, overrides=_overrides(args))


# ``PLAIT_OPTIMIZE=0`` keeps the server on the interpreter's own flags.
OPTIMIZE_ENV = "PLAIT_OPTIMIZE"


def optimized_command(
    orig_argv: list[str],
    argv: list[str],
    *,
    executable: str,
    optimize: int,
    environ: Mapping[str, str],
) -> list[str] | None:
    """This process's command line again under ``python -OO``; None to go on as it is.

    Without docstrings (and asserts, which in our code only narrow types) the
    serving process is smaller: 3.6 MB less resident memory at start on SQLite
    and 3.9 MB on PostgreSQL, of about 58 and 67 MB (SQLAlchemy's docstrings
    alone are most of it). ``orig_argv`` is the whole command line
    (``sys.orig_argv``, interpreter options included) and ``argv`` the program's
    (``sys.argv``): a command line that does not end with the program's
    arguments (an embedded interpreter, say) is not replayed.
    """
    if optimize >= 2 or environ.get(OPTIMIZE_ENV, "").strip() == "0" or not executable:
        return None
    tail = argv[1:]
    if len(orig_argv) < len(tail) + 1 or orig_argv[len(orig_argv) - len(tail) :] != tail:
        return None
    return [executable, "-OO", *orig_argv[1:]]


def _reexec_optimized() -> None:
    """Replace this process (same pid, for supervisors) with itself under ``-OO``."""
    if os.name != "posix":
        return
    command = optimized_command(
        list(getattr(sys, "orig_argv", [])),
        sys.argv,
        executable=sys.executable,
        optimize=sys.flags.optimize,
        environ=os.environ,
    )
    if command is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(command[0], command)


def _cmd_serve(args: argparse.Namespace) -> int:
    if args.from_command_line:
        _reexec_optimized()
    import trio

    from homeserver.storage import migrate
    from tools.serve import main_serve

    # A schema upgrade runs in a child process: the server never holds Alembic.
    migrate.ALEMBIC_IN_CHILD = True
    from homeserver import logs

    config = resolve_config(args, create=True)
    trio.run(main_serve, config, logs.configure(config.log_level))
    return 0


def _cmd_generate_config(args: argparse.Namespace) -> int:
    from tools.config_template import render

    tls_listen = tls_cert = tls_key = ""
    if args.self_signed_tls:
        from homeserver.http.tls import make_self_signed_cert

        data_dir = Path(args.data_dir or "./data")
        data_dir.mkdir(parents=True, exist_ok=True)
        tls_cert = str(data_dir / "tls.crt")
        tls_key = str(data_dir / "tls.key")
        make_self_signed_cert(args.server_name or "localhost", tls_cert, tls_key)
        tls_listen = "127.0.0.1:8448"
        print(f"plait: wrote a self-signed certificate to {tls_cert}", file=sys.stderr)
    text = render(
        server_name=args.server_name or "localhost",
        listen=args.listen or "127.0.0.1:8008",
        data_dir=args.data_dir or "./data",
        database_url=args.database_url or "",
        registration=args.registration or "",
        tls_listen=tls_listen,
        tls_cert=tls_cert,
        tls_key=tls_key,
    )
    if args.output and args.output != "-":
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def _cmd_db_upgrade(args: argparse.Namespace) -> int:
    from homeserver.storage.migrate import upgrade

    config = resolve_config(args, create=False)
    Path(config.data_dir).mkdir(parents=True, exist_ok=True)
    upgrade(config.effective_database_url)
    print("plait: database is up to date", file=sys.stderr)
    return 0


# `plait bench SCENARIO`: the module under tools/bench/ whose main(argv) runs it.
BENCH_SCENARIOS = {
    "http": "http",
    "register": "register",
    "delivery": "delivery",
    "throughput": "throughput",
    "fanout": "fanout",
    "history": "history",
    "initial-sync": "initial_sync",
    "connections": "connections",
    "all": "all",
    "compare": "compare",
    "ws-delivery": "ws_delivery",
    # In-process benchmarks of one subsystem (no server needed, or one they start).
    "events": "tools.bench_events",
    "state-res": "tools.bench_state_res",
    "media": "tools.bench_media",
    "search": "tools.bench_search",
}


def _cmd_bench(args: argparse.Namespace) -> int:
    if args.scenario in BENCH_SCENARIOS:
        import importlib

        name = BENCH_SCENARIOS[args.scenario]
        module = importlib.import_module(name if "." in name else f"tools.bench.{name}")
        result: int | None = module.main(args.rest)
        return result or 0
    print(f"plait bench: unknown scenario {args.scenario!r}", file=sys.stderr)
    return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="plait", description="Plait Matrix homeserver")
    parser.add_argument("--version", action="version", version=f"plait {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the homeserver")
    _add_config_flags(serve)
    serve.set_defaults(func=_cmd_serve)

    gen = sub.add_parser("generate-config", help="print a commented configuration file")
    gen.add_argument("--server-name")
    gen.add_argument("--listen")
    gen.add_argument("--data-dir")
    gen.add_argument("--database-url")
    gen.add_argument("--registration", choices=["open", "token", "closed"])
    gen.add_argument("-o", "--output", help="write to this file instead of standard output")
    gen.add_argument(
        "--self-signed-tls",
        action="store_true",
        help="also write a self-signed TLS certificate and key into the data directory",
    )
    gen.set_defaults(func=_cmd_generate_config)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    up = db_sub.add_parser("upgrade", help="apply pending schema migrations")
    _add_config_flags(up)
    up.set_defaults(func=_cmd_db_upgrade)

    bench = sub.add_parser("bench", help="benchmarks and load tests (loopback only)")
    bench.add_argument("scenario", choices=list(BENCH_SCENARIOS))
    bench.add_argument("rest", nargs=argparse.REMAINDER, help="options of the scenario")
    bench.set_defaults(func=_cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # This process's own command line (not a caller's list, as in tests): only
    # then may ``serve`` replay it under ``-OO``.
    args.from_command_line = argv is None
    try:
        result: int = args.func(args)
        return result
    except ConfigError as e:
        print(f"plait: configuration error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
