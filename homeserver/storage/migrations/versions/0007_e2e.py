"""End-to-end encryption: device keys, one-time and fallback keys, cross-signing
keys and signatures, the device-list and to-device streams, key backup.

Revision ID: 0007_e2e
Revises: 0006_timeline
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_e2e"
down_revision = "0006_timeline"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "e2e_stream_positions",
        sa.Column("stream", sa.Text, primary_key=True),
        sa.Column("position", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(
        sa.table("e2e_stream_positions", sa.column("stream"), sa.column("position")),
        [{"stream": "to_device", "position": 0}, {"stream": "device_lists", "position": 0}],
    )
    op.create_table(
        "e2e_device_keys",
        sa.Column("user_id", sa.Text, primary_key=True),
        sa.Column("device_id", sa.Text, primary_key=True),
        sa.Column("key_json", sa.Text, nullable=False),
    )
    op.create_table(
        "e2e_one_time_keys",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("device_id", sa.Text, nullable=False),
        sa.Column("algorithm", sa.Text, nullable=False),
        sa.Column("key_id", sa.Text, nullable=False),
        sa.Column("key_json", sa.Text, nullable=False),
        sa.UniqueConstraint("user_id", "device_id", "algorithm", "key_id", name="e2e_otk_unique"),
    )
    op.create_index(
        "e2e_otk_device_alg", "e2e_one_time_keys", ["user_id", "device_id", "algorithm", "id"]
    )
    op.create_table(
        "e2e_fallback_keys",
        sa.Column("user_id", sa.Text, primary_key=True),
        sa.Column("device_id", sa.Text, primary_key=True),
        sa.Column("algorithm", sa.Text, primary_key=True),
        sa.Column("key_id", sa.Text, nullable=False),
        sa.Column("key_json", sa.Text, nullable=False),
        sa.Column("used", sa.Boolean, nullable=False),
    )
    op.create_table(
        "e2e_cross_signing_keys",
        sa.Column("user_id", sa.Text, primary_key=True),
        sa.Column("key_type", sa.Text, primary_key=True),
        sa.Column("public_key", sa.Text, nullable=False),
        sa.Column("key_json", sa.Text, nullable=False),
    )
    op.create_table(
        "e2e_signatures",
        sa.Column("target_user_id", sa.Text, primary_key=True),
        sa.Column("target_key_id", sa.Text, primary_key=True),
        sa.Column("signer_user_id", sa.Text, primary_key=True),
        sa.Column("signer_key_id", sa.Text, primary_key=True),
        sa.Column("signature", sa.Text, nullable=False),
    )
    op.create_table(
        "device_list_changes",
        sa.Column("stream_id", sa.BigInteger, primary_key=True),
        sa.Column("user_id", sa.Text, nullable=False),
    )
    op.create_index("device_list_changes_user", "device_list_changes", ["user_id", "stream_id"])
    op.create_table(
        "to_device_inbox",
        sa.Column("stream_id", sa.BigInteger, primary_key=True),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("device_id", sa.Text, nullable=False),
        sa.Column("message_json", sa.Text, nullable=False),
    )
    op.create_index(
        "to_device_inbox_device", "to_device_inbox", ["user_id", "device_id", "stream_id"]
    )
    op.create_table(
        "to_device_txns",
        sa.Column("user_id", sa.Text, primary_key=True),
        sa.Column("device_id", sa.Text, primary_key=True),
        sa.Column("txn_id", sa.Text, primary_key=True),
        sa.Column("created_ts", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "e2e_room_keys_versions",
        sa.Column("user_id", sa.Text, primary_key=True),
        sa.Column("version", sa.BigInteger, primary_key=True),
        sa.Column("algorithm", sa.Text, nullable=False),
        sa.Column("auth_data", sa.Text, nullable=False),
        sa.Column("etag", sa.BigInteger, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
    )
    op.create_table(
        "e2e_room_keys",
        sa.Column("user_id", sa.Text, primary_key=True),
        sa.Column("version", sa.BigInteger, primary_key=True),
        sa.Column("room_id", sa.Text, primary_key=True),
        sa.Column("session_id", sa.Text, primary_key=True),
        sa.Column("first_message_index", sa.BigInteger, nullable=False),
        sa.Column("forwarded_count", sa.BigInteger, nullable=False),
        sa.Column("is_verified", sa.Boolean, nullable=False),
        sa.Column("session_data", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "e2e_room_keys",
        "e2e_room_keys_versions",
        "to_device_txns",
        "to_device_inbox",
        "device_list_changes",
        "e2e_signatures",
        "e2e_cross_signing_keys",
        "e2e_fallback_keys",
        "e2e_one_time_keys",
        "e2e_device_keys",
        "e2e_stream_positions",
    ):
        op.drop_table(table)
