"""Logins, access tokens, refresh tokens, logout: who is making this request?

Every authenticated request checks the session row its JWT names, so logout,
device deletion, deactivation and refresh-token reuse take effect at once. The
rows are kept in memory (:class:`SessionCache`): every writer of the sessions
table goes through this service and drops what it changed, so the steady state
costs no database trip per request. Secrets (passwords, tokens) are never
logged; log lines name users and devices only.
"""

from __future__ import annotations

import logging
import secrets
import string
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs
from sqlalchemy.engine import Connection

from homeserver.accounts import tokens
from homeserver.accounts.passwords import PasswordHasher
from homeserver.config import AuthConfig
from homeserver.core.identifiers import parse_user_id
from homeserver.errors import MatrixError, bad_json, forbidden, missing_token, unknown_token
from homeserver.http.types import Request
from homeserver.storage import accounts as accounts_db
from homeserver.storage import devices as devices_db
from homeserver.storage import sessions as sessions_db
from homeserver.storage.database import Database

if TYPE_CHECKING:
    from homeserver.homeserver import HomeServer

log = logging.getLogger(__name__)

# Writing last_seen on every request would turn reads into writes; once in a while is enough.
LAST_SEEN_INTERVAL_S = 300.0
MAX_DEVICE_ID_LENGTH = 255
_SESSION_CACHE_MAX = 100_000
# Session rows kept in memory: one per active login; ~0.3 KiB each.
SESSION_ROWS_MAX = 20_000


@attrs.frozen
class Requester:
    """The authenticated caller of a request."""

    user_id: str
    device_id: str
    session_id: str
    is_guest: bool = False


@attrs.frozen
class LoginResult:
    user_id: str
    device_id: str
    access_token: str
    refresh_token: str | None
    expires_in_ms: int | None

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {
            "user_id": self.user_id,
            "device_id": self.device_id,
            "access_token": self.access_token,
        }
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        if self.expires_in_ms is not None:
            body["expires_in_ms"] = self.expires_in_ms
        return body


@attrs.frozen
class _NewSession:
    """What a login writes, decided before the transaction (so it can be composed)."""

    session_id: str
    device_id: str
    refresh_token: str | None
    refresh_expiry_ms: int | None


class SessionCache:
    """Session rows by session ID, bounded (least recently used goes first).

    Exact, not timed: the server is one process and every change to the sessions
    table (login replacing a device, refresh, rotation confirmed, logout, device
    deletion, password change, deactivation) goes through :class:`AuthService`,
    which calls :meth:`forget` once the change committed. Race-free: a reader
    takes :meth:`stamp` before its database read and :meth:`put` keeps the row
    only if nothing was forgotten meanwhile (a row read before a logout
    committed must not outlive it). Absent rows are never cached.
    """

    def __init__(self, max_entries: int = SESSION_ROWS_MAX) -> None:
        self.max_entries = max_entries
        self._rows: OrderedDict[str, tuple[sessions_db.SessionRow, float]] = OrderedDict()
        self._generation = 0

    def __len__(self) -> int:
        return len(self._rows)

    def stamp(self) -> int:
        return self._generation

    def get(self, session_id: str) -> tuple[sessions_db.SessionRow, float] | None:
        cached = self._rows.get(session_id)
        if cached is not None:
            self._rows.move_to_end(session_id)
        return cached

    def put(self, row: sessions_db.SessionRow, stamp: int, now: float) -> None:
        if stamp != self._generation:
            return
        self._rows[row.session_id] = (row, now)
        self._rows.move_to_end(row.session_id)
        while len(self._rows) > self.max_entries:
            self._rows.popitem(last=False)

    def forget(self, session_ids: list[str]) -> None:
        self._generation += 1
        for session_id in session_ids:
            self._rows.pop(session_id, None)


def new_device_id() -> str:
    return "".join(secrets.choice(string.ascii_uppercase) for _ in range(10))


class AuthService:
    def __init__(
        self,
        config: AuthConfig,
        database: Database,
        passwords: PasswordHasher,
        secret: bytes,
        clock: Callable[[], float],
    ) -> None:
        self.config = config
        self.database = database
        self.passwords = passwords
        self._secret = secret
        self._clock = clock
        self.sessions = SessionCache()
        # access token -> its verified claims: the signature check costs more than
        # the rest of a small request. Expiry is still checked on every use.
        self._claims_cache: dict[str, tokens.AccessClaims] = {}
        self._last_seen: dict[tuple[str, str], float] = {}
        # Deleting devices also drops their E2E keys and to-device queues
        # (homeserver/e2e/): these run inside the deleting transaction with the
        # deleted device IDs; ``devices_deleted_hooks`` run after it committed
        # (``forget_sessions`` is that point on every deletion path).
        self.device_deletion_hooks: list[Callable[[Connection, str, list[str]], None]] = []
        self.devices_deleted_hooks: list[Callable[[], None]] = []

    # -- logging in -----------------------------------------------------------

    def plan_session(self, device_id: str | None, want_refresh: bool) -> _NewSession:
        refresh = tokens.new_refresh_token() if want_refresh else None
        expiry = None
        if refresh is not None:
            expiry = int((self._clock() + self.config.refresh_token_lifetime_s) * 1000)
        return _NewSession(tokens.new_session_id(), device_id or new_device_id(), refresh, expiry)

    def write_session(
        self,
        conn: Connection,
        user_id: str,
        plan: _NewSession,
        *,
        display_name: str | None,
        ip: str | None,
    ) -> list[str]:
        """Create (or reuse) the device and a new session; return sessions it replaced.

        Spec (``POST /login`` ``device_id``): logging in with an existing device ID
        reuses the device and invalidates the access tokens it had.
        """
        now_ms = int(self._clock() * 1000)
        replaced = sessions_db.delete_device_sessions(conn, user_id, [plan.device_id])
        devices_db.upsert_device(
            conn,
            user_id=user_id,
            device_id=plan.device_id,
            display_name=display_name,
            now_ms=now_ms,
            ip=ip,
        )
        sessions_db.create_session(
            conn,
            session_id=plan.session_id,
            user_id=user_id,
            device_id=plan.device_id,
            now_ms=now_ms,
            refresh_token_hash=None
            if plan.refresh_token is None
            else tokens.hash_refresh_token(plan.refresh_token),
            refresh_expiry_ts=plan.refresh_expiry_ms,
        )
        return replaced

    def mint(self, user_id: str, plan: _NewSession, generation: int = 0) -> LoginResult:
        """The tokens for a session just written (refreshable sessions get expiring ones)."""
        now = int(self._clock())
        expires_at = None
        expires_in_ms = None
        if plan.refresh_token is not None:
            expires_at = now + self.config.access_token_lifetime_s
            expires_in_ms = self.config.access_token_lifetime_s * 1000
        access = tokens.encode_access_token(
            tokens.AccessClaims(
                user_id, plan.device_id, plan.session_id, generation, now, expires_at
            ),
            self._secret,
        )
        return LoginResult(user_id, plan.device_id, access, plan.refresh_token, expires_in_ms)

    async def login(
        self,
        user_id: str,
        *,
        device_id: str | None,
        display_name: str | None,
        want_refresh: bool,
        ip: str | None,
    ) -> LoginResult:
        plan = self.plan_session(device_id, want_refresh)
        replaced = await self.database.run(
            lambda conn: self.write_session(conn, user_id, plan, display_name=display_name, ip=ip)
        )
        self.forget_sessions(replaced)
        log.info("login: %s on device %s", user_id, plan.device_id)
        return self.mint(user_id, plan)

    async def check_password(
        self, user_id: str | None, password: str
    ) -> accounts_db.UserRow | None:
        """The active user if ``password`` is theirs; None otherwise (equal work either way)."""
        user = None
        if user_id is not None:
            user = await self.database.read(lambda conn: accounts_db.get_user(conn, user_id))
        usable = user is not None and not user.deactivated
        ok = await self.passwords.verify(user.password_hash if usable and user else None, password)
        return user if ok and usable else None

    # -- refreshing -----------------------------------------------------------

    async def refresh(self, refresh_token: str) -> LoginResult:
        """Spec: ``POST /refresh``. Single use, rotated; reuse revokes the whole session."""
        new_refresh = tokens.new_refresh_token()
        now = self._clock()
        expiry = int((now + self.config.refresh_token_lifetime_s) * 1000)
        result, row = await self.database.run(
            lambda conn: sessions_db.refresh_session(
                conn,
                presented_hash=tokens.hash_refresh_token(refresh_token),
                new_hash=tokens.hash_refresh_token(new_refresh),
                new_expiry_ts=expiry,
                now_ms=int(now * 1000),
            )
        )
        if result is sessions_db.RefreshResult.REUSED:
            if row is not None:
                self.forget_sessions([row.session_id])
                log.warning(
                    "refresh token reused: revoked session of %s on device %s",
                    row.user_id,
                    row.device_id,
                )
            raise unknown_token("Refresh token already used; the session is revoked")
        if result is not sessions_db.RefreshResult.ROTATED or row is None:
            raise unknown_token("Unknown or expired refresh token")
        self.forget_sessions([row.session_id])
        plan = _NewSession(row.session_id, row.device_id, new_refresh, expiry)
        return self.mint(row.user_id, plan, row.generation)

    # -- checking a request ---------------------------------------------------

    async def authenticate(self, access_token: str | None, ip: str | None) -> Requester:
        if access_token is None:
            raise missing_token()
        claims = self._claims_cache.get(access_token)
        if claims is None:
            try:
                claims = tokens.decode_access_token(access_token, self._secret, self._clock())
            except tokens.ExpiredToken:
                raise unknown_token("Access token has expired", soft_logout=True) from None
            except tokens.InvalidToken:
                raise unknown_token() from None
            if len(self._claims_cache) >= _SESSION_CACHE_MAX:
                self._claims_cache.clear()
            self._claims_cache[access_token] = claims
        elif claims.expires_at is not None and self._clock() >= claims.expires_at:
            raise unknown_token("Access token has expired", soft_logout=True)
        row = await self._session(claims.session_id)
        if row is None or row.revoked or row.user_id != claims.user_id:
            raise unknown_token()
        if row.device_id != claims.device_id:
            raise unknown_token()
        if row.pending_rotation and claims.generation == row.generation:
            # The client has the newest tokens: the grace period of the old refresh token ends.
            await self.database.run(
                lambda conn: sessions_db.confirm_rotation(conn, row.session_id, row.generation)
            )
            self.forget_sessions([row.session_id])
        await self._touch_device(row.user_id, row.device_id, ip)
        return Requester(row.user_id, row.device_id, row.session_id)

    async def _session(self, session_id: str) -> sessions_db.SessionRow | None:
        # ``session_cache_s`` > 0 also re-reads rows older than that (0: kept until dropped).
        max_age = self.config.session_cache_s
        now = time.monotonic()
        cached = self.sessions.get(session_id)
        if cached is not None and (max_age <= 0 or now - cached[1] < max_age):
            return cached[0]
        stamp = self.sessions.stamp()
        row = await self.database.read(lambda conn: sessions_db.get_session(conn, session_id))
        if row is not None:
            self.sessions.put(row, stamp, now)
        return row

    async def _touch_device(self, user_id: str, device_id: str, ip: str | None) -> None:
        key = (user_id, device_id)
        now = self._clock()
        last = self._last_seen.get(key)
        if last is not None and now - last < LAST_SEEN_INTERVAL_S:
            return
        if len(self._last_seen) >= _SESSION_CACHE_MAX:
            self._last_seen.clear()
        self._last_seen[key] = now
        await self.database.run(
            lambda conn: devices_db.touch(conn, user_id, device_id, int(now * 1000), ip)
        )

    def forget_sessions(self, session_ids: list[str]) -> None:
        """Drop sessions from this process's cache after ending or changing them."""
        self.sessions.forget(session_ids)
        for hook in self.devices_deleted_hooks:
            hook()

    # -- logging out ----------------------------------------------------------

    async def logout(self, requester: Requester) -> None:
        """Spec: ``POST /logout`` ends the session and deletes its device."""
        ended = await self.database.run(
            lambda conn: self.delete_devices_tx(conn, requester.user_id, [requester.device_id])
        )
        self.forget_sessions([*ended, requester.session_id])

    async def logout_all(self, user_id: str) -> None:
        ended = await self.database.run(lambda conn: self.delete_all_devices_tx(conn, user_id))
        self.forget_sessions(ended)

    def delete_devices_tx(self, conn: Connection, user_id: str, device_ids: list[str]) -> list[str]:
        ended = sessions_db.delete_device_sessions(conn, user_id, device_ids)
        devices_db.delete_devices(conn, user_id, device_ids)
        for hook in self.device_deletion_hooks:
            hook(conn, user_id, device_ids)
        for device_id in device_ids:
            self._last_seen.pop((user_id, device_id), None)
        return ended

    def delete_all_devices_tx(
        self, conn: Connection, user_id: str, *, except_device: str | None = None
    ) -> list[str]:
        ended = sessions_db.delete_user_sessions(conn, user_id, except_device=except_device)
        if self.device_deletion_hooks:
            gone = [
                d.device_id
                for d in devices_db.list_devices(conn, user_id)
                if d.device_id != except_device
            ]
            for hook in self.device_deletion_hooks:
                hook(conn, user_id, gone)
        devices_db.delete_all_devices(conn, user_id, except_device=except_device)
        return ended


async def require_user(hs: HomeServer, request: Request, *, rate_limited: bool = True) -> Requester:
    """Authenticate ``request`` (401 otherwise) and, for writes, apply the per-user limit.

    Every endpoint that needs a logged-in user calls this first. Writes (any
    method but GET/HEAD) count against the user's ``writes`` bucket unless the
    endpoint has its own limit and passes ``rate_limited=False``.
    """
    requester = await hs.auth.authenticate(request.access_token, peer_ip(request) or None)
    request.context["requester"] = requester
    if rate_limited and request.method not in ("GET", "HEAD"):
        hs.rate_limits.check("writes", requester.user_id)
    return requester


def peer_ip(request: Request) -> str:
    """The peer's address without the port (``1.2.3.4:5678``, ``[::1]:5678``)."""
    remote = request.remote
    if remote.startswith("["):
        return remote[1:].partition("]")[0]
    host, sep, port = remote.rpartition(":")
    return host if sep and port.isdigit() else remote


def password_login_error() -> MatrixError:
    """One answer for unknown user, wrong password and deactivated account."""
    return forbidden("Invalid username or password")


def login_user_id(body: dict[str, object], server_name: str) -> str | None:
    """The user a login (or UIA password stage) names, as a full user ID.

    Spec ``POST /login``: ``identifier: {type: "m.id.user", user}`` with a user ID
    or a bare localpart, or the deprecated top-level ``user``. A malformed value
    or a user on another server gives None (the caller answers as for a wrong
    password); a wrong *shape* is ``M_BAD_JSON``.
    """
    identifier = body.get("identifier")
    user: object
    if identifier is not None:
        if not isinstance(identifier, dict):
            raise bad_json("'identifier' must be an object")
        if identifier.get("type") != "m.id.user":
            raise MatrixError(400, "M_UNKNOWN", "Only the m.id.user identifier is supported")
        user = identifier.get("user")
        if not isinstance(user, str):
            raise bad_json("'identifier.user' must be a string")
    else:
        user = body.get("user")
        if user is None:
            raise bad_json("'identifier' is required")
        if not isinstance(user, str):
            raise bad_json("'user' must be a string")
    if len(user) > 255:
        return None
    if user.startswith("@"):
        parsed = parse_user_id(user)
        if parsed is None or parsed[1] != server_name:
            return None
        user = parsed[0]
    # New localparts are lower case (registration lower-cases them), so logins are too.
    return f"@{user.lower()}:{server_name}"
