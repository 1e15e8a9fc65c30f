"""Device-list changes in /sync and /keys/changes, and device deletion cleanup."""

from __future__ import annotations

import httpx
import trio
from e2e_helpers import Device, login, register
from plait_fixtures import RegisterUser


async def _share_room(alice: Device, bob: Device) -> str:
    room_id = await alice.create_room(preset="public_chat")
    await bob.join(room_id)
    return room_id


async def test_roommates_see_key_changes_strangers_do_not(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register(client, register_user, "alice")
    bob = await register(client, register_user, "bob")
    carol = await register(client, register_user, "carol")
    await _share_room(alice, bob)
    bob_since = (await bob.sync())["next_batch"]
    carol_since = (await carol.sync())["next_batch"]

    await alice.upload_device_keys()
    bob_sync = await bob.sync(bob_since)
    assert bob_sync["device_lists"] == {"changed": [alice.user_id], "left": []}
    carol_sync = await carol.sync(carol_since)
    assert carol_sync["device_lists"] == {"changed": [], "left": []}
    # Nothing new: no noise.
    again = await bob.sync(bob_sync["next_batch"])
    assert again["device_lists"] == {"changed": [], "left": []}
    changes = await bob.ok(
        "GET", "/keys/changes", params={"from": bob_since, "to": bob_sync["next_batch"]}
    )
    assert changes == {"changed": [alice.user_id], "left": []}
    # One-time keys alone change no device list.
    await alice.ok("POST", "/keys/upload", {"one_time_keys": alice.one_time_keys(2)})
    quiet = await bob.sync(again["next_batch"])
    assert quiet["device_lists"] == {"changed": [], "left": []}


async def test_long_poll_wakes_for_a_roommates_new_keys(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register(client, register_user, "alice")
    bob = await register(client, register_user, "bob")
    await _share_room(alice, bob)
    since = (await bob.sync())["next_batch"]
    result: dict[str, object] = {}
    started = trio.Event()

    async def wait() -> None:
        started.set()
        result.update(await bob.sync(since, timeout=30_000))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait)
        await started.wait()
        await alice.upload_device_keys()
    assert result["device_lists"] == {"changed": [alice.user_id], "left": []}


async def test_joins_and_leaves_change_device_lists(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register(client, register_user, "alice")
    bob = await register(client, register_user, "bob")
    room_id = await alice.create_room(preset="public_chat")
    since = (await alice.sync())["next_batch"]
    await bob.join(room_id)
    joined = await alice.sync(since)
    assert bob.user_id in joined["device_lists"]["changed"]
    await bob.leave(room_id)
    left = await alice.sync(joined["next_batch"])
    assert left["device_lists"] == {"changed": [], "left": [bob.user_id]}
    changes = await alice.ok(
        "GET", "/keys/changes", params={"from": since, "to": left["next_batch"]}
    )
    assert changes["left"] == [bob.user_id]


async def test_keys_changes_refuses_bad_tokens(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register(client, register_user, "alice")
    response = await alice.get("/keys/changes", params={"from": "s0"})
    assert response.status_code == 400 and response.json()["errcode"] == "M_MISSING_PARAM"
    response = await alice.get("/keys/changes", params={"from": "garbage", "to": "s0"})
    assert response.status_code == 400 and response.json()["errcode"] == "M_INVALID_PARAM"


async def test_deleting_a_device_drops_its_keys_and_messages(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register(client, register_user, "alice")
    phone = await login(alice)
    bob = await register(client, register_user, "bob")
    await _share_room(alice, bob)
    await phone.ok(
        "POST",
        "/keys/upload",
        {
            "device_keys": phone.device_keys(),
            "one_time_keys": phone.one_time_keys(3),
            "fallback_keys": phone.one_time_keys(1, 100, fallback=True),
        },
    )
    await bob.ok(
        "PUT",
        "/sendToDevice/m.test/t1",
        {"messages": {alice.user_id: {phone.device_id: {"for": "phone"}}}},
    )
    bob_since = (await bob.sync())["next_batch"]

    response = await alice.delete(f"/devices/{phone.device_id}")
    assert response.status_code == 401
    session = response.json()["session"]
    auth = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": alice.user_id},
        "password": alice.password,
        "session": session,
    }
    response = await alice.client.request(
        "DELETE",
        f"/_matrix/client/v3/devices/{phone.device_id}",
        headers=alice.headers,
        json={"auth": auth},
    )
    assert response.status_code == 200, response.text

    answer = await bob.ok("POST", "/keys/query", {"device_keys": {alice.user_id: []}})
    assert answer["device_keys"][alice.user_id] == {}
    claimed = await bob.ok(
        "POST",
        "/keys/claim",
        {"one_time_keys": {alice.user_id: {phone.device_id: "signed_curve25519"}}},
    )
    assert claimed["one_time_keys"] == {}
    bob_sync = await bob.sync(bob_since)
    assert bob_sync["device_lists"]["changed"] == [alice.user_id]
    # A device later created with the same ID starts with an empty queue.
    again = await login(alice, device_id=phone.device_id)
    assert (await again.sync())["to_device"]["events"] == []


async def test_logout_drops_keys(client: httpx.AsyncClient, register_user: RegisterUser) -> None:
    alice = await register(client, register_user, "alice")
    phone = await login(alice)
    await phone.upload_device_keys()
    await phone.ok("POST", "/logout")
    answer = await alice.ok("POST", "/keys/query", {"device_keys": {alice.user_id: []}})
    assert answer["device_keys"][alice.user_id] == {}


async def test_logout_all_drops_every_devices_keys_and_queue(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register(client, register_user, "alice")
    phone = await login(alice)
    bob = await register(client, register_user, "bob")
    for device in (alice, phone):
        await device.upload_device_keys()
    await bob.ok("PUT", "/sendToDevice/m.test/t", {"messages": {alice.user_id: {"*": {}}}})
    await phone.ok("POST", "/logout/all")
    answer = await bob.ok("POST", "/keys/query", {"device_keys": {alice.user_id: []}})
    assert answer["device_keys"][alice.user_id] == {}
    fresh = await login(alice, device_id=phone.device_id)
    assert (await fresh.sync())["to_device"]["events"] == []
