"""Runs the stages of user-interactive authentication against our accounts.

Spec: Client-Server API, "User-Interactive Authentication API". An endpoint
names its purpose and flows; :meth:`InteractiveAuth.authenticate` either
returns a session whose flow is complete, or raises the 401 that tells the
client what to do next. A first request that already carries a satisfying
``auth`` dict and no session succeeds at once (clients such as nio send
``m.login.dummy`` up front).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from homeserver.accounts import uia
from homeserver.accounts.auth import AuthService, login_user_id
from homeserver.errors import MatrixError, bad_json
from homeserver.storage import registration_tokens as tokens_db
from homeserver.storage.database import Database

log = logging.getLogger(__name__)

MAX_REGISTRATION_TOKEN_LENGTH = 64


class InteractiveAuth:
    def __init__(
        self,
        database: Database,
        auth: AuthService,
        server_name: str,
        clock: Callable[[], float],
        store: uia.UiaSessionStore | None = None,
    ) -> None:
        self.database = database
        self.auth = auth
        self.server_name = server_name
        self._clock = clock
        self.store = store or uia.UiaSessionStore()

    async def authenticate(
        self,
        auth: Any,
        *,
        purpose: str,
        flows: list[list[str]],
        user_id: str | None,
    ) -> uia.UiaSession:
        """Advance UIA for this request; return the session once a flow is complete."""
        await self.sweep()
        now = self._clock()
        if auth is None:
            session = self.store.create(purpose, user_id, now)
            raise uia.uia_required(session, flows)
        if not isinstance(auth, dict):
            raise bad_json("'auth' must be an object")
        session_id = auth.get("session")
        if session_id is None:
            session = self.store.create(purpose, user_id, now)
        else:
            if not isinstance(session_id, str) or len(session_id) > uia.MAX_SESSION_ID_LENGTH:
                raise bad_json("'auth.session' must be a string")
            found = self.store.get(session_id, now)
            if found is None or found.purpose != purpose or found.user_id != user_id:
                # Unknown, expired, or started for another operation or user.
                raise MatrixError(400, "M_UNKNOWN", "Unknown or expired UIA session")
            session = found
        stage = auth.get("type")
        if stage is not None:
            if not isinstance(stage, str):
                raise bad_json("'auth.type' must be a string")
            if stage not in session.completed:
                # A stage already done (e.g. dummy, sent again on a retry) is not re-run.
                if not uia.stage_allowed(stage, session.completed, flows):
                    raise uia.uia_required(
                        session,
                        flows,
                        errcode="M_UNRECOGNIZED",
                        error=f"Stage {stage} is not expected now",
                    )
                await self._run_stage(session, stage, auth, flows)
                session.completed.append(stage)
        if uia.flow_complete(session.completed, flows):
            return session
        raise uia.uia_required(session, flows)

    async def _run_stage(
        self, session: uia.UiaSession, stage: str, auth: dict[str, Any], flows: list[list[str]]
    ) -> None:
        if stage == uia.DUMMY:
            return
        if stage == uia.PASSWORD:
            password = auth.get("password")
            if not isinstance(password, str):
                raise bad_json("'auth.password' must be a string")
            named = login_user_id(auth, self.server_name)
            # Spec: the identifier must name the user the operation is for.
            target = named if named == session.user_id else None
            user = await self.auth.check_password(target, password)
            if user is None:
                raise uia.uia_required(
                    session, flows, errcode="M_FORBIDDEN", error="Invalid password"
                )
            return
        if stage == uia.REGISTRATION_TOKEN:
            token = auth.get("token")
            if not isinstance(token, str):
                raise bad_json("'auth.token' must be a string")
            now_ms = int(self._clock() * 1000)
            ok = len(token) <= MAX_REGISTRATION_TOKEN_LENGTH and await self.database.run(
                lambda conn: tokens_db.reserve_use(conn, token, now_ms)
            )
            if not ok:
                raise uia.uia_required(
                    session, flows, errcode="M_UNAUTHORIZED", error="Invalid registration token"
                )
            session.reserved_token = token
            return
        raise uia.uia_required(session, flows, errcode="M_UNRECOGNIZED", error="Unknown stage")

    def finish(self, session: uia.UiaSession) -> None:
        """The operation succeeded: the session is spent (its token use now counts as completed)."""
        self.store.remove(session.session_id)

    async def sweep(self) -> None:
        """Expire old sessions; give back the registration-token uses they reserved."""
        for session in self.store.expire(self._clock()):
            token = session.reserved_token
            if token is not None:
                await self.database.run(functools.partial(tokens_db.release_use, token=token))
