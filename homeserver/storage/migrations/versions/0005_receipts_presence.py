"""Read receipts and presence, each with its stream position counter.

Revision ID: 0005_receipts_presence
Revises: 0004_rooms_directory
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_receipts_presence"
down_revision = "0004_rooms_directory"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "receipts",
        sa.Column("room_id", sa.Text, primary_key=True),
        sa.Column("receipt_type", sa.Text, primary_key=True),
        sa.Column("user_id", sa.Text, primary_key=True),
        sa.Column("thread_id", sa.Text, primary_key=True),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("stream_id", sa.BigInteger, nullable=False),
        sa.Column("event_stream_ordering", sa.BigInteger, nullable=False),
    )
    # /sync reads "receipts in these rooms after position N".
    op.create_index("receipts_room_stream", "receipts", ["room_id", "stream_id"])
    op.create_table(
        "receipts_stream_position",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("position", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(
        sa.table("receipts_stream_position", sa.column("id"), sa.column("position")),
        [{"id": 1, "position": 0}],
    )
    op.create_table(
        "presence",
        sa.Column("user_id", sa.Text, primary_key=True),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("status_msg", sa.Text, nullable=True),
        sa.Column("last_active_ts", sa.BigInteger, nullable=False),
        sa.Column("last_sync_ts", sa.BigInteger, nullable=False),
        sa.Column("visible_state", sa.Text, nullable=False),
        sa.Column("stream_id", sa.BigInteger, nullable=False),
    )
    op.create_index("presence_stream", "presence", ["stream_id"])
    op.create_table(
        "presence_stream_position",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("position", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(
        sa.table("presence_stream_position", sa.column("id"), sa.column("position")),
        [{"id": 1, "position": 0}],
    )


def downgrade() -> None:
    for table in ("presence_stream_position", "presence", "receipts_stream_position", "receipts"):
        op.drop_table(table)
