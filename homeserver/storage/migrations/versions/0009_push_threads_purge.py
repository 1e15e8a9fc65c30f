"""Per-thread push actions; the purge of redacted originals after the retention period.

Revision ID: 0009_push_threads_purge
Revises: 0008_push_search

* ``event_push_actions.thread_id``: the thread an action's event belongs to
  (``main`` for the main timeline, else the thread root's event ID), so a
  threaded read receipt clears only its thread and ``/sync`` can report
  ``unread_thread_notifications``.
* ``event_redactions.purged``: the target's stored original has been rewritten
  to its redacted form (``homeserver/timeline/retention.py``); the index finds
  the redactions still waiting, oldest first.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_push_threads_purge"
down_revision = "0008_push_search"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("event_push_actions") as batch:
        batch.add_column(sa.Column("thread_id", sa.Text, nullable=False, server_default="main"))
    with op.batch_alter_table("event_redactions") as batch:
        batch.add_column(sa.Column("purged", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_index("event_redactions_purged", "event_redactions", ["purged"])


def downgrade() -> None:
    op.drop_index("event_redactions_purged", table_name="event_redactions")
    with op.batch_alter_table("event_redactions") as batch:
        batch.drop_column("purged")
    with op.batch_alter_table("event_push_actions") as batch:
        batch.drop_column("thread_id")
