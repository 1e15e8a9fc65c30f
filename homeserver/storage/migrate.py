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

A fresh or older database still needs Alembic, and a module once imported
stays in memory. ``plait serve`` therefore sets :data:`ALEMBIC_IN_CHILD`: the
upgrade then runs in a short-lived child process (``python -m
homeserver.storage.migrate``, the database URL on its standard input) and the
server keeps none of Alembic; it checks the result with the same one query.
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

from homeserver.storage.database import Database

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

log = logging.getLogger(__name__)

# Set by ``plait serve``: upgrades run in a child process (see the module docstring).
ALEMBIC_IN_CHILD = False
CHILD_TIMEOUT_S = 3600.0

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
        if (
            ALEMBIC_IN_CHILD
            and head is not None
            and engine.url.database not in (None, "", ":memory:")
        ):
            upgrade_in_child(engine.url.render_as_string(hide_password=False))
            with engine.connect() as conn:
                if not is_at_head(conn, head):
                    raise MigrationError(f"the schema upgrade did not reach {head}")
            return
    from alembic import command

    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


class MigrationError(RuntimeError):
    """The child process could not bring the schema to head."""


def upgrade_in_child(database_url: str) -> None:
    """Run :func:`upgrade` to head in a child Python process (blocking); its log becomes ours."""
    done = subprocess.run(
        [sys.executable, "-m", "homeserver.storage.migrate"],
        input=database_url,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        log.error("schema upgrade failed:\n%s", done.stderr.rstrip())
        tail = done.stderr.strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        raise MigrationError(f"schema upgrade failed: {tail[0]}")
    for line in done.stderr.splitlines():
        if line.strip():
            log.info("migration: %s", line)


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


def _child_main() -> int:
    """``python -m homeserver.storage.migrate``: upgrade the database named on standard input."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    upgrade(sys.stdin.read().strip())
    return 0


if __name__ == "__main__":
    sys.exit(_child_main())
