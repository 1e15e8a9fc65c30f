"""The full-text index of room events: SQLite FTS5 or a PostgreSQL tsvector with GIN.

Rows carry terms already tokenized by ``homeserver/search/tokenize.py``, one
space between terms, so both databases only match whole terms:

* SQLite: ``search_fts`` (FTS5, rowid = stream ordering) holds the terms;
  a query is an AND of quoted terms, ranked by ``bm25``.
* PostgreSQL: ``search_entries.vector`` is the terms with their positions
  cast to ``tsvector`` (no parser, so a CJK bigram stays one lexeme whatever
  the database locale); a query is ``'t1' & 't2'`` cast to ``tsquery``,
  ranked by ``ts_rank`` normalized by document length.

A search names the rooms it may read; rooms the user left come with the
stream position of their leave as an upper bound, so pagination counts
only rows the user may get.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from homeserver.storage.metadata import metadata

search_entries = sa.Table(
    "search_entries",
    metadata,
    sa.Column("stream_ordering", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("event_id", sa.Text, nullable=False, unique=True),
    sa.Column("room_id", sa.Text, nullable=False),
    sa.Column("sender", sa.Text, nullable=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("origin_server_ts", sa.BigInteger, nullable=False),
    sa.Column("terms", sa.Text, nullable=False),
)


MAX_COUNT = 10_000


@attrs.frozen
class Entry:
    stream_ordering: int
    event_id: str
    room_id: str
    sender: str
    type: str
    origin_server_ts: int
    terms: list[str]


@attrs.frozen
class Hit:
    event_id: str
    room_id: str
    stream_ordering: int
    rank: float


@attrs.frozen
class Query:
    terms: list[str]
    # room_id -> highest stream ordering the user may read (None: no bound).
    rooms: dict[str, int | None]
    senders: list[str] | None = None
    not_senders: list[str] = attrs.field(factory=list)
    types: list[str] | None = None
    not_types: list[str] = attrs.field(factory=list)
    order_by_rank: bool = True


def _sqlite(conn: Connection) -> bool:
    return conn.dialect.name == "sqlite"


def insert_entries(conn: Connection, entries: Sequence[Entry]) -> None:
    if not entries:
        return
    rows = [
        {**attrs.asdict(e, filter=lambda a, _: a.name != "terms"), "terms": " ".join(e.terms)}
        for e in entries
    ]
    if _sqlite(conn):
        conn.execute(sa.insert(search_entries), rows)
        conn.execute(
            sa.text("INSERT INTO search_fts (rowid, terms) VALUES (:stream_ordering, :terms)"),
            [{"stream_ordering": r["stream_ordering"], "terms": r["terms"]} for r in rows],
        )
        return
    conn.execute(
        sa.text(
            "INSERT INTO search_entries (stream_ordering, event_id, room_id, sender, type,"
            " origin_server_ts, terms, vector) VALUES (:stream_ordering, :event_id, :room_id,"
            " :sender, :type, :origin_server_ts, :terms,"
            " CAST(:vector AS tsvector))"
        ),
        [{**r, "vector": tsvector_literal(e.terms)} for r, e in zip(rows, entries, strict=True)],
    )


def tsvector_literal(terms: Sequence[str]) -> str:
    """``'pasta':1,3 'dinner':2``: the terms and their positions, read by tsvector's input
    function without any parser (ranking sees term frequency; nothing is re-split)."""
    positions: dict[str, list[int]] = {}
    for i, term in enumerate(terms[:16383], start=1):
        positions.setdefault(term, []).append(i)
    return " ".join(
        "'" + _quote(term) + "':" + ",".join(map(str, found[:256]))
        for term, found in positions.items()
    )


def _quote(term: str) -> str:
    return term.replace("\\", "\\\\").replace("'", "''")


def delete_entry(conn: Connection, event_id: str) -> bool:
    """Forget a redacted event's text; False if it was not indexed."""
    row = conn.execute(
        sa.select(search_entries.c.stream_ordering).where(search_entries.c.event_id == event_id)
    ).first()
    if row is None:
        return False
    if _sqlite(conn):
        conn.execute(sa.text("DELETE FROM search_fts WHERE rowid = :r"), {"r": row.stream_ordering})
    conn.execute(sa.delete(search_entries).where(search_entries.c.event_id == event_id))
    return True


def delete_entries(conn: Connection, event_ids: Sequence[str]) -> None:
    """Forget the text of these events (batch form of :func:`delete_entry`)."""
    ids = list(dict.fromkeys(event_ids))
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        if _sqlite(conn):
            found = conn.execute(
                sa.select(search_entries.c.stream_ordering).where(
                    search_entries.c.event_id.in_(chunk)
                )
            ).scalars()
            rowids = [{"r": int(r)} for r in found]
            if rowids:
                conn.execute(sa.text("DELETE FROM search_fts WHERE rowid = :r"), rowids)
        conn.execute(sa.delete(search_entries).where(search_entries.c.event_id.in_(chunk)))


def _like(pattern: str) -> str:
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


def _where(query: Query, entries: Any) -> list[Any]:
    room_clauses: list[Any] = []
    unbounded = [r for r, bound in query.rooms.items() if bound is None]
    if unbounded:
        room_clauses.append(entries.c.room_id.in_(unbounded))
    for room_id, bound in query.rooms.items():
        if bound is not None:
            room_clauses.append(
                sa.and_(entries.c.room_id == room_id, entries.c.stream_ordering <= bound)
            )
    clauses: list[Any] = [sa.or_(*room_clauses)]
    if query.senders is not None:
        clauses.append(entries.c.sender.in_(query.senders))
    if query.not_senders:
        clauses.append(entries.c.sender.not_in(query.not_senders))
    if query.types is not None:
        clauses.append(sa.or_(*(entries.c.type.like(_like(t), escape="\\") for t in query.types)))
    for not_type in query.not_types:
        clauses.append(sa.not_(entries.c.type.like(_like(not_type), escape="\\")))
    return clauses


def search(conn: Connection, query: Query, limit: int, offset: int) -> tuple[list[Hit], int]:
    """One page of hits and the count of matching rows (at most ``MAX_COUNT``: the spec's
    ``count`` is approximate, and counting every match of a common word costs a scan).

    The relevance score is computed only when ordering by rank; ``recent`` pages
    carry rank 0 (scoring every match of a common word just to sort by time is
    the expensive part of such a query).
    """
    if not query.terms or not query.rooms:
        return [], 0
    e = search_entries
    if _sqlite(conn):
        fts = sa.table("search_fts", sa.column("rowid"), sa.column("terms"))
        expression = " AND ".join('"' + t.replace('"', '""') + '"' for t in query.terms)
        # Materialized first: otherwise the planner may walk the room's rows by
        # index and probe the full-text index once per row (a second per query
        # at 100,000 messages, whatever the term).
        found = (
            sa.select(
                fts.c.rowid.label("rowid"),
                (
                    -sa.func.bm25(sa.literal_column("search_fts"))
                    if query.order_by_rank
                    else sa.literal(0.0)
                ).label("score"),
            )
            .where(sa.text("search_fts MATCH :expression").bindparams(expression=expression))
            .cte("found")
            .prefix_with("MATERIALIZED")
        )
        rank: Any = found.c.score
        source: Any = found.join(e, e.c.stream_ordering == found.c.rowid)
        match: Any = sa.true()
    else:
        tsquery = " & ".join("'" + _quote(t) + "'" for t in query.terms)
        q = sa.text("CAST(:tsquery AS tsquery)").bindparams(tsquery=tsquery)
        vector: Any = sa.literal_column("search_entries.vector")
        rank = sa.func.ts_rank(vector, q, 1)
        source = e
        match = vector.op("@@")(q)
    where = [match, *_where(query, e)]
    score = rank if query.order_by_rank else sa.literal(0.0)
    page = sa.select(e.c.event_id, e.c.room_id, e.c.stream_ordering, score.label("rank"))
    page = page.select_from(source).where(*where)
    order = (
        [sa.literal_column("rank").desc(), e.c.stream_ordering.desc()]
        if query.order_by_rank
        else [e.c.stream_ordering.desc()]
    )
    rows = conn.execute(page.order_by(*order).limit(limit).offset(offset)).all()
    matches = sa.select(e.c.stream_ordering).select_from(source).where(*where).limit(MAX_COUNT)
    total = conn.execute(sa.select(sa.func.count()).select_from(matches.subquery())).scalar_one()
    hits = [Hit(r.event_id, r.room_id, int(r.stream_ordering), float(r.rank)) for r in rows]
    return hits, int(total)
