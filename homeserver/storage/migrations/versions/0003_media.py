"""Media repository: media rows (local and, later, cached remote), thumbnails, blobs.

Revision ID: 0003_media
Revises: 0002_events_dag
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_media"
down_revision = "0002_events_dag"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "media",
        sa.Column("server_name", sa.Text, primary_key=True),
        sa.Column("media_id", sa.Text, primary_key=True),
        sa.Column("uploader", sa.Text, nullable=True),
        sa.Column("content_type", sa.Text, nullable=True),
        sa.Column("upload_name", sa.Text, nullable=True),
        sa.Column("size", sa.BigInteger, nullable=True),
        sa.Column("sha256", sa.Text, nullable=True),
        sa.Column("created_ts", sa.BigInteger, nullable=False),
        sa.Column("expires_ts", sa.BigInteger, nullable=True),
        sa.Column("quarantined", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("last_access_ts", sa.BigInteger, nullable=True),
    )
    # Quota sums and pending-upload counts are per uploader.
    op.create_index("media_uploader_idx", "media", ["uploader"])
    op.create_index("media_sha256_idx", "media", ["sha256"])
    op.create_table(
        "media_thumbnails",
        sa.Column("server_name", sa.Text, primary_key=True),
        sa.Column("media_id", sa.Text, primary_key=True),
        sa.Column("width", sa.Integer, primary_key=True),
        sa.Column("height", sa.Integer, primary_key=True),
        sa.Column("method", sa.Text, primary_key=True),
        sa.Column("animated", sa.Boolean, primary_key=True),
        sa.Column("content_type", sa.Text, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.Text, nullable=False),
        sa.Column("created_ts", sa.BigInteger, nullable=False),
        sa.ForeignKeyConstraint(
            ["server_name", "media_id"],
            ["media.server_name", "media.media_id"],
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "media_blobs",
        sa.Column("sha256", sa.Text, primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("refcount", sa.Integer, nullable=False),
        sa.Column("created_ts", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("media_blobs")
    op.drop_table("media_thumbnails")
    op.drop_index("media_sha256_idx", table_name="media")
    op.drop_index("media_uploader_idx", table_name="media")
    op.drop_table("media")
