"""argon2id password hashing, always in a worker thread (it is slow on purpose).

Verifying a login for a user that does not exist still verifies against a
dummy hash, so the answer takes as long as for a real user with a wrong
password and does not reveal who has an account.
"""

from __future__ import annotations

import argon2
import trio
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# Spec "Password-based": we also cap length so hashing cannot be used to burn CPU.
MAX_PASSWORD_BYTES = 512


class PasswordHasher:
    def __init__(self, *, time_cost: int, memory_cost_kib: int, parallelism: int) -> None:
        self._hasher = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost_kib,
            parallelism=parallelism,
            type=argon2.Type.ID,
        )
        # Hashing the dummy costs one hash at start-up; it is done lazily.
        self._dummy: str | None = None
        self._limiter = trio.CapacityLimiter(max(1, parallelism))

    async def prepare(self) -> None:
        if self._dummy is None:
            self._dummy = await self.hash("not a password: a timing equalizer")

    async def hash(self, password: str) -> str:
        return await trio.to_thread.run_sync(self._hasher.hash, password, limiter=self._limiter)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether ``password`` matches; ``password_hash`` None verifies against the dummy."""
        await self.prepare()
        assert self._dummy is not None
        target = password_hash if password_hash is not None else self._dummy
        ok = await trio.to_thread.run_sync(
            self._verify_sync, target, password, limiter=self._limiter
        )
        return ok and password_hash is not None

    def _verify_sync(self, password_hash: str, password: str) -> bool:
        try:
            return bool(self._hasher.verify(password_hash, password))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
