"""spec/walkthrough.md runs: every step against a live server, as the page shows it.

The page alternates ```sh blocks (one command each) and ```json <status> blocks
(the expected answer). A command is either ``VAR=value``, ``curl ...`` or
``VAR=$(curl ... | jq -r .key)``; ``$VAR`` references are filled in from
earlier steps, ``$HS`` is the test server. The answer must have the status
shown and every key the example shows (recursively through objects; keys that
are Matrix IDs, such as a room ID under ``rooms.join``, stand for whatever ID
the server chose and are matched against the answer's own).

The WebSocket part adds three commands: ``export VAR ...`` (the variables are
passed to programs anyway), ``cat > FILE <<'EOF'`` with the file's text up to
``EOF`` (written to a scratch folder), and ``python3 FILE ARGS`` (run there with
this interpreter, the variables in its environment), followed by a ```jsonl
block: the lines it must print. Lines are compared per frame ``type``, in order
within a type (an ack and a sync frame may arrive in either order); each must
have the keys shown, and a ``sync`` frame exactly the message bodies shown.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import attrs
import httpx
import trio
from plait_fixtures import RunningServer
from spec_helpers import SPEC_DIR

_BLOCK = re.compile(r"^```(\w+)[ \t]*(\d{3})?[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_CAPTURE = re.compile(r"^(\w+)=\$\((curl .*) \| jq -r \.([\w.]+)\)$")
_ASSIGN = re.compile(r"^(\w+)=(\S+)$")
_VAR = re.compile(r"\$(\w+)")
_HEREDOC = re.compile(r"^cat > ([\w.]+) <<'EOF'\n(.*\n)EOF$", re.DOTALL)


@attrs.define
class Step:
    command: str
    status: int | None = None
    example: Any = None
    file_text: str | None = None
    output: list[Any] | None = None


def parse_walkthrough() -> list[Step]:
    text = (SPEC_DIR / "walkthrough.md").read_text(encoding="utf-8")
    steps: list[Step] = []
    for lang, status, body in _BLOCK.findall(text):
        if lang == "sh" and (heredoc := _HEREDOC.match(body)):
            steps.append(Step(f"cat > {heredoc.group(1)}", file_text=heredoc.group(2)))
        elif lang == "sh":
            command = body.replace("\\\n", " ").strip()
            assert "\n" not in command, f"one command per block: {command!r}"
            steps.append(Step(command))
        elif lang == "jsonl":
            assert steps and steps[-1].command.startswith("python3 "), "output follows python3"
            steps[-1].output = [json.loads(line) for line in body.splitlines() if line.strip()]
        elif lang == "json" and status:
            assert steps and steps[-1].status is None, "an answer must follow a command"
            steps[-1].status = int(status)
            steps[-1].example = json.loads(body)
    return steps


def curl_request(command: str, env: dict[str, str]) -> httpx.Request:
    args = shlex.split(command)
    assert args[0] == "curl", command
    method, url, headers, data = "GET", None, {}, None
    i = 1
    while i < len(args):
        arg = args[i]
        if arg == "-s":
            i += 1
            continue
        if arg in ("-X", "-H", "-d"):
            value = _VAR.sub(lambda m: env[m.group(1)], args[i + 1])
            if arg == "-X":
                method = value
            elif arg == "-H":
                name, _, header_value = value.partition(":")
                headers[name.strip()] = header_value.strip()
            else:
                data = value.encode()
                if method == "GET":
                    method = "POST"
            i += 2
            continue
        assert url is None and not arg.startswith("-"), f"unsupported curl argument {arg!r}"
        url = _VAR.sub(lambda m: env[m.group(1)], arg)
        i += 1
    assert url is not None, command
    return httpx.Request(method, url, headers=headers, content=data)


def is_id(key: str) -> bool:
    return key[:1] in ("!", "@", "$", "#")


def check_keys(example: Any, actual: Any, where: str = "") -> None:
    if not isinstance(example, dict):
        return
    assert isinstance(actual, dict), f"{where or 'answer'} is not an object: {actual!r}"
    id_keys = [k for k in example if is_id(k)]
    for key, value in example.items():
        if is_id(key):
            continue
        assert key in actual, f"{where}{key} missing from the answer: {actual!r}"
        check_keys(value, actual[key], f"{where}{key}.")
    if id_keys:
        # An example ID key stands for the one the server chose: match by position.
        actual_ids = [k for k in actual if is_id(k)]
        assert len(actual_ids) >= len(id_keys), f"{where}: expected {len(id_keys)} IDs"
        for example_key, actual_key in zip(id_keys, actual_ids, strict=False):
            check_keys(example[example_key], actual[actual_key], f"{where}{actual_key}.")


def test_walkthrough_parses() -> None:
    steps = parse_walkthrough()
    curls = [s for s in steps if "curl" in s.command]
    assert len(curls) >= 8
    assert all(s.status is not None for s in curls), "every curl step shows its answer"


def message_bodies(frame: Any) -> list[str]:
    rooms = frame["body"].get("rooms", {}).get("join", {}).values()
    return [
        e["content"].get("body")
        for room in rooms
        for e in room.get("timeline", {}).get("events", [])
        if e["type"] == "m.room.message"
    ]


def check_output(expected: list[Any], printed: str) -> None:
    """Per frame type, in order: the keys shown, and for sync frames the messages shown."""
    actual = [json.loads(line) for line in printed.splitlines() if line.strip()]
    for kind in {line["type"] for line in expected} | {line["type"] for line in actual}:
        want = [line for line in expected if line["type"] == kind]
        got = [line for line in actual if line["type"] == kind]
        assert len(got) == len(want), f"{kind} frames: expected {len(want)}, printed {printed}"
        for example, frame in zip(want, got, strict=True):
            check_keys(example, frame)
            if kind == "sync":
                assert message_bodies(frame) == message_bodies(example), frame


async def run_python(step: Step, env: dict[str, str], folder: Path) -> None:
    args = shlex.split(step.command)
    assert args[0] == "python3" and (folder / args[1]).exists(), step.command
    with trio.fail_after(60):
        done = await trio.run_process(
            [sys.executable, *args[1:]],
            cwd=folder,
            env={**os.environ, **env},
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    assert done.returncode == 0, (step.command, done.stderr.decode())
    assert step.output is not None, f"{step.command}: the page shows no output"
    check_output(step.output, done.stdout.decode())


def test_walkthrough_covers_the_websocket() -> None:
    steps = parse_walkthrough()
    scripts = [s for s in steps if s.file_text is not None]
    runs = [s for s in steps if s.command.startswith("python3 ")]
    assert scripts and len(runs) >= 2 and all(s.output for s in runs)
    # The client is valid Python, as written on the page.
    for script in scripts:
        compile(script.file_text or "", script.command, "exec")
    assert "/_plait/client/v1/ws" in (scripts[0].file_text or "")


async def test_walkthrough_runs(server: RunningServer, tmp_path: Path) -> None:
    env = {"HS": server.base_url}
    async with httpx.AsyncClient(timeout=30.0) as client:
        for step in parse_walkthrough():
            if step.file_text is not None:
                (tmp_path / step.command.removeprefix("cat > ")).write_text(step.file_text)
                continue
            if step.command.startswith("export "):
                assert all(name in env for name in step.command.split()[1:]), step.command
                continue
            if step.command.startswith("python3 "):
                await run_python(step, env, tmp_path)
                continue
            capture = _CAPTURE.match(step.command)
            if capture is None and (assign := _ASSIGN.match(step.command)):
                if assign.group(1) != "HS":
                    env[assign.group(1)] = _VAR.sub(lambda m: env[m.group(1)], assign.group(2))
                continue
            command = capture.group(2) if capture else step.command
            response = await client.send(curl_request(command, env))
            assert response.status_code == step.status, (step.command, response.text)
            body = response.json()
            check_keys(step.example, body)
            if capture is not None:
                value: Any = body
                for part in capture.group(3).split("."):
                    value = value[part]
                env[capture.group(1)] = str(value)
