"""The HomeServer: configuration, database, secrets and services, built once.

``plait serve`` (the composition root) calls :meth:`HomeServer.open`, hands the
result to ``client_api.build_router`` and closes it on shutdown. Services get
their dependencies passed in explicitly; nothing looks them up through ``hs``
except the API handlers at the edge.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import trio

from homeserver.account_data import AccountDataService
from homeserver.accounts.auth import AuthService
from homeserver.accounts.devices import DeviceService
from homeserver.accounts.interactive_auth import InteractiveAuth
from homeserver.accounts.management import AccountManagement
from homeserver.accounts.passwords import PasswordHasher
from homeserver.accounts.profiles import ProfileService
from homeserver.accounts.registration import RegistrationService
from homeserver.accounts.tokens import new_secret
from homeserver.config import Config
from homeserver.e2e.backup import KeyBackupService
from homeserver.e2e.keys import E2EKeyService
from homeserver.e2e.sync_source import E2ESyncSource
from homeserver.e2e.to_device import ToDeviceService
from homeserver.events.creation import EventCreationService
from homeserver.keys import ServerKeys, load_or_generate_server_keys
from homeserver.media.service import MediaService
from homeserver.media.store import LocalDiskStore
from homeserver.notifier import Notifier
from homeserver.presence import PresenceService
from homeserver.push.processor import PushProcessor
from homeserver.push.pushers import PusherService
from homeserver.push.rules import PushRuleService
from homeserver.ratelimit import RateLimits
from homeserver.receipts import ReceiptService
from homeserver.rooms.creation import RoomCreationService
from homeserver.rooms.directory import DirectoryService
from homeserver.rooms.membership import MembershipService
from homeserver.rooms.state import RoomStateService
from homeserver.rooms.user_directory import UserDirectoryService
from homeserver.search.service import SearchService
from homeserver.storage.database import Database
from homeserver.storage.events import EventStore, StoredEvent
from homeserver.storage.migrate import upgrade_engine
from homeserver.sync.service import SyncService
from homeserver.sync.sources import SyncSources
from homeserver.timeline.retention import RedactionPurger
from homeserver.timeline.service import MessageService
from homeserver.typing import TypingService
from homeserver.ws import SyncStreams, WebSocketHub

log = logging.getLogger(__name__)

JWT_SECRET_FILE = "jwt_secret"


class Clock:
    """Wall-clock seconds, with an offset tests can move (token expiry, rate limits)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def load_or_create_secret(path: Path) -> bytes:
    """The JWT signing secret, created on first start with owner-only permissions."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        secret = new_secret()
        # O_EXCL: two processes starting at once must not overwrite each other's secret.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return load_or_create_secret(path)
        with os.fdopen(fd, "wb") as f:
            f.write(secret.hex().encode("ascii"))
        return secret
    try:
        secret = bytes.fromhex(data.decode("ascii").strip())
    except ValueError:
        raise RuntimeError(f"{path} is not a hex-encoded secret") from None
    if len(secret) < 32:
        raise RuntimeError(f"{path} holds a secret shorter than 32 bytes")
    return secret


class HomeServer:
    def __init__(
        self,
        config: Config,
        database: Database,
        jwt_secret: bytes,
        server_keys: ServerKeys,
        *,
        stream_position: int = 0,
    ) -> None:
        self.config = config
        self.server_name = config.server_name
        self.database = database
        self.clock = Clock()
        now = self.clock.time
        auth_config = config.auth
        self.passwords = PasswordHasher(
            time_cost=auth_config.argon2_time_cost,
            memory_cost_kib=auth_config.argon2_memory_cost_kib,
            parallelism=auth_config.argon2_parallelism,
        )
        self.rate_limits = RateLimits(config.rate_limits, now)
        self.auth = AuthService(auth_config, database, self.passwords, jwt_secret, now)
        self.interactive_auth = InteractiveAuth(database, self.auth, config.server_name, now)
        self.registration = RegistrationService(
            mode=config.effective_registration,
            server_name=config.server_name,
            database=database,
            auth=self.auth,
            passwords=self.passwords,
            clock=now,
        )
        self.accounts = AccountManagement(database, self.auth, self.passwords)
        self.devices = DeviceService(database, self.auth)
        self.profiles = ProfileService(database, config.server_name)
        self.media = MediaService(
            db=database,
            store=LocalDiskStore(Path(config.data_dir) / "media"),
            config=config.media,
            server_name=config.server_name,
            clock=now,
        )
        self.server_keys = server_keys
        # Streams and wake-ups: every service that stores a change notifies here.
        self.notifier = Notifier()
        self.notifier.set_position("events", stream_position)
        # End-to-end encryption (homeserver/e2e/): keys, to-device, key backup.
        self.e2e_keys = E2EKeyService(database, self.notifier, config.server_name)
        self.to_device = ToDeviceService(database, self.notifier, config.server_name, self._now_ms)
        self.key_backup = KeyBackupService(database)
        self.auth.device_deletion_hooks.append(self.e2e_keys.on_devices_deleted_tx)
        self.auth.device_deletion_hooks.append(self.to_device.delete_devices_tx)
        self.auth.devices_deleted_hooks.append(self.e2e_keys.flush_device_deletions)
        # Account data (homeserver/account_data.py): its own stream, read by /sync.
        self.account_data = AccountDataService(database, self.notifier)
        self.event_store = EventStore(database)
        self.events = EventCreationService(
            self.event_store,
            server_name=config.server_name,
            signing_key=server_keys.current.signing_key,
            key_id=server_keys.current.key_id,
            on_new_event=self._on_new_event,
        )
        # Rooms: creation, membership, state, aliases and directories (homeserver/rooms/).
        self.directory = DirectoryService(database, self.event_store, config.server_name)
        self.rooms = RoomCreationService(
            database,
            self.events,
            self.profiles,
            self.directory,
            self.account_data,
            config.server_name,
        )
        self.membership = MembershipService(
            database, self.event_store, self.events, self.account_data, config.server_name
        )
        self.room_state = RoomStateService(
            self.event_store, self.events, self.directory, config.server_name
        )
        self.user_directory = UserDirectoryService(database, self.event_store, self.directory)
        self.profiles.add_change_hook(self.membership.on_profile_change)
        # Typing, receipts, presence (homeserver/typing.py, receipts.py, presence.py).
        # typing.run and presence.run belong in the composition root's nursery.
        self.presence = PresenceService(database, self.notifier, config.presence, self.clock.time)
        self.typing = TypingService(self.notifier, self._is_joined, self.clock.time)
        self.events.add_new_event_hook(self.typing.on_new_event)
        self.receipts = ReceiptService(
            database,
            self.event_store,
            self.notifier,
            self._is_joined,
            self.clock.time,
            account_data=self.account_data,
            on_active=self.presence.bump_active,
        )
        # Sending, history and /sync (homeserver/timeline/, homeserver/sync/).
        self.messages = MessageService(
            database, self.event_store, self.events, self.notifier, self._now_ms
        )
        # Fresh events served without redaction/relation reads (timeline/client_events.py).
        self.events.add_new_event_hook(
            self.messages.client_events.track_new_events(config.server_name)
        )
        self.sync = SyncService(
            database,
            self.event_store,
            self.notifier,
            self.messages.client_events,
            SyncSources(
                typing=self.typing,
                receipts=self.receipts,
                presence=self.presence,
                account_data=getattr(self, "account_data", None),
                e2e=E2ESyncSource(self.e2e_keys, self.to_device),
            ),
        )
        # Member events drop the sync service's cached room summaries.
        self.events.add_new_event_hook(self.sync.on_new_event)

        # Push rules, notification counts, pushers and search (homeserver/push/,
        # homeserver/search/): followers of the event stream, woken by the hook.
        self.push_rules = PushRuleService(database, self.account_data)
        self.push = PushProcessor(
            database, self.event_store, self._events_head, self.push_rules, config.server_name
        )
        self.events.add_new_event_hook(self.push.on_new_event)
        self.receipts.add_read_receipt_hook(self.push.on_receipt)
        self.pushers = PusherService(database, self.event_store, config.push, self.push.badge)
        self.push.add_listener(self.pushers.on_new_actions)
        self.search = SearchService(
            database, self.event_store, self.messages.client_events, self._events_head
        )
        self.events.add_new_event_hook(self.search.indexer.on_new_event)
        # Redacted originals are purged after the retention period (timeline/retention.py).
        self.redaction_purger = RedactionPurger(
            database, self.event_store, config.redaction_retention_s, self.clock.time
        )
        self.events.add_new_event_hook(self.redaction_purger.on_new_event)
        self.sync.sources.push = self.push

        # WebSocket sync sessions (client_api/ws.py) report their queues here.
        self.websockets = WebSocketHub()
        # Their /sync streams: an idle one is a notifier wait, no reads, no timer.
        self.ws_streams = SyncStreams(
            database,
            self.notifier,
            self.sync,
            self.presence,
            presence_keepalive_s=max(30.0, config.presence.offline_after_s / 3),
        )

    def _events_head(self) -> int:
        return self.notifier.current_token().events

    def _now_ms(self) -> int:
        return int(self.clock.time() * 1000)

    async def _is_joined(self, user_id: str, room_id: str) -> bool:
        members = await self.event_store.get_members(room_id, "join")
        return user_id in members

    def _on_new_event(self, event: StoredEvent) -> None:
        # Members of the room wake; so does the target of a membership change
        # (an invited user is not yet in the room's member list).
        users = [event.state_key] if event.type == "m.room.member" and event.state_key else []
        self.notifier.notify("events", event.stream_ordering, rooms=[event.room_id], users=users)

    @classmethod
    async def open(cls, config: Config) -> HomeServer:
        """Create the data directory, open and migrate the database, load the secrets."""
        data_dir = Path(config.data_dir)
        await trio.to_thread.run_sync(lambda: data_dir.mkdir(parents=True, exist_ok=True))
        secret = await trio.to_thread.run_sync(load_or_create_secret, data_dir / JWT_SECRET_FILE)
        server_keys = await trio.to_thread.run_sync(load_or_generate_server_keys, data_dir)
        database = Database(config.effective_database_url)
        try:
            await database.run_sync(upgrade_engine)
        except BaseException:
            await database.aclose()
            raise
        log.info("homeserver %s open (database: %s)", config.server_name, database.dialect)
        position = await EventStore(database).get_stream_position()
        hs = cls(config, database, secret, server_keys, stream_position=position)
        await hs.receipts.load_stream_position()
        await hs.account_data.load_stream_position()
        await hs.presence.load_stream_position()
        await hs.e2e_keys.load_stream_position()
        # The dummy hash that equalizes failed-login timing, made now rather than
        # during the first login (which would then take two hashes).
        await hs.passwords.prepare()
        return hs

    async def run_services(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Run the services' background tasks (typing expiry, presence timeouts) until cancelled.

        The composition root and the test server start this next to the listeners,
        so every background task has an owner and ends with the server.
        """
        async with trio.open_nursery() as nursery:
            await nursery.start(self.typing.run)
            await nursery.start(self.presence.run)
            await nursery.start(self.push.run)
            await nursery.start(self.pushers.run)
            await nursery.start(self.search.indexer.run)
            await nursery.start(self.redaction_purger.run)
            task_status.started()

    async def aclose(self) -> None:
        await self.database.aclose()
