"""Push rules, push actions (notification counts), pushers, stream followers, search.

Revision ID: 0008_push_search
Revises: 0007_e2e

Search keeps one row per indexed event in ``search_entries`` with its terms
(tokenized by ``homeserver/search/tokenize.py``, so every language indexes the
same way on both databases). SQLite indexes the terms with FTS5 (virtual table
``search_fts``, rowid = stream ordering); PostgreSQL keeps a ``tsvector``
built from the terms (no parser in between: CJK bigrams stay intact) under a
GIN index.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_push_search"
down_revision = "0007_e2e"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "push_rules",
        sa.Column("user_id", sa.Text, primary_key=True),
        sa.Column("kind", sa.Text, primary_key=True),
        sa.Column("rule_id", sa.Text, primary_key=True),
        sa.Column("priority", sa.BigInteger, nullable=False),
        sa.Column("rule_json", sa.Text, nullable=False),
        sa.Column("actions_json", sa.Text, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
    )
    op.create_table(
        "push_rule_overrides",
        sa.Column("user_id", sa.Text, primary_key=True),
        sa.Column("rule_id", sa.Text, primary_key=True),
        sa.Column("enabled", sa.Boolean, nullable=True),
        sa.Column("actions_json", sa.Text, nullable=True),
    )
    op.create_table(
        "event_push_actions",
        sa.Column("user_id", sa.Text, primary_key=True),
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("room_id", sa.Text, nullable=False),
        sa.Column("stream_ordering", sa.BigInteger, nullable=False),
        sa.Column("notify", sa.Boolean, nullable=False),
        sa.Column("highlight", sa.Boolean, nullable=False),
        sa.Column("actions_json", sa.Text, nullable=False),
        sa.Column("ts", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "event_push_actions_room", "event_push_actions", ["user_id", "room_id", "stream_ordering"]
    )
    op.create_index("event_push_actions_user", "event_push_actions", ["user_id", "stream_ordering"])
    op.create_table(
        "pushers",
        sa.Column("user_id", sa.Text, primary_key=True),
        sa.Column("app_id", sa.Text, primary_key=True),
        sa.Column("pushkey", sa.Text, primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("body_json", sa.Text, nullable=False),
        sa.Column("device_id", sa.Text, nullable=True),
        # Push actions up to here were handed to the gateway (or given up on).
        sa.Column("last_stream_ordering", sa.BigInteger, nullable=False),
        sa.Column("failing_since", sa.BigInteger, nullable=True),
    )
    op.create_index("pushers_by_key", "pushers", ["app_id", "pushkey"])
    op.create_table(
        "stream_followers",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("position", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "search_entries",
        sa.Column("stream_ordering", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("event_id", sa.Text, nullable=False, unique=True),
        sa.Column("room_id", sa.Text, nullable=False),
        sa.Column("sender", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("origin_server_ts", sa.BigInteger, nullable=False),
        sa.Column("terms", sa.Text, nullable=False),
    )
    op.create_index("search_entries_room", "search_entries", ["room_id", "stream_ordering"])
    if op.get_bind().dialect.name == "sqlite":
        op.execute("CREATE VIRTUAL TABLE search_fts USING fts5(terms, tokenize='unicode61 remove_diacritics 0')")
    else:
        op.execute("ALTER TABLE search_entries ADD COLUMN vector tsvector")
        op.execute("CREATE INDEX search_entries_vector ON search_entries USING GIN (vector)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE search_fts")
    for table in (
        "search_entries",
        "stream_followers",
        "pushers",
        "event_push_actions",
        "push_rule_overrides",
        "push_rules",
    ):
        op.drop_table(table)
