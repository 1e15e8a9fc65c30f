"""The ``plait`` command as a user runs it: a real process, real signals."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import httpx
import pytest

from tools.cli import main, optimized_command

PLAIT = [sys.executable, "-m", "tools.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("plait 0.")


def test_generate_config_writes_loadable_commented_toml(tmp_path: Path) -> None:
    out = tmp_path / "plait.toml"
    assert main(["generate-config", "--server-name", "example.org", "-o", str(out)]) == 0
    text = out.read_text()
    assert text.count("\n#") > 10
    assert tomllib.loads(text)["server_name"] == "example.org"


def test_generate_config_with_self_signed_tls(tmp_path: Path) -> None:
    out = tmp_path / "plait.toml"
    data = tmp_path / "data"
    assert (
        main(["generate-config", "--data-dir", str(data), "--self-signed-tls", "-o", str(out)]) == 0
    )
    tls = tomllib.loads(out.read_text())["tls"]
    assert Path(tls["cert_path"]).read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    assert Path(tls["key_path"]).exists()


def test_invalid_configuration_exits_2_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('listen = "nowhere"\n')
    assert main(["db", "upgrade", "--config", str(bad)]) == 2
    assert "listen" in capsys.readouterr().err


def test_db_upgrade_creates_the_schema(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert main(["db", "upgrade", "--data-dir", str(data)]) == 0
    assert (data / "plait.db").exists()


def read_until(proc: subprocess.Popen[bytes], marker: bytes, timeout: float) -> bytes:
    """What ``proc`` wrote to its stdout pipe until ``marker`` appeared (or ``timeout``)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    seen = b""
    deadline = time.monotonic() + timeout
    try:
        while marker not in seen and time.monotonic() < deadline:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                time.sleep(0.02)
                continue
            if not chunk:
                break
            seen += chunk
    finally:
        os.set_blocking(fd, True)
    return seen


def test_serve_first_start_then_graceful_sigterm(tmp_path: Path) -> None:
    """A first start writes config and secrets, serves, and exits 0 on SIGTERM."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAIT_")}
    proc = subprocess.Popen(
        [*PLAIT, "serve", "--listen", f"127.0.0.1:{port}"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        body = None
        for _ in range(200):
            try:
                body = httpx.get(f"http://127.0.0.1:{port}/_matrix/client/versions").json()
                break
            except httpx.TransportError:
                if proc.poll() is not None:
                    break
                time.sleep(0.05)
        assert body is not None, proc.stdout.read() if proc.stdout else ""
        assert "v1.1" in body["versions"]
        # The access log is written in batches, but reaches the output while
        # the server still runs and is idle (the periodic flush).
        early = read_until(proc, b"GET /_matrix/client/versions 200", timeout=10)
        assert b"GET /_matrix/client/versions 200" in early, early
        assert proc.poll() is None
        # The serving process replaced itself (same pid) with itself under -OO.
        command = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
        assert command[1] == b"-OO" and b"serve" in command
        data = tmp_path / "data"
        assert (data / "plait.toml").exists()
        assert (data / "plait.db").exists()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = (early + (proc.stdout.read() if proc.stdout else b"")).decode()
    assert "SIGTERM: shutting down" in output
    assert "Plait serving" in output
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/_matrix/client/versions")


def test_serve_replays_its_command_line_under_dash_oo() -> None:
    def replay(orig: list[str], argv: list[str]) -> list[str] | None:
        return optimized_command(orig, argv, executable="/venv/bin/python", optimize=0, environ={})

    argv = ["/venv/bin/plait", "serve", "--listen", "127.0.0.1:8008"]
    assert replay(["/venv/bin/python", "-X", "dev", *argv], argv) == [
        "/venv/bin/python",
        "-OO",
        "-X",
        "dev",
        *argv,
    ]
    # python -m tools.cli serve: sys.argv[0] is the module's path, not in orig_argv.
    module = ["/venv/bin/python", "-m", "tools.cli", "serve"]
    assert replay(module, ["/src/tools/cli.py", "serve"]) == [
        "/venv/bin/python",
        "-OO",
        "-m",
        "tools.cli",
        "serve",
    ]


def test_serve_is_not_replayed_when_optimized_opted_out_or_unknown() -> None:
    argv = ["/venv/bin/plait", "serve"]
    orig = ["/venv/bin/python", *argv]
    assert optimized_command(orig, argv, executable="/p", optimize=2, environ={}) is None
    assert (
        optimized_command(orig, argv, executable="/p", optimize=0, environ={"PLAIT_OPTIMIZE": "0"})
        is None
    )
    assert optimized_command(orig, argv, executable="", optimize=0, environ={}) is None
    # A command line that does not end with the program's arguments is not replayed.
    assert (
        optimized_command(["/p", "-c", "x"], argv, executable="/p", optimize=0, environ={}) is None
    )
    assert optimized_command(
        orig, argv, executable="/p", optimize=0, environ={"PLAIT_OPTIMIZE": "1"}
    ) == [
        "/p",
        "-OO",
        *argv,
    ]
