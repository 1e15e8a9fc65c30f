"""PUT /sendToDevice and delivery through /sync, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import trio
from e2e_helpers import Device, assert_error, login, register
from plait_fixtures import RegisterUser, RunningServer

import homeserver.e2e.to_device as to_device_service
from homeserver.notifier import StreamToken


async def send(sender: Device, txn: str, messages: dict[str, Any], kind: str = "m.test") -> None:
    await sender.ok("PUT", f"/sendToDevice/{kind}/{txn}", {"messages": messages})


async def test_delivery_in_order_fan_out_and_acknowledgement(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register(client, register_user, "alice")
    alice2 = await login(alice)
    bob = await register(client, register_user, "bob")
    await send(bob, "t1", {alice.user_id: {alice.device_id: {"n": 1}}})
    await send(bob, "t2", {alice.user_id: {"*": {"n": 2}}}, kind="m.room_key_request")
    await send(bob, "t3", {alice.user_id: {"NOSUCHDEVICE": {"n": 3}}})

    first = await alice.sync()
    assert first["to_device"]["events"] == [
        {"sender": bob.user_id, "type": "m.test", "content": {"n": 1}},
        {"sender": bob.user_id, "type": "m.room_key_request", "content": {"n": 2}},
    ]
    other = await alice2.sync()
    assert other["to_device"]["events"] == [
        {"sender": bob.user_id, "type": "m.room_key_request", "content": {"n": 2}}
    ]
    # Not acknowledged yet: an initial sync hands them out again.
    assert len((await alice.sync())["to_device"]["events"]) == 2
    # A sync with a token past them acknowledges (and deletes) them.
    second = await alice.sync(first["next_batch"])
    assert second["to_device"]["events"] == []
    assert (await alice.sync())["to_device"]["events"] == []
    # Alice's other device keeps its own queue.
    assert len((await alice2.sync())["to_device"]["events"]) == 1


async def test_transaction_ids_are_idempotent_per_device(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register(client, register_user, "alice")
    bob = await register(client, register_user, "bob")
    bob2 = await login(bob)
    target = {alice.user_id: {alice.device_id: {"n": 1}}}
    await send(bob, "same", target)
    await send(bob, "same", target)
    await send(bob2, "same", target)
    events = (await alice.sync())["to_device"]["events"]
    assert len(events) == 2


async def test_long_poll_wakes_for_a_message(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register(client, register_user, "alice")
    bob = await register(client, register_user, "bob")
    since = (await alice.sync())["next_batch"]
    result: dict[str, Any] = {}
    started = trio.Event()

    async def wait() -> None:
        started.set()
        result.update(await alice.sync(since, timeout=30_000))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait)
        await started.wait()
        await send(bob, "t", {alice.user_id: {alice.device_id: {"wake": True}}})
    assert result["to_device"]["events"] == [
        {"sender": bob.user_id, "type": "m.test", "content": {"wake": True}}
    ]


async def test_at_most_100_per_sync_rest_follows(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register(client, register_user, "alice")
    bob = await register(client, register_user, "bob")
    for i in range(105):
        await send(bob, f"t{i}", {alice.user_id: {alice.device_id: {"n": i}}})
    first = await alice.sync()
    assert [e["content"]["n"] for e in first["to_device"]["events"]] == list(range(100))
    second = await alice.sync(first["next_batch"])
    assert [e["content"]["n"] for e in second["to_device"]["events"]] == list(range(100, 105))
    third = await alice.sync(second["next_batch"])
    assert third["to_device"]["events"] == []


async def test_full_queue_is_refused_until_the_device_syncs(
    client: httpx.AsyncClient, register_user: RegisterUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(to_device_service, "MAX_QUEUED_PER_DEVICE", 3)
    alice = await register(client, register_user, "alice")
    bob = await register(client, register_user, "bob")
    target = {alice.user_id: {alice.device_id: {}}}
    for i in range(3):
        await send(bob, f"t{i}", target)
    response = await bob.put("/sendToDevice/m.test/t3", {"messages": target})
    body = assert_error(response, 429, "M_LIMIT_EXCEEDED")
    assert alice.device_id in body["error"]
    first = await alice.sync()
    assert len(first["to_device"]["events"]) == 3
    await alice.sync(first["next_batch"])
    await send(bob, "t3", target)  # the refused txn ID was not spent
    assert len((await alice.sync())["to_device"]["events"]) == 1


@pytest.mark.parametrize(
    ("body", "status", "errcode"),
    [
        ({}, 400, "M_MISSING_PARAM"),
        ({"messages": []}, 400, "M_BAD_JSON"),
        ({"messages": {"@a:test.example": []}}, 400, "M_BAD_JSON"),
        ({"messages": {"@a:test.example": {"D": "text"}}}, 400, "M_BAD_JSON"),
        ({"messages": {"@a:test.example": {"D": {"x": "y" * 70_000}}}}, 400, "M_INVALID_PARAM"),
        ({"messages": {"@a:test.example": {"D": {"x": 1.5}}}}, 400, "M_BAD_JSON"),
        (
            {"messages": {"@a:test.example": {f"D{i}": {} for i in range(1001)}}},
            400,
            "M_INVALID_PARAM",
        ),
    ],
)
async def test_bad_requests(
    client: httpx.AsyncClient,
    register_user: RegisterUser,
    body: dict[str, Any],
    status: int,
    errcode: str,
) -> None:
    bob = await register(client, register_user, "bob")
    assert_error(await bob.put("/sendToDevice/m.test/txn", body), status, errcode)


async def test_long_ids_and_anonymous_refused(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    bob = await register(client, register_user, "bob")
    response = await bob.put(f"/sendToDevice/m.test/{'x' * 300}", {"messages": {}})
    assert_error(response, 400, "M_INVALID_PARAM")
    response = await client.put("/_matrix/client/v3/sendToDevice/m.test/t", json={"messages": {}})
    assert_error(response, 401, "M_MISSING_TOKEN")


async def test_transaction_ids_are_forgotten_after_a_day(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register(client, register_user, "alice")
    bob = await register(client, register_user, "bob")
    target = {alice.user_id: {alice.device_id: {}}}
    await send(bob, "old", target)
    server.hs.clock.advance(25 * 3600)
    await send(bob, "new", target)  # prunes "old"
    await send(bob, "old", target)
    assert len((await alice.sync())["to_device"]["events"]) == 3


async def test_sync_skips_to_device_reads_only_when_nothing_is_queued(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    """Once a device acknowledged its queue, a sync with nothing newly queued for its
    user reads no to-device rows; a message queued after that is still handed out."""
    service = server.hs.to_device
    alice = await register(client, register_user, "alice")
    bob = await register(client, register_user, "bob")
    await send(bob, "t1", {alice.user_id: {alice.device_id: {"n": 1}}})
    first = await alice.sync()
    assert [e["content"] for e in first["to_device"]["events"]] == [{"n": 1}]
    token = StreamToken.parse(first["next_batch"]).to_device
    # Not acknowledged yet: the reads are needed.
    assert not await service.nothing_queued(alice.user_id, alice.device_id, token)
    second = await alice.sync(first["next_batch"])  # acknowledges n=1
    assert second["to_device"]["events"] == []
    assert await service.nothing_queued(alice.user_id, alice.device_id, token)
    third = await alice.sync(second["next_batch"])
    assert third["to_device"]["events"] == []
    # A message for Alice's other device is new for her user: read again.
    await send(bob, "t2", {alice.user_id: {"*": {"n": 2}}})
    assert not await service.nothing_queued(alice.user_id, alice.device_id, token)
    fourth = await alice.sync(third["next_batch"])
    assert [e["content"] for e in fourth["to_device"]["events"]] == [{"n": 2}]
