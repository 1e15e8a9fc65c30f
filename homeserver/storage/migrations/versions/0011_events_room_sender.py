"""An index on events by (room, sender, stream position).

Revision ID: 0011_events_room_sender
Revises: 0010_relations

Every woken /sync with push counts finds the user's own latest event in the
room (their implicit read mark, ``storage.push.last_event_of_sender``).
Without this index that walked the room's events backwards until it met one
of theirs: the whole room for a user who never speaks.
"""

from alembic import op

revision = "0011_events_room_sender"
down_revision = "0010_relations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("events_room_sender", "events", ["room_id", "sender", "stream_ordering"])


def downgrade() -> None:
    op.drop_index("events_room_sender", table_name="events")
