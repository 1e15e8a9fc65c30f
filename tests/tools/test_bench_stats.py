"""Statistics and limits the benchmarks share (pure; no timings asserted)."""

from __future__ import annotations

import math
import os
import resource

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tools.bench.common import (
    BenchError,
    check_range,
    percentile,
    raise_fd_limit,
    read_rss_kib,
    summary_ms,
)

samples = st.lists(
    st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False),
    min_size=1,
    max_size=200,
)
fractions = st.floats(min_value=0.0, max_value=1.0)


@given(samples, fractions, fractions)
def test_percentile_is_monotonic_in_p(values: list[float], a: float, b: float) -> None:
    ordered = sorted(values)
    low, high = sorted((a, b))
    assert percentile(ordered, low) <= percentile(ordered, high)


@given(samples, fractions)
def test_percentile_is_a_sample_within_min_and_max(values: list[float], p: float) -> None:
    ordered = sorted(values)
    value = percentile(ordered, p)
    assert ordered[0] <= value <= ordered[-1]
    assert value in ordered


@given(samples)
def test_summary_is_ordered_and_in_milliseconds(values: list[float]) -> None:
    summary = summary_ms(values)
    assert summary["count"] == len(values)
    assert summary["p50"] <= summary["p95"] <= summary["p99"] <= summary["max"]
    assert summary["max"] == pytest.approx(max(values) * 1000, rel=1e-6, abs=1e-3)
    assert min(values) * 1000 - 1e-3 <= summary["mean"] <= summary["max"] + 1e-3


def test_summary_of_nothing_is_nan_not_an_error() -> None:
    summary = summary_ms([])
    assert summary["count"] == 0
    assert math.isnan(summary["p50"]) and math.isnan(summary["max"])
    assert math.isnan(percentile([], 0.5))


def test_percentile_of_known_values() -> None:
    ordered = [float(n) for n in range(1, 101)]
    assert percentile(ordered, 0.50) == 50
    assert percentile(ordered, 0.99) == 99
    assert percentile(ordered, 1.0) == 100
    assert percentile(ordered, 0.0) == 1


def test_check_range_names_the_flag() -> None:
    check_range("members", 5, 1, 10)
    with pytest.raises(BenchError, match="--max-duration"):
        check_range("max_duration", 0, 1, 10)
    with pytest.raises(BenchError):
        check_range("members", 11, 1, 10)


def test_fd_limit_only_grows_up_to_the_hard_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    now = raise_fd_limit(soft + 10)
    assert now >= soft
    assert hard == resource.RLIM_INFINITY or now <= hard


def test_rss_of_this_process() -> None:
    values = read_rss_kib(os.getpid())
    assert values["VmRSS"] > 0 and values["VmHWM"] >= values["VmRSS"]
