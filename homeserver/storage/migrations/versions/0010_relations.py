"""Relations between events (m.relates_to): one row per child, for bundles, /relations, /threads.

Revision ID: 0010_relations
Revises: 0009_push_threads_purge
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_relations"
down_revision = "0009_push_threads_purge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_relations",
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("room_id", sa.Text, nullable=False),
        sa.Column("relates_to", sa.Text, nullable=False),
        sa.Column("rel_type", sa.Text, nullable=False),
        sa.Column("aggregation_key", sa.Text, nullable=True),
        sa.Column("sender", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("origin_server_ts", sa.BigInteger, nullable=False),
        sa.Column("topological_ordering", sa.BigInteger, nullable=False),
        sa.Column("stream_ordering", sa.BigInteger, nullable=False),
    )
    # Children of a parent by type, in topological order (bundles, /relations).
    op.create_index(
        "event_relations_parent",
        "event_relations",
        ["relates_to", "rel_type", "topological_ordering", "stream_ordering"],
    )
    # A room's threads by latest activity (/threads).
    op.create_index(
        "event_relations_room_type", "event_relations", ["room_id", "rel_type", "stream_ordering"]
    )


def downgrade() -> None:
    op.drop_table("event_relations")
