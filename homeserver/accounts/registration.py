"""Creating accounts, and the registration tokens that may gate it.

Spec: Client-Server API, ``POST /register`` and "Token-authenticated
registration". The user row, its profile, the token use and (unless
``inhibit_login``) the first device and session are written in one
transaction, so a failed registration leaves nothing behind.
"""

from __future__ import annotations

import logging
import re
import secrets
import string
from collections.abc import Callable

from sqlalchemy.engine import Connection

from homeserver.accounts import uia
from homeserver.accounts.auth import AuthService, LoginResult
from homeserver.accounts.passwords import PasswordHasher
from homeserver.config import Registration
from homeserver.core.identifiers import MAX_USER_ID_LENGTH, is_valid_localpart
from homeserver.errors import MatrixError, forbidden, invalid_param
from homeserver.storage import accounts as accounts_db
from homeserver.storage import registration_tokens as tokens_db
from homeserver.storage.database import Database

log = logging.getLogger(__name__)

# Spec "Token-authenticated registration": opaque identifier grammar, at most 64 characters.
_TOKEN_RE = re.compile(r"^[A-Za-z0-9._~-]{1,64}$")
_GENERATED_LOCALPART_LENGTH = 12


class Unset:
    """Marks an argument that was not given (None has a meaning: no limit)."""


UNSET = Unset()


def user_in_use() -> MatrixError:
    return MatrixError(400, "M_USER_IN_USE", "User ID already taken")


def invalid_username(error: str) -> MatrixError:
    return MatrixError(400, "M_INVALID_USERNAME", error)


def check_localpart(localpart: str, server_name: str) -> str:
    """The user ID for a new account with this localpart, or ``M_INVALID_USERNAME``.

    Spec (Appendices, "User Identifiers"): new localparts use ``a-z 0-9 . _ = - / +``
    and the whole ID is at most 255 bytes. The caller lowercases first.
    """
    if not localpart:
        raise invalid_username("Username must not be empty")
    if not is_valid_localpart(localpart):
        raise invalid_username("Username may only contain a-z, 0-9, and . _ = - / +")
    user_id = f"@{localpart}:{server_name}"
    if len(user_id.encode("utf-8")) > MAX_USER_ID_LENGTH:
        raise invalid_username(f"User ID must be at most {MAX_USER_ID_LENGTH} bytes")
    return user_id


def is_valid_registration_token(token: str) -> bool:
    return bool(_TOKEN_RE.match(token))


class RegistrationService:
    def __init__(
        self,
        *,
        mode: Registration,
        server_name: str,
        database: Database,
        auth: AuthService,
        passwords: PasswordHasher,
        clock: Callable[[], float],
    ) -> None:
        self.mode = mode
        self.server_name = server_name
        self.database = database
        self.auth = auth
        self.passwords = passwords
        self._clock = clock

    def flows(self) -> list[list[str]]:
        if self.mode == "token":
            # Token, then dummy, as Synapse offers it: matrix-nio's register_with_token
            # sends exactly this sequence and expects a 401 after the token stage.
            return [[uia.REGISTRATION_TOKEN, uia.DUMMY]]
        return [[uia.DUMMY]]

    def ensure_open(self) -> None:
        if self.mode == "closed":
            raise forbidden("Registration is disabled on this server")

    async def check_available(self, localpart: str) -> str:
        """The user ID if it is valid and free; ``M_INVALID_USERNAME``/``M_USER_IN_USE`` otherwise."""
        user_id = check_localpart(localpart, self.server_name)
        if await self.database.read(lambda conn: accounts_db.user_exists(conn, user_id)):
            raise user_in_use()
        return user_id

    async def register(
        self,
        *,
        localpart: str | None,
        password: str | None,
        session: uia.UiaSession | None,
        device_id: str | None,
        display_name: str | None,
        inhibit_login: bool,
        want_refresh: bool,
        ip: str | None,
        admin: bool = False,
    ) -> tuple[str, LoginResult | None]:
        """Create the account (and log it in unless ``inhibit_login``)."""
        password_hash = await self.passwords.hash(password) if password is not None else None
        reserved = session.reserved_token if session is not None else None
        plan = None if inhibit_login else self.auth.plan_session(device_id, want_refresh)
        now_ms = int(self._clock() * 1000)
        # A generated localpart can (rarely) collide: try a few.
        attempts = 1 if localpart is not None else 5
        for attempt in range(attempts):
            candidate = localpart if localpart is not None else _generate_localpart()
            user_id = check_localpart(candidate, self.server_name)

            def write(conn: Connection, user_id: str = user_id, candidate: str = candidate) -> None:
                accounts_db.insert_user(
                    conn,
                    user_id=user_id,
                    password_hash=password_hash,
                    created_ts=now_ms,
                    displayname=candidate,
                    admin=admin,
                )
                if reserved is not None:
                    tokens_db.complete_use(conn, reserved)
                if plan is not None:
                    self.auth.write_session(conn, user_id, plan, display_name=display_name, ip=ip)

            try:
                await self.database.run(write)
            except accounts_db.UserExists:
                if attempt + 1 == attempts:
                    raise user_in_use() from None
                continue
            if session is not None:
                session.reserved_token = None
            log.info("registered %s", user_id)
            return user_id, None if plan is None else self.auth.mint(user_id, plan)
        raise AssertionError("unreachable")

    # -- registration tokens (used by /register and, later, the admin API) ----

    async def create_token(
        self,
        token: str | None = None,
        *,
        uses_allowed: int | None = None,
        expiry_time: int | None = None,
        length: int = 16,
    ) -> tokens_db.RegistrationTokenRow:
        if token is None:
            alphabet = string.ascii_letters + string.digits + "._~-"
            token = "".join(secrets.choice(alphabet) for _ in range(max(1, min(length, 64))))
        if not is_valid_registration_token(token):
            raise invalid_param("Token must be 1-64 characters of A-Z a-z 0-9 . _ ~ -")
        if uses_allowed is not None and uses_allowed < 0:
            raise invalid_param("uses_allowed must be a non-negative integer")
        if expiry_time is not None and expiry_time <= int(self._clock() * 1000):
            raise invalid_param("expiry_time must be in the future")
        try:
            return await self.database.run(
                lambda conn: tokens_db.create_token(
                    conn, token, uses_allowed=uses_allowed, expiry_time=expiry_time
                )
            )
        except tokens_db.TokenExists:
            raise MatrixError(400, "M_INVALID_PARAM", "Token already exists") from None

    async def list_tokens(
        self, *, valid: bool | None = None
    ) -> list[tokens_db.RegistrationTokenRow]:
        rows = await self.database.read(tokens_db.list_tokens)
        if valid is None:
            return rows
        now_ms = int(self._clock() * 1000)
        return [r for r in rows if r.is_valid(now_ms) == valid]

    async def get_token(self, token: str) -> tokens_db.RegistrationTokenRow | None:
        return await self.database.read(lambda conn: tokens_db.get_token(conn, token))

    async def update_token(
        self,
        token: str,
        *,
        uses_allowed: int | Unset | None = UNSET,
        expiry_time: int | Unset | None = UNSET,
    ) -> tokens_db.RegistrationTokenRow | None:
        """Change a token's limits (None removes a limit); None if the token does not exist."""
        values: dict[str, int | None] = {}
        if not isinstance(uses_allowed, Unset):
            if uses_allowed is not None and uses_allowed < 0:
                raise invalid_param("uses_allowed must be a non-negative integer")
            values["uses_allowed"] = uses_allowed
        if not isinstance(expiry_time, Unset):
            values["expiry_time"] = expiry_time
        return await self.database.run(lambda conn: tokens_db.update_token(conn, token, values))

    async def delete_token(self, token: str) -> bool:
        return await self.database.run(lambda conn: tokens_db.delete_token(conn, token))

    async def token_validity(self, token: str) -> bool:
        """Spec ``GET .../registration_token/validity``: a hint, not a reservation."""
        if not is_valid_registration_token(token):
            raise invalid_param("Invalid token format")
        now_ms = int(self._clock() * 1000)
        return await self.database.read(lambda conn: tokens_db.is_token_valid(conn, token, now_ms))


def _generate_localpart() -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(_GENERATED_LOCALPART_LENGTH))
