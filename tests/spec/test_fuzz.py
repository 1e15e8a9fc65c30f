"""A bounded schemathesis fuzz of every operation in spec/openapi.json against a live server.

For each operation schemathesis generates requests from the documented
parameters and request body (both inputs the schema allows and inputs it
forbids) and this test sends them to a real Plait (SQLite in a temporary
folder, rate limits off) and checks that the answer is

* never a 5xx (``not_a_server_error``),
* of a documented status code (``status_code_conformance``),
* of a documented content type (``content_type_conformance``),
* and, when JSON, valid against the schema documented for that status
  (``response_schema_conformance``).

The server runs in a background thread with its own ``trio.run`` (schemathesis
calls it synchronously through ``requests``; the trio fixtures of the suite do
not mix with its pytest integration). An account, two public rooms, a message,
a filter, a key backup version and an upload exist before the fuzz; path
parameters named ``roomId``, ``userId``, ``eventId``, ``mediaId`` … are
replaced by those real values in three examples in four (chosen by a hash of
the generated value, so deterministic) so that the fuzz reaches past the 404s. Authenticated operations are called with the account's token; a
second, smaller pass calls each one without a token.

Bounded and reproducible: ``derandomize`` with a fixed number of examples per
operation (fewer for the ``r0``/``unstable`` aliases, which run the same
handlers as ``v3``), no shrinking, no example database.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import attrs
import pytest
import requests
import schemathesis
import trio
from hypothesis import HealthCheck, Phase, settings
from plait_fixtures import make_config
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup, ServerError
from schemathesis.openapi.checks import JsonSchemaError
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from spec_helpers import OPENAPI, openapi

from homeserver.homeserver import HomeServer
from tools.serve import RunningHomeServer, run_homeserver

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

# Examples per operation; the r0/unstable aliases share v3's handlers. For a
# deeper local run: PLAIT_FUZZ_EXAMPLES=200 (PLAIT_FUZZ_LOG=file.tsv appends
# each request's operation, token use, status and body start to a file).
EXAMPLES = int(os.environ.get("PLAIT_FUZZ_EXAMPLES", "8"))
ALIAS_EXAMPLES = max(1, EXAMPLES // 4)
UNAUTHENTICATED_EXAMPLES = max(1, EXAMPLES // 8)

CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {
            # Both what the schema allows and what it forbids: bad input must
            # be a 4xx Matrix error too, never a 500.
            "mode": "all",
            "max-examples": EXAMPLES,
            "deterministic": True,
            "no-shrink": True,
            "database": "none",
            # The token is added by the test; generated ones only ever answer 401.
            "with-security-parameters": False,
        },
        # Only the fuzzing phase: the coverage phase alone sends hundreds of
        # boundary requests per operation, far over the time budget.
        "phases": {
            "examples": {"enabled": False},
            "coverage": {"enabled": False},
            "stateful": {"enabled": False},
        },
    }
)

# What cannot be fuzzed safely against one shared account:
EXCLUDED = [
    # logging out the fuzzing token (or all of them) ends the fuzz for every later operation
    ("POST", r"/logout(/all)?$"),
    # deactivation would end the account (it needs UIA, but a lucky password must not matter)
    ("POST", r"/account/deactivate$"),
]

schema = schemathesis.openapi.from_path(OPENAPI, config=CONFIG)
for method, pattern in EXCLUDED:
    schema = schema.exclude(method=method, path_regex=pattern)
ALIASES = r"^/_matrix/client/(r0|unstable)/"
main_schema = schema.exclude(path_regex=ALIASES)
alias_schema = schema.include(path_regex=ALIASES)


@attrs.frozen
class Live:
    """The running server and what exists on it before the fuzz."""

    base_url: str
    hs: HomeServer
    token: str
    # path (and some query) parameter name -> a value that exists
    known: dict[str, str]
    # a second room for operations that change our own membership (leave, forget,
    # ban, kick): the fuzz must not lock the account out of the main room
    scratch_room_id: str

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def _run_in_thread(data_dir: Path) -> Iterator[tuple[str, HomeServer]]:
    """Run Plait in a thread with its own trio loop; yield its base URL and HomeServer."""
    config = make_config(
        data_dir,
        f"sqlite:///{data_dir / 'plait.db'}",
        # the deprecated unauthenticated media routes answer 404 unless enabled
        media={"enable_legacy_unauthenticated": True},
    )
    started: queue.Queue[Any] = queue.Queue()
    stop: list[tuple[trio.lowlevel.TrioToken, trio.CancelScope]] = []

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            running: RunningHomeServer = await nursery.start(run_homeserver, config)
            stop.append((trio.lowlevel.current_trio_token(), nursery.cancel_scope))
            started.put(running)

    def target() -> None:
        try:
            trio.run(main)
        except BaseException as e:  # reported to the fixture, which fails the tests
            started.put(e)

    thread = threading.Thread(target=target, name="plait-fuzz-server", daemon=True)
    thread.start()
    running = started.get(timeout=60)
    if isinstance(running, BaseException):
        raise running
    try:
        yield f"http://127.0.0.1:{running.port}", running.hs
    finally:
        token, scope = stop[0]
        with contextlib.suppress(trio.RunFinishedError):
            trio.from_thread.run_sync(scope.cancel, trio_token=token)
        thread.join(timeout=30)


def _ok(response: requests.Response) -> Any:
    assert response.status_code == 200, (response.request.url, response.text)
    return response.json()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    for base_url, hs in _run_in_thread(tmp_path_factory.mktemp("fuzz")):
        c = f"{base_url}/_matrix/client/v3"
        with requests.Session() as http:
            account = _ok(
                http.post(
                    f"{c}/register",
                    json={
                        "username": "fuzzer",
                        "password": "fuzz-pass-1",
                        "auth": {"type": "m.login.dummy"},
                    },
                )
            )
            http.headers["Authorization"] = f"Bearer {account['access_token']}"
            server_name = account["user_id"].split(":", 1)[1]
            room_id = _ok(
                http.post(
                    f"{c}/createRoom", json={"preset": "public_chat", "room_alias_name": "fuzz"}
                )
            )["room_id"]
            scratch = _ok(http.post(f"{c}/createRoom", json={"preset": "public_chat"}))["room_id"]
            event_id = _ok(
                http.put(
                    f"{c}/rooms/{quote(room_id)}/send/m.room.message/t1",
                    json={"msgtype": "m.text", "body": "hello fuzz"},
                )
            )["event_id"]
            filter_id = _ok(http.post(f"{c}/user/{quote(account['user_id'])}/filter", json={}))[
                "filter_id"
            ]
            backup = _ok(
                http.post(
                    f"{c}/room_keys/version",
                    json={"algorithm": BACKUP_ALGORITHM, "auth_data": {"public_key": "abc"}},
                )
            )["version"]
            media = _ok(
                http.post(
                    f"{base_url}/_matrix/media/v3/upload",
                    data=b"fuzz",
                    headers={"Content-Type": "text/plain"},
                )
            )["content_uri"]
        yield Live(
            base_url=base_url,
            hs=hs,
            token=account["access_token"],
            known={
                "roomId": room_id,
                "roomIdOrAlias": room_id,
                "roomAlias": f"#fuzz:{server_name}",
                "userId": account["user_id"],
                "eventId": event_id,
                "deviceId": account["device_id"],
                "serverName": server_name,
                "mediaId": media.rsplit("/", 1)[1],
                "filterId": filter_id,
                "version": backup,
                "scope": "global",
                "receiptType": "m.read",
                "eventType": "m.room.message",
            },
            scratch_room_id=scratch,
        )


BACKUP_ALGORITHM = "m.megolm_backup.v1.curve25519-aes-sha2"
# Operations that change the caller's membership get the scratch room.
MEMBERSHIP = re.compile(r"/(leave|forget|ban|unban|kick|invite)$")
PUSH_RULE_KINDS = ("override", "underride", "sender", "room", "content")


def _pick(value: object, n: int) -> int:
    """A deterministic choice among ``n`` made from a generated value."""
    return zlib.crc32(repr(value).encode()) % n


def _aim(case: schemathesis.Case, live: Live) -> None:
    """Point most examples at things that exist, and keep long polls short."""
    known = dict(live.known)
    if MEMBERSHIP.search(case.operation.path):
        known["roomId"] = live.scratch_room_id
    if "/state/" in case.operation.path:
        known["eventType"] = "m.room.topic"
    path = case.path_parameters or {}
    for name, value in list(path.items()):
        # Three examples in four use the real value, chosen by the generated one.
        if _pick(value, 4) == 0:
            continue
        if name in known:
            path[name] = known[name]
        elif name == "kind" and "/pushrules/" in case.operation.path:
            path[name] = PUSH_RULE_KINDS[_pick(value, len(PUSH_RULE_KINDS))]
        elif name == "ruleId" and path.get("kind") == "override":
            path[name] = ".m.rule.master"
    query = case.query if case.query is not None else {}
    if "version" in query and _pick(query["version"], 4):
        query["version"] = known["version"]
    # /sync would wait up to `timeout` ms for news, downloads up to `timeout_ms`.
    for name in ("timeout", "timeout_ms"):
        if name in query:
            query[name] = 0
    if case.operation.path.endswith("/sync"):
        query["timeout"] = 0
    case.query = query


FUZZ_SETTINGS = settings(
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
    print_blob=False,
)


def _call(case: schemathesis.Case, live: Live, *, token: bool) -> None:
    _aim(case, live)
    headers = live.headers() if token else None
    response = case.call_and_validate(
        base_url=live.base_url, headers=headers, checks=CHECKS, timeout=30
    )
    if os.environ.get("PLAIT_FUZZ_LOG"):
        with open(os.environ["PLAIT_FUZZ_LOG"], "a") as f:
            f.write(
                f"{case.operation.label}\t{token}\t{response.status_code}\t{response.text[:100]!r}\n"
            )


@main_schema.parametrize()
@settings(FUZZ_SETTINGS, max_examples=EXAMPLES)
def test_fuzz_with_token(case: schemathesis.Case, live: Live) -> None:
    _call(case, live, token=True)


@alias_schema.parametrize()
@settings(FUZZ_SETTINGS, max_examples=ALIAS_EXAMPLES)
def test_fuzz_alias_with_token(case: schemathesis.Case, live: Live) -> None:
    _call(case, live, token=True)


@main_schema.parametrize()
@settings(FUZZ_SETTINGS, max_examples=UNAUTHENTICATED_EXAMPLES)
def test_fuzz_without_token(case: schemathesis.Case, live: Live) -> None:
    _call(case, live, token=False)


# The checks can fail: a 500 and a body off its schema are caught.

WHOAMI = "/_matrix/client/v3/account/whoami"


class _BrokenAuth:
    async def authenticate(self, *args: object) -> None:
        raise RuntimeError("a bug in a handler")


def _failure_codes(case: schemathesis.Case, live: Live) -> set[str]:
    """The schemathesis failure codes (ST101 server error, ...) of one call."""
    try:
        case.call_and_validate(base_url=live.base_url, headers=live.headers(), checks=CHECKS)
    except FailureGroup as group:
        return {failure.code for failure in group.exceptions}
    except Failure as failure:
        return {failure.code}
    return set()


def test_fuzz_checks_catch_a_server_error(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    case = main_schema[WHOAMI]["GET"].Case()
    assert _failure_codes(case, live) == set()
    monkeypatch.setattr(live.hs, "auth", _BrokenAuth())
    assert ServerError.code in _failure_codes(case, live)


def test_fuzz_checks_catch_a_schema_violation(live: Live) -> None:
    doctored = json.loads(OPENAPI.read_text())
    ok = doctored["paths"][WHOAMI]["get"]["responses"]["200"]["content"]["application/json"]
    ok["schema"] = {"type": "object", "required": ["not_sent"]}
    case = schemathesis.openapi.from_dict(doctored, config=CONFIG)[WHOAMI]["GET"].Case()
    assert _failure_codes(case, live) == {JsonSchemaError.code}


# Found by the fuzz: bodies over a route's limit answer 413, which must be documented.


def test_every_operation_with_a_body_documents_413() -> None:
    missing = [
        f"{method.upper()} {path}"
        for path, item in openapi()["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict)
        and "requestBody" in operation
        and "413" not in operation["responses"]
    ]
    assert missing == []


def test_a_body_over_the_limit_is_a_documented_413(live: Live) -> None:
    operation = main_schema["/_matrix/client/v3/pushrules/{scope}/{kind}/{ruleId}"]["PUT"]
    case = operation.Case(
        path_parameters={"scope": "global", "kind": "override", "ruleId": "big"},
        body={"actions": [], "pattern": "x" * 20_000},
        media_type="application/json",
    )
    response = case.call(base_url=live.base_url, headers=live.headers())
    assert response.status_code == 413, response.text
    assert _failure_codes(case, live) == set()


# Found by the fuzz: the web client's 404s (a missing asset, a refused path)
# were a text/plain "Not found", not the documented Matrix error.


@pytest.mark.parametrize("path", ["/assets/gone-123.js", "/a%5Cb", "/assets/%00x.js"])
def test_web_client_404_is_a_matrix_error(live: Live, path: str) -> None:
    response = requests.get(live.base_url + path, timeout=30)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json()["errcode"] == "M_NOT_FOUND"
    case = main_schema["/{path}"]["GET"].Case(path_parameters={"path": unquote(path[1:])})
    assert case.call(base_url=live.base_url).status_code == 404
    assert _failure_codes(case, live) == set()
