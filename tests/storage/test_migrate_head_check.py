"""The start-up schema check: Alembic runs only when the database is not at head."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from homeserver.storage import migrate
from homeserver.storage.database import Database
from homeserver.storage.migrate import (
    head_of_chain,
    head_revision,
    is_at_head,
    scan_head,
    stored_revisions,
    upgrade_engine,
)

REPO = Path(__file__).resolve().parents[2]


def test_head_of_chain_straight_line() -> None:
    assert head_of_chain([("b", "a"), ("a", None), ("c", "b")]) == "c"
    assert head_of_chain([("a", None)]) == "a"


@pytest.mark.parametrize(
    "links",
    [
        [],  # no migrations
        [("a", None), ("b", "a"), ("c", "a")],  # two heads (a branch)
        [("a", None), ("b", None)],  # two roots
        [("a", None), ("b", "x")],  # names a revision that is not there
        [("a", None), ("a", None)],  # one revision twice
        [("a", "b"), ("b", "a")],  # a cycle, no root
    ],
)
def test_head_of_chain_unsure_shapes(links: list[tuple[str, str | None]]) -> None:
    assert head_of_chain(links) is None


def test_scan_head_agrees_with_alembic() -> None:
    assert scan_head() is not None
    assert scan_head() == head_revision()


def _write(directory: Path, name: str, body: str) -> None:
    (directory / name).write_text(body, encoding="utf-8")


def test_scan_head_reads_the_files_text(tmp_path: Path) -> None:
    _write(tmp_path, "__init__.py", "")
    _write(
        tmp_path,
        "0001_a.py",
        '"""Revision ID: 0001_a\n"""\nrevision = "0001_a"\ndown_revision = None\n',
    )
    _write(
        tmp_path,
        "0002_b.py",
        '"""Revises: 0001_a\n"""\nrevision: str = \'0002_b\'\ndown_revision: str | None = \'0001_a\'\n',
    )
    assert scan_head(tmp_path) == "0002_b"
    # A down_revision Alembic would have to interpret (a merge) leaves it to Alembic.
    _write(tmp_path, "0003_c.py", 'revision = "0003_c"\ndown_revision = ("0002_b", "0001_a")\n')
    assert scan_head(tmp_path) is None


async def test_is_at_head_fresh_behind_and_at_head(database_url: str) -> None:
    db = Database(database_url)
    try:
        head = scan_head()
        assert head is not None

        def check() -> tuple[list[str] | None, bool]:
            with db.engine.connect() as conn:
                return stored_revisions(conn), is_at_head(conn, head)

        # Fresh: no alembic_version table yet.
        assert await db.run_sync(lambda _engine: check()) == (None, False)
        # Behind: at the first revision only.
        await db.run_sync(lambda engine: upgrade_engine(engine, "0001_accounts"))
        assert await db.run_sync(lambda _engine: check()) == (["0001_accounts"], False)
        # At head.
        await db.run_sync(upgrade_engine)
        assert await db.run_sync(lambda _engine: check()) == ([head], True)

        def at_head_none() -> bool:
            with db.engine.connect() as conn:
                return is_at_head(conn, None)

        # An unknown head is never "at head".
        assert await db.run_sync(lambda _engine: at_head_none()) is False
    finally:
        await db.aclose()


async def test_upgrade_engine_uses_alembic_only_when_behind(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(database_url)
    try:
        await db.run_sync(lambda engine: upgrade_engine(engine, "0001_accounts"))
        calls: list[str] = []
        real_config = migrate.alembic_config

        def counting_config():  # type: ignore[no-untyped-def]
            calls.append("alembic")
            return real_config()

        monkeypatch.setattr(migrate, "alembic_config", counting_config)
        # Behind: Alembic brings the schema to head.
        await db.run_sync(upgrade_engine)
        assert calls == ["alembic"]

        def stored() -> list[str] | None:
            with db.engine.connect() as conn:
                return stored_revisions(conn)

        assert await db.run_sync(lambda _engine: stored()) == [scan_head()]
        # At head: one query, no Alembic.
        await db.run_sync(upgrade_engine)
        assert calls == ["alembic"]

        # A stored revision the files do not know still goes to Alembic (which refuses it).
        def forge() -> None:
            with db.engine.begin() as conn:
                conn.execute(text("UPDATE alembic_version SET version_num = '9999_unknown'"))

        await db.run_sync(lambda _engine: forge())
        with pytest.raises(Exception, match="9999_unknown"):
            await db.run_sync(upgrade_engine)
        assert calls == ["alembic", "alembic"]
    finally:
        await db.aclose()


def test_serving_modules_leave_heavy_optional_imports_out() -> None:
    """A running server imports Alembic, Mako, Pillow, httpx, trio-websocket,
    SQLAlchemy's PostgreSQL dialect and the HTML parser (URL previews) only when
    it needs them."""
    heavy = (
        "alembic",
        "mako",
        "PIL",
        "httpx",
        "trio_websocket",
        "sqlalchemy.dialects.postgresql",
        "html.parser",
    )
    code = (
        "import sys, tools.serve, tools.cli, client_api; "
        f"print(' '.join(sorted(m for m in {heavy!r} if m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""


async def test_upgrade_in_a_child_process(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As ``plait serve`` runs it: a fresh database reaches head without Alembic in-process."""
    monkeypatch.setattr(migrate, "ALEMBIC_IN_CHILD", True)

    def no_alembic_here() -> None:
        raise AssertionError("Alembic ran in the server process")

    monkeypatch.setattr(migrate, "alembic_config", no_alembic_here)
    db = Database(database_url)
    try:
        await db.run_sync(upgrade_engine)

        def stored() -> list[str] | None:
            with db.engine.connect() as conn:
                return stored_revisions(conn)

        assert await db.run_sync(lambda _engine: stored()) == [scan_head()]
        # The schema is really there: the server's own first read works.
        from homeserver.storage.events import EventStore

        assert await EventStore(db).get_stream_position() >= 0
    finally:
        await db.aclose()


def test_upgrade_in_child_reports_failure(tmp_path: Path) -> None:
    with pytest.raises(migrate.MigrationError, match="schema upgrade failed"):
        migrate.upgrade_in_child("nosuchdriver://nowhere/x")
