"""What /sync reads from the E2E services is kept in memory: key counts, to-device and
device-list shortcuts. Each test warms the memory with a sync, changes the data through
the public API, and expects the next sync to show the change."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

import httpx
from e2e_helpers import Device, login, register
from plait_fixtures import RegisterUser, RunningServer

from homeserver.e2e.keys import E2EKeyService
from homeserver.notifier import Notifier, StreamToken
from homeserver.storage.database import Database

T = TypeVar("T")
OTK = "signed_curve25519"


async def reads_of(database: Database, call: Callable[[], Awaitable[T]]) -> tuple[T, int]:
    """``call()``'s result and how many database trips it made."""
    trips = 0
    read, run = database.read, database.run

    async def count_read(fn: Any) -> Any:
        nonlocal trips
        trips += 1
        return await read(fn)

    async def count_run(fn: Any) -> Any:
        nonlocal trips
        trips += 1
        return await run(fn)

    database.read, database.run = count_read, count_run  # type: ignore[method-assign]
    try:
        return await call(), trips
    finally:
        del database.read, database.run


async def counts(device: Device) -> tuple[dict[str, int], list[str]]:
    sync = await device.sync()
    return sync["device_one_time_keys_count"], sync["device_unused_fallback_key_types"]


async def delete_device(owner: Device, device_id: str) -> None:
    auth = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": owner.user_id},
        "password": owner.password,
    }
    body = {"devices": [device_id], "auth": auth}
    await owner.ok("POST", "/delete_devices", body)


async def test_key_counts_follow_upload_and_claims(
    client: httpx.AsyncClient, register_user: RegisterUser, server: RunningServer
) -> None:
    alice = await register(client, register_user, "alice")
    bob = await register(client, register_user, "bob")
    assert await counts(alice) == ({OTK: 0}, [])
    await alice.ok(
        "POST",
        "/keys/upload",
        {
            "one_time_keys": alice.one_time_keys(2),
            "fallback_keys": alice.one_time_keys(1, 100, True),
        },
    )
    assert await counts(alice) == ({OTK: 2}, [OTK])
    # Warm: the counts come from memory.
    keys = server.hs.e2e_keys
    answer, trips = await reads_of(
        keys.database, lambda: keys.device_key_counts(alice.user_id, alice.device_id)
    )
    assert answer == ({OTK: 2}, [OTK]) and trips == 0
    # Someone else's claim changes Alice's counts.
    claim = {"one_time_keys": {alice.user_id: {alice.device_id: OTK}}}
    for left in (1, 0):
        assert (await bob.ok("POST", "/keys/claim", claim))["one_time_keys"]
        assert await counts(alice) == ({OTK: left}, [OTK])
    # No one-time key left: the fallback key is handed out, and is no longer unused.
    assert (await bob.ok("POST", "/keys/claim", claim))["one_time_keys"]
    assert await counts(alice) == ({OTK: 0}, [])
    await alice.ok("POST", "/keys/upload", {"one_time_keys": alice.one_time_keys(3, 10)})
    assert await counts(alice) == ({OTK: 3}, [])


async def test_key_counts_of_a_deleted_device_are_forgotten(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register(client, register_user, "alice")
    phone = await login(alice, device_id="PHONE")
    await phone.ok("POST", "/keys/upload", {"one_time_keys": phone.one_time_keys(4)})
    assert await counts(phone) == ({OTK: 4}, [])
    await delete_device(alice, "PHONE")
    again = await login(alice, device_id="PHONE")
    assert await counts(again) == ({OTK: 0}, [])
    # Logout drops the keys too.
    await again.ok("POST", "/keys/upload", {"one_time_keys": again.one_time_keys(2)})
    assert await counts(again) == ({OTK: 2}, [])
    await again.ok("POST", "/logout")
    third = await login(alice, device_id="PHONE")
    assert await counts(third) == ({OTK: 0}, [])


async def test_to_device_needs_no_read_until_the_first_message(
    client: httpx.AsyncClient, register_user: RegisterUser, server: RunningServer
) -> None:
    alice = await register(client, register_user, "alice")
    bob = await register(client, register_user, "bob")
    service = server.hs.to_device
    first = await alice.sync()
    since = StreamToken.parse(first["next_batch"]).to_device
    assert await service.nothing_queued(alice.user_id, alice.device_id, since)
    assert await service.nothing_queued(alice.user_id, alice.device_id, 0)
    second = await alice.sync(first["next_batch"])
    assert second["to_device"]["events"] == []
    await bob.ok(
        "PUT",
        "/sendToDevice/m.test/t1",
        {"messages": {alice.user_id: {alice.device_id: {"n": 1}}}},
    )
    assert not await service.nothing_queued(alice.user_id, alice.device_id, since)
    third = await alice.sync(second["next_batch"])
    assert [e["content"] for e in third["to_device"]["events"]] == [{"n": 1}]
    # An initial sync of another device of hers is not confused by Alice's messages.
    other = await login(alice)
    assert (await other.sync())["to_device"]["events"] == []


async def test_device_lists_from_memory_when_only_the_user_changed(
    client: httpx.AsyncClient, register_user: RegisterUser, server: RunningServer
) -> None:
    alice = await register(client, register_user, "alice")
    bob = await register(client, register_user, "bob")
    carol = await register(client, register_user, "carol")
    room_id = await alice.create_room(preset="public_chat")
    await bob.join(room_id)
    since = (await alice.sync())["next_batch"]
    keys = server.hs.e2e_keys

    await alice.upload_device_keys()
    own = await alice.sync(since)
    assert own["device_lists"] == {"changed": [alice.user_id], "left": []}
    start, end = StreamToken.parse(since), StreamToken.parse(own["next_batch"])
    answer, trips = await reads_of(
        keys.database,
        lambda: keys.device_list_changes(alice.user_id, start.device_lists, end.device_lists),
    )
    assert answer == ([alice.user_id], []) and trips == 0

    # A stranger's change is read (Alice shares no room with Carol) and not listed;
    # a roommate's is listed.
    await carol.upload_device_keys()
    stranger = await alice.sync(own["next_batch"])
    assert stranger["device_lists"] == {"changed": [], "left": []}
    await bob.upload_device_keys()
    roommate = await alice.sync(stranger["next_batch"])
    assert roommate["device_lists"] == {"changed": [bob.user_id], "left": []}
    # Deleting a device is a change of the owner's device list, too.
    phone = await login(bob)
    after_login = (await alice.sync(roommate["next_batch"]))["next_batch"]
    await delete_device(bob, phone.device_id)
    deleted = await alice.sync(after_login)
    assert deleted["device_lists"] == {"changed": [bob.user_id], "left": []}


def test_changed_users_come_from_the_log_above_its_floor() -> None:
    keys = E2EKeyService(cast(Database, None), Notifier(), "here")
    assert keys._changed_users(0, 5) is None  # the stream position is not loaded yet
    keys._log_floor = 3
    keys._log.extend([(4, "@a:here"), (5, "@b:here"), (7, "@a:here")])
    assert keys._changed_users(2, 9) is None  # older than the log
    assert keys._changed_users(3, 5) == {"@a:here", "@b:here"}
    assert keys._changed_users(4, 6) == {"@b:here"}
    assert keys._changed_users(5, 9) == {"@a:here"}
    assert keys._changed_users(7, 9) == set()
