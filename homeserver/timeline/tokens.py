"""Pagination tokens: opaque to clients, a point in a room's history to us.

A token names a point *between* events in the order /messages walks,
``(topological_ordering, stream_ordering)``. ``t<topo>-<stream>`` means
"every event whose key is <= (topo, stream) is before this point". Stream
orderings are unique, so the point just before event ``e`` is
``(e.topo, e.stream - 1)`` and the point just after it is ``(e.topo, e.stream)``.

Clients also hand us sync tokens (``next_batch``/``prev_batch`` style,
``s<events>_...``) as ``from``: those name a point in the stream order, and
are honoured as "stream ordering <= N" (matrix_brief 1.8: ``prev_batch`` from
/sync feeds /messages).
"""

from __future__ import annotations

import re

import attrs

from homeserver.errors import MatrixError
from homeserver.notifier import StreamToken

_TOPOLOGICAL = re.compile(r"t(-?\d{1,18})-(-?\d{1,18})")


def invalid_token(error: str = "Invalid pagination token") -> MatrixError:
    return MatrixError(400, "M_INVALID_PARAM", error)


@attrs.frozen(order=True)
class TopologicalToken:
    topological: int
    stream: int

    def to_string(self) -> str:
        return f"t{self.topological}-{self.stream}"

    @classmethod
    def before(cls, topological: int, stream: int) -> TopologicalToken:
        """The point just before the event with this key."""
        return cls(topological, stream - 1)

    @classmethod
    def after(cls, topological: int, stream: int) -> TopologicalToken:
        """The point just after the event with this key."""
        return cls(topological, stream)


@attrs.frozen
class StreamPoint:
    """A point in the stream order: everything with stream ordering <= ``stream`` is before it."""

    stream: int

    def to_string(self) -> str:
        return StreamToken(events=self.stream).to_string()


PaginationPoint = TopologicalToken | StreamPoint


def parse_pagination_token(value: str) -> PaginationPoint:
    """Parse a ``from``/``to`` token; anything malformed is 400 M_INVALID_PARAM."""
    if len(value) > 200:
        raise invalid_token()
    match = _TOPOLOGICAL.fullmatch(value)
    if match is not None:
        return TopologicalToken(int(match.group(1)), int(match.group(2)))
    if value.startswith("s"):
        try:
            return StreamPoint(StreamToken.parse(value).events)
        except MatrixError:
            raise invalid_token() from None
    raise invalid_token()
