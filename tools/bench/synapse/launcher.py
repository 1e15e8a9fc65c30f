"""Install, configure, start and stop a Synapse for benchmarks, in its own virtualenv.

Synapse lives in ``.bench/synapse-venv`` (gitignored), never in the project's
virtualenv. The process listens on 127.0.0.1 only and is stopped by its pid.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tools.bench.synapse.config import render_config

DEFAULT_VENV = Path(".bench/synapse-venv")


class LaunchError(RuntimeError):
    """Synapse could not be installed or started; the message says why."""


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_installed(venv: Path = DEFAULT_VENV, *, python: str = sys.executable) -> str:
    """Create the virtualenv and ``pip install matrix-synapse[postgres]`` unless present."""
    py = venv_python(venv)
    if not py.exists():
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
    probe = subprocess.run(
        [str(py), "-c", "import synapse; print(synapse.__version__)"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        install = subprocess.run(
            [str(py), "-m", "pip", "install", "-q", "matrix-synapse[postgres]"],
            capture_output=True,
            text=True,
            timeout=1800,
        )
        if install.returncode != 0:
            raise LaunchError(f"pip install matrix-synapse failed: {install.stderr[-800:]}")
        probe = subprocess.run(
            [str(py), "-c", "import synapse; print(synapse.__version__)"],
            capture_output=True,
            text=True,
        )
        if probe.returncode != 0:
            raise LaunchError(f"synapse does not import: {probe.stderr[-800:]}")
    return probe.stdout.strip().split()[0]


def wait_ready(base_url: str, process: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    """Poll /_matrix/client/versions until it answers 200, the process dies, or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LaunchError(f"server exited with status {process.returncode} while starting")
        try:
            if httpx.get(f"{base_url}/_matrix/client/versions", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise LaunchError(f"server at {base_url} not ready after {timeout:.0f} s")


def stop(process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout``; only this process, by its pid."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def start_synapse(
    *, venv: Path, data_dir: Path, port: int, database: str = "sqlite", **db: object
) -> subprocess.Popen[bytes]:
    """Write homeserver.yaml, generate the signing key, start Synapse and wait until it serves."""
    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir / "homeserver.yaml"
    config.write_text(
        render_config(data_dir=str(data_dir.resolve()), port=port, database=database, **db)  # type: ignore[arg-type]
    )
    py = str(venv_python(venv))
    env = {**os.environ, "SYNAPSE_NO_TLS": "1"}
    keys = subprocess.run(
        [py, "-m", "synapse.app.homeserver", "--config-path", str(config), "--generate-keys"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    if keys.returncode != 0:
        raise LaunchError(f"synapse --generate-keys failed: {keys.stderr[-800:]}")
    log = open(data_dir / "synapse.log", "wb")  # noqa: SIM115 - the child owns it until stop()
    process = subprocess.Popen(
        [py, "-m", "synapse.app.homeserver", "--config-path", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    log.close()
    try:
        wait_ready(f"http://127.0.0.1:{port}", process, timeout=300)
    except LaunchError as exc:
        stop(process)
        tail = (data_dir / "synapse.log").read_text(errors="replace")[-1500:]
        raise LaunchError(f"{exc}; log tail:\n{tail}") from None
    return process
