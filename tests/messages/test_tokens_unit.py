"""Pagination tokens: round trips, ordering, refusals."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from homeserver.errors import MatrixError
from homeserver.timeline.tokens import (
    StreamPoint,
    TopologicalToken,
    parse_pagination_token,
)

ints = st.integers(min_value=-(10**17), max_value=10**17)


@given(ints, ints)
def test_topological_round_trip(topo: int, stream: int) -> None:
    token = TopologicalToken(topo, stream)
    assert parse_pagination_token(token.to_string()) == token


def test_before_and_after_bracket_the_event() -> None:
    before = TopologicalToken.before(5, 10)
    after = TopologicalToken.after(5, 10)
    assert before < (after := after) and (before.topological, before.stream) < (5, 10)
    assert (after.topological, after.stream) == (5, 10)


def test_sync_token_is_a_stream_point() -> None:
    assert parse_pagination_token("s42_1_2_3_4_5_6") == StreamPoint(42)
    assert parse_pagination_token(StreamPoint(7).to_string()) == StreamPoint(7)


@pytest.mark.parametrize(
    "value", ["", "x", "t", "t1", "t1-", "tA-1", "s-1", "sx", "t1-2-3", "t" + "9" * 30 + "-1"]
)
def test_malformed_tokens(value: str) -> None:
    with pytest.raises(MatrixError) as exc:
        parse_pagination_token(value)
    assert (exc.value.status, exc.value.errcode) == (400, "M_INVALID_PARAM")
