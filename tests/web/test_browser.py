"""The built web client in a real browser against a real server.

``web/tests/browser.mjs`` drives Debian's chromium through playwright-core: two
people register, create and join a room, chat both ways, see each other type,
one goes offline and comes back with every message, react, edit, share an image
and a file, search (one room at 1280 px, all rooms at 360 px) and reply in a
thread; any console error fails it. Screenshots at 360 px and 1280 px land in
``tests/web/artifacts/``. ``make test`` builds the client and
installs chromium first; run alone without them, this test is skipped.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def missing() -> str | None:
    if not (WEB / "dist" / "index.html").is_file():
        return "web client not built (make web)"
    if not (WEB / "node_modules" / "playwright-core").is_dir():
        return "web/node_modules missing (make web)"
    if not Path(CHROMIUM).is_file():
        return f"no chromium at {CHROMIUM} (apt-get install chromium)"
    if shutil.which("node") is None:
        return "node not installed"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def server_url(tmp_path: Path) -> Iterator[str]:
    reason = missing()
    if reason:
        pytest.skip(reason)
    port = free_port()
    # Short-lived access tokens: the client must refresh them silently mid-test.
    env = {
        **os.environ,
        "PLAIT_RATE_LIMITS_ENABLED": "false",
        "PLAIT_AUTH_ACCESS_TOKEN_LIFETIME_S": "8",
    }
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tools.cli",
            "serve",
            "--listen",
            f"127.0.0.1:{port}",
            "--data-dir",
            str(tmp_path / "data"),
            "--registration",
            "open",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail("server exited:\n" + (tmp_path / "server.log").read_text())
            try:
                if httpx.get(url + "/_matrix/client/versions", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("server did not start in 30 s")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_two_people_chat_in_the_browser(server_url: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        result = subprocess.run(
            ["node", "tests/browser.mjs", server_url, str(ARTIFACTS)],
            cwd=WEB,
            capture_output=True,
            text=True,
            timeout=240,
            env={**os.environ, "CHROMIUM": CHROMIUM},
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"browser test timed out:\n{e.stdout!r}\n{e.stderr!r}")
    assert result.returncode == 0, result.stdout + result.stderr
    for name in (
        "alice-1280.png",
        "bob-360.png",
        "alice-360.png",
        "alice-1280-search.png",
        "bob-360-search.png",
        "alice-1280-thread.png",
        "bob-360-thread.png",
        "bob-360-file.png",
    ):
        assert (ARTIFACTS / name).is_file(), name
