"""The migration chain stays one straight line that every database can record."""

from __future__ import annotations

from alembic.script import ScriptDirectory

from homeserver.storage.migrate import alembic_config


def test_one_head_and_ids_fit_alembic_version_column() -> None:
    scripts = ScriptDirectory.from_config(alembic_config())
    assert len(scripts.get_heads()) == 1, scripts.get_heads()
    for revision in scripts.walk_revisions():
        # alembic_version.version_num is VARCHAR(32) on PostgreSQL.
        assert len(revision.revision) <= 32, revision.revision
        assert revision.branch_labels is None or not revision.branch_labels
