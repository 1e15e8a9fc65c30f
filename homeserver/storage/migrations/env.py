"""Alembic environment: runs on the connection handed in by :mod:`homeserver.storage.migrate`.

There is no alembic.ini; the caller passes an open connection in
``config.attributes["connection"]``.
"""

from alembic import context

from homeserver.storage.metadata import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
