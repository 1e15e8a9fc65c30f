"""Relations over HTTP on both databases: send-time checks, bundled aggregations on every
read path, /relations and /threads pages, and what redaction changes."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
import trio
from plait_fixtures import RegisterUser, RunningServer
from room_http_helpers import V3, assert_error, auth, create_room, join, send, sync

V1 = "/_matrix/client/v1"
_txn = itertools.count()


def rel(rel_type: str, event_id: str, **extra: Any) -> dict[str, Any]:
    return {"m.relates_to": {"rel_type": rel_type, "event_id": event_id, **extra}}


async def put_event(
    client: httpx.AsyncClient,
    user: dict[str, Any],
    room_id: str,
    type_: str,
    content: dict[str, Any],
) -> httpx.Response:
    """Send raw content (the shared ``send`` helper adds a body and msgtype)."""
    return await client.put(
        f"{V3}/rooms/{room_id}/send/{type_}/rel{next(_txn)}", headers=auth(user), json=content
    )


async def react(
    client: httpx.AsyncClient, user: dict[str, Any], room_id: str, target: str, key: str
) -> httpx.Response:
    return await put_event(
        client, user, room_id, "m.reaction", rel("m.annotation", target, key=key)
    )


async def edit(
    client: httpx.AsyncClient, user: dict[str, Any], room_id: str, target: str, body: str
) -> httpx.Response:
    content = {
        "msgtype": "m.text",
        "body": f"* {body}",
        "m.new_content": {"msgtype": "m.text", "body": body},
        **rel("m.replace", target),
    }
    return await put_event(client, user, room_id, "m.room.message", content)


async def redact(
    client: httpx.AsyncClient, user: dict[str, Any], room_id: str, target: str
) -> None:
    response = await client.put(
        f"{V3}/rooms/{room_id}/redact/{target}/red{next(_txn)}", headers=auth(user), json={}
    )
    assert response.status_code == 200, response.text


async def get_event(
    client: httpx.AsyncClient, user: dict[str, Any], room_id: str, event_id: str
) -> dict[str, Any]:
    response = await client.get(f"{V3}/rooms/{room_id}/event/{event_id}", headers=auth(user))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def relations(
    client: httpx.AsyncClient,
    user: dict[str, Any],
    room_id: str,
    event_id: str,
    *path: str,
    **params: str,
) -> dict[str, Any]:
    suffix = "".join(f"/{p}" for p in path)
    response = await client.get(
        f"{V1}/rooms/{room_id}/relations/{event_id}{suffix}", headers=auth(user), params=params
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def ids(chunk: list[dict[str, Any]]) -> list[str]:
    return [e["event_id"] for e in chunk]


async def two_users_room(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> tuple[dict[str, Any], dict[str, Any], str]:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    room = await create_room(client, alice, preset="public_chat")
    await join(client, bob, room)
    return alice, bob, room


async def test_duplicate_reaction_refused_until_redacted(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice, bob, room = await two_users_room(client, register_user)
    message = await send(client, alice, room, "react to me")
    first = await react(client, bob, room, message, "👍")
    assert first.status_code == 200, first.text
    assert_error(await react(client, bob, room, message, "👍"), 400, "M_DUPLICATE_ANNOTATION")
    # Another key, another user, another event type: all fine.
    assert (await react(client, bob, room, message, "🎉")).status_code == 200
    assert (await react(client, alice, room, message, "👍")).status_code == 200
    other_type = await put_event(
        client, bob, room, "org.example.vote", rel("m.annotation", message, key="👍")
    )
    assert other_type.status_code == 200, other_type.text
    # Once the first reaction is redacted, the same reaction may be sent again.
    await redact(client, bob, room, first.json()["event_id"])
    again = await react(client, bob, room, message, "👍")
    assert again.status_code == 200, again.text
    # An annotation needs a key; relations must name an event of this room.
    bad = await put_event(client, bob, room, "m.reaction", rel("m.annotation", message))
    assert_error(bad, 400, "M_BAD_JSON")
    unknown = await react(client, bob, room, "$nope:test.example", "x")
    assert_error(unknown, 400, "M_BAD_JSON")
    not_object = await put_event(client, bob, room, "m.reaction", {"m.relates_to": "x"})
    assert_error(not_object, 400, "M_BAD_JSON")


async def test_edit_rules_refused_locally(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice, bob, room = await two_users_room(client, register_user)
    message = await send(client, alice, room, "original")
    # Someone else's message.
    body = assert_error(await edit(client, bob, room, message, "hijack"), 400, "M_BAD_JSON")
    assert "sender" in body["error"]
    # Another event type.
    sticker = await put_event(
        client,
        alice,
        room,
        "m.sticker",
        {"body": "x", "m.new_content": {"body": "x"}, **rel("m.replace", message)},
    )
    assert "type" in assert_error(sticker, 400, "M_BAD_JSON")["error"]
    # No m.new_content.
    bare = await put_event(
        client, alice, room, "m.room.message", {"body": "*", **rel("m.replace", message)}
    )
    assert "m.new_content" in assert_error(bare, 400, "M_BAD_JSON")["error"]
    # A state event.
    state_id = (
        await client.put(
            f"{V3}/rooms/{room}/state/m.room.topic", headers=auth(alice), json={"topic": "t"}
        )
    ).json()["event_id"]
    state_edit = await put_event(
        client,
        alice,
        room,
        "m.room.topic",
        {"topic": "u", "m.new_content": {"topic": "u"}, **rel("m.replace", state_id)},
    )
    assert_error(state_edit, 400, "M_BAD_JSON")
    # An edit of an edit.
    first = await edit(client, alice, room, message, "first")
    assert first.status_code == 200, first.text
    nested = await edit(client, alice, room, first.json()["event_id"], "nested")
    assert "edit" in assert_error(nested, 400, "M_BAD_JSON")["error"]
    # A thread off an event with a relation: 400 M_UNKNOWN (spec "Validation of m.thread").
    threaded = await put_event(
        client,
        bob,
        room,
        "m.room.message",
        {"msgtype": "m.text", "body": "t", **rel("m.thread", first.json()["event_id"])},
    )
    assert_error(threaded, 400, "M_UNKNOWN")
    # Only the valid edit is bundled.
    served = await get_event(client, bob, room, message)
    assert served["unsigned"]["m.relations"]["m.replace"]["event_id"] == first.json()["event_id"]
    assert served["content"]["body"] == "original"  # content is never replaced


async def test_bundles_on_every_read_path(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice, bob, room = await two_users_room(client, register_user)
    root = await send(client, alice, room, "root")
    edit_1 = (await edit(client, alice, room, root, "root v2")).json()["event_id"]
    edit_2 = (await edit(client, alice, room, root, "root v3")).json()["event_id"]
    reply = await send(client, bob, room, "in thread", **rel("m.thread", root))
    reply_edit = (await edit(client, bob, room, reply, "in thread v2")).json()["event_id"]
    reply_2 = await send(client, bob, room, "in thread 2", **rel("m.thread", root))
    ref = await send(client, bob, room, "see above", **rel("m.reference", root))
    await react(client, bob, room, root, "👍")

    def check(event: dict[str, Any], *, user_participated: bool) -> None:
        bundle = event["unsigned"]["m.relations"]
        assert bundle["m.replace"]["event_id"] == edit_2
        assert bundle["m.replace"]["content"]["m.new_content"]["body"] == "root v3"
        thread = bundle["m.thread"]
        assert thread["count"] == 2
        assert thread["latest_event"]["event_id"] == reply_2
        assert thread["current_user_participated"] is user_participated
        assert bundle["m.reference"] == {"chunk": [{"event_id": ref}]}
        assert "m.annotation" not in bundle

    check(await get_event(client, bob, room, root), user_participated=True)
    check(await get_event(client, alice, room, root), user_participated=True)  # root's sender
    carol = await register_user(client, "carol")
    await join(client, carol, room)
    check(await get_event(client, carol, room, root), user_participated=False)

    messages = await client.get(
        f"{V3}/rooms/{room}/messages", headers=auth(bob), params={"dir": "b", "limit": "30"}
    )
    by_id = {e["event_id"]: e for e in messages.json()["chunk"]}
    check(by_id[root], user_participated=True)
    assert "m.relations" not in by_id[edit_1]["unsigned"]

    context = await client.get(f"{V3}/rooms/{room}/context/{root}", headers=auth(bob))
    check(context.json()["event"], user_participated=True)

    synced = await sync(client, bob)
    timeline = synced["rooms"]["join"][room]["timeline"]["events"]
    check(next(e for e in timeline if e["event_id"] == root), user_participated=True)

    # The thread's latest event carries its own bundle (its edit), when it is edited.
    await redact(client, bob, room, reply_2)
    served = await get_event(client, bob, room, root)
    latest = served["unsigned"]["m.relations"]["m.thread"]["latest_event"]
    assert latest["event_id"] == reply
    assert latest["unsigned"]["m.relations"]["m.replace"]["event_id"] == reply_edit
    assert served["unsigned"]["m.relations"]["m.thread"]["count"] == 1

    searched = await client.post(
        f"{V3}/search",
        headers=auth(bob),
        json={"search_categories": {"room_events": {"search_term": "root"}}},
    )
    results = searched.json()["search_categories"]["room_events"]["results"]
    found = next(r["result"] for r in results if r["result"]["event_id"] == root)
    assert found["unsigned"]["m.relations"]["m.replace"]["event_id"] == edit_2


async def test_redactions_update_aggregations(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice, bob, room = await two_users_room(client, register_user)
    root = await send(client, alice, room, "root")
    edit_1 = (await edit(client, alice, room, root, "v2")).json()["event_id"]
    edit_2 = (await edit(client, alice, room, root, "v3")).json()["event_id"]
    reaction = (await react(client, bob, room, root, "👍")).json()["event_id"]
    reply = await send(client, bob, room, "reply", **rel("m.thread", root))

    listed = await relations(client, bob, room, root, "m.annotation")
    assert ids(listed["chunk"]) == [reaction]
    await redact(client, bob, room, reaction)
    assert (await relations(client, bob, room, root, "m.annotation"))["chunk"] == []

    # Redacting the latest edit makes the previous one the latest again.
    await redact(client, alice, room, edit_2)
    bundle = (await get_event(client, bob, room, root))["unsigned"]["m.relations"]
    assert bundle["m.replace"]["event_id"] == edit_1
    # Redacting the only thread reply removes the thread summary.
    await redact(client, bob, room, reply)
    bundle = (await get_event(client, bob, room, root))["unsigned"]["m.relations"]
    assert "m.thread" not in bundle
    # A redacted original has no bundled edit (and comes back redacted).
    await redact(client, alice, room, root)
    served = await get_event(client, bob, room, root)
    assert served["content"] == {}
    assert "redacted_because" in served["unsigned"]
    assert "m.relations" not in served["unsigned"]


async def test_relations_pages_filters_and_recursion(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice, bob, room = await two_users_room(client, register_user)
    root = await send(client, alice, room, "root")
    replies = [await send(client, bob, room, f"r{i}", **rel("m.thread", root)) for i in range(5)]
    reaction = (await react(client, alice, room, root, "👀")).json()["event_id"]
    nested = (await react(client, alice, room, replies[0], "👍")).json()["event_id"]

    everything = await relations(client, bob, room, root)
    assert ids(everything["chunk"]) == [reaction, *reversed(replies)]
    assert "recursion_depth" not in everything

    # Backwards pages of two, newest first; then forwards from the start.
    page_1 = await relations(client, bob, room, root, "m.thread", limit="2")
    assert ids(page_1["chunk"]) == [replies[4], replies[3]]
    assert "prev_batch" not in page_1
    page_2 = await relations(
        client, bob, room, root, "m.thread", limit="2", **{"from": page_1["next_batch"]}
    )
    assert ids(page_2["chunk"]) == [replies[2], replies[1]]
    assert page_2["prev_batch"] == page_1["next_batch"]
    page_3 = await relations(
        client, bob, room, root, "m.thread", limit="2", **{"from": page_2["next_batch"]}
    )
    assert ids(page_3["chunk"]) == [replies[0]]
    assert "next_batch" not in page_3
    # ``to`` stops a page; ``dir=f`` walks oldest first.
    bounded = await relations(
        client,
        bob,
        room,
        root,
        "m.thread",
        **{"from": page_1["next_batch"], "to": page_2["next_batch"]},
    )
    assert ids(bounded["chunk"]) == [replies[2], replies[1]]
    forwards = await relations(client, bob, room, root, "m.thread", dir="f", limit="3")
    assert ids(forwards["chunk"]) == replies[:3]
    rest = await relations(
        client, bob, room, root, "m.thread", dir="f", **{"from": forwards["next_batch"]}
    )
    assert ids(rest["chunk"]) == replies[3:]

    # relType + eventType filters.
    typed = await relations(client, bob, room, root, "m.annotation", "m.reaction")
    assert ids(typed["chunk"]) == [reaction]
    assert (await relations(client, bob, room, root, "m.thread", "m.reaction"))["chunk"] == []

    # recurse: the reaction to a reply is an indirect child.
    recursed = await relations(client, bob, room, root, recurse="true")
    assert recursed["recursion_depth"] == 3
    assert nested in ids(recursed["chunk"])
    flat = await relations(client, bob, room, root, recurse="false")
    assert flat["recursion_depth"] == 1
    assert nested not in ids(flat["chunk"])

    # Bad parameters.
    base = f"{V1}/rooms/{room}/relations/{root}"
    for params in (
        {"dir": "x"},
        {"limit": "-1"},
        {"limit": "0"},
        {"limit": "²"},
        {"from": "bogus"},
        {"recurse": "yes"},
    ):
        response = await client.get(base, headers=auth(bob), params=params)
        assert_error(response, 400, "M_INVALID_PARAM")
    response = await client.get(f"{V1}/rooms/{room}/relations/nope", headers=auth(bob))
    assert_error(response, 400, "M_INVALID_PARAM")
    response = await client.get(f"{base}/{'x' * 300}", headers=auth(bob))
    assert_error(response, 400, "M_INVALID_PARAM")


async def test_relations_need_sight_of_the_parent(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    eve = await register_user(client, "eve")
    room = await create_room(client, alice, preset="private_chat")
    root = await send(client, alice, room, "secret")
    await react(client, alice, room, root, "🤫")
    response = await client.get(f"{V1}/rooms/{room}/relations/{root}", headers=auth(eve))
    assert_error(response, 404, "M_NOT_FOUND")
    response = await client.get(
        f"{V1}/rooms/{room}/relations/$missing:test.example", headers=auth(alice)
    )
    assert_error(response, 404, "M_NOT_FOUND")
    response = await client.get(f"{V1}/rooms/{room}/threads", headers=auth(eve))
    assert_error(response, 403, "M_FORBIDDEN")
    response = await client.get(f"{V1}/rooms/!nope:test.example/threads", headers=auth(eve))
    assert_error(response, 404, "M_NOT_FOUND")
    response = await client.get(f"{V1}/rooms/{room}/relations/{root}")
    assert_error(response, 401, "M_MISSING_TOKEN")


async def test_threads_listing(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice, bob, room = await two_users_room(client, register_user)
    roots = [await send(client, alice, room, f"root {i}") for i in range(4)]
    await send(client, bob, room, "plain")
    # Replies: root 0 gets the latest activity, bob takes part in roots 1 and 0.
    await send(client, alice, room, "a", **rel("m.thread", roots[2]))
    await send(client, alice, room, "b", **rel("m.thread", roots[3]))
    await send(client, bob, room, "c", **rel("m.thread", roots[1]))
    await send(client, bob, room, "d", **rel("m.thread", roots[0]))

    async def threads(user: dict[str, Any], **params: str) -> dict[str, Any]:
        response = await client.get(f"{V1}/rooms/{room}/threads", headers=auth(user), params=params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    listed = await threads(alice)
    assert ids(listed["chunk"]) == [roots[0], roots[1], roots[3], roots[2]]
    assert "next_batch" not in listed
    summary = listed["chunk"][0]["unsigned"]["m.relations"]["m.thread"]
    assert summary["count"] == 1 and summary["current_user_participated"] is True

    page_1 = await threads(alice, limit="3")
    assert ids(page_1["chunk"]) == [roots[0], roots[1], roots[3]]
    page_2 = await threads(alice, limit="3", **{"from": page_1["next_batch"]})
    assert ids(page_2["chunk"]) == [roots[2]]
    assert "next_batch" not in page_2

    mine = await threads(bob, include="participated")
    assert ids(mine["chunk"]) == [roots[0], roots[1]]
    # Alice started every root, so she took part in all of them.
    assert len((await threads(alice, include="participated"))["chunk"]) == 4

    # New activity moves a thread to the top; a redacted only reply drops it.
    latest = await send(client, alice, room, "e", **rel("m.thread", roots[2]))
    assert ids((await threads(bob))["chunk"])[0] == roots[2]
    await redact(client, alice, room, latest)
    await redact(
        client,
        alice,
        room,
        (await relations(client, alice, room, roots[2]))["chunk"][0]["event_id"],
    )
    assert roots[2] not in ids((await threads(bob))["chunk"])

    for params in ({"include": "mine"}, {"limit": "x"}, {"limit": "²"}, {"from": "th²"}):
        response = await client.get(f"{V1}/rooms/{room}/threads", headers=auth(bob), params=params)
        assert_error(response, 400, "M_INVALID_PARAM")


async def test_stored_invalid_edits_are_never_bundled(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    """Edits that skipped the send-time checks (as federated events do) are ignored."""
    alice, bob, room = await two_users_room(client, register_user)
    message = await send(client, alice, room, "original")
    valid = (await edit(client, alice, room, message, "valid")).json()["event_id"]
    new_content = {"msgtype": "m.text", "body": "forged"}
    forged = {
        "msgtype": "m.text",
        "body": "* forged",
        "m.new_content": new_content,
        **rel("m.replace", message),
    }
    # Later than the valid edit, but by another sender / of another type / without new content.
    await server.hs.events.create_and_persist_event(room, "m.room.message", bob["user_id"], forged)
    await server.hs.events.create_and_persist_event(room, "m.sticker", alice["user_id"], forged)
    await server.hs.events.create_and_persist_event(
        room, "m.room.message", alice["user_id"], {"body": "*", **rel("m.replace", message)}
    )
    served = await get_event(client, bob, room, message)
    assert served["unsigned"]["m.relations"]["m.replace"]["event_id"] == valid
    # An edit of an edit is not bundled with the edit either.
    await server.hs.events.create_and_persist_event(
        room,
        "m.room.message",
        alice["user_id"],
        {"body": "*", "m.new_content": new_content, **rel("m.replace", valid)},
    )
    served = await get_event(client, bob, room, valid)
    assert "m.relations" not in served["unsigned"]
    # All of them are still listed as children by /relations.
    listed = await relations(client, bob, room, message, "m.replace")
    assert len(listed["chunk"]) == 4


async def test_concurrent_identical_reactions_one_wins(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice, bob, room = await two_users_room(client, register_user)
    message = await send(client, alice, room, "double click")
    statuses: list[int] = []

    async def one() -> None:
        statuses.append((await react(client, bob, room, message, "❤️")).status_code)

    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(one)
    assert sorted(statuses) == [200, 400, 400]
    listed = await relations(client, bob, room, message, "m.annotation")
    assert len(listed["chunk"]) == 1
