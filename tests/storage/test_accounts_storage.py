"""The gateway, migrations and account tables, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
import trio
from plait_fixtures import POSTGRES_URL, make_config

from homeserver.homeserver import JWT_SECRET_FILE, HomeServer
from homeserver.storage import accounts as accounts_db
from homeserver.storage import registration_tokens as tokens_db
from homeserver.storage import sessions as sessions_db
from homeserver.storage.database import Database
from homeserver.storage.migrate import current_revision, head_revision, upgrade
from homeserver.storage.sessions import RefreshResult


async def test_upgrade_reaches_head_and_is_idempotent(database_url: str) -> None:
    assert upgrade(database_url) == head_revision()
    assert upgrade(database_url) == head_revision()
    db = Database(database_url)
    try:
        assert await db.run_sync(current_revision) == head_revision()
        tables = await db.run_sync(lambda engine: set(sa.inspect(engine).get_table_names()))
        assert {"users", "profiles", "devices", "sessions", "registration_tokens"} <= tables
    finally:
        await db.aclose()


def test_migrations_are_a_linear_chain() -> None:
    from alembic.script import ScriptDirectory

    from homeserver.storage.migrate import alembic_config

    script = ScriptDirectory.from_config(alembic_config())
    assert len(script.get_heads()) == 1
    assert len(script.get_bases()) == 1


async def test_run_commits_or_rolls_back(database: Database) -> None:
    def create_then_fail(conn: sa.Connection) -> None:
        accounts_db.insert_user(
            conn, user_id="@a:t", password_hash=None, created_ts=1, displayname="a"
        )
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await database.run(create_then_fail)
    assert not await database.read(lambda conn: accounts_db.user_exists(conn, "@a:t"))
    await database.run(
        lambda conn: accounts_db.insert_user(
            conn, user_id="@a:t", password_hash="h", created_ts=1, displayname="a"
        )
    )
    user = await database.read(lambda conn: accounts_db.get_user(conn, "@a:t"))
    assert user is not None and (user.password_hash, user.deactivated, user.admin) == (
        "h",
        False,
        False,
    )


async def test_concurrent_registrations_of_one_name_have_one_winner(database: Database) -> None:
    outcomes: list[str] = []

    async def attempt(i: int) -> None:
        try:
            await database.run(
                lambda conn: accounts_db.insert_user(
                    conn, user_id="@same:t", password_hash=str(i), created_ts=i, displayname=None
                )
            )
            outcomes.append("won")
        except accounts_db.UserExists:
            outcomes.append("taken")

    async with trio.open_nursery() as nursery:
        for i in range(8):
            nursery.start_soon(attempt, i)
    assert sorted(outcomes) == ["taken"] * 7 + ["won"]


async def test_registration_token_uses_are_reserved_atomically(database: Database) -> None:
    await database.run(
        lambda conn: tokens_db.create_token(conn, "tok", uses_allowed=3, expiry_time=None)
    )
    results: list[bool] = []

    async def reserve() -> None:
        results.append(
            await database.run(lambda conn: tokens_db.reserve_use(conn, "tok", now_ms=0))
        )

    async with trio.open_nursery() as nursery:
        for _ in range(10):
            nursery.start_soon(reserve)
    assert results.count(True) == 3
    row = await database.read(lambda conn: tokens_db.get_token(conn, "tok"))
    assert row is not None and (row.pending, row.completed) == (3, 0)
    await database.run(lambda conn: tokens_db.complete_use(conn, "tok"))
    await database.run(lambda conn: tokens_db.release_use(conn, "tok"))
    row = await database.read(lambda conn: tokens_db.get_token(conn, "tok"))
    assert row is not None and (row.pending, row.completed) == (1, 1)
    assert row.is_valid(0)
    with pytest.raises(tokens_db.TokenExists):
        await database.run(
            lambda conn: tokens_db.create_token(conn, "tok", uses_allowed=None, expiry_time=None)
        )


async def test_refresh_state_machine(database: Database) -> None:
    await database.run(
        lambda conn: accounts_db.insert_user(
            conn, user_id="@u:t", password_hash=None, created_ts=0, displayname=None
        )
    )
    await database.run(
        lambda conn: sessions_db.create_session(
            conn,
            session_id="s1",
            user_id="@u:t",
            device_id="D",
            now_ms=0,
            refresh_token_hash="h0",
            refresh_expiry_ts=1000,
        )
    )

    async def refresh(presented: str, new: str, now_ms: int = 10) -> RefreshResult:
        result, _ = await database.run(
            lambda conn: sessions_db.refresh_session(
                conn, presented_hash=presented, new_hash=new, new_expiry_ts=2000, now_ms=now_ms
            )
        )
        return result

    assert await refresh("h0", "h1") is RefreshResult.ROTATED
    # Grace: the client may repeat with h0 until it uses the new tokens.
    assert await refresh("h0", "h2") is RefreshResult.ROTATED
    row = await database.read(lambda conn: sessions_db.get_session(conn, "s1"))
    assert row is not None and (row.generation, row.pending_rotation) == (2, True)
    await database.run(lambda conn: sessions_db.confirm_rotation(conn, "s1", 2))
    row = await database.read(lambda conn: sessions_db.get_session(conn, "s1"))
    assert row is not None and not row.pending_rotation
    assert await refresh("unknown", "hx") is RefreshResult.UNKNOWN
    assert await refresh("h2", "h3", now_ms=5000) is RefreshResult.EXPIRED
    # h1 was superseded by the repeat: reuse revokes the session.
    assert await refresh("h1", "h4") is RefreshResult.REUSED
    row = await database.read(lambda conn: sessions_db.get_session(conn, "s1"))
    assert row is not None and row.revoked
    assert await refresh("h2", "h5") is RefreshResult.UNKNOWN


async def test_deleting_sessions(database: Database) -> None:
    await database.run(
        lambda conn: accounts_db.insert_user(
            conn, user_id="@u:t", password_hash=None, created_ts=0, displayname=None
        )
    )
    for sid, device in (("s1", "A"), ("s2", "B"), ("s3", "C")):
        await database.run(
            lambda conn, sid=sid, device=device: sessions_db.create_session(
                conn,
                session_id=sid,
                user_id="@u:t",
                device_id=device,
                now_ms=0,
                refresh_token_hash=None,
                refresh_expiry_ts=None,
            )
        )
    assert await database.run(
        lambda conn: sessions_db.delete_device_sessions(conn, "@u:t", ["A"])
    ) == ["s1"]
    ended = await database.run(
        lambda conn: sessions_db.delete_user_sessions(conn, "@u:t", except_device="C")
    )
    assert ended == ["s2"]
    assert await database.read(lambda conn: sessions_db.get_session(conn, "s3")) is not None


async def test_homeserver_open_creates_a_private_secret_once(
    tmp_path: Path, database_url: str
) -> None:
    config = make_config(tmp_path, database_url)
    hs = await HomeServer.open(config)
    await hs.aclose()
    secret_path = Path(config.data_dir) / JWT_SECRET_FILE
    assert stat.S_IMODE(os.stat(secret_path).st_mode) == 0o600
    first = secret_path.read_bytes()
    hs = await HomeServer.open(config)
    await hs.aclose()
    assert secret_path.read_bytes() == first


async def test_lost_connection_is_retried_once(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite connections cannot be lost to a server restart")
    upgrade(database_url)
    db = Database(database_url, pool_size=1)
    try:
        pid = await db.read(lambda conn: conn.exec_driver_sql("SELECT pg_backend_pid()").scalar())
        # What a server restart does to a pooled connection.
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        assert not await db.read(lambda conn: accounts_db.user_exists(conn, "@nobody:t"))
        new_pid = await db.read(
            lambda conn: conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        )
        assert new_pid != pid
    finally:
        await db.aclose()
