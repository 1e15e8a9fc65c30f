"""Timeline bookkeeping: client transaction IDs, stored filters, redaction targets.

Revision ID: 0006_timeline
Revises: 0005_receipts_presence
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_timeline"
down_revision = "0005_receipts_presence"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_txn_ids",
        sa.Column("user_id", sa.Text, primary_key=True),
        sa.Column("device_id", sa.Text, primary_key=True),
        sa.Column("endpoint", sa.Text, primary_key=True),
        sa.Column("txn_id", sa.Text, primary_key=True),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("created_ts", sa.BigInteger, nullable=False),
    )
    op.create_index("event_txn_ids_event", "event_txn_ids", ["event_id"])
    op.create_table(
        "user_filters",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("filter_json", sa.Text, nullable=False),
    )
    op.create_index("user_filters_user", "user_filters", ["user_id"])
    op.create_table(
        "event_redactions",
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("redacts", sa.Text, nullable=False),
        sa.Column("room_id", sa.Text, nullable=False),
    )
    op.create_index("event_redactions_redacts", "event_redactions", ["redacts"])


def downgrade() -> None:
    for table in ("event_redactions", "user_filters", "event_txn_ids"):
        op.drop_table(table)
