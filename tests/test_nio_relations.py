"""matrix-nio reacts, edits, threads and redacts; the other user sees bundles and relations.

nio runs on asyncio, so the scenario runs in its own thread (as in test_nio_rooms.py).
"""

from __future__ import annotations

from typing import Any

import nio
from nio.api import RelationshipType
from plait_fixtures import RunningServer
from test_nio_rooms import in_asyncio, registered


async def test_nio_reaction_edit_thread_and_redaction(server: RunningServer) -> None:
    async def scenario() -> dict[str, Any]:
        out: dict[str, Any] = {}
        alice = await registered(server.base_url, "alice")
        bob = await registered(server.base_url, "bob")
        try:
            created = await alice.room_create(preset=nio.RoomPreset.public_chat)
            assert isinstance(created, nio.RoomCreateResponse), created
            room_id = created.room_id
            assert isinstance(await bob.join(room_id), nio.JoinResponse)

            async def send(client: nio.AsyncClient, type_: str, content: dict[str, Any]) -> str:
                sent = await client.room_send(room_id, type_, content)
                assert isinstance(sent, nio.RoomSendResponse), sent
                return str(sent.event_id)

            original = await send(alice, "m.room.message", {"msgtype": "m.text", "body": "helo"})
            reaction = await send(
                bob,
                "m.reaction",
                {"m.relates_to": {"rel_type": "m.annotation", "event_id": original, "key": "👍"}},
            )
            duplicate = await bob.room_send(
                room_id,
                "m.reaction",
                {"m.relates_to": {"rel_type": "m.annotation", "event_id": original, "key": "👍"}},
            )
            assert isinstance(duplicate, nio.RoomSendError), duplicate
            out["duplicate"] = duplicate.status_code
            edit = await send(
                alice,
                "m.room.message",
                {
                    "msgtype": "m.text",
                    "body": "* hello",
                    "m.new_content": {"msgtype": "m.text", "body": "hello"},
                    "m.relates_to": {"rel_type": "m.replace", "event_id": original},
                },
            )
            reply = await send(
                bob,
                "m.room.message",
                {
                    "msgtype": "m.text",
                    "body": "threaded",
                    "m.relates_to": {"rel_type": "m.thread", "event_id": original},
                },
            )
            oops = await send(alice, "m.room.message", {"msgtype": "m.text", "body": "oops"})
            redacted = await alice.room_redact(room_id, oops, reason="typo")
            assert isinstance(redacted, nio.RoomRedactResponse), redacted

            # Bob reads history: the original carries the bundled edit and thread summary.
            history = await bob.room_messages(room_id, start="", limit=20)
            assert isinstance(history, nio.RoomMessagesResponse), history
            by_id = {e.event_id: e for e in history.chunk}
            bundle = by_id[original].source["unsigned"]["m.relations"]
            out["bundled_edit"] = bundle["m.replace"]["event_id"]
            out["bundled_body"] = bundle["m.replace"]["content"]["m.new_content"]["body"]
            thread = bundle["m.thread"]
            out["thread"] = (thread["latest_event"]["event_id"], thread["count"])
            out["edit_id"], out["reply_id"] = edit, reply
            out["oops_redacted"] = isinstance(by_id[oops], nio.RedactedEvent)

            # The same through sync.
            synced = await bob.sync(
                timeout=0, full_state=True, sync_filter={"room": {"timeline": {"limit": 50}}}
            )
            assert isinstance(synced, nio.SyncResponse), synced
            timeline = {e.event_id: e for e in synced.rooms.join[room_id].timeline.events}
            sync_bundle = timeline[original].source["unsigned"]["m.relations"]
            out["sync_edit"] = sync_bundle["m.replace"]["event_id"]
            out["sync_oops_redacted"] = isinstance(timeline.get(oops), nio.RedactedEvent)

            # The reaction through /relations; the thread through /threads.
            reactions = [
                e.event_id
                async for e in bob.room_get_event_relations(
                    room_id, original, RelationshipType.annotation, "m.reaction"
                )
            ]
            out["reactions"] = reactions
            out["reaction_id"] = reaction
            out["threads"] = [e.event_id async for e in bob.room_get_threads(room_id)]
            out["original"] = original

            fetched = await bob.room_get_event(room_id, oops)
            assert isinstance(fetched, nio.RoomGetEventResponse), fetched
            out["get_oops_redacted"] = isinstance(fetched.event, nio.RedactedEvent)
        finally:
            await alice.close()
            await bob.close()
        return out

    out = await in_asyncio(scenario)
    assert out["duplicate"] == "M_DUPLICATE_ANNOTATION"
    assert out["bundled_edit"] == out["edit_id"]
    assert out["bundled_body"] == "hello"
    assert out["thread"] == (out["reply_id"], 1)
    assert out["oops_redacted"] is True
    assert out["sync_edit"] == out["edit_id"]
    assert out["sync_oops_redacted"] is True
    assert out["reactions"] == [out["reaction_id"]]
    assert out["threads"] == [out["original"]]
    assert out["get_oops_redacted"] is True
