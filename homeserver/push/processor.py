"""Notification counts: every joined local member's push rules, evaluated for every new event.

A :class:`StreamFollower`: it evaluates (``evaluator.evaluate``) each event for
each local member joined to the room (never the sender) and stores the
notifying results in ``event_push_actions``. Counts are "actions after the
user's read receipt or their own latest event", so a receipt (or a reply)
clears them with no write here.

Known simplification: the room context (member count, display names, power
levels) is the room's current state when the follower reaches the event, not
the state at the event; they differ only when state changes between the send
and the (normally immediate) processing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Connection

from homeserver.push.evaluator import PushContext, evaluate
from homeserver.push.follower import StreamFollower, is_live
from homeserver.push.rules import PushRuleService
from homeserver.storage import push as store
from homeserver.storage.database import Database
from homeserver.storage.events import EventStore, StoredEvent
from homeserver.storage.timeline import last_event_of_sender

MAX_NOTIFICATIONS_PAGE = 100


class PushProcessor(StreamFollower):
    name = "push_actions"
    # A server upgraded to this version does not evaluate its whole history.
    start_from_current = True

    def __init__(
        self,
        database: Database,
        event_store: EventStore,
        head: Callable[[], int],
        rules: PushRuleService,
        server_name: str,
    ) -> None:
        super().__init__(database, event_store, head)
        self.rules = rules
        self.server_name = server_name
        self._listeners: list[Callable[[set[str]], None]] = []

    def add_listener(self, listener: Callable[[set[str]], None]) -> None:
        """Called with the users who got new push actions (the pusher sender wakes)."""
        self._listeners.append(listener)

    async def prepare(self, batch: list[StoredEvent]) -> list[store.PushAction]:
        actions: list[store.PushAction] = []
        for event in batch:
            if is_live(event):
                actions.extend(await self._actions_for(event))
        return actions

    async def _actions_for(self, event: StoredEvent) -> list[store.PushAction]:
        state = await self.event_store.get_current_state(event.room_id)
        joined: dict[str, str | None] = {}
        for (type_, state_key), member in state.items():
            if type_ != "m.room.member":
                continue
            content = member.pdu.get("content", {})
            if isinstance(content, dict) and content.get("membership") == "join":
                name = content.get("displayname")
                joined[state_key] = name if isinstance(name, str) else None
        recipients = [u for u in joined if u != event.sender and u.endswith(":" + self.server_name)]
        # An invite reaches a user who is not (yet) joined.
        invitee = event.state_key if event.type == "m.room.member" else None
        if invitee and invitee not in joined and invitee.endswith(":" + self.server_name):
            recipients.append(invitee)
        if not recipients:
            return []
        power = state.get(("m.room.power_levels", ""))
        levels: dict[str, Any] | None
        if power is not None:
            levels = power.pdu.get("content", {})
        else:
            create = state.get(("m.room.create", ""))
            creator = create.sender if create is not None else None
            levels = {"users": {creator: 100}} if creator else None
        client_event = {**event.pdu, "event_id": event.event_id}
        rule_sets = await self.rules.rule_sets(recipients)
        out: list[store.PushAction] = []
        for user_id in recipients:
            context = PushContext(
                user_id=user_id,
                display_name=joined.get(user_id),
                room_member_count=len(joined),
                power_levels=levels,
            )
            result = evaluate(rule_sets[user_id], client_event, context)
            if result.notify or result.highlight:
                out.append(
                    store.PushAction(
                        user_id=user_id,
                        event_id=event.event_id,
                        room_id=event.room_id,
                        stream_ordering=event.stream_ordering,
                        notify=result.notify,
                        highlight=result.highlight,
                        actions=list(result.actions),
                        ts=event.origin_server_ts,
                    )
                )
        return out

    def write(self, conn: Connection, batch: list[StoredEvent], prepared: Any) -> None:
        store.insert_push_actions(conn, prepared)

    def after_batch(self, batch: list[StoredEvent], prepared: Any) -> None:
        users = {a.user_id for a in prepared}
        if users:
            for listener in self._listeners:
                listener(users)

    # -- reading -----------------------------------------------------------------------

    async def counts(
        self, user_id: str, room_id: str, read_up_to: int, upto: int | None = None
    ) -> tuple[int, int]:
        """(notification_count, highlight_count) after the user's read position.

        With ``upto`` (the sync token's event position), waits (bounded) until
        the processor has handled the events up to it, so a sync reporting a
        message also counts it.
        """
        if upto is not None:
            await self.wait_for(upto)
        bound = upto if upto is not None else self._head()

        def read(conn: Connection) -> tuple[int, int]:
            # The user's own latest message marks the room read too: they have
            # evidently seen it (the sync service's rule before push counts).
            own = last_event_of_sender(conn, room_id, user_id, bound)
            return store.count_unread(conn, user_id, room_id, max(read_up_to, own))

        return await self.database.read(read)

    async def notifications(
        self, user_id: str, before: int | None, limit: int, only_highlight: bool
    ) -> list[store.PushAction]:
        limit = max(1, min(limit, MAX_NOTIFICATIONS_PAGE))
        await self.wait_for(self._head())
        return await self.database.read(
            lambda conn: store.read_notifications(conn, user_id, before, limit, only_highlight)
        )
