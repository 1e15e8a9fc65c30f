"""Storage: SQLAlchemy Core tables and queries, one module per concern, behind one gateway.

Query functions take a ``Connection`` and are meant to be passed to
:meth:`homeserver.storage.database.Database.run` (or composed inside one
function so that writes that belong together share a transaction).
"""

from homeserver.storage.database import Database

__all__ = ["Database"]
