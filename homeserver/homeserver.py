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

from homeserver.accounts.auth import AuthService
from homeserver.accounts.devices import DeviceService
from homeserver.accounts.interactive_auth import InteractiveAuth
from homeserver.accounts.management import AccountManagement
from homeserver.accounts.passwords import PasswordHasher
from homeserver.accounts.profiles import ProfileService
from homeserver.accounts.registration import RegistrationService
from homeserver.accounts.tokens import new_secret
from homeserver.config import Config
from homeserver.media.service import MediaService
from homeserver.media.store import LocalDiskStore
from homeserver.ratelimit import RateLimits
from homeserver.storage.database import Database
from homeserver.storage.migrate import upgrade_engine

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
    def __init__(self, config: Config, database: Database, jwt_secret: bytes) -> None:
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

    @classmethod
    async def open(cls, config: Config) -> HomeServer:
        """Create the data directory, open and migrate the database, load the secrets."""
        data_dir = Path(config.data_dir)
        await trio.to_thread.run_sync(lambda: data_dir.mkdir(parents=True, exist_ok=True))
        secret = await trio.to_thread.run_sync(load_or_create_secret, data_dir / JWT_SECRET_FILE)
        database = Database(config.effective_database_url)
        try:
            await database.run_sync(upgrade_engine)
        except BaseException:
            await database.aclose()
            raise
        log.info("homeserver %s open (database: %s)", config.server_name, database.dialect)
        return cls(config, database, secret)

    async def aclose(self) -> None:
        await self.database.aclose()
