"""Apply the Alembic migrations, configured in code (no alembic.ini at run time).

``plait db upgrade`` calls :func:`upgrade`; :meth:`HomeServer.open` calls
:func:`upgrade_engine` through the database gateway, so a server always runs on
the newest schema.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from homeserver.storage.database import Database

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config() -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def upgrade_engine(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` in one transaction (blocking; run it in a thread)."""
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
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
