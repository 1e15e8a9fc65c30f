"""POST /search over HTTP on both databases: ranking, order, filters, pages, context, groups,
languages without spaces, URLs, redactions, and rooms the searcher may not read."""

from __future__ import annotations

from typing import Any

import httpx
from plait_fixtures import RegisterUser, RunningServer
from room_http_helpers import V3, assert_error, auth, create_room, join, send


async def search(
    client: httpx.AsyncClient,
    user: dict[str, Any],
    term: str,
    next_batch: str | None = None,
    **criteria: Any,
) -> dict[str, Any]:
    params = {"next_batch": next_batch} if next_batch is not None else {}
    response = await client.post(
        f"{V3}/search",
        headers=auth(user),
        params=params,
        json={"search_categories": {"room_events": {"search_term": term, **criteria}}},
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["search_categories"]["room_events"]
    return result


def bodies(result: dict[str, Any]) -> list[str]:
    return [r["result"]["content"].get("body") for r in result["results"]]


async def test_ranking_order_filters_and_pages(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    room = await create_room(client, alice, preset="public_chat", name="Cooking club")
    other = await create_room(client, alice, preset="public_chat", topic="all about pasta")
    await join(client, bob, room)
    await send(client, alice, room, "pasta pasta pasta for dinner")
    await send(client, bob, room, "I had pasta yesterday and some bread")
    await send(client, alice, room, "nothing to see here")
    await send(client, alice, other, "fresh pasta recipe")
    ranked = await search(client, alice, "PASTA")
    assert ranked["count"] == 4  # three messages and the topic
    assert bodies(ranked)[0] == "pasta pasta pasta for dinner"
    assert all(isinstance(r["rank"], float) for r in ranked["results"])
    assert ranked["highlights"] == ["PASTA"]
    recent = await search(client, alice, "pasta", order_by="recent")
    assert bodies(recent)[:3] == [
        "fresh pasta recipe",
        "I had pasta yesterday and some bread",
        "pasta pasta pasta for dinner",
    ]
    assert recent["results"][3]["result"]["type"] == "m.room.topic"
    # All terms must match.
    assert bodies(await search(client, alice, "pasta bread")) == [
        "I had pasta yesterday and some bread"
    ]
    # Filters.
    only_room = await search(client, alice, "pasta", filter={"rooms": [room]})
    assert {r["result"]["room_id"] for r in only_room["results"]} == {room}
    assert only_room["count"] == 2
    assert bodies(await search(client, alice, "pasta", filter={"senders": [bob["user_id"]]})) == [
        "I had pasta yesterday and some bread"
    ]
    not_bob = await search(client, alice, "pasta", filter={"not_senders": [bob["user_id"]]})
    assert "I had pasta yesterday and some bread" not in bodies(not_bob)
    topics = await search(client, alice, "pasta", filter={"types": ["m.room.topic"]})
    assert [r["result"]["type"] for r in topics["results"]] == ["m.room.topic"]
    no_msgs = await search(client, alice, "pasta", filter={"not_types": ["m.room.message"]})
    assert [r["result"]["type"] for r in no_msgs["results"]] == ["m.room.topic"]
    assert (await search(client, alice, "pasta", keys=["content.body"]))["count"] == 3
    names = await search(client, alice, "cooking", keys=["content.name"])
    assert [r["result"]["content"]["name"] for r in names["results"]] == ["Cooking club"]
    # Pages: next_batch until the end, every result once.
    seen: list[str] = []
    token: str | None = None
    while True:
        page = await search(client, alice, "pasta", token, order_by="recent", filter={"limit": 3})
        seen.extend(r["result"]["event_id"] for r in page["results"])
        token = page.get("next_batch")
        if token is None:
            break
    assert len(seen) == len(set(seen)) == 4


async def test_context_groups_and_state(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    r = await client.put(
        f"{V3}/profile/{alice['user_id']}/displayname",
        headers=auth(alice),
        json={"displayname": "Alice A."},
    )
    assert r.status_code == 200
    room = await create_room(client, alice, preset="public_chat")
    other = await create_room(client, alice, preset="public_chat")
    ids = [await send(client, alice, room, f"message {i}") for i in range(3)]
    target = await send(client, alice, room, "the needle")
    after = [await send(client, alice, room, f"later {i}") for i in range(3)]
    await send(client, alice, other, "another needle")
    result = await search(
        client,
        alice,
        "needle",
        order_by="recent",
        event_context={"before_limit": 2, "after_limit": 1, "include_profile": True},
        groupings={"group_by": [{"key": "room_id"}]},
        include_state=True,
    )
    hit = next(r for r in result["results"] if r["result"]["event_id"] == target)
    context = hit["context"]
    assert [e["event_id"] for e in context["events_before"]] == [ids[2], ids[1]]
    assert [e["event_id"] for e in context["events_after"]] == [after[0]]
    assert isinstance(context["start"], str) and isinstance(context["end"], str)
    assert context["profile_info"][alice["user_id"]]["displayname"] == "Alice A."
    groups = result["groups"]["room_id"]
    assert set(groups) == {room, other}
    assert groups[room]["results"] == [target]
    assert sorted(g["order"] for g in groups.values()) == [1, 2]
    assert {e["type"] for e in result["state"][room]} >= {"m.room.create", "m.room.member"}
    # The context's start token pages /messages backwards from there.
    page = await client.get(
        f"{V3}/rooms/{room}/messages",
        headers=auth(alice),
        params={"from": context["start"], "dir": "b", "limit": "1"},
    )
    assert page.status_code == 200, page.text
    assert [e["event_id"] for e in page.json()["chunk"]] == [ids[0]]


async def test_languages_without_spaces_and_urls(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    room = await create_room(client, alice, preset="public_chat")
    zh = await send(client, alice, room, "我们明天去北京大学参观")
    ja = await send(client, alice, room, "東京タワーに行きました")
    th = await send(client, alice, room, "ฉันชอบกินข้าวผัด")
    url = await send(client, alice, room, "see https://example.org/docs/install_guide?lang=en")
    de = await send(client, alice, room, "Größenänderung der Straße")

    async def found(term: str) -> list[str]:
        return [r["result"]["event_id"] for r in (await search(client, alice, term))["results"]]

    assert await found("北京大学") == [zh]
    assert await found("北京") == [zh]
    assert await found("京") == [zh, ja] or sorted(await found("京")) == sorted([zh, ja])
    assert await found("タワー") == [ja]
    assert await found("東京タワー") == [ja]
    assert await found("ข้าวผัด") == [th]
    assert await found("https://example.org/docs/install_guide") == [url]
    assert await found("example.org") == [url]
    assert await found("install") == [url]
    assert await found("GRÖSSENÄNDERUNG") == [de]  # case folding: ß = ss
    assert await found("straße") == [de]
    assert await found("上海") == []
    assert await found("") == []
    assert await found("!!!") == []


async def test_only_readable_rooms_and_events(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    private = await create_room(client, alice, preset="private_chat")
    await send(client, alice, private, "secret plans")
    assert (await search(client, bob, "secret"))["results"] == []
    # Naming the room in the filter does not open it.
    named = await search(client, bob, "secret", filter={"rooms": [private]})
    assert named["results"] == [] and named["count"] == 0
    # history_visibility "joined": Bob sees only what came after his join, and
    # after he leaves, nothing newer.
    room = await create_room(
        client,
        alice,
        preset="public_chat",
        initial_state=[
            {
                "type": "m.room.history_visibility",
                "state_key": "",
                "content": {"history_visibility": "joined"},
            }
        ],
    )
    await send(client, alice, room, "topsecret before")
    await join(client, bob, room)
    during = await send(client, alice, room, "topsecret during")
    r = await client.post(f"{V3}/rooms/{room}/leave", headers=auth(bob), json={})
    assert r.status_code == 200
    await send(client, alice, room, "topsecret after")
    got = await search(client, bob, "topsecret")
    assert [x["result"]["event_id"] for x in got["results"]] == [during]
    assert len((await search(client, alice, "topsecret"))["results"]) == 3


async def test_redaction_removes_text(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    room = await create_room(client, alice, preset="public_chat")
    event_id = await send(client, alice, room, "my password is hunter2")
    assert len((await search(client, alice, "hunter2"))["results"]) == 1
    r = await client.put(f"{V3}/rooms/{room}/redact/{event_id}/r1", headers=auth(alice), json={})
    assert r.status_code == 200
    result = await search(client, alice, "hunter2")
    assert result["results"] == [] and result["count"] == 0


async def test_refusals(
    server: RunningServer, client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user(client, "alice")
    h = auth(alice)

    async def post(body: Any, **params: str) -> httpx.Response:
        return await client.post(f"{V3}/search", headers=h, json=body, params=params)

    def events(**criteria: Any) -> dict[str, Any]:
        return {"search_categories": {"room_events": {"search_term": "x", **criteria}}}

    assert_error(await post({}), 400, "M_BAD_JSON")
    assert_error(await post({"search_categories": []}), 400, "M_BAD_JSON")
    assert_error(await post({"search_categories": {"room_events": {}}}), 400, "M_BAD_JSON")
    assert_error(await post(events(search_term=5)), 400, "M_BAD_JSON")
    assert_error(await post(events(search_term="x" * 1001)), 400, "M_INVALID_PARAM")
    assert_error(await post(events(keys=["content.nope"])), 400, "M_BAD_JSON")
    assert_error(await post(events(order_by="best")), 400, "M_BAD_JSON")
    assert_error(await post(events(filter=[])), 400, "M_BAD_JSON")
    assert_error(await post(events(filter={"rooms": "x"})), 400, "M_BAD_JSON")
    assert_error(await post(events(filter={"limit": "10"})), 400, "M_BAD_JSON")
    assert_error(await post(events(filter={"senders": ["a"] * 501})), 400, "M_INVALID_PARAM")
    assert_error(await post(events(event_context=3)), 400, "M_BAD_JSON")
    assert_error(await post(events(event_context={"before_limit": "a"})), 400, "M_BAD_JSON")
    assert_error(await post(events(groupings={"group_by": [{"key": "x"}]})), 400, "M_BAD_JSON")
    assert_error(await post(events(), next_batch="abc"), 400, "M_INVALID_PARAM")
    assert_error(await client.post(f"{V3}/search", json=events()), 401, "M_MISSING_TOKEN")
    # Other categories are not searched: an empty answer.
    empty = await post({"search_categories": {}})
    assert empty.status_code == 200 and empty.json() == {"search_categories": {}}
