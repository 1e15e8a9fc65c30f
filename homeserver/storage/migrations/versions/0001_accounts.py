"""Accounts: users, profiles, devices, login sessions, registration tokens.

Revision ID: 0001_accounts
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_accounts"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("user_id", sa.Text, primary_key=True),
        sa.Column("password_hash", sa.Text, nullable=True),
        sa.Column("created_ts", sa.BigInteger, nullable=False),
        sa.Column("deactivated", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("admin", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "profiles",
        sa.Column(
            "user_id",
            sa.Text,
            sa.ForeignKey("users.user_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("displayname", sa.Text, nullable=True),
        sa.Column("avatar_url", sa.Text, nullable=True),
    )
    op.create_table(
        "devices",
        sa.Column(
            "user_id",
            sa.Text,
            sa.ForeignKey("users.user_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("device_id", sa.Text, primary_key=True),
        sa.Column("display_name", sa.Text, nullable=True),
        sa.Column("created_ts", sa.BigInteger, nullable=False),
        sa.Column("last_seen_ts", sa.BigInteger, nullable=True),
        sa.Column("last_seen_ip", sa.Text, nullable=True),
    )
    op.create_table(
        "sessions",
        sa.Column("session_id", sa.Text, primary_key=True),
        sa.Column(
            "user_id",
            sa.Text,
            sa.ForeignKey("users.user_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("device_id", sa.Text, nullable=False),
        sa.Column("created_ts", sa.BigInteger, nullable=False),
        sa.Column("refresh_token_hash", sa.Text, nullable=True, unique=True),
        sa.Column("previous_refresh_hash", sa.Text, nullable=True, unique=True),
        sa.Column("refresh_expiry_ts", sa.BigInteger, nullable=True),
        sa.Column("generation", sa.Integer, nullable=False, server_default="0"),
        sa.Column("revoked", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_index("sessions_user_device", "sessions", ["user_id", "device_id"])
    op.create_table(
        "used_refresh_tokens",
        sa.Column("token_hash", sa.Text, primary_key=True),
        sa.Column(
            "session_id",
            sa.Text,
            sa.ForeignKey("sessions.session_id", ondelete="CASCADE"),
            nullable=False,
        ),
    )
    op.create_index("ix_used_refresh_tokens_session_id", "used_refresh_tokens", ["session_id"])
    op.create_table(
        "registration_tokens",
        sa.Column("token", sa.Text, primary_key=True),
        sa.Column("uses_allowed", sa.Integer, nullable=True),
        sa.Column("pending", sa.Integer, nullable=False, server_default="0"),
        sa.Column("completed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("expiry_time", sa.BigInteger, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("registration_tokens")
    op.drop_table("used_refresh_tokens")
    op.drop_index("sessions_user_device", table_name="sessions")
    op.drop_table("sessions")
    op.drop_table("devices")
    op.drop_table("profiles")
    op.drop_table("users")
