"""Migration revisions, applied in ``down_revision`` order by :mod:`homeserver.storage.migrate`."""
