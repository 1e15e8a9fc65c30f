"""Server-side key backup (/room_keys) over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from e2e_helpers import assert_error, register
from plait_fixtures import RegisterUser

ALGORITHM = "m.megolm_backup.v1.curve25519-aes-sha2"
ROOM = "!room:test.example"


def key(
    index: int = 0, forwarded: int = 0, verified: bool = False, tag: str = "a"
) -> dict[str, Any]:
    return {
        "first_message_index": index,
        "forwarded_count": forwarded,
        "is_verified": verified,
        "session_data": {"ephemeral": tag, "ciphertext": tag, "mac": tag},
    }


async def test_no_backup_is_404_not_found(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register(client, register_user, "alice")
    # Pitfall 13: js-sdk treats anything but 404 M_NOT_FOUND as a broken backup.
    assert_error(await alice.get("/room_keys/version"), 404, "M_NOT_FOUND")
    assert_error(await alice.get("/room_keys/version/1"), 404, "M_NOT_FOUND")
    response = await alice.put(f"/room_keys/keys/{ROOM}/s1?version=1", key())
    assert_error(response, 404, "M_NOT_FOUND")
    assert_error(await alice.get("/room_keys/keys?version=1"), 404, "M_NOT_FOUND")


async def test_versions_lifecycle(client: httpx.AsyncClient, register_user: RegisterUser) -> None:
    alice = await register(client, register_user, "alice")
    bob = await register(client, register_user, "bob")
    auth_data = {"public_key": "abc", "signatures": {}}
    created = await alice.ok(
        "POST", "/room_keys/version", {"algorithm": ALGORITHM, "auth_data": auth_data}
    )
    assert created == {"version": "1"}
    current = await alice.ok("GET", "/room_keys/version")
    assert current == {
        "algorithm": ALGORITHM,
        "auth_data": auth_data,
        "count": 0,
        "etag": current["etag"],
        "version": "1",
    }
    assert await alice.ok("GET", "/room_keys/version/1") == current
    # Bob has no backup; Alice's is hers alone.
    assert_error(await bob.get("/room_keys/version"), 404, "M_NOT_FOUND")
    assert_error(await bob.get("/room_keys/version/1"), 404, "M_NOT_FOUND")

    new_auth = {"public_key": "def"}
    await alice.ok("PUT", "/room_keys/version/1", {"algorithm": ALGORITHM, "auth_data": new_auth})
    assert (await alice.ok("GET", "/room_keys/version"))["auth_data"] == new_auth
    response = await alice.put(
        "/room_keys/version/1", {"algorithm": ALGORITHM, "auth_data": {}, "version": "2"}
    )
    assert_error(response, 400, "M_INVALID_PARAM")
    response = await alice.put("/room_keys/version/1", {"algorithm": "other", "auth_data": {}})
    assert_error(response, 400, "M_INVALID_PARAM")
    assert_error(
        await alice.put("/room_keys/version/9", {"algorithm": ALGORITHM, "auth_data": {}}),
        404,
        "M_NOT_FOUND",
    )

    second = await alice.ok("POST", "/room_keys/version", {"algorithm": ALGORITHM, "auth_data": {}})
    assert second == {"version": "2"}
    assert (await alice.ok("GET", "/room_keys/version"))["version"] == "2"
    await alice.ok("DELETE", "/room_keys/version/2")
    assert_error(await alice.get("/room_keys/version/2"), 404, "M_NOT_FOUND")
    assert (await alice.ok("GET", "/room_keys/version"))["version"] == "1"
    assert_error(await alice.delete("/room_keys/version/2"), 404, "M_NOT_FOUND")
    # Version numbers are never reused.
    third = await alice.ok("POST", "/room_keys/version", {"algorithm": ALGORITHM, "auth_data": {}})
    assert third == {"version": "3"}


async def test_keys_at_every_level_with_etag_and_count(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register(client, register_user, "alice")
    await alice.ok("POST", "/room_keys/version", {"algorithm": ALGORITHM, "auth_data": {}})
    etag0 = (await alice.ok("GET", "/room_keys/version"))["etag"]

    r1 = await alice.ok("PUT", f"/room_keys/keys/{ROOM}/s1?version=1", key())
    assert r1["count"] == 1 and r1["etag"] != etag0
    r2 = await alice.ok(
        "PUT", f"/room_keys/keys/{ROOM}?version=1", {"sessions": {"s2": key(tag="b")}}
    )
    assert r2["count"] == 2 and r2["etag"] != r1["etag"]
    r3 = await alice.ok(
        "PUT",
        "/room_keys/keys?version=1",
        {"rooms": {"!other:test.example": {"sessions": {"s3": key(tag="c")}}}},
    )
    assert r3["count"] == 3

    assert await alice.ok("GET", f"/room_keys/keys/{ROOM}/s1?version=1") == key()
    assert await alice.ok("GET", f"/room_keys/keys/{ROOM}?version=1") == {
        "sessions": {"s1": key(), "s2": key(tag="b")}
    }
    everything = await alice.ok("GET", "/room_keys/keys?version=1")
    assert set(everything["rooms"]) == {ROOM, "!other:test.example"}
    assert await alice.ok("GET", "/room_keys/keys/!empty:test.example?version=1") == {
        "sessions": {}
    }
    assert_error(await alice.get(f"/room_keys/keys/{ROOM}/nope?version=1"), 404, "M_NOT_FOUND")
    current = await alice.ok("GET", "/room_keys/version")
    assert current["count"] == 3 and current["etag"] == r3["etag"]

    deleted = await alice.ok("DELETE", f"/room_keys/keys/{ROOM}/s1?version=1")
    assert deleted["count"] == 2 and deleted["etag"] != r3["etag"]
    deleted = await alice.ok("DELETE", f"/room_keys/keys/{ROOM}?version=1")
    assert deleted["count"] == 1
    deleted = await alice.ok("DELETE", "/room_keys/keys?version=1")
    assert deleted["count"] == 0
    assert await alice.ok("GET", "/room_keys/keys?version=1") == {"rooms": {}}


async def test_better_copy_is_kept(client: httpx.AsyncClient, register_user: RegisterUser) -> None:
    alice = await register(client, register_user, "alice")
    await alice.ok("POST", "/room_keys/version", {"algorithm": ALGORITHM, "auth_data": {}})
    path = f"/room_keys/keys/{ROOM}/s1?version=1"
    first = await alice.ok("PUT", path, key(index=5, forwarded=2, tag="first"))
    # Worse (higher index): ignored, etag unchanged.
    same = await alice.ok("PUT", path, key(index=9, tag="worse"))
    assert same["etag"] == first["etag"]
    assert (await alice.ok("GET", path))["session_data"]["ciphertext"] == "first"
    await alice.ok("PUT", path, key(index=5, forwarded=1, tag="fewer-forwards"))
    assert (await alice.ok("GET", path))["session_data"]["ciphertext"] == "fewer-forwards"
    await alice.ok("PUT", path, key(index=0, tag="lower-index"))
    assert (await alice.ok("GET", path))["session_data"]["ciphertext"] == "lower-index"
    await alice.ok("PUT", path, key(index=50, verified=True, tag="verified"))
    assert (await alice.ok("GET", path))["session_data"]["ciphertext"] == "verified"
    await alice.ok("PUT", path, key(index=0, tag="unverified"))
    assert (await alice.ok("GET", path))["session_data"]["ciphertext"] == "verified"


async def test_writes_to_an_old_version_are_refused(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register(client, register_user, "alice")
    await alice.ok("POST", "/room_keys/version", {"algorithm": ALGORITHM, "auth_data": {}})
    await alice.ok("POST", "/room_keys/version", {"algorithm": ALGORITHM, "auth_data": {}})
    response = await alice.put(f"/room_keys/keys/{ROOM}/s1?version=1", key())
    body = assert_error(response, 403, "M_WRONG_ROOM_KEYS_VERSION")
    assert body["current_version"] == "2"
    response = await alice.put(f"/room_keys/keys/{ROOM}/s1?version=7", key())
    assert assert_error(response, 403, "M_WRONG_ROOM_KEYS_VERSION")["current_version"] == "2"
    # Reading an old version is fine.
    assert await alice.ok("GET", "/room_keys/keys?version=1") == {"rooms": {}}


@pytest.mark.parametrize(
    ("path", "body", "status", "errcode"),
    [
        ("/room_keys/version", {"auth_data": {}}, 400, "M_MISSING_PARAM"),
        ("/room_keys/version", {"algorithm": "m.other", "auth_data": {}}, 400, "M_INVALID_PARAM"),
        ("/room_keys/version", {"algorithm": ALGORITHM, "auth_data": "x"}, 400, "M_BAD_JSON"),
        (
            "/room_keys/version",
            {"algorithm": ALGORITHM, "auth_data": {"x": "y" * 70_000}},
            400,
            "M_INVALID_PARAM",
        ),
    ],
)
async def test_bad_version_requests(
    client: httpx.AsyncClient,
    register_user: RegisterUser,
    path: str,
    body: dict[str, Any],
    status: int,
    errcode: str,
) -> None:
    alice = await register(client, register_user, "alice")
    assert_error(await alice.post(path, body), status, errcode)


@pytest.mark.parametrize(
    ("path", "body", "errcode"),
    [
        (f"/room_keys/keys/{ROOM}/s1", key(), "M_MISSING_PARAM"),
        (f"/room_keys/keys/{ROOM}/s1?version=1", key() | {"is_verified": "yes"}, "M_BAD_JSON"),
        (f"/room_keys/keys/{ROOM}/s1?version=1", key() | {"first_message_index": -1}, "M_BAD_JSON"),
        (f"/room_keys/keys/{ROOM}/s1?version=1", key() | {"session_data": []}, "M_BAD_JSON"),
        (f"/room_keys/keys/{ROOM}?version=1", {"sessions": []}, "M_BAD_JSON"),
        ("/room_keys/keys?version=1", {"rooms": {ROOM: {}}}, "M_BAD_JSON"),
        (
            f"/room_keys/keys/{ROOM}?version=1",
            {"sessions": {f"s{i}": key() for i in range(1001)}},
            "M_INVALID_PARAM",
        ),
        (f"/room_keys/keys/{ROOM}/{'s' * 300}?version=1", key(), "M_INVALID_PARAM"),
    ],
)
async def test_bad_key_requests(
    client: httpx.AsyncClient,
    register_user: RegisterUser,
    path: str,
    body: dict[str, Any],
    errcode: str,
) -> None:
    alice = await register(client, register_user, "alice")
    await alice.ok("POST", "/room_keys/version", {"algorithm": ALGORITHM, "auth_data": {}})
    assert_error(await alice.put(path, body), 400, errcode)
    assert (await alice.ok("GET", "/room_keys/version"))["count"] == 0
