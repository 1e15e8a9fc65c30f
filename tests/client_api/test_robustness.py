"""Arbitrary bodies never cause a 500; races on one username have one winner."""

from __future__ import annotations

import json
import random
from typing import Any

import httpx
import trio
from client_helpers import V3, bearer
from plait_fixtures import RegisterUser

FIELDS = [
    "username",
    "password",
    "auth",
    "type",
    "session",
    "identifier",
    "user",
    "token",
    "device_id",
    "initial_device_display_name",
    "inhibit_login",
    "refresh_token",
    "new_password",
    "logout_devices",
    "devices",
    "display_name",
    "displayname",
    "avatar_url",
    "erase",
]
STRINGS = [
    "",
    "alice",
    "m.login.dummy",
    "m.login.password",
    "m.id.user",
    "@alice:test.example",
    "é" * 300,
    "x" * 600,
]


def random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 2 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 2**53, 2**64])
    if kind == 3:
        return rng.random() * 1e6
    if kind in (4, 5):
        return rng.choice(STRINGS)
    if kind in (6, 7):
        return {rng.choice(FIELDS): random_value(rng, depth + 1) for _ in range(rng.randrange(4))}
    return [random_value(rng, depth + 1) for _ in range(rng.randrange(3))]


def random_body(rng: random.Random) -> bytes:
    if rng.random() < 0.1:
        return rng.choice([b"", b"{", b"null", b"[]", b'"x"', b"\xff\xfe", b'{"a": NaN}'])
    body = {rng.choice(FIELDS): random_value(rng) for _ in range(rng.randrange(6))}
    return json.dumps(body).encode()


async def test_random_bodies_get_matrix_errors_not_500(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    auth = bearer(alice["access_token"])
    endpoints = [
        ("POST", f"{V3}/register", {}),
        ("POST", f"{V3}/login", {}),
        ("POST", f"{V3}/refresh", {}),
        ("POST", f"{V3}/account/password", auth),
        ("POST", f"{V3}/account/deactivate", auth),
        ("PUT", f"{V3}/devices/SOMEDEVICE", auth),
        ("DELETE", f"{V3}/devices/SOMEDEVICE", auth),
        ("POST", f"{V3}/delete_devices", auth),
        ("PUT", f"{V3}/profile/@alice:test.example/displayname", auth),
        ("PUT", f"{V3}/profile/@alice:test.example/avatar_url", auth),
    ]
    rng = random.Random(20261122)
    for _ in range(25):
        for method, path, headers in endpoints:
            body = random_body(rng)
            response = await client.request(
                method, path, content=body, headers={**headers, "Content-Type": "application/json"}
            )
            assert response.status_code < 500, (method, path, body, response.text)
            if response.status_code >= 400:
                answer = response.json()
                # A UIA 401 carries flows instead of (or as well as) an errcode.
                assert "errcode" in answer or "flows" in answer, (method, path, body, answer)
    # Whatever was thrown at it, alice's account still works or was deactivated by a
    # (randomly valid) request; the server answers either way.
    assert (await client.get(f"{V3}/account/whoami", headers=auth)).status_code in (200, 401)


async def test_concurrent_registrations_of_one_name(client: httpx.AsyncClient) -> None:
    statuses: list[tuple[int, str]] = []

    async def attempt() -> None:
        response = await client.post(
            f"{V3}/register",
            json={"username": "contested", "password": "pw", "auth": {"type": "m.login.dummy"}},
        )
        statuses.append((response.status_code, response.json().get("errcode", "")))

    async with trio.open_nursery() as nursery:
        for _ in range(6):
            nursery.start_soon(attempt)
    assert sorted(statuses) == [(200, "")] + [(400, "M_USER_IN_USE")] * 5
