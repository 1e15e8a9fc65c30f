"""Real answers of a live server validate against openapi.json's schemas.

One conversation through the main endpoints: register (the UIA 401, then the
account), login with a refresh token, refresh, whoami, versions, createRoom,
send, messages, context, event, sync (initial and incremental), media upload,
and error answers (404 M_UNRECOGNIZED, 401 M_MISSING_TOKEN, 400 M_NOT_JSON).
Each body is checked against the schema documented for its status.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest
from plait_fixtures import RunningServer
from spec_helpers import request_schema_validate, validate

C = "/_matrix/client/v3"


async def call(
    client: httpx.AsyncClient,
    method: str,
    template: str,
    *,
    params: dict[str, str] | None = None,
    token: str | None = None,
    json_body: Any = None,
    content: bytes | None = None,
    expect: int = 200,
    **path: str,
) -> Any:
    """Send a request for ``template`` and validate the answer against its schema."""
    url = template.format(**{name: quote(value, safe="") for name, value in path.items()})
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if json_body is not None:
        request_schema_validate(json_body, template, method)
    response = await client.request(
        method, url, params=params, headers=headers, json=json_body, content=content
    )
    assert response.status_code == expect, (method, url, response.text)
    body = response.json()
    validate(body, template, method, expect)
    return body


async def test_main_endpoints_answer_as_documented(client: httpx.AsyncClient) -> None:
    await call(client, "GET", "/_matrix/client/versions")
    await call(client, "GET", "/.well-known/matrix/client")
    await call(client, "GET", C + "/login")

    reg = {"username": "alice", "password": "wonderland-42"}
    uia = await call(client, "POST", C + "/register", json_body=reg, expect=401)
    assert uia["flows"] == [{"stages": ["m.login.dummy"]}]
    auth = {"type": "m.login.dummy", "session": uia["session"]}
    alice = await call(client, "POST", C + "/register", json_body={**reg, "auth": auth})
    token = alice["access_token"]

    login = await call(
        client,
        "POST",
        C + "/login",
        json_body={
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": "alice"},
            "password": "wonderland-42",
            "refresh_token": True,
        },
    )
    assert "refresh_token" in login and "expires_in_ms" in login
    refreshed = await call(
        client, "POST", C + "/refresh", json_body={"refresh_token": login["refresh_token"]}
    )
    # Using the new access token spends the old refresh token; presenting it
    # again revokes the session: 401 M_UNKNOWN_TOKEN, in the shared Error schema.
    await call(client, "GET", C + "/account/whoami", token=refreshed["access_token"])
    spent = {"refresh_token": login["refresh_token"]}
    body = await call(client, "POST", C + "/refresh", json_body=spent, expect=401)
    assert body["errcode"] == "M_UNKNOWN_TOKEN"
    await call(client, "GET", C + "/account/whoami", token=refreshed["access_token"], expect=401)

    await call(client, "GET", C + "/account/whoami", token=token)
    await call(client, "GET", C + "/capabilities", token=token)
    await call(client, "GET", C + "/devices", token=token)
    await call(client, "GET", C + "/profile/{userId}", userId=alice["user_id"])

    sync1 = await call(client, "GET", C + "/sync", token=token)
    room = await call(
        client,
        "POST",
        C + "/createRoom",
        token=token,
        json_body={"name": "Tea", "preset": "private_chat", "room_alias_name": "tea"},
    )
    room_id = room["room_id"]
    sent = await call(
        client,
        "PUT",
        C + "/rooms/{roomId}/send/{eventType}/{txnId}",
        token=token,
        json_body={"msgtype": "m.text", "body": "hello"},
        roomId=room_id,
        eventType="m.room.message",
        txnId="t1",
    )
    await call(client, "GET", C + "/rooms/{roomId}/state", token=token, roomId=room_id)
    await call(client, "GET", C + "/joined_rooms", token=token)
    await call(client, "GET", C + "/rooms/{roomId}/joined_members", token=token, roomId=room_id)
    await call(client, "GET", C + "/rooms/{roomId}/members", token=token, roomId=room_id)
    await call(client, "GET", C + "/directory/room/{roomAlias}", roomAlias="#tea:test.example")
    messages = await call(
        client,
        "GET",
        C + "/rooms/{roomId}/messages",
        token=token,
        params={"dir": "b", "limit": "5"},
        roomId=room_id,
    )
    assert messages["chunk"][0]["event_id"] == sent["event_id"]
    await call(
        client,
        "GET",
        C + "/rooms/{roomId}/context/{eventId}",
        token=token,
        roomId=room_id,
        eventId=sent["event_id"],
    )
    await call(
        client,
        "GET",
        C + "/rooms/{roomId}/event/{eventId}",
        token=token,
        roomId=room_id,
        eventId=sent["event_id"],
    )
    sync2 = await call(
        client,
        "GET",
        C + "/sync",
        token=token,
        params={"since": sync1["next_batch"], "timeout": "0"},
    )
    assert room_id in sync2["rooms"]["join"]
    await call(client, "GET", C + "/pushrules/", token=token)
    await call(client, "GET", C + "/presence/{userId}/status", token=token, userId=alice["user_id"])

    upload = await call(
        client,
        "POST",
        "/_matrix/media/v3/upload",
        token=token,
        content=b"plain text",
        params={"filename": "a.txt"},
    )
    assert upload["content_uri"].startswith("mxc://")
    await call(client, "GET", "/_matrix/client/v1/media/config", token=token)
    await call(client, "POST", "/_matrix/media/v1/create", token=token)

    # End-to-end encryption endpoints, with bodies that need no real keys.
    await call(client, "POST", C + "/keys/upload", token=token, json_body={})
    await call(
        client,
        "POST",
        C + "/keys/query",
        token=token,
        json_body={"device_keys": {alice["user_id"]: []}},
    )
    await call(client, "POST", C + "/keys/claim", token=token, json_body={"one_time_keys": {}})
    await call(
        client,
        "GET",
        C + "/keys/changes",
        token=token,
        params={"from": sync1["next_batch"], "to": sync2["next_batch"]},
    )
    await call(
        client,
        "PUT",
        C + "/sendToDevice/{eventType}/{txnId}",
        token=token,
        json_body={"messages": {}},
        eventType="m.room_key_request",
        txnId="d1",
    )
    body = await call(client, "GET", C + "/room_keys/version", token=token, expect=404)
    assert body["errcode"] == "M_NOT_FOUND"


async def test_error_answers_use_the_error_schema(client: httpx.AsyncClient) -> None:
    # Unknown path: 404 M_UNRECOGNIZED (validated against the shared Error schema).
    response = await client.get(C + "/no/such/endpoint")
    assert response.status_code == 404
    validate(response.json(), "/_matrix/client/versions", "GET", 400)  # same Error schema
    assert response.json()["errcode"] == "M_UNRECOGNIZED"
    # Wrong method on a known path: 405 M_UNRECOGNIZED.
    response = await client.delete("/_matrix/client/versions")
    assert (response.status_code, response.json()["errcode"]) == (405, "M_UNRECOGNIZED")
    body = await call(client, "GET", C + "/account/whoami", expect=401)
    assert body["errcode"] == "M_MISSING_TOKEN"
    body = await call(client, "GET", C + "/account/whoami", token="nonsense", expect=401)
    assert body["errcode"] == "M_UNKNOWN_TOKEN"
    response = await client.post(C + "/login", content=b"{not json")
    assert response.status_code == 400
    validate(response.json(), C + "/login", "POST", 400)
    assert response.json()["errcode"] == "M_NOT_JSON"
    body = await call(
        client,
        "POST",
        C + "/login",
        json_body={"type": "m.login.password", "user": "nobody", "password": "x"},
        expect=403,
    )
    assert body["errcode"] == "M_FORBIDDEN"


async def test_room_and_ephemeral_endpoints_answer_as_documented(
    client: httpx.AsyncClient,
) -> None:
    async def register(name: str) -> dict[str, Any]:
        body = {"username": name, "password": "pw-" + name, "auth": {"type": "m.login.dummy"}}
        result: dict[str, Any] = await call(client, "POST", C + "/register", json_body=body)
        return result

    alice, bob = await register("alice"), await register("bob")
    a, b = alice["access_token"], bob["access_token"]
    room = await call(
        client,
        "POST",
        C + "/createRoom",
        token=a,
        json_body={"preset": "public_chat", "visibility": "public", "name": "Lobby"},
    )
    room_id = room["room_id"]
    await call(client, "POST", C + "/join/{roomIdOrAlias}", token=b, roomIdOrAlias=room_id)
    sent = await call(
        client,
        "PUT",
        C + "/rooms/{roomId}/send/{eventType}/{txnId}",
        token=a,
        json_body={"msgtype": "m.text", "body": "hi"},
        roomId=room_id,
        eventType="m.room.message",
        txnId="1",
    )
    event_id = sent["event_id"]
    await call(
        client,
        "PUT",
        C + "/rooms/{roomId}/state/{eventType}/{stateKey}",
        token=a,
        json_body={"topic": "tea"},
        roomId=room_id,
        eventType="m.room.topic",
        stateKey="",
    )
    await call(
        client,
        "GET",
        C + "/rooms/{roomId}/state/{eventType}/{stateKey}",
        token=a,
        roomId=room_id,
        eventType="m.room.topic",
        stateKey="",
    )
    await call(client, "GET", C + "/publicRooms")
    await call(client, "POST", C + "/publicRooms", token=a, json_body={"limit": 5})
    await call(client, "GET", C + "/directory/list/room/{roomId}", roomId=room_id)
    await call(client, "GET", C + "/rooms/{roomId}/aliases", token=a, roomId=room_id)
    await call(
        client, "POST", C + "/user_directory/search", token=a, json_body={"search_term": "bo"}
    )
    await call(
        client,
        "PUT",
        C + "/rooms/{roomId}/typing/{userId}",
        token=a,
        json_body={"typing": True, "timeout": 5000},
        roomId=room_id,
        userId=alice["user_id"],
    )
    await call(
        client,
        "POST",
        C + "/rooms/{roomId}/receipt/{receiptType}/{eventId}",
        token=b,
        json_body={},
        roomId=room_id,
        receiptType="m.read",
        eventId=event_id,
    )
    await call(
        client,
        "POST",
        C + "/rooms/{roomId}/read_markers",
        token=b,
        json_body={"m.fully_read": event_id},
        roomId=room_id,
    )
    await call(
        client,
        "PUT",
        C + "/presence/{userId}/status",
        token=b,
        json_body={"presence": "online", "status_msg": "here"},
        userId=bob["user_id"],
    )
    await call(client, "GET", C + "/presence/{userId}/status", token=a, userId=bob["user_id"])
    filter_id = await call(
        client,
        "POST",
        C + "/user/{userId}/filter",
        token=b,
        json_body={"room": {"timeline": {"limit": 5}}},
        userId=bob["user_id"],
    )
    await call(
        client,
        "GET",
        C + "/user/{userId}/filter/{filterId}",
        token=b,
        userId=bob["user_id"],
        filterId=filter_id["filter_id"],
    )
    await call(
        client,
        "PUT",
        C + "/user/{userId}/rooms/{roomId}/tags/{tag}",
        token=b,
        json_body={"order": 0.5},
        userId=bob["user_id"],
        roomId=room_id,
        tag="u.work",
    )
    await call(
        client,
        "GET",
        C + "/user/{userId}/rooms/{roomId}/tags",
        token=b,
        userId=bob["user_id"],
        roomId=room_id,
    )
    await call(
        client,
        "PUT",
        C + "/user/{userId}/account_data/{type}",
        token=b,
        json_body={"theme": "dark"},
        userId=bob["user_id"],
        type="org.example.settings",
    )
    # Bob's sync now holds a timeline, typing, receipts, tags, account data, presence.
    sync = await call(
        client,
        "GET",
        C + "/sync",
        token=b,
        params={"filter": filter_id["filter_id"]},
    )
    joined = sync["rooms"]["join"][room_id]
    assert joined["timeline"]["events"]
    await call(client, "GET", C + "/rooms/{roomId}/members", token=b, roomId=room_id)
    await call(client, "GET", C + "/pushrules/global/", token=b)
    await call(
        client,
        "GET",
        C + "/pushrules/{scope}/{kind}/{ruleId}",
        token=b,
        scope="global",
        kind="override",
        ruleId=".m.rule.master",
    )
    await call(client, "GET", C + "/voip/turnServer", token=b)
    await call(client, "POST", C + "/rooms/{roomId}/leave", token=b, roomId=room_id)
    body = await call(
        client, "POST", C + "/rooms/{roomId}/forget", token=a, roomId=room_id, expect=400
    )
    assert body["errcode"] == "M_UNKNOWN"


@pytest.mark.server_config(registration="token")
async def test_token_registration_answers_as_documented(
    client: httpx.AsyncClient, server: RunningServer
) -> None:
    """authentication.md: in ``token`` mode the flow is registration token, then dummy."""
    await server.hs.registration.create_token("tea-party", uses_allowed=1)
    valid = await call(
        client,
        "GET",
        "/_matrix/client/v1/register/m.login.registration_token/validity",
        params={"token": "tea-party"},
    )
    assert valid == {"valid": True}
    reg = {"username": "alice", "password": "wonderland-42"}
    uia = await call(client, "POST", C + "/register", json_body=reg, expect=401)
    assert uia["flows"] == [{"stages": ["m.login.registration_token", "m.login.dummy"]}]
    token_stage = {"type": "m.login.registration_token", "token": "nope", "session": uia["session"]}
    failed = await call(
        client, "POST", C + "/register", json_body={**reg, "auth": token_stage}, expect=401
    )
    assert failed["errcode"] == "M_UNAUTHORIZED"
    token_stage["token"] = "tea-party"
    step = await call(
        client, "POST", C + "/register", json_body={**reg, "auth": token_stage}, expect=401
    )
    assert step["completed"] == ["m.login.registration_token"]
    dummy = {"type": "m.login.dummy", "session": uia["session"]}
    await call(client, "POST", C + "/register", json_body={**reg, "auth": dummy})


@pytest.mark.server_config(registration="closed")
async def test_closed_registration_is_forbidden(client: httpx.AsyncClient) -> None:
    body = await call(
        client,
        "POST",
        C + "/register",
        json_body={"username": "alice", "password": "x"},
        expect=403,
    )
    assert body["errcode"] == "M_FORBIDDEN"
