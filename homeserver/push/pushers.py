"""Pushers: where a user's notifications go, and the sender that delivers them over HTTP.

Spec: Client-Server API "Push Notifications" (``/pushers``, ``/pushers/set``)
and the Push Gateway API (``POST /_matrix/push/v1/notify``).

Delivery follows the push actions the processor stores: each HTTP pusher
remembers (``last_stream_ordering``) how far it delivered, so a restart
resumes there. One task per pusher with work to do, so a slow or failing
gateway delays only its own pushers. A failed POST is retried with
exponential backoff (``push.retry_initial_s`` doubling, capped at 60 s) up
to ``push.max_attempts``; then that notification is dropped and the next one
tried. A gateway that names a pushkey in ``rejected`` loses the pusher
(spec: the homeserver must stop sending to it).

SSRF: the gateway URL must be http(s), and the sender resolves its host and
refuses loopback, private, link-local and other non-global addresses unless
``push.gateway_ip_allowlist`` re-opens them (the rules URL previews use).
Known limit: the address is checked, then httpx resolves again (a DNS
rebinding window); Synapse does not check at all.
"""

from __future__ import annotations

import importlib
import ipaddress
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import trio

from homeserver.config import PushConfig
from homeserver.errors import MatrixError, bad_json, invalid_param, missing_param
from homeserver.media.preview import is_blocked, parse_networks, resolve
from homeserver.storage import push as store
from homeserver.storage.database import Database
from homeserver.storage.events import EventStore

if TYPE_CHECKING:
    # Imported with the first pusher to deliver to (about 6 MB a server without one never needs).
    import httpx
from homeserver.storage.timeline import read_redactions

log = logging.getLogger(__name__)

MAX_PUSHERS_PER_USER = 20
# Users remembered as having pushers or not (PusherService._has_pushers).
PUSHER_USERS_CACHED = 10_000
MAX_BATCH = 20
MAX_BACKOFF_S = 60.0
REQUEST_TIMEOUT_S = 10.0
_LIMITS = {
    "pushkey": 512,
    "app_id": 64,
    "app_display_name": 255,
    "device_display_name": 255,
    "profile_tag": 255,
    "lang": 64,
}
# The user's unread notifications across their rooms (PushProcessor.badge).
UnreadCount = Callable[[str], Awaitable[int]]


def _field(body: dict[str, Any], name: str, *, required: bool) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise missing_param(f"'{name}' is required")
        return None
    if not isinstance(value, str):
        raise bad_json(f"'{name}' must be a string")
    limit = _LIMITS[name]
    if len(value.encode()) > limit:
        raise invalid_param(f"'{name}' may be at most {limit} bytes")
    return value


def check_gateway_url(url: Any, allowlist: list[Any]) -> str:
    """An http(s) URL; an IP literal host must pass the SSRF rules now (names at delivery)."""
    if not isinstance(url, str) or len(url) > 2048:
        raise bad_json("'data.url' must be a string of at most 2048 characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise invalid_param("'data.url' must be an http or https URL")
    try:
        address = ipaddress.ip_address(parts.hostname)
    except ValueError:
        return url
    if is_blocked(address, allowlist):
        raise invalid_param("'data.url' points to a private or loopback address")
    return url


class PusherService:
    def __init__(
        self,
        database: Database,
        event_store: EventStore,
        config: PushConfig,
        unread_count: UnreadCount,
    ) -> None:
        self.database = database
        self.event_store = event_store
        self.config = config
        self.allowlist = parse_networks(config.gateway_ip_allowlist)
        self._unread_count = unread_count
        self._pending: set[str] = set()
        self._wake = trio.Event()
        self._active: set[tuple[str, str, str]] = set()
        self._dirty: set[tuple[str, str, str]] = set()
        self.delivered = 0  # statistics: notifications the gateway accepted
        # user_id -> whether they have a pusher, so a user without one costs no read
        # per batch of new actions. Cleared by every pusher change (rare); a read that
        # raced a change is not stored (the epoch moved). One process holds the table.
        self._has_pushers: OrderedDict[str, bool] = OrderedDict()
        self._pushers_epoch = 0

    def _pushers_changed(self) -> None:
        self._has_pushers.clear()
        self._pushers_epoch += 1

    async def _read_users_pushers(self, user_ids: set[str]) -> list[store.PusherRow]:
        """The pushers of ``user_ids``, in one read for those not known to have none."""
        unknown = []
        for user_id in sorted(user_ids):
            if self._has_pushers.get(user_id) is False:
                self._has_pushers.move_to_end(user_id)
            else:
                unknown.append(user_id)
        if not unknown:
            return []
        epoch = self._pushers_epoch
        rows = await self.database.read(partial(store.read_pushers_of, user_ids=unknown))
        if epoch == self._pushers_epoch:
            with_pushers = {row.user_id for row in rows}
            for user_id in unknown:
                self._has_pushers[user_id] = user_id in with_pushers
                self._has_pushers.move_to_end(user_id)
            while len(self._has_pushers) > PUSHER_USERS_CACHED:
                self._has_pushers.popitem(last=False)
        return rows

    # -- the client API -----------------------------------------------------------------

    async def get_pushers(self, user_id: str) -> list[dict[str, Any]]:
        rows = await self.database.read(lambda conn: store.read_pushers(conn, user_id))
        return [{"app_id": r.app_id, "pushkey": r.pushkey, "kind": r.kind, **r.body} for r in rows]

    async def set_pusher(self, user_id: str, device_id: str | None, body: dict[str, Any]) -> None:
        """``POST /pushers/set``: create, replace or (``kind: null``) delete."""
        pushkey = _field(body, "pushkey", required=True)
        app_id = _field(body, "app_id", required=True)
        assert pushkey is not None and app_id is not None
        if "kind" not in body:
            raise missing_param("'kind' is required")
        kind = body["kind"]
        if kind is None:
            try:
                await self.database.run(
                    lambda conn: store.delete_pushers(conn, app_id, pushkey, user_id=user_id)
                )
            finally:
                self._pushers_changed()
            return
        if kind == "email":
            raise invalid_param("This server does not send email notifications")
        if kind != "http":
            raise invalid_param("'kind' must be 'http' (or null to delete)")
        fields: dict[str, Any] = {}
        for name in ("app_display_name", "device_display_name", "lang"):
            fields[name] = _field(body, name, required=True)
        tag = _field(body, "profile_tag", required=False)
        if tag is not None:
            fields["profile_tag"] = tag
        data = body.get("data")
        if not isinstance(data, dict):
            raise bad_json("'data' must be an object")
        check_gateway_url(data.get("url"), self.allowlist)
        fmt = data.get("format")
        if fmt is not None and fmt != "event_id_only":
            raise invalid_param("'data.format' may only be 'event_id_only'")
        if len(repr(data)) > 4096:
            raise invalid_param("'data' is too large")
        fields["data"] = data
        append = body.get("append", False)
        if not isinstance(append, bool):
            raise bad_json("'append' must be a boolean")

        def txn(conn: Any) -> None:
            # Without append, the pushkey leaves every other user (spec: pushers/set).
            store.delete_pushers(conn, app_id, pushkey, user_id=None if not append else user_id)
            if store.count_pushers(conn, user_id) >= MAX_PUSHERS_PER_USER:
                raise MatrixError(400, "M_LIMIT_EXCEEDED", "Too many pushers")
            head = store.read_follower(conn, "push_actions") or 0
            row = store.PusherRow(user_id, app_id, pushkey, "http", fields, head)
            store.insert_pusher(conn, row, device_id)

        try:
            await self.database.run(txn)
        finally:
            self._pushers_changed()

    # -- delivery --------------------------------------------------------------------

    def on_new_actions(self, users: set[str]) -> None:
        """Listener of the push processor: these users have new push actions."""
        self._pending |= users
        self._wake.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with AsyncExitStack() as stack, trio.open_nursery() as n:
            http: httpx.AsyncClient | None = None
            task_status.started()
            first = True
            while True:
                users, self._pending = self._pending, set()
                self._wake = trio.Event()
                if first:
                    rows = await self.database.read(store.read_pushers)
                else:
                    rows = await self._read_users_pushers(users)
                for row in rows:
                    key = (row.user_id, row.app_id, row.pushkey)
                    if key in self._active:
                        # Its task may be past its last read: it looks again.
                        self._dirty.add(key)
                    else:
                        self._active.add(key)
                        if http is None:
                            # The first import loads a few MB of modules: not on the trio thread.
                            module = await trio.to_thread.run_sync(importlib.import_module, "httpx")
                            client: httpx.AsyncClient = module.AsyncClient(
                                timeout=REQUEST_TIMEOUT_S
                            )
                            http = await stack.enter_async_context(client)
                        n.start_soon(self._deliver_all, http, key)
                first = False
                await self._wake.wait()

    async def _deliver_all(self, http: httpx.AsyncClient, key: tuple[str, str, str]) -> None:
        user_id, app_id, pushkey = key
        try:
            while True:
                rows = await self.database.read(partial(store.read_pushers, user_id=user_id))
                pusher = next((r for r in rows if (r.app_id, r.pushkey) == key[1:]), None)
                if pusher is None:
                    return
                actions = await self.database.read(
                    partial(
                        store.read_actions_after,
                        user_id=user_id,
                        after=pusher.last_stream_ordering,
                        limit=MAX_BATCH,
                    )
                )
                if not actions:
                    if key in self._dirty:
                        self._dirty.discard(key)
                        continue
                    return
                for action in actions:
                    if not await self._deliver_one(http, pusher, action):
                        try:
                            await self.database.run(
                                partial(
                                    store.delete_pushers,
                                    app_id=app_id,
                                    pushkey=pushkey,
                                    user_id=user_id,
                                )
                            )
                        finally:
                            self._pushers_changed()
                        return
                    await self.database.run(
                        partial(
                            store.advance_pusher,
                            user_id=user_id,
                            app_id=app_id,
                            pushkey=pushkey,
                            position=action.stream_ordering,
                        )
                    )
        finally:
            self._active.discard(key)
            self._dirty.discard(key)

    async def _deliver_one(
        self, http: httpx.AsyncClient, pusher: store.PusherRow, action: store.PushAction
    ) -> bool:
        """POST one notification with retries; False if the gateway rejected the pushkey."""
        import httpx

        redacted = await self.database.read(lambda conn: read_redactions(conn, [action.event_id]))
        if redacted:
            # Redacted after its action was read: its content must not leave the server
            # (the processor has deleted the action; this batch was read before).
            return True
        body = await self._notification(pusher, action)
        url = str(pusher.body.get("data", {}).get("url", ""))
        delay = self.config.retry_initial_s
        for attempt in range(1, self.config.max_attempts + 1):
            try:
                await self._check_address(url)
                response = await http.post(url, json=body)
                if response.status_code == 200:
                    self.delivered += 1
                    rejected = response.json().get("rejected", [])
                    return not (isinstance(rejected, list) and pusher.pushkey in rejected)
                log.info("push gateway %s answered %d", url, response.status_code)
            except _Refused as refused:
                log.warning("push gateway %s refused: %s", url, refused)
                return True  # dropped; the pusher stays for when the config allows it
            except (httpx.HTTPError, ValueError, OSError) as exc:
                log.info("push gateway %s failed: %r", url, exc)
            if attempt < self.config.max_attempts:
                await trio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF_S)
        log.warning("push to %s dropped after %d attempts", url, self.config.max_attempts)
        return True

    async def _check_address(self, url: str) -> None:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            addresses = [ipaddress.ip_address(host)]
        except ValueError:
            addresses = await resolve(host, port)
        if not addresses or any(is_blocked(a, self.allowlist) for a in addresses):
            raise _Refused(f"{host} resolves to a private or loopback address")

    async def _notification(
        self, pusher: store.PusherRow, action: store.PushAction
    ) -> dict[str, Any]:
        """The Push Gateway API body (push-gateway ``notify``)."""
        data = {k: v for k, v in pusher.body.get("data", {}).items() if k != "url"}
        tweaks = {
            a["set_tweak"]: a.get("value", True)
            for a in action.actions
            if isinstance(a, dict) and isinstance(a.get("set_tweak"), str)
        }
        notification: dict[str, Any] = {
            "event_id": action.event_id,
            "room_id": action.room_id,
            "prio": "high" if action.highlight or "sound" in tweaks else "low",
            # Push Gateway API: unread messages across all the user's rooms.
            "counts": {"unread": await self._unread_count(pusher.user_id)},
            "devices": [
                {
                    "app_id": pusher.app_id,
                    "pushkey": pusher.pushkey,
                    "data": data,
                    "tweaks": tweaks,
                }
            ],
        }
        if data.get("format") != "event_id_only":
            event = await self.event_store.get_event(action.event_id)
            if event is not None:
                notification["type"] = event.type
                notification["sender"] = event.sender
                content = event.pdu.get("content")
                if isinstance(content, dict):
                    notification["content"] = content
        return {"notification": notification}


class _Refused(Exception):
    pass
