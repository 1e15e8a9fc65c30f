"""The one ``MetaData`` every table module registers with.

Tables here describe the schema for queries; the schema itself is created and
changed only by the Alembic migrations in ``migrations/versions``.
"""

import sqlalchemy as sa

metadata = sa.MetaData()
