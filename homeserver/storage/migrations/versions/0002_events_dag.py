"""Room DAG: rooms, events, prev/auth edges, forward extremities, state groups, current state.

Revision ID: 0002_events_dag
Revises: 0001_accounts
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_events_dag"
down_revision = "0001_accounts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rooms",
        sa.Column("room_id", sa.Text, primary_key=True),
        sa.Column("room_version", sa.Text, nullable=False),
        sa.Column("creator", sa.Text, nullable=False),
        sa.Column("current_state_group", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "events",
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("room_id", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("state_key", sa.Text, nullable=True),
        sa.Column("sender", sa.Text, nullable=False),
        sa.Column("membership", sa.Text, nullable=True),
        sa.Column("depth", sa.BigInteger, nullable=False),
        sa.Column("topological_ordering", sa.BigInteger, nullable=False),
        sa.Column("stream_ordering", sa.BigInteger, nullable=False, unique=True),
        sa.Column("origin_server_ts", sa.BigInteger, nullable=False),
        sa.Column("json", sa.Text, nullable=False),
        sa.Column("rejected_reason", sa.Text, nullable=True),
        sa.Column("soft_failed", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("outlier", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("state_group_before", sa.BigInteger, nullable=True),
        sa.Column("state_group_after", sa.BigInteger, nullable=True),
    )
    op.create_index(
        "events_room_topo", "events", ["room_id", "topological_ordering", "stream_ordering"]
    )
    op.create_index("events_room_stream", "events", ["room_id", "stream_ordering"])
    op.create_table(
        "event_edges",
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("prev_event_id", sa.Text, primary_key=True),
        sa.Column("room_id", sa.Text, nullable=False),
    )
    op.create_index("event_edges_prev", "event_edges", ["prev_event_id"])
    op.create_table(
        "event_auth_edges",
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("auth_event_id", sa.Text, primary_key=True),
        sa.Column("room_id", sa.Text, nullable=False),
    )
    op.create_index("event_auth_edges_auth", "event_auth_edges", ["auth_event_id"])
    op.create_table(
        "event_forward_extremities",
        sa.Column("room_id", sa.Text, primary_key=True),
        sa.Column("event_id", sa.Text, primary_key=True),
    )
    op.create_table(
        "event_stream_position",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("position", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(
        sa.table("event_stream_position", sa.column("id"), sa.column("position")),
        [{"id": 1, "position": 0}],
    )
    op.create_table(
        "state_groups",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("room_id", sa.Text, nullable=False),
        sa.Column("prev_group", sa.BigInteger, nullable=True),
        sa.Column("delta_depth", sa.Integer, nullable=False),
    )
    op.create_table(
        "state_group_entries",
        sa.Column("state_group", sa.BigInteger, primary_key=True),
        sa.Column("type", sa.Text, primary_key=True),
        sa.Column("state_key", sa.Text, primary_key=True),
        sa.Column("event_id", sa.Text, nullable=True),
    )
    op.create_table(
        "current_state",
        sa.Column("room_id", sa.Text, primary_key=True),
        sa.Column("type", sa.Text, primary_key=True),
        sa.Column("state_key", sa.Text, primary_key=True),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("membership", sa.Text, nullable=True),
    )
    op.create_index("current_state_members", "current_state", ["type", "state_key", "membership"])


def downgrade() -> None:
    for table in (
        "current_state",
        "state_group_entries",
        "state_groups",
        "event_stream_position",
        "event_forward_extremities",
        "event_auth_edges",
        "event_edges",
        "events",
        "rooms",
    ):
        op.drop_table(table)
