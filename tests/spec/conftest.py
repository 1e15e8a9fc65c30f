"""The spec tests check documents against the server, not storage: SQLite is enough.

Overrides the suite's ``database_url`` (SQLite and PostgreSQL) with SQLite only,
so the ``server`` fixture starts once per test and the folder stays fast.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'plait.db'}"
