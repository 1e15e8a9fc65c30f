"""/keys/device_signing/upload and /keys/signatures/upload over HTTP, on both databases."""

from __future__ import annotations

from typing import Any

import httpx
from e2e_helpers import Device, assert_error, cross_signing_key, new_key, register
from plait_fixtures import RegisterUser

from homeserver.core.signing import sign_json


class CrossSigning:
    """A user's three cross-signing keys."""

    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
        self.master, self.master_pub = new_key()
        self.ssk, self.ssk_pub = new_key()
        self.usk, self.usk_pub = new_key()

    def body(self) -> dict[str, Any]:
        signer = (self.master, self.master_pub)
        return {
            "master_key": cross_signing_key(self.user_id, "master", self.master),
            "self_signing_key": cross_signing_key(self.user_id, "self_signing", self.ssk, signer),
            "user_signing_key": cross_signing_key(self.user_id, "user_signing", self.usk, signer),
        }


def password_auth(device: Device, session: str) -> dict[str, Any]:
    return {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": device.user_id},
        "password": device.password,
        "session": session,
    }


async def test_first_upload_needs_no_uia_replacing_does(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register(client, register_user, "alice")
    bob = await register(client, register_user, "bob")
    first = CrossSigning(alice.user_id)
    await alice.ok("POST", "/keys/device_signing/upload", first.body())
    # Repeating exactly the stored keys needs no UIA either (spec v1.11, MSC3967).
    await alice.ok("POST", "/keys/device_signing/upload", first.body())

    answer = await alice.ok("POST", "/keys/query", {"device_keys": {alice.user_id: []}})
    assert answer["master_keys"][alice.user_id] == first.body()["master_key"]
    assert answer["self_signing_keys"][alice.user_id] == first.body()["self_signing_key"]
    assert answer["user_signing_keys"][alice.user_id] == first.body()["user_signing_key"]
    # Others see master and self-signing keys, never the user-signing key.
    answer = await bob.ok("POST", "/keys/query", {"device_keys": {alice.user_id: []}})
    assert alice.user_id in answer["master_keys"]
    assert alice.user_id in answer["self_signing_keys"]
    assert answer["user_signing_keys"] == {}

    second = CrossSigning(alice.user_id)
    response = await alice.post("/keys/device_signing/upload", second.body())
    assert response.status_code == 401, response.text
    challenge = response.json()
    assert {"stages": ["m.login.password"]} in challenge["flows"]
    wrong = password_auth(alice, challenge["session"]) | {"password": "wrong"}
    response = await alice.post("/keys/device_signing/upload", second.body() | {"auth": wrong})
    assert response.status_code == 401
    assert response.json()["errcode"] == "M_FORBIDDEN"
    answer = await alice.ok("POST", "/keys/query", {"device_keys": {alice.user_id: []}})
    assert answer["master_keys"][alice.user_id] == first.body()["master_key"]

    auth = password_auth(alice, challenge["session"])
    await alice.ok("POST", "/keys/device_signing/upload", second.body() | {"auth": auth})
    answer = await alice.ok("POST", "/keys/query", {"device_keys": {alice.user_id: []}})
    assert answer["master_keys"][alice.user_id] == second.body()["master_key"]
    assert answer["user_signing_keys"][alice.user_id] == second.body()["user_signing_key"]


async def test_new_master_alone_drops_keys_signed_by_the_old(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register(client, register_user, "alice")
    first = CrossSigning(alice.user_id)
    await alice.ok("POST", "/keys/device_signing/upload", first.body())
    second = CrossSigning(alice.user_id)
    response = await alice.post(
        "/keys/device_signing/upload", {"master_key": second.body()["master_key"]}
    )
    session = response.json()["session"]
    await alice.ok(
        "POST",
        "/keys/device_signing/upload",
        {"master_key": second.body()["master_key"], "auth": password_auth(alice, session)},
    )
    answer = await alice.ok("POST", "/keys/query", {"device_keys": {alice.user_id: []}})
    assert answer["master_keys"][alice.user_id] == second.body()["master_key"]
    assert answer["self_signing_keys"] == {}
    assert answer["user_signing_keys"] == {}


async def test_cross_signing_keys_refused(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register(client, register_user, "alice")
    keys = CrossSigning(alice.user_id)
    other, other_pub = new_key()
    # Self-signing key not signed by the master key.
    bad = keys.body() | {
        "self_signing_key": cross_signing_key(
            alice.user_id, "self_signing", keys.ssk, (other, other_pub)
        )
    }
    assert_error(await alice.post("/keys/device_signing/upload", bad), 400, "M_INVALID_SIGNATURE")
    # No master key at all.
    only_ssk = {"self_signing_key": keys.body()["self_signing_key"]}
    assert_error(await alice.post("/keys/device_signing/upload", only_ssk), 400, "M_BAD_JSON")
    # Another user's keys; wrong usage; two keys; not a key.
    mallory = CrossSigning("@mallory:test.example")
    for body in (
        {"master_key": mallory.body()["master_key"]},
        {"master_key": cross_signing_key(alice.user_id, "self_signing", keys.master)},
        {"master_key": keys.body()["master_key"] | {"keys": {"ed25519:a": "a", "ed25519:b": "b"}}},
        {"master_key": keys.body()["master_key"] | {"keys": {"ed25519:abc": "abc"}}},
        {"master_key": "x"},
    ):
        assert_error(await alice.post("/keys/device_signing/upload", body), 400, "M_BAD_JSON")
    answer = await alice.ok("POST", "/keys/query", {"device_keys": {alice.user_id: []}})
    assert answer["master_keys"] == {}


async def test_signatures_upload_device_and_other_users_master(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register(client, register_user, "alice")
    bob = await register(client, register_user, "bob")
    carol = await register(client, register_user, "carol")
    await alice.upload_device_keys()
    a_keys, b_keys = CrossSigning(alice.user_id), CrossSigning(bob.user_id)
    await alice.ok("POST", "/keys/device_signing/upload", a_keys.body())
    await bob.ok("POST", "/keys/device_signing/upload", b_keys.body())

    # Alice's self-signing key signs her device; her device signs her master key;
    # her user-signing key signs Bob's master key.
    device = sign_json(alice.device_keys(), alice.user_id, a_keys.ssk, f"ed25519:{a_keys.ssk_pub}")
    master = alice.sign(a_keys.body()["master_key"])
    bobs_master = sign_json(
        b_keys.body()["master_key"], alice.user_id, a_keys.usk, f"ed25519:{a_keys.usk_pub}"
    )
    forged = sign_json(
        alice.device_keys(), alice.user_id, new_key()[0], f"ed25519:{a_keys.ssk_pub}"
    )
    result = await alice.ok(
        "POST",
        "/keys/signatures/upload",
        {
            alice.user_id: {alice.device_id: device, a_keys.master_pub: master},
            bob.user_id: {b_keys.master_pub: bobs_master, "NOTAKEY": bobs_master},
        },
    )
    assert result["failures"] == {
        bob.user_id: {
            "NOTAKEY": {
                "errcode": "M_NOT_FOUND",
                "error": result["failures"][bob.user_id]["NOTAKEY"]["error"],
            }
        }
    }

    answer = await bob.ok(
        "POST", "/keys/query", {"device_keys": {alice.user_id: [], bob.user_id: []}}
    )
    sigs = answer["device_keys"][alice.user_id][alice.device_id]["signatures"][alice.user_id]
    assert (
        sigs[f"ed25519:{a_keys.ssk_pub}"]
        == device["signatures"][alice.user_id][f"ed25519:{a_keys.ssk_pub}"]
    )
    assert f"ed25519:{alice.device_id}" in sigs
    master_sigs = answer["master_keys"][alice.user_id]["signatures"][alice.user_id]
    assert f"ed25519:{alice.device_id}" in master_sigs
    # A user-signing signature is shown only to its signer: not to Bob, not to Carol.
    assert alice.user_id not in answer["master_keys"][bob.user_id].get("signatures", {})
    answer = await alice.ok("POST", "/keys/query", {"device_keys": {bob.user_id: []}})
    assert (
        f"ed25519:{a_keys.usk_pub}"
        in answer["master_keys"][bob.user_id]["signatures"][alice.user_id]
    )
    answer = await carol.ok("POST", "/keys/query", {"device_keys": {bob.user_id: []}})
    assert alice.user_id not in answer["master_keys"][bob.user_id].get("signatures", {})

    # A bad signature and an object that differs from the stored key are refused.
    changed = alice.device_keys() | {"algorithms": ["other"]}
    result = await alice.ok(
        "POST",
        "/keys/signatures/upload",
        {
            alice.user_id: {
                alice.device_id: forged,
                "NODEVICE": device,
            }
        },
    )
    failures = result["failures"][alice.user_id]
    assert failures[alice.device_id]["errcode"] == "M_INVALID_SIGNATURE"
    assert failures["NODEVICE"]["errcode"] == "M_NOT_FOUND"
    changed = sign_json(changed, alice.user_id, a_keys.ssk, f"ed25519:{a_keys.ssk_pub}")
    result = await alice.ok(
        "POST", "/keys/signatures/upload", {alice.user_id: {alice.device_id: changed}}
    )
    assert result["failures"][alice.user_id][alice.device_id]["errcode"] == "M_INVALID_PARAM"


async def test_signatures_upload_refuses_bad_input(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register(client, register_user, "alice")
    assert_error(
        await alice.post("/keys/signatures/upload", {alice.user_id: []}), 400, "M_BAD_JSON"
    )
    many = {alice.user_id: {f"K{i}": {} for i in range(1001)}}
    assert_error(await alice.post("/keys/signatures/upload", many), 400, "M_INVALID_PARAM")
    # No cross-signing keys yet: a failure per key, not an error.
    result = await alice.ok("POST", "/keys/signatures/upload", {alice.user_id: {"DEV": {}}})
    assert result["failures"][alice.user_id]["DEV"]["errcode"] == "M_NOT_FOUND"
    result = await alice.ok("POST", "/keys/signatures/upload", {alice.user_id: {"DEV": 5}})
    assert result["failures"][alice.user_id]["DEV"]["errcode"] == "M_BAD_JSON"


async def test_cross_signing_changes_reach_roommates(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register(client, register_user, "alice")
    bob = await register(client, register_user, "bob")
    room_id = await alice.create_room(preset="public_chat")
    await bob.join(room_id)
    since = (await bob.sync())["next_batch"]
    keys = CrossSigning(alice.user_id)
    await alice.ok("POST", "/keys/device_signing/upload", keys.body())
    first = await bob.sync(since)
    assert first["device_lists"]["changed"] == [alice.user_id]
    # Repeating the same keys is no change.
    await alice.ok("POST", "/keys/device_signing/upload", keys.body())
    second = await bob.sync(first["next_batch"])
    assert second["device_lists"]["changed"] == []
    # A new signature of Alice's device is.
    await alice.upload_device_keys()
    after_upload = (await bob.sync(second["next_batch"]))["next_batch"]
    device = sign_json(alice.device_keys(), alice.user_id, keys.ssk, f"ed25519:{keys.ssk_pub}")
    result = await alice.ok(
        "POST", "/keys/signatures/upload", {alice.user_id: {alice.device_id: device}}
    )
    assert result == {"failures": {}}
    third = await bob.sync(after_upload)
    assert third["device_lists"]["changed"] == [alice.user_id]
