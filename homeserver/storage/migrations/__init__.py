"""Alembic migrations. Revisions live in ``versions/`` (a package, so they install).

Add a revision as ``versions/NNNN_<what>.py`` with ``down_revision`` set to the
newest one: the chain stays linear. Never edit a migration that has shipped.
"""
