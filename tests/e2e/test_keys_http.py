"""/keys/upload, /keys/query, /keys/claim over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import copy

import httpx
import pytest
import trio
from e2e_helpers import Device, assert_error, login, register
from plait_fixtures import RegisterUser, RunningServer


async def test_upload_device_and_one_time_keys_then_query(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register(client, register_user, "alice")
    bob = await register(client, register_user, "bob")
    body = {
        "device_keys": alice.device_keys(),
        "one_time_keys": alice.one_time_keys(5),
        "fallback_keys": alice.one_time_keys(1, start=100, fallback=True),
    }
    result = await alice.ok("POST", "/keys/upload", body)
    assert result == {"one_time_key_counts": {"signed_curve25519": 5}}
    # An upload without keys answers the counts (nio relies on the field).
    assert await alice.ok("POST", "/keys/upload", {}) == result
    await alice.ok("PUT", f"/devices/{alice.device_id}", {"display_name": "Alice's phone"})

    answer = await bob.ok(
        "POST", "/keys/query", {"device_keys": {alice.user_id: []}, "timeout": 10}
    )
    stored = answer["device_keys"][alice.user_id][alice.device_id]
    expected = alice.device_keys()
    assert {k: v for k, v in stored.items() if k != "unsigned"} == expected
    assert stored["unsigned"] == {"device_display_name": "Alice's phone"}
    assert answer["failures"] == {}
    assert answer["user_signing_keys"] == {}

    # Only the named devices; unknown users and devices are simply absent.
    answer = await bob.ok(
        "POST",
        "/keys/query",
        {"device_keys": {alice.user_id: ["NOPE"], "@ghost:test.example": []}},
    )
    assert answer["device_keys"] == {alice.user_id: {}, "@ghost:test.example": {}}


async def test_unsigned_zero_count_and_fallback_types(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register(client, register_user, "alice")
    result = await alice.ok("POST", "/keys/upload", {"device_keys": alice.device_keys()})
    assert result == {"one_time_key_counts": {"signed_curve25519": 0}}
    await alice.ok("POST", "/keys/upload", {"fallback_keys": alice.one_time_keys(1, fallback=True)})
    sync = await alice.sync()
    assert sync["device_unused_fallback_key_types"] == ["signed_curve25519"]


@pytest.mark.parametrize(
    ("mutate", "errcode"),
    [
        (lambda d, k: k.update(user_id="@mallory:test.example"), "M_BAD_JSON"),
        (lambda d, k: k.update(device_id="OTHERDEVICE"), "M_BAD_JSON"),
        (
            lambda d, k: k["keys"].update({f"curve25519:{d.device_id}": "tampered"}),
            "M_INVALID_SIGNATURE",
        ),
        (lambda d, k: k.pop("signatures"), "M_BAD_JSON"),
        (lambda d, k: k["keys"].pop(f"ed25519:{d.device_id}"), "M_BAD_JSON"),
        (lambda d, k: k.update(algorithms="m.olm"), "M_BAD_JSON"),
        (lambda d, k: k.update(keys={"nocolon": "x"}), "M_BAD_JSON"),
    ],
)
async def test_device_keys_refused(
    client: httpx.AsyncClient, register_user: RegisterUser, mutate: object, errcode: str
) -> None:
    alice = await register(client, register_user, "alice")
    keys = alice.device_keys()
    mutate(alice, keys)  # type: ignore[operator]
    response = await alice.post("/keys/upload", {"device_keys": keys})
    assert_error(response, 400, errcode)
    answer = await alice.ok("POST", "/keys/query", {"device_keys": {alice.user_id: []}})
    assert answer["device_keys"][alice.user_id] == {}


async def test_keys_for_another_users_device_signed_by_its_key_are_refused(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    """Pitfall 16 (CVE-2025-61672): Mallory uploads well-signed keys naming Alice's device."""
    alice = await register(client, register_user, "alice")
    mallory = await register(client, register_user, "mallory")
    forged = Device(client, alice.user_id, alice.device_id, mallory.token).device_keys()
    assert_error(await mallory.post("/keys/upload", {"device_keys": forged}), 400, "M_BAD_JSON")


async def test_reupload_of_different_device_keys_is_refused(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register(client, register_user, "alice")
    await alice.upload_device_keys()
    original = alice.device_keys()
    # The same keys again are fine.
    await alice.upload_device_keys()
    impostor = Device(client, alice.user_id, alice.device_id, alice.token)
    assert_error(
        await alice.post("/keys/upload", {"device_keys": impostor.device_keys()}),
        400,
        "M_INVALID_PARAM",
    )
    answer = await alice.ok("POST", "/keys/query", {"device_keys": {alice.user_id: []}})
    stored = answer["device_keys"][alice.user_id][alice.device_id]
    assert stored["keys"] == original["keys"]


async def test_one_time_key_reupload_rules(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register(client, register_user, "alice")
    keys = alice.one_time_keys(3)
    await alice.ok("POST", "/keys/upload", {"one_time_keys": keys})
    # Pitfall 14: the same keys with other signatures are accepted, not counted twice.
    resigned = copy.deepcopy(keys)
    for key in resigned.values():
        key["signatures"] = {alice.user_id: {"ed25519:X": "other"}}
    result = await alice.ok("POST", "/keys/upload", {"one_time_keys": resigned})
    assert result["one_time_key_counts"] == {"signed_curve25519": 3}
    # The same ID with another key is refused, and nothing of that request is stored.
    changed = copy.deepcopy(keys)
    first = next(iter(changed))
    changed[first]["key"] = "different"
    changed.update(alice.one_time_keys(2, start=50))
    assert_error(
        await alice.post("/keys/upload", {"one_time_keys": changed}), 400, "M_INVALID_PARAM"
    )
    result = await alice.ok("POST", "/keys/upload", {})
    assert result["one_time_key_counts"] == {"signed_curve25519": 3}


@pytest.mark.parametrize(
    "body",
    [
        {"one_time_keys": []},
        {"one_time_keys": {"signed_curve25519": {"key": "x"}}},
        {"one_time_keys": {"signed_curve25519:A": 5}},
        {"one_time_keys": {"signed_curve25519:A": {"nokey": 1}}},
        {"fallback_keys": "x"},
        {"device_keys": "x"},
    ],
)
async def test_malformed_uploads(
    client: httpx.AsyncClient, register_user: RegisterUser, body: dict[str, object]
) -> None:
    alice = await register(client, register_user, "alice")
    assert_error(await alice.post("/keys/upload", body), 400, "M_BAD_JSON")


async def test_upload_limits(client: httpx.AsyncClient, register_user: RegisterUser) -> None:
    alice = await register(client, register_user, "alice")
    response = await alice.post("/keys/upload", {"one_time_keys": alice.one_time_keys(101)})
    assert_error(response, 400, "M_INVALID_PARAM")
    big = {"signed_curve25519:A": {"key": "x" * 9000}}
    assert_error(await alice.post("/keys/upload", {"one_time_keys": big}), 400, "M_INVALID_PARAM")
    two = {"curve25519:A": "a", "curve25519:B": "b"}
    assert_error(await alice.post("/keys/upload", {"fallback_keys": two}), 400, "M_BAD_JSON")


async def test_query_and_claim_refuse_bad_input(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register(client, register_user, "alice")
    assert_error(await alice.post("/keys/query", {}), 400, "M_MISSING_PARAM")
    assert_error(await alice.post("/keys/query", {"device_keys": []}), 400, "M_BAD_JSON")
    assert_error(
        await alice.post("/keys/query", {"device_keys": {alice.user_id: "all"}}), 400, "M_BAD_JSON"
    )
    assert_error(
        await alice.post("/keys/query", {"device_keys": {alice.user_id: []}, "timeout": "1"}),
        400,
        "M_BAD_JSON",
    )
    many = {f"@u{i}:test.example": [] for i in range(1001)}
    assert_error(await alice.post("/keys/query", {"device_keys": many}), 400, "M_INVALID_PARAM")
    assert_error(await alice.post("/keys/claim", {}), 400, "M_MISSING_PARAM")
    assert_error(
        await alice.post("/keys/claim", {"one_time_keys": {alice.user_id: ["x"]}}),
        400,
        "M_BAD_JSON",
    )
    assert_error(
        await alice.post("/keys/claim", {"one_time_keys": {alice.user_id: {"D": 1}}}),
        400,
        "M_BAD_JSON",
    )
    unauthenticated = await client.post("/_matrix/client/v3/keys/query", json={"device_keys": {}})
    assert_error(unauthenticated, 401, "M_MISSING_TOKEN")


async def test_claim_hands_out_oldest_first_then_fallback(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register(client, register_user, "alice")
    bob = await register(client, register_user, "bob")
    otks = alice.one_time_keys(2)
    fallback = alice.one_time_keys(1, start=100, fallback=True)
    await alice.ok("POST", "/keys/upload", {"one_time_keys": otks, "fallback_keys": fallback})
    want = {"one_time_keys": {alice.user_id: {alice.device_id: "signed_curve25519"}}}
    seen = []
    for _ in range(2):
        answer = await bob.ok("POST", "/keys/claim", want)
        assert answer["failures"] == {}
        seen.append(answer["one_time_keys"][alice.user_id][alice.device_id])
    assert seen == [{k: v} for k, v in otks.items()]
    sync = await alice.sync()
    # Zero is stated, not omitted: clients replenish on it.
    assert sync["device_one_time_keys_count"] == {"signed_curve25519": 0}
    assert sync["device_unused_fallback_key_types"] == ["signed_curve25519"]
    # None left: the fallback key, again and again, now marked used.
    for _ in range(2):
        answer = await bob.ok("POST", "/keys/claim", want)
        assert answer["one_time_keys"][alice.user_id][alice.device_id] == fallback
    sync = await alice.sync()
    assert sync["device_unused_fallback_key_types"] == []
    # A new fallback key is unused again.
    await alice.ok(
        "POST", "/keys/upload", {"fallback_keys": alice.one_time_keys(1, 200, fallback=True)}
    )
    assert (await alice.sync())["device_unused_fallback_key_types"] == ["signed_curve25519"]
    # Unknown devices and algorithms are left out.
    answer = await bob.ok(
        "POST",
        "/keys/claim",
        {"one_time_keys": {alice.user_id: {"NOPE": "signed_curve25519", alice.device_id: "x"}}},
    )
    assert answer == {"one_time_keys": {}, "failures": {}}


async def test_concurrent_claims_hand_each_key_out_once(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register(client, register_user, "alice")
    fallback = alice.one_time_keys(1, start=100, fallback=True)
    otks = alice.one_time_keys(5)
    await alice.ok("POST", "/keys/upload", {"one_time_keys": otks, "fallback_keys": fallback})
    claimers = [await login(alice) for _ in range(4)]
    want = {"one_time_keys": {alice.user_id: {alice.device_id: "signed_curve25519"}}}
    results: list[dict[str, object]] = []

    async def claim(device: Device) -> None:
        answer = await device.ok("POST", "/keys/claim", want)
        results.append(answer["one_time_keys"][alice.user_id][alice.device_id])

    async with trio.open_nursery() as nursery:
        for i in range(20):
            nursery.start_soon(claim, claimers[i % 4])
    handed = [next(iter(r)) for r in results]
    one_time = [k for k in handed if k in otks]
    assert sorted(one_time) == sorted(otks)  # each of the 5 exactly once
    assert handed.count(next(iter(fallback))) == 15
    counts = await alice.ok("POST", "/keys/upload", {})
    assert counts["one_time_key_counts"] == {"signed_curve25519": 0}


async def test_remote_users_are_reported_as_failures(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register(client, register_user, "alice")
    answer = await alice.ok("POST", "/keys/query", {"device_keys": {"@bob:remote.example": []}})
    assert answer["device_keys"] == {}
    assert set(answer["failures"]) == {"remote.example"}
    answer = await alice.ok(
        "POST",
        "/keys/claim",
        {"one_time_keys": {"@bob:remote.example": {"DEV": "signed_curve25519"}}},
    )
    assert answer["one_time_keys"] == {}
    assert set(answer["failures"]) == {"remote.example"}


@pytest.mark.server_config(
    rate_limits={"enabled": True, "writes_per_second": 0.01, "writes_burst": 3}
)
async def test_a_client_looping_on_a_refused_upload_is_rate_limited(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    """Pitfall 14 (synapse#19392): a client retrying a refused upload in a loop."""
    alice = await register(client, register_user, "alice")
    await alice.ok("POST", "/keys/upload", {"one_time_keys": {"signed_curve25519:A": "one"}})
    statuses = []
    for _ in range(4):
        response = await alice.post(
            "/keys/upload", {"one_time_keys": {"signed_curve25519:A": "two"}}
        )
        statuses.append((response.status_code, response.json()["errcode"]))
    assert statuses[:2] == [(400, "M_INVALID_PARAM")] * 2
    assert statuses[-1] == (429, "M_LIMIT_EXCEEDED")
