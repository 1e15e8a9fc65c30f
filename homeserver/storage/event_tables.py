"""Tables of the room DAG: rooms, events, their edges, extremities, state groups.

Defined once here with SQLAlchemy Core so that the queries in ``events.py`` and
``state.py`` and the Alembic migration that creates them agree. The migration
(``versions/*_events_dag.py``) is the source of truth for the schema; these
objects only describe it for queries, on the shared ``metadata``.

Why the shape:

* ``events`` keeps the full PDU as JSON next to the columns we filter and sort
  by. ``stream_ordering`` is one global counter (sync reads "everything after
  position N"); ``topological_ordering`` is the depth (``/messages`` walks
  history by it, ties broken by stream ordering).
* State is stored as *state groups*: a group is a snapshot or a delta over
  another group. A message event creates no group at all (its state after is
  its state before); a state event adds one delta row. Delta chains are cut by
  a fresh snapshot every ``SNAPSHOT_INTERVAL`` deltas, so reading any group
  touches at most that many groups. This avoids Synapse's ever-growing
  ``state_groups_state`` while keeping lookups bounded.
* ``current_state`` is the resolved state of each room, denormalized with the
  member's ``membership`` so member lists are a single indexed read.
"""

from __future__ import annotations

import sqlalchemy as sa

from homeserver.storage.metadata import metadata

rooms = sa.Table(
    "rooms",
    metadata,
    sa.Column("room_id", sa.Text, primary_key=True),
    sa.Column("room_version", sa.Text, nullable=False),
    sa.Column("creator", sa.Text, nullable=False),
    # The state group holding the room's current (resolved) state, so that a new
    # event's effect on ``current_state`` is a diff of two groups.
    sa.Column("current_state_group", sa.BigInteger, nullable=True),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("event_id", sa.Text, primary_key=True),
    sa.Column("room_id", sa.Text, nullable=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("state_key", sa.Text, nullable=True),
    sa.Column("sender", sa.Text, nullable=False),
    # content.membership of m.room.member events, for member lists and current_state.
    sa.Column("membership", sa.Text, nullable=True),
    sa.Column("depth", sa.BigInteger, nullable=False),
    sa.Column("topological_ordering", sa.BigInteger, nullable=False),
    sa.Column("stream_ordering", sa.BigInteger, nullable=False, unique=True),
    sa.Column("origin_server_ts", sa.BigInteger, nullable=False),
    sa.Column("json", sa.Text, nullable=False),
    # Non-null: the event failed auth and must never reach clients or state (s2s "Rejection").
    sa.Column("rejected_reason", sa.Text, nullable=True),
    # Passed auth at the event but not against current state (s2s "Soft failure").
    sa.Column("soft_failed", sa.Boolean, nullable=False, default=False),
    # Known without its place in the DAG (no state, not an extremity).
    sa.Column("outlier", sa.Boolean, nullable=False, default=False),
    sa.Column("state_group_before", sa.BigInteger, nullable=True),
    sa.Column("state_group_after", sa.BigInteger, nullable=True),
    sa.Index("events_room_topo", "room_id", "topological_ordering", "stream_ordering"),
    sa.Index("events_room_stream", "room_id", "stream_ordering"),
    sa.Index("events_room_sender", "room_id", "sender", "stream_ordering"),
)

event_edges = sa.Table(
    "event_edges",
    metadata,
    sa.Column("event_id", sa.Text, primary_key=True),
    sa.Column("prev_event_id", sa.Text, primary_key=True),
    sa.Column("room_id", sa.Text, nullable=False),
    sa.Index("event_edges_prev", "prev_event_id"),
)

event_auth_edges = sa.Table(
    "event_auth_edges",
    metadata,
    sa.Column("event_id", sa.Text, primary_key=True),
    sa.Column("auth_event_id", sa.Text, primary_key=True),
    sa.Column("room_id", sa.Text, nullable=False),
    sa.Index("event_auth_edges_auth", "auth_event_id"),
)

event_forward_extremities = sa.Table(
    "event_forward_extremities",
    metadata,
    sa.Column("room_id", sa.Text, primary_key=True),
    sa.Column("event_id", sa.Text, primary_key=True),
)

# One row, one counter: allocating a stream ordering is an UPDATE of this row
# inside the event's transaction, so on PostgreSQL the row lock orders commits
# by position and a reader never sees position N+1 before N.
event_stream_position = sa.Table(
    "event_stream_position",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
)

state_groups = sa.Table(
    "state_groups",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("room_id", sa.Text, nullable=False),
    # Null for a snapshot; otherwise the group this one is a delta over.
    sa.Column("prev_group", sa.BigInteger, nullable=True),
    # Number of deltas between this group and its snapshot (0 = snapshot).
    sa.Column("delta_depth", sa.Integer, nullable=False),
)

state_group_entries = sa.Table(
    "state_group_entries",
    metadata,
    sa.Column("state_group", sa.BigInteger, primary_key=True),
    sa.Column("type", sa.Text, primary_key=True),
    sa.Column("state_key", sa.Text, primary_key=True),
    # Null in a delta: the key was removed (state resolution can drop a key).
    sa.Column("event_id", sa.Text, nullable=True),
)

current_state = sa.Table(
    "current_state",
    metadata,
    sa.Column("room_id", sa.Text, primary_key=True),
    sa.Column("type", sa.Text, primary_key=True),
    sa.Column("state_key", sa.Text, primary_key=True),
    sa.Column("event_id", sa.Text, nullable=False),
    sa.Column("membership", sa.Text, nullable=True),
    sa.Index("current_state_members", "type", "state_key", "membership"),
)

ALL_TABLES = (
    rooms,
    events,
    event_edges,
    event_auth_edges,
    event_forward_extremities,
    event_stream_position,
    state_groups,
    state_group_entries,
    current_state,
)
