"""Apply the Alembic migrations, configured in code (no alembic.ini at run time).

``plait db upgrade`` calls :func:`upgrade`; :meth:`HomeServer.open` calls
:func:`upgrade_engine` through the database gateway, so a server always runs on
the newest schema.

Alembic (with Mako and the rest it pulls in) costs a running server about
9 MB of memory that it never uses again once the schema is current. So
:func:`upgrade_engine` first compares the revision stored in
``alembic_version`` with the head read from the migration files' text
(:func:`scan_head`, no import of them) and imports Alembic only when they
differ, or when the files cannot be read plainly: then Alembic decides, as
before.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

from homeserver.storage.database import Database

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSIONS_DIR = MIGRATIONS_DIR / "versions"
VERSION_TABLE = "alembic_version"

# A migration module's own identifiers, as Alembic's template writes them.
_REVISION = re.compile(r"^revision\s*(?::[^=]*)?=\s*[\"']([^\"']+)[\"']\s*$", re.MULTILINE)
_DOWN_REVISION = re.compile(
    r"^down_revision\s*(?::[^=]*)?=\s*(None|[\"']([^\"']+)[\"'])\s*$", re.MULTILINE
)


def alembic_config() -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def head_of_chain(links: Iterable[tuple[str, str | None]]) -> str | None:
    """The one revision no other revision follows, from (revision, down_revision) pairs.

    None when that is not a single straight line from one root (no migrations,
    several heads or roots, a revision twice, a down_revision that names no
    revision): a shape only Alembic should judge.
    """
    parents: dict[str, str | None] = {}
    for revision, down in links:
        if revision in parents:
            return None
        parents[revision] = down
    if not parents:
        return None
    roots = [r for r, down in parents.items() if down is None]
    children = {down for down in parents.values() if down is not None}
    if len(roots) != 1 or not children <= parents.keys():
        return None
    heads = [r for r in parents if r not in children]
    if len(heads) != 1 or len(children) != len(parents) - 1:
        return None
    return heads[0]


def scan_head(versions_dir: Path = VERSIONS_DIR) -> str | None:
    """The head revision read from the migration files' text; None if unsure.

    Each file must state ``revision = "..."`` and ``down_revision = "..."`` (or
    ``None``) once each, on lines of their own: anything else (a tuple of
    down revisions, a computed id) gives None and leaves the decision to Alembic.
    """
    links: list[tuple[str, str | None]] = []
    for path in sorted(versions_dir.glob("*.py")):
        if path.name.startswith("__"):
            continue
        source = path.read_text(encoding="utf-8")
        revisions = _REVISION.findall(source)
        downs = _DOWN_REVISION.findall(source)
        if len(revisions) != 1 or len(downs) != 1:
            return None
        literal, down = downs[0]
        links.append((revisions[0], None if literal == "None" else down))
    return head_of_chain(links)


def stored_revisions(conn: Connection) -> list[str] | None:
    """The revisions recorded in ``alembic_version``; None if there is no such table."""
    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    rows = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    return [str(r) for r in rows]


def is_at_head(conn: Connection, head: str | None) -> bool:
    """Whether the database records exactly ``head`` (a known head, not None)."""
    if head is None:
        return False
    return stored_revisions(conn) == [head]


def upgrade_engine(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` in one transaction (blocking; run it in a thread).

    At head already (the usual start): one query, and Alembic is not imported.
    """
    if revision == "head":
        head = scan_head()
        with engine.connect() as conn:
            if is_at_head(conn, head):
                return
    from alembic import command

    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(database_url: str, revision: str = "head") -> str | None:
    """Migrate the database at ``database_url``; returns the revision it is now at."""
    database = Database(database_url)
    try:
        upgrade_engine(database.engine, revision)
        return current_revision(database.engine)
    finally:
        database.engine.dispose()
