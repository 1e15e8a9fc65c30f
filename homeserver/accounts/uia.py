"""User-interactive authentication (spec: Client-Server API, "User-Interactive
Authentication API"): sessions, flows, and the 401 answer that drives a client.

The session store is pure and in memory: a UIA session lives for minutes, is
bound to one purpose (``register``, ``delete_devices``...) and, once logged in,
to one user, so it cannot authorise a different operation than the one it
started for. Sessions expire, and the store is capped, so unauthenticated
clients cannot grow it without bound. Checking a stage (verifying a password,
reserving a registration token) is I/O and lives in the services.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from typing import Any

import attrs

from homeserver.errors import MatrixError

DUMMY = "m.login.dummy"
PASSWORD = "m.login.password"
REGISTRATION_TOKEN = "m.login.registration_token"

SESSION_LIFETIME_S = 15 * 60
MAX_SESSIONS = 50_000
MAX_SESSION_ID_LENGTH = 128


@attrs.define
class UiaSession:
    session_id: str
    purpose: str
    # The user the operation is for; None while registering.
    user_id: str | None
    created: float
    completed: list[str] = attrs.field(factory=list)
    # A registration-token use reserved by this session (released if it expires).
    reserved_token: str | None = None


class UiaRequired(MatrixError):
    """HTTP 401 with ``flows``/``params``/``session``; ``errcode`` only when a stage failed."""

    def to_json(self) -> dict[str, Any]:
        body = dict(self.extra)
        if self.errcode:
            body["errcode"] = self.errcode
            body["error"] = self.error
        return body


def uia_required(
    session: UiaSession,
    flows: list[list[str]],
    *,
    errcode: str = "",
    error: str = "",
) -> UiaRequired:
    extra: dict[str, Any] = {
        "flows": [{"stages": list(stages)} for stages in flows],
        "params": {},
        "session": session.session_id,
    }
    if session.completed:
        extra["completed"] = list(session.completed)
    return UiaRequired(401, errcode, error or "Additional authentication is required", **extra)


def flow_complete(completed: list[str], flows: list[list[str]]) -> bool:
    return any(all(stage in completed for stage in stages) for stages in flows)


def stage_allowed(stage: str, completed: list[str], flows: list[list[str]]) -> bool:
    """Whether ``stage`` is the next stage of some flow the completed stages follow."""
    for stages in flows:
        n = len(completed)
        if stages[:n] == completed and len(stages) > n and stages[n] == stage:
            return True
    return False


class UiaSessionStore:
    def __init__(
        self, *, lifetime_s: float = SESSION_LIFETIME_S, max_sessions: int = MAX_SESSIONS
    ) -> None:
        self.lifetime_s = lifetime_s
        self.max_sessions = max_sessions
        self._sessions: OrderedDict[str, UiaSession] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, purpose: str, user_id: str | None, now: float) -> UiaSession:
        session = UiaSession(secrets.token_urlsafe(18), purpose, user_id, now)
        self._sessions[session.session_id] = session
        return session

    def get(self, session_id: str, now: float) -> UiaSession | None:
        session = self._sessions.get(session_id)
        if session is None or now - session.created >= self.lifetime_s:
            return None
        return session

    def remove(self, session_id: str) -> UiaSession | None:
        return self._sessions.pop(session_id, None)

    def expire(self, now: float) -> list[UiaSession]:
        """Drop expired sessions (and the oldest beyond the cap); return them for cleanup."""
        dropped: list[UiaSession] = []
        # Insertion order is creation order, so expired sessions are at the front.
        while self._sessions:
            first = next(iter(self._sessions.values()))
            if now - first.created < self.lifetime_s and len(self._sessions) <= self.max_sessions:
                break
            dropped.append(self._sessions.popitem(last=False)[1])
        return dropped
