"""Rooms around the DAG: aliases, public directory, forgotten rooms, account data and its stream.

Revision ID: 0004_rooms_directory
Revises: 0003_media
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_rooms_directory"
down_revision = "0003_media"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "room_aliases",
        sa.Column("room_alias", sa.Text, primary_key=True),
        sa.Column("room_id", sa.Text, nullable=False),
        sa.Column("creator", sa.Text, nullable=False),
    )
    op.create_index("room_aliases_room", "room_aliases", ["room_id"])
    op.create_table(
        "room_directory",
        sa.Column("room_id", sa.Text, primary_key=True),
        sa.Column("visibility", sa.Text, nullable=False),
    )
    op.create_table(
        "room_forgotten",
        sa.Column("user_id", sa.Text, primary_key=True),
        sa.Column("room_id", sa.Text, primary_key=True),
    )
    op.create_table(
        "account_data",
        sa.Column("user_id", sa.Text, primary_key=True),
        sa.Column("room_id", sa.Text, primary_key=True),
        sa.Column("type", sa.Text, primary_key=True),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("stream_id", sa.BigInteger, nullable=False),
    )
    op.create_index("account_data_user_stream", "account_data", ["user_id", "stream_id"])
    op.create_table(
        "account_data_stream_position",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("position", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(
        sa.table("account_data_stream_position", sa.column("id"), sa.column("position")),
        [{"id": 1, "position": 0}],
    )


def downgrade() -> None:
    for table in (
        "account_data_stream_position",
        "account_data",
        "room_forgotten",
        "room_directory",
        "room_aliases",
    ):
        op.drop_table(table)
