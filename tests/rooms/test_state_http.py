"""Room state end to end: GET /state, GET/PUT /state/{type}/{key}, permissions, limits."""

from __future__ import annotations

import httpx
import pytest
from plait_fixtures import RegisterUser
from room_helpers import V3, assert_error, make_user, quote


async def test_put_and_get_state_event(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await make_user(client, register_user, "alice")
    room_id = await alice.create_room()
    room = f"/rooms/{quote(room_id)}"
    response = await alice.put(f"{room}/state/m.room.topic", {"topic": "one"})
    assert response.status_code == 200, response.text
    event_id = response.json()["event_id"]
    assert event_id.startswith("$")
    assert (await alice.get(f"{room}/state/m.room.topic")).json() == {"topic": "one"}
    # Empty state key three ways: missing, trailing slash, explicit empty segment.
    assert (await alice.get(f"{room}/state/m.room.topic/")).json() == {"topic": "one"}
    # Custom state with a key.
    response = await alice.put(f"{room}/state/org.example.thing/k1", {"v": 1})
    assert response.status_code == 200
    assert (await alice.get(f"{room}/state/org.example.thing/k1")).json() == {"v": 1}
    assert_error(await alice.get(f"{room}/state/org.example.thing/k2"), 404, "M_NOT_FOUND")
    # Trailing slash PUT writes the empty key.
    response = await alice.put(f"{room}/state/org.example.thing/", {"v": 2})
    assert response.status_code == 200
    assert (await alice.get(f"{room}/state/org.example.thing")).json() == {"v": 2}
    # format=event returns the whole event.
    event = (await alice.get(f"{room}/state/m.room.topic", params={"format": "event"})).json()
    assert event["event_id"] == event_id
    assert event["content"] == {"topic": "one"} and event["state_key"] == ""
    assert event["sender"] == alice.user_id and event["room_id"] == room_id
    # The same content again from the same sender: the existing event.
    again = await alice.put(f"{room}/state/m.room.topic", {"topic": "one"})
    assert again.json() == {"event_id": event_id}
    # GET /state lists everything once, in client format.
    state = await alice.state(room_id)
    assert state[("m.room.topic", "")]["event_id"] == event_id
    assert state[("org.example.thing", "k1")]["content"] == {"v": 1}


async def test_state_permissions(client: httpx.AsyncClient, register_user: RegisterUser) -> None:
    alice = await make_user(client, register_user, "alice")
    bob = await make_user(client, register_user, "bob")
    carol = await make_user(client, register_user, "carol")
    room_id = await alice.create_room(preset="public_chat", name="before")
    room = f"/rooms/{quote(room_id)}"
    # Outsiders cannot read or write.
    assert_error(await carol.get(f"{room}/state"), 403, "M_FORBIDDEN")
    assert_error(await carol.get(f"{room}/state/m.room.name"), 403, "M_FORBIDDEN")
    assert_error(await carol.put(f"{room}/state/m.room.name", {"name": "x"}), 403, "M_FORBIDDEN")
    assert (await bob.join(room_id)).status_code == 200
    # Bob has power 0: state needs 50.
    assert_error(await bob.put(f"{room}/state/m.room.name", {"name": "x"}), 403, "M_FORBIDDEN")
    assert_error(
        await bob.put(f"{room}/state/m.room.power_levels", {"users": {bob.user_id: 100}}),
        403,
        "M_FORBIDDEN",
    )
    assert (await alice.get(f"{room}/state/m.room.name")).json() == {"name": "before"}
    # After leaving, Bob sees the state as it was when he left.
    assert (await bob.post(f"{room}/leave")).status_code == 200
    assert (await alice.put(f"{room}/state/m.room.name", {"name": "after"})).status_code == 200
    assert (await bob.get(f"{room}/state/m.room.name")).json() == {"name": "before"}
    names = {k: e for k, e in (await bob.state(room_id)).items() if k[0] == "m.room.name"}
    assert names[("m.room.name", "")]["content"] == {"name": "before"}


async def test_world_readable_room_state(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await make_user(client, register_user, "alice")
    carol = await make_user(client, register_user, "carol")
    room_id = await alice.create_room(
        initial_state=[
            {
                "type": "m.room.history_visibility",
                "content": {"history_visibility": "world_readable"},
            }
        ],
        name="open book",
    )
    assert (await carol.get(f"/rooms/{quote(room_id)}/state/m.room.name")).json() == {
        "name": "open book"
    }


@pytest.mark.parametrize(
    ("path", "body", "status", "errcode"),
    [
        ("/state/m.room.topic", {"topic": "a" * 70000}, 413, "M_TOO_LARGE"),
        ("/state/org.example/" + "k" * 300, {}, 400, "M_INVALID_PARAM"),
        ("/state/" + "t" * 300, {}, 400, "M_INVALID_PARAM"),
        ("/state/org.example", {"f": 0.5}, 400, "M_BAD_JSON"),
        ("/state/org.example", {"n": 2**60}, 400, "M_BAD_JSON"),
        ("/state/m.room.canonical_alias", {"alias": "nope"}, 400, "M_INVALID_PARAM"),
        ("/state/m.room.canonical_alias", {"alias": "#none:test.example"}, 400, "M_BAD_ALIAS"),
        ("/state/m.room.canonical_alias", {"alt_aliases": "#a:b"}, 400, "M_INVALID_PARAM"),
    ],
)
async def test_put_state_refusals_store_nothing(
    client: httpx.AsyncClient,
    register_user: RegisterUser,
    path: str,
    body: dict[str, object],
    status: int,
    errcode: str,
) -> None:
    alice = await make_user(client, register_user, "alice")
    room_id = await alice.create_room()
    before = {k: e["event_id"] for k, e in (await alice.state(room_id)).items()}
    assert_error(await alice.put(f"/rooms/{quote(room_id)}{path}", body), status, errcode)
    assert {k: e["event_id"] for k, e in (await alice.state(room_id)).items()} == before


async def test_put_state_not_json_and_not_object(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await make_user(client, register_user, "alice")
    room_id = await alice.create_room()
    url = f"{V3}/rooms/{quote(room_id)}/state/org.example"
    response = await client.put(url, content=b"[1]", headers=alice.headers)
    assert_error(response, 400, "M_BAD_JSON")
    response = await client.put(url, content=b"{", headers=alice.headers)
    assert_error(response, 400, "M_NOT_JSON")


async def test_canonical_alias_pointing_here(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await make_user(client, register_user, "alice")
    room_id = await alice.create_room()
    other = await alice.create_room(room_alias_name="other")
    assert other
    response = await alice.put(
        f"/directory/room/{quote('#mine:test.example')}", {"room_id": room_id}
    )
    assert response.status_code == 200
    room = f"/rooms/{quote(room_id)}"
    ok = await alice.put(
        f"{room}/state/m.room.canonical_alias",
        {"alias": "#mine:test.example", "alt_aliases": ["#remote:elsewhere.example"]},
    )
    assert ok.status_code == 200, ok.text
    assert_error(
        await alice.put(
            f"{room}/state/m.room.canonical_alias", {"alt_aliases": ["#other:test.example"]}
        ),
        400,
        "M_BAD_ALIAS",
    )


@pytest.mark.parametrize(
    ("room", "status", "errcode"),
    [("!unknown:test.example", 404, "M_NOT_FOUND"), ("not-a-room", 400, "M_INVALID_PARAM")],
)
async def test_unknown_and_malformed_rooms(
    client: httpx.AsyncClient, register_user: RegisterUser, room: str, status: int, errcode: str
) -> None:
    alice = await make_user(client, register_user, "alice")
    base = f"/rooms/{quote(room)}"
    assert_error(await alice.get(f"{base}/state"), status, errcode)
    assert_error(await alice.get(f"{base}/state/m.room.name"), status, errcode)
    assert_error(await alice.put(f"{base}/state/m.room.name", {"name": "x"}), status, errcode)


async def test_redacted_state_shows_redacted_content(
    client: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await make_user(client, register_user, "alice")
    room_id = await alice.create_room(name="secret name")
    room = f"/rooms/{quote(room_id)}"
    event = (await alice.get(f"{room}/state/m.room.name", params={"format": "event"})).json()
    response = await alice.put(f"{room}/redact/{quote(event['event_id'])}/txn1", {})
    assert response.status_code == 200, response.text
    assert (await alice.get(f"{room}/state/m.room.name")).json() == {}
    state = await alice.state(room_id)
    assert state[("m.room.name", "")]["content"] == {}
