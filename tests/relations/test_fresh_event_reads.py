"""Events stored moments ago are served without redaction/relation reads
(``RecentEvents`` in ``timeline/client_events.py``), and a redaction, edit, reaction or
thread reply of such an event shows on every read path right away."""

from __future__ import annotations

from typing import Any

import httpx
from plait_fixtures import RegisterUser, RunningServer
from room_http_helpers import V3, auth, create_room, join, send
from test_relations_http import edit, get_event, react, redact, rel, relations

from homeserver.storage.events import StoredEvent
from homeserver.timeline.client_events import RecentEvents

V1 = "/_matrix/client/v1"


async def sync_since(
    client: httpx.AsyncClient, user: dict[str, Any], since: str | None
) -> dict[str, Any]:
    params = {"timeout": "0"} if since is None else {"timeout": "0", "since": since}
    response = await client.get(f"{V3}/sync", headers=auth(user), params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def timeline_event(synced: dict[str, Any], room: str, event_id: str) -> dict[str, Any]:
    events = synced["rooms"]["join"][room]["timeline"]["events"]
    found: dict[str, Any] = next(e for e in events if e["event_id"] == event_id)
    return found


async def messages_event(
    client: httpx.AsyncClient, user: dict[str, Any], room: str, event_id: str
) -> dict[str, Any]:
    response = await client.get(
        f"{V3}/rooms/{room}/messages", headers=auth(user), params={"dir": "b", "limit": "50"}
    )
    assert response.status_code == 200, response.text
    found: dict[str, Any] = next(e for e in response.json()["chunk"] if e["event_id"] == event_id)
    return found


async def room_with_fresh_message(
    client: httpx.AsyncClient, register_user: RegisterUser, server: RunningServer
) -> tuple[dict[str, Any], dict[str, Any], str, str, str]:
    """Alice's room with Bob; Bob's sync token; a message of Alice's served once (warm)."""
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    room = await create_room(client, alice, preset="public_chat")
    await join(client, bob, room)
    since = (await sync_since(client, bob, None))["next_batch"]
    root = await send(client, alice, room, "fresh")
    served = timeline_event(await sync_since(client, bob, since), room, root)
    assert "m.relations" not in served["unsigned"]
    assert "redacted_because" not in served["unsigned"]
    stored = await server.hs.event_store.get_event(root)
    recent = server.hs.messages.client_events.recent
    assert stored is not None and recent is not None and recent.untouched(stored)
    return alice, bob, room, since, root


async def test_fresh_message_is_served_without_reads(
    client: httpx.AsyncClient, register_user: RegisterUser, server: RunningServer
) -> None:
    _alice, bob, _room, _since, root = await room_with_fresh_message(client, register_user, server)
    client_events = server.hs.messages.client_events
    stored = await server.hs.event_store.get_event(root)
    assert stored is not None
    trips = 0
    read = client_events.database.read

    async def counting(fn: Any) -> Any:
        nonlocal trips
        trips += 1
        return await read(fn)

    client_events.database.read = counting  # type: ignore[method-assign]
    try:
        [served] = await client_events.serialize([stored], user_id=bob["user_id"])
    finally:
        del client_events.database.read
    assert served["content"]["body"] == "fresh" and trips == 0


async def test_edit_of_a_fresh_message_shows_everywhere(
    client: httpx.AsyncClient, register_user: RegisterUser, server: RunningServer
) -> None:
    alice, bob, room, since, root = await room_with_fresh_message(client, register_user, server)
    replacement = (await edit(client, alice, room, root, "fresh v2")).json()["event_id"]
    for served in (
        await get_event(client, bob, room, root),
        await messages_event(client, bob, room, root),
        timeline_event(await sync_since(client, bob, since), room, root),
    ):
        assert served["unsigned"]["m.relations"]["m.replace"]["event_id"] == replacement
    listed = await relations(client, bob, room, root, "m.replace")
    assert [e["event_id"] for e in listed["chunk"]] == [replacement]


async def test_reaction_to_a_fresh_message_shows_in_relations(
    client: httpx.AsyncClient, register_user: RegisterUser, server: RunningServer
) -> None:
    alice, bob, room, since, root = await room_with_fresh_message(client, register_user, server)
    reaction = (await react(client, bob, room, root, "👍")).json()["event_id"]
    listed = await relations(client, alice, room, root, "m.annotation")
    assert [e["event_id"] for e in listed["chunk"]] == [reaction]
    # Annotations are not bundled; the reaction itself arrives through /sync.
    synced = await sync_since(client, alice, since)
    assert timeline_event(synced, room, reaction)["content"]["m.relates_to"]["event_id"] == root


async def test_thread_reply_to_a_fresh_message_shows_everywhere(
    client: httpx.AsyncClient, register_user: RegisterUser, server: RunningServer
) -> None:
    alice, bob, room, since, root = await room_with_fresh_message(client, register_user, server)
    reply = await send(client, bob, room, "in thread", **rel("m.thread", root))
    for served in (
        await get_event(client, alice, room, root),
        await messages_event(client, alice, room, root),
        timeline_event(await sync_since(client, bob, since), room, root),
    ):
        thread = served["unsigned"]["m.relations"]["m.thread"]
        assert thread["latest_event"]["event_id"] == reply and thread["count"] == 1
    listed = await relations(client, alice, room, root, "m.thread")
    assert [e["event_id"] for e in listed["chunk"]] == [reply]
    threads = await client.get(f"{V1}/rooms/{room}/threads", headers=auth(alice))
    assert [e["event_id"] for e in threads.json()["chunk"]] == [root]


async def test_redaction_of_a_fresh_message_shows_everywhere(
    client: httpx.AsyncClient, register_user: RegisterUser, server: RunningServer
) -> None:
    alice, bob, room, since, root = await room_with_fresh_message(client, register_user, server)
    await redact(client, alice, room, root)
    for served in (
        await get_event(client, bob, room, root),
        await messages_event(client, bob, room, root),
        timeline_event(await sync_since(client, bob, since), room, root),
    ):
        assert served["content"] == {}
        assert served["unsigned"]["redacted_because"]["sender"] == alice["user_id"]


async def test_redacted_thread_reply_of_a_fresh_message_stops_counting(
    client: httpx.AsyncClient, register_user: RegisterUser, server: RunningServer
) -> None:
    alice, bob, room, _since, root = await room_with_fresh_message(client, register_user, server)
    reply = await send(client, bob, room, "in thread", **rel("m.thread", root))
    assert "m.thread" in (await get_event(client, alice, room, root))["unsigned"]["m.relations"]
    await redact(client, bob, room, reply)
    served = await get_event(client, alice, room, root)
    assert "m.relations" not in served["unsigned"]
    assert (await get_event(client, alice, room, reply))["content"] == {}


# -- RecentEvents itself ---------------------------------------------------------------


def event(
    event_id: str, stream: int, *, sender: str = "@a:here", content: Any = None, **extra: Any
) -> StoredEvent:
    pdu = {"type": extra.get("type", "m.room.message"), "content": content or {}}
    return StoredEvent(
        event_id=event_id,
        room_id="!r:here",
        type=str(pdu["type"]),
        state_key=None,
        sender=sender,
        depth=1,
        topological_ordering=1,
        stream_ordering=stream,
        origin_server_ts=0,
        rejected_reason=None,
        soft_failed=False,
        outlier=False,
        state_group_before=None,
        state_group_after=None,
        pdu=pdu,
    )


def test_only_local_events_above_the_watermark_and_never_named() -> None:
    recent = RecentEvents("here")
    old = event("$old", 5)
    assert not recent.untouched(old)  # nothing seen yet: no watermark
    first = event("$first", 10)
    recent.on_new_event(first)
    assert recent.untouched(first)
    assert not recent.untouched(old)  # stored before this process
    remote = event("$remote", 11, sender="@b:elsewhere")
    recent.on_new_event(remote)
    assert not recent.untouched(remote)  # its children may have come first
    recent.on_new_event(event("$child", 12, content=rel("m.thread", "$first")))
    assert not recent.untouched(first)
    target = event("$target", 13)
    recent.on_new_event(target)
    assert recent.untouched(target)
    redaction = event("$red", 14, content={"redacts": "$target"}, type="m.room.redaction")
    recent.on_new_event(redaction)
    assert not recent.untouched(target)
    assert recent.untouched(redaction)


def test_a_full_set_moves_the_watermark_up() -> None:
    recent = RecentEvents("here", max_touched=2)
    parents = [event(f"$p{i}", 10 + i) for i in range(3)]
    for parent in parents:
        recent.on_new_event(parent)
    recent.on_new_event(event("$c0", 20, content=rel("m.reference", "$p0")))
    recent.on_new_event(event("$c1", 21, content=rel("m.reference", "$p1")))
    assert not recent.untouched(parents[0]) and recent.untouched(parents[2])
    recent.on_new_event(event("$c2", 22, content=rel("m.reference", "$p2")))
    # Reset: everything stored so far is read again, even the parents never named.
    assert not any(recent.untouched(p) for p in parents)
    fresh = event("$fresh", 23)
    recent.on_new_event(fresh)
    assert recent.untouched(fresh)
