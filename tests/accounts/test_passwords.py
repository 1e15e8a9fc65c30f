"""argon2id hashing in a worker thread, with a dummy hash for unknown users."""

from __future__ import annotations

from homeserver.accounts.passwords import PasswordHasher


async def test_hash_and_verify() -> None:
    hasher = PasswordHasher(time_cost=1, memory_cost_kib=8, parallelism=1)
    hashed = await hasher.hash("hunter2")
    assert hashed.startswith("$argon2id$") and "hunter2" not in hashed
    assert await hasher.verify(hashed, "hunter2")
    assert not await hasher.verify(hashed, "hunter3")
    # No hash (unknown user, or no password): checked against the dummy, never true,
    # not even for the dummy's own password.
    assert not await hasher.verify(None, "hunter2")
    assert not await hasher.verify(None, "not a password: a timing equalizer")
    assert not await hasher.verify("garbage", "hunter2")
