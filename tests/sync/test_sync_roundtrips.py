"""A woken incremental ``/sync`` in the steady state makes no database trip of its own.

The sync's own reads (memberships, presence, which rooms changed, the kept
recent events, account data, ignored users) come from memory once warm.
Trips are attributed to the innermost ``homeserver`` frame outside
``homeserver/storage/`` that asked for them: the sync's (``homeserver/sync/``,
``presence.py``) must be none; the other services' (push counts, serializing,
E2E, the access token) are theirs and only reported.
"""

from __future__ import annotations

import contextvars
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import trio
from plait_fixtures import RegisterUser, RunningServer
from timeline_helpers import V3, bearer, held_sync, make_room, send_ok, sync

_IN_SYNC: contextvars.ContextVar[bool] = contextvars.ContextVar("in_sync", default=False)
_OWN = ("homeserver/sync/", "homeserver/presence.py", "client_api/sync.py")


def _asker() -> str:
    """``file:function`` of the innermost frame outside storage and this module."""
    frame = sys._getframe(2)
    while frame is not None:
        path = frame.f_code.co_filename.replace("\\", "/")
        if (
            "/homeserver/" in path or "/client_api/" in path
        ) and "/homeserver/storage/" not in path:
            start = path.rfind("/homeserver/")
            if start < 0:
                start = path.rfind("/client_api/")
            return f"{path[start + 1 :]}:{frame.f_code.co_name}"
        frame = frame.f_back  # type: ignore[assignment]
    return "?"


class TripCounter:
    def __init__(self) -> None:
        self.trips: Counter[str] = Counter()
        self.on = False

    def own(self) -> dict[str, int]:
        return {k: n for k, n in self.trips.items() if k.startswith(_OWN)}


@pytest.fixture
def trips(server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[TripCounter]:
    """Counts the database trips made on behalf of ``SyncService.sync`` calls."""
    counter = TripCounter()
    database = server.hs.database
    sync_service = server.hs.sync

    def wrap(name: str) -> None:
        original = getattr(database, name)

        async def counted(fn: Any) -> Any:
            if counter.on and _IN_SYNC.get():
                counter.trips[_asker()] += 1
            return await original(fn)

        monkeypatch.setattr(database, name, counted)

    wrap("read")
    wrap("run")
    original_sync = sync_service.sync

    async def marked(request: Any) -> dict[str, Any]:
        token = _IN_SYNC.set(True)
        try:
            return await original_sync(request)
        finally:
            _IN_SYNC.reset(token)

    monkeypatch.setattr(sync_service, "sync", marked)
    yield counter


LAZY = {"room": {"state": {"lazy_load_members": True}, "timeline": {"limit": 5}}}


@pytest.mark.parametrize("sync_filter", [None, LAZY], ids=["default", "lazy"])
async def test_a_woken_sync_reads_nothing_itself(
    server: RunningServer,
    client: httpx.AsyncClient,
    register_user: RegisterUser,
    trips: TripCounter,
    sync_filter: dict[str, Any] | None,
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    room_id = await make_room(server.hs, alice["user_id"], joined=(bob["user_id"],))
    other = await make_room(server.hs, alice["user_id"], joined=(bob["user_id"],))
    body = await sync(client, bob["access_token"], filter=sync_filter)
    token = body["next_batch"]
    # Warm up: a few woken syncs fill the caches.
    for i in range(3):
        await send_ok(client, alice["access_token"], room_id, f"warm{i}")
        body = await sync(client, bob["access_token"], since=token, filter=sync_filter)
        token = body["next_batch"]
    await send_ok(client, alice["access_token"], other, "warm other")
    body = await sync(client, bob["access_token"], since=token, filter=sync_filter)
    token = body["next_batch"]

    result: dict[str, Any] = {}

    async def hold(since: str) -> None:
        result["body"] = await sync(
            client, bob["access_token"], since=since, timeout=20_000, filter=sync_filter
        )

    for i in range(3):
        trips.on = True

        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(hold, token)
                await trio.sleep(0.2)  # bob is waiting
                sent = await send_ok(client, alice["access_token"], room_id, f"m{i}")
        trips.on = False
        events = result["body"]["rooms"]["join"][room_id]["timeline"]["events"]
        assert [e["event_id"] for e in events] == [sent]
        token = result["body"]["next_batch"]
    print("trips in 3 woken syncs:", dict(trips.trips))
    assert trips.own() == {}


async def test_the_ignore_list_is_read_only_when_it_changes(
    server: RunningServer,
    client: httpx.AsyncClient,
    register_user: RegisterUser,
    trips: TripCounter,
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    room_id = await make_room(server.hs, alice["user_id"], joined=(bob["user_id"],))

    async def put_account_data(user: dict[str, Any], data_type: str, content: Any) -> None:
        response = await client.put(
            f"{V3}/user/{user['user_id']}/account_data/{data_type}",
            headers=bearer(user["access_token"]),
            json=content,
        )
        assert response.status_code == 200, response.text

    def bodies(body: dict[str, Any]) -> list[str]:
        room = body["rooms"]["join"].get(room_id)
        return [] if room is None else [e["content"]["body"] for e in room["timeline"]["events"]]

    await put_account_data(bob, "m.ignored_user_list", {"ignored_users": {alice["user_id"]: {}}})
    token = (await sync(client, bob["access_token"]))["next_batch"]
    trips.on = True
    for i in range(3):
        # Someone else's account data moves the stream: bob's list is not read again.
        await put_account_data(alice, "org.example.note", {"n": i})
        await send_ok(client, alice["access_token"], room_id, f"hidden{i}")
        body = await sync(client, bob["access_token"], since=token)
        assert bodies(body) == []
        token = body["next_batch"]
    assert trips.trips["homeserver/account_data.py:get_global"] == 0
    # Bob's own change is seen at once, both ways.
    await put_account_data(bob, "m.ignored_user_list", {"ignored_users": {}})
    await send_ok(client, alice["access_token"], room_id, "shown")
    body = await sync(client, bob["access_token"], since=token)
    assert bodies(body) == ["shown"]
    await put_account_data(bob, "m.ignored_user_list", {"ignored_users": {alice["user_id"]: {}}})
    await send_ok(client, alice["access_token"], room_id, "hidden again")
    body = await sync(client, bob["access_token"], since=body["next_batch"])
    assert bodies(body) == []


async def test_a_long_poll_at_the_current_token_builds_nothing_until_woken(
    server: RunningServer,
    client: httpx.AsyncClient,
    register_user: RegisterUser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The usual long-poll (since = the answer just given) waits without building an
    empty answer first; woken, or at its deadline, it builds once."""
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    room_id = await make_room(server.hs, alice["user_id"], joined=(bob["user_id"],))
    token = (await sync(client, bob["access_token"]))["next_batch"]
    service = server.hs.sync
    original = service._build
    builds: list[str] = []

    async def counted(request: Any, upto: Any, fresh: Any = None) -> Any:
        builds.append(upto.to_string())
        return await original(request, upto, fresh)

    monkeypatch.setattr(service, "_build", counted)
    # Nothing happens: one build, at the deadline, and the same token back.
    body = await sync(client, bob["access_token"], since=token, timeout=300)
    assert body["next_batch"] == token and body["rooms"]["join"] == {}
    assert builds == [token]
    builds.clear()
    sent: list[str] = []

    async def wake_bob() -> None:
        assert builds == []  # bob waits, nothing built
        sent.append(await send_ok(client, alice["access_token"], room_id, "wake up"))

    body = await held_sync(client, bob, token, wake_bob)
    events = body["rooms"]["join"][room_id]["timeline"]["events"]
    assert [e["event_id"] for e in events] == sent
    assert len(builds) == 1
    # A token behind the current one is answered at once, as before.
    builds.clear()
    body = await sync(client, bob["access_token"], since=token, timeout=20_000)
    assert [e["event_id"] for e in body["rooms"]["join"][room_id]["timeline"]["events"]] == sent
    assert len(builds) == 1
