"""matrix-nio with end-to-end encryption: two users in an encrypted room read each other.

The server never sees plaintext: nio (vodozemac underneath) uploads device and
one-time keys, queries and claims them, shares the megolm session over
to-device olm messages and sends ``m.room.encrypted`` events; each side must
decrypt the other's message. nio runs on asyncio in a worker thread while the
server serves on the trio thread (as in ``tests/test_nio.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import nio
import sqlalchemy as sa
import trio
from plait_fixtures import RunningServer

from homeserver.storage.event_tables import events

T = TypeVar("T")
ENCRYPTION = {
    "type": "m.room.encryption",
    "state_key": "",
    "content": {"algorithm": "m.megolm.v1.aes-sha2"},
}


async def in_asyncio(fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return await trio.to_thread.run_sync(lambda: asyncio.run(fn()))


def _client(server: RunningServer, store: Path, name: str) -> nio.AsyncClient:
    store.mkdir(parents=True, exist_ok=True)
    config = nio.AsyncClientConfig(encryption_enabled=True, store_sync_tokens=True)
    return nio.AsyncClient(server.base_url, name, store_path=str(store), config=config)


async def _setup(client: nio.AsyncClient, name: str) -> None:
    registered = await client.register(name, "correct horse", device_name=f"{name}'s nio")
    assert isinstance(registered, nio.RegisterResponse), registered
    assert client.olm is not None
    synced = await client.sync(timeout=0, full_state=True)
    assert isinstance(synced, nio.SyncResponse), synced
    assert client.should_upload_keys
    uploaded = await client.keys_upload()
    assert isinstance(uploaded, nio.KeysUploadResponse), uploaded


async def _send(client: nio.AsyncClient, room_id: str, body: str) -> None:
    if client.should_query_keys:
        queried = await client.keys_query()
        assert isinstance(queried, nio.KeysQueryResponse), queried
    sent = await client.room_send(
        room_id,
        "m.room.message",
        {"msgtype": "m.text", "body": body},
        ignore_unverified_devices=True,
    )
    assert isinstance(sent, nio.RoomSendResponse), sent


async def _receive(client: nio.AsyncClient, room_id: str, sender: str) -> list[str]:
    """Sync until a message from ``sender`` arrives; its decrypted bodies (or failures)."""
    for _ in range(20):
        response = await client.sync(timeout=5_000)
        assert isinstance(response, nio.SyncResponse), response
        room = response.rooms.join.get(room_id)
        events = room.timeline.events if room is not None else []
        found = [e for e in events if getattr(e, "sender", None) == sender]
        found = [e for e in found if isinstance(e, nio.RoomMessageText | nio.MegolmEvent)]
        if found:
            return [e.body if isinstance(e, nio.RoomMessageText) else "UNDECRYPTED" for e in found]
        if client.should_query_keys:
            await client.keys_query()
    raise AssertionError(f"no message from {sender}")


async def test_two_nio_clients_exchange_encrypted_messages(
    server: RunningServer, tmp_path: Path
) -> None:
    async def scenario() -> dict[str, Any]:
        alice = _client(server, tmp_path / "alice", "alice")
        bob = _client(server, tmp_path / "bob", "bob")
        out: dict[str, Any] = {}
        try:
            await _setup(alice, "alice")
            await _setup(bob, "bob")
            created = await alice.room_create(
                name="secret", invite=[bob.user_id], initial_state=[ENCRYPTION]
            )
            assert isinstance(created, nio.RoomCreateResponse), created
            room_id = created.room_id
            await bob.sync(timeout=0)
            joined = await bob.join(room_id)
            assert isinstance(joined, nio.JoinResponse), joined
            await alice.sync(timeout=0)
            await bob.sync(timeout=0)
            assert alice.rooms[room_id].encrypted
            assert bob.rooms[room_id].encrypted

            await _send(alice, room_id, "hello from alice")
            out["bob_read"] = await _receive(bob, room_id, alice.user_id)
            await _send(bob, room_id, "hello from bob")
            out["alice_read"] = await _receive(alice, room_id, bob.user_id)
            # The server stored only ciphertext.
            out["room_id"] = room_id
        finally:
            await alice.close()
            await bob.close()
        return out

    out = await in_asyncio(scenario)
    assert out["bob_read"] == ["hello from alice"]
    assert out["alice_read"] == ["hello from bob"]
    state = await server.hs.event_store.get_current_state_ids(out["room_id"])
    assert ("m.room.encryption", "") in state
    # The server saw only ciphertext.
    types = await server.hs.database.read(
        lambda conn: [
            row[0]
            for row in conn.execute(
                sa.select(events.c.type).where(events.c.room_id == out["room_id"])
            )
        ]
    )
    assert types.count("m.room.encrypted") == 2
    assert "m.room.message" not in types
