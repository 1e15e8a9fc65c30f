"""Reading relations: bundled aggregations for a page of events, /relations and /threads pages.

Every read skips a child that has an accepted redaction (``event_redactions``):
a redacted reaction, edit or thread reply stops counting at once. The bundle
reads are batched for a page of parents (:func:`read_bundle_rows`: three
indexed queries per 500 parents) because every served event asks.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from homeserver.storage.event_tables import events
from homeserver.storage.events import StoredEvent, _row_to_event
from homeserver.storage.relations import (
    ANNOTATION,
    REFERENCE,
    REPLACE,
    THREAD,
    event_relations,
)
from homeserver.storage.timeline import event_redactions

# Bundled m.reference chunks are bounded per parent.
MAX_BUNDLED_REFERENCES = 100
# The newest edits read per parent; the latest valid one among them is bundled.
MAX_EDIT_CANDIDATES = 20
_CHUNK = 500


def _not_redacted() -> sa.ColumnElement[bool]:
    """The child has no accepted redaction (the same test as ``read_redactions``)."""
    redaction = events.alias("redaction")
    return ~sa.exists(
        sa.select(event_redactions.c.event_id)
        .join(redaction, redaction.c.event_id == event_redactions.c.event_id)
        .where(
            event_redactions.c.redacts == event_relations.c.event_id,
            redaction.c.outlier == sa.false(),
            redaction.c.rejected_reason.is_(None),
            redaction.c.soft_failed == sa.false(),
        )
    )


# Prebuilt statements: every served page asks, and building the constructs (aliases,
# window functions) per call costs more than running them.
_rel = event_relations
_IDS: sa.BindParameter[list[str]] = sa.bindparam("ids", expanding=True)
_NOT_REDACTED = _not_redacted()

_HAS_ANNOTATION = (
    sa.select(_rel.c.event_id)
    .where(
        _rel.c.relates_to == sa.bindparam("parent_id"),
        _rel.c.rel_type == ANNOTATION,
        _rel.c.sender == sa.bindparam("sender"),
        _rel.c.type == sa.bindparam("event_type"),
        _rel.c.aggregation_key == sa.bindparam("key"),
        _NOT_REDACTED,
    )
    .limit(1)
)

# Which parents have bundled kinds of children at all: most pages have none, and
# then this one cheap query is all that bundling costs.
_BUNDLED_KINDS = (
    sa.select(_rel.c.relates_to, _rel.c.rel_type)
    .where(_rel.c.relates_to.in_(_IDS), _rel.c.rel_type.in_((REPLACE, THREAD, REFERENCE)))
    .distinct()
)

_parent = events.alias("parent")
_edit_ranked = (
    sa.select(
        _rel.c.event_id,
        _rel.c.relates_to,
        _rel.c.origin_server_ts,
        sa.func.row_number()
        .over(
            partition_by=_rel.c.relates_to,
            order_by=(_rel.c.origin_server_ts.desc(), _rel.c.event_id.desc()),
        )
        .label("rank"),
    )
    .join(_parent, _parent.c.event_id == _rel.c.relates_to)
    .where(
        _rel.c.relates_to.in_(_IDS),
        _rel.c.rel_type == REPLACE,
        # Validity of replacement events: same room, sender and type, no state.
        _rel.c.room_id == _parent.c.room_id,
        _rel.c.sender == _parent.c.sender,
        _rel.c.type == _parent.c.type,
        _parent.c.state_key.is_(None),
        _NOT_REDACTED,
    )
    .subquery()
)
_EDITS = (
    sa.select(_edit_ranked.c.event_id, _edit_ranked.c.relates_to, _edit_ranked.c.origin_server_ts)
    .where(_edit_ranked.c.rank <= MAX_EDIT_CANDIDATES)
    .order_by(_edit_ranked.c.origin_server_ts.desc(), _edit_ranked.c.event_id.desc())
)

_thread_ranked = (
    sa.select(
        _rel.c.relates_to,
        _rel.c.event_id,
        sa.func.row_number()
        .over(
            partition_by=_rel.c.relates_to,
            order_by=(_rel.c.topological_ordering.desc(), _rel.c.stream_ordering.desc()),
        )
        .label("rank"),
        sa.func.count().over(partition_by=_rel.c.relates_to).label("total"),
        sa.func.max(sa.case((_rel.c.sender == sa.bindparam("user_id"), 1), else_=0))
        .over(partition_by=_rel.c.relates_to)
        .label("mine"),
    )
    .where(_rel.c.relates_to.in_(_IDS), _rel.c.rel_type == THREAD, _NOT_REDACTED)
    .subquery()
)
_THREADS = sa.select(_thread_ranked).where(_thread_ranked.c.rank == 1)

_reference_ranked = (
    sa.select(
        _rel.c.relates_to,
        _rel.c.event_id,
        _rel.c.stream_ordering,
        sa.func.row_number()
        .over(partition_by=_rel.c.relates_to, order_by=_rel.c.stream_ordering.asc())
        .label("rank"),
    )
    .where(_rel.c.relates_to.in_(_IDS), _rel.c.rel_type == REFERENCE, _NOT_REDACTED)
    .subquery()
)
_REFERENCES = (
    sa.select(_reference_ranked.c.relates_to, _reference_ranked.c.event_id)
    .where(_reference_ranked.c.rank <= MAX_BUNDLED_REFERENCES)
    .order_by(_reference_ranked.c.stream_ordering.asc())
)


def has_annotation(
    conn: Connection, parent_id: str, sender: str, event_type: str, key: str
) -> bool:
    """Whether ``sender`` already annotated ``parent_id`` with this type and key (unredacted)."""
    row = conn.execute(
        _HAS_ANNOTATION,
        {"parent_id": parent_id, "sender": sender, "event_type": event_type, "key": key},
    ).first()
    return row is not None


@attrs.frozen
class EditCandidate:
    """An unredacted m.replace child by the parent's sender with the parent's type."""

    event_id: str
    relates_to: str
    origin_server_ts: int


@attrs.frozen
class ThreadRow:
    root_id: str
    latest_event_id: str
    count: int
    participated: bool


@attrs.frozen
class BundleRows:
    """What the bundled aggregations of a page of parents are built from."""

    edits: dict[str, list[EditCandidate]]  # parent -> candidates, newest first
    threads: dict[str, ThreadRow]
    references: dict[str, list[str]]  # parent -> child event ids, oldest first

    @property
    def empty(self) -> bool:
        return not (self.edits or self.threads or self.references)


def read_bundle_rows(
    conn: Connection, parent_ids: Sequence[str], user_id: str | None
) -> BundleRows:
    """Edits, thread summaries and references of ``parent_ids``.

    One query finds the parents with such children; then one query per kind
    present, for those parents only (each per 500 parents).
    """
    edits: dict[str, list[EditCandidate]] = {}
    threads: dict[str, ThreadRow] = {}
    references: dict[str, list[str]] = {}
    ids = list(dict.fromkeys(parent_ids))
    for start in range(0, len(ids), _CHUNK):
        kinds: dict[str, list[str]] = {}
        for row in conn.execute(_BUNDLED_KINDS, {"ids": ids[start : start + _CHUNK]}):
            kinds.setdefault(row.rel_type, []).append(row.relates_to)
        if REPLACE in kinds:
            for edit in conn.execute(_EDITS, {"ids": kinds[REPLACE]}):
                edits.setdefault(edit.relates_to, []).append(
                    EditCandidate(edit.event_id, edit.relates_to, int(edit.origin_server_ts))
                )
        if THREAD in kinds:
            params = {"ids": kinds[THREAD], "user_id": user_id or ""}
            for thread in conn.execute(_THREADS, params):
                threads[thread.relates_to] = ThreadRow(
                    thread.relates_to, thread.event_id, int(thread.total), bool(thread.mine)
                )
        if REFERENCE in kinds:
            for ref in conn.execute(_REFERENCES, {"ids": kinds[REFERENCE]}):
                references.setdefault(ref.relates_to, []).append(ref.event_id)
    return BundleRows(edits, threads, references)


# -- /relations and /threads ---------------------------------------------------------


@attrs.frozen
class RelationPoint:
    """A point in topological order: rows with key <= (topological, stream) are before it."""

    topological: int
    stream: int
    # A sync token as the point: compare stream orderings only (as /messages does).
    stream_only: bool = False


def read_children(
    conn: Connection,
    parent_id: str,
    *,
    rel_type: str | None,
    event_type: str | None,
    backwards: bool,
    start: RelationPoint | None,
    stop: RelationPoint | None,
    recurse_depth: int,
    limit: int,
) -> list[StoredEvent]:
    """A page of the unredacted children of ``parent_id`` in topological order.

    With ``recurse_depth`` > 1, children of children count too, down to that
    depth (spec: ``recurse``); ``rel_type``/``event_type`` filter the events
    returned, at every depth, as Synapse does.
    """
    rel = event_relations
    if recurse_depth > 1:
        base = sa.select(rel.c.event_id, sa.literal(1).label("depth")).where(
            rel.c.relates_to == parent_id, _not_redacted()
        )
        tree = base.cte("relation_tree", recursive=True)
        inner = rel.alias("inner_rel")
        tree = tree.union_all(
            sa.select(inner.c.event_id, (tree.c.depth + 1).label("depth"))
            .join(tree, inner.c.relates_to == tree.c.event_id)
            .where(tree.c.depth < recurse_depth)
        )
        query = (
            sa.select(events)
            .join(rel, rel.c.event_id == events.c.event_id)
            .join(tree, tree.c.event_id == rel.c.event_id)
        )
    else:
        query = (
            sa.select(events)
            .join(rel, rel.c.event_id == events.c.event_id)
            .where(rel.c.relates_to == parent_id)
        )
    query = query.where(_not_redacted())
    if rel_type is not None:
        query = query.where(rel.c.rel_type == rel_type)
    if event_type is not None:
        query = query.where(rel.c.type == event_type)
    topo, stream = rel.c.topological_ordering, rel.c.stream_ordering
    for point, before in ((start, backwards), (stop, not backwards)):
        if point is None:
            continue
        if point.stream_only:
            query = query.where(stream <= point.stream if before else stream > point.stream)
        elif before:
            query = query.where(
                sa.or_(
                    topo < point.topological,
                    sa.and_(topo == point.topological, stream <= point.stream),
                )
            )
        else:
            query = query.where(
                sa.or_(
                    topo > point.topological,
                    sa.and_(topo == point.topological, stream > point.stream),
                )
            )
    order = (topo.desc(), stream.desc()) if backwards else (topo.asc(), stream.asc())
    rows = conn.execute(query.order_by(*order).limit(limit)).all()
    return [_row_to_event(row) for row in rows]


def read_thread_roots(
    conn: Connection,
    room_id: str,
    *,
    participant: str | None,
    before_stream: int | None,
    limit: int,
) -> list[tuple[StoredEvent, int]]:
    """Thread roots of the room with the stream position of their latest reply, newest first.

    ``participant``: only threads that user started or replied in.
    ``before_stream``: only threads whose latest reply is below this position.
    """
    rel = event_relations
    latest = sa.func.max(rel.c.stream_ordering)
    grouped = (
        sa.select(rel.c.relates_to, latest.label("latest"))
        .where(rel.c.room_id == room_id, rel.c.rel_type == THREAD, _not_redacted())
        .group_by(rel.c.relates_to)
    )
    if participant is not None:
        grouped = grouped.add_columns(
            sa.func.max(sa.case((rel.c.sender == participant, 1), else_=0)).label("mine")
        )
    summary = grouped.subquery()
    query = (
        sa.select(events, summary.c.latest)
        .join(summary, summary.c.relates_to == events.c.event_id)
        .where(
            events.c.room_id == room_id,
            events.c.outlier == sa.false(),
            events.c.rejected_reason.is_(None),
            events.c.soft_failed == sa.false(),
        )
    )
    if participant is not None:
        query = query.where(sa.or_(summary.c.mine == 1, events.c.sender == participant))
    if before_stream is not None:
        query = query.where(summary.c.latest < before_stream)
    rows = conn.execute(query.order_by(summary.c.latest.desc()).limit(limit)).all()
    return [(_row_to_event(row), int(row.latest)) for row in rows]
