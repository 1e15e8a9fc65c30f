"""Token buckets and the per-key limiter: pure, with ``now`` passed in."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from homeserver.config import RateLimitConfig
from homeserver.errors import MatrixError
from homeserver.ratelimit import RateLimiter, RateLimits, TokenBucket, retry_after_ms


def test_bucket_allows_burst_then_waits_for_refill() -> None:
    bucket = TokenBucket.full(rate=2.0, burst=3, now=0.0)
    assert [bucket.try_take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.try_take(0.0) == pytest.approx(0.5)
    assert bucket.try_take(0.25) == pytest.approx(0.25)
    assert bucket.try_take(0.5) == 0.0


def test_bucket_never_exceeds_burst_and_ignores_clock_going_back() -> None:
    bucket = TokenBucket.full(rate=1.0, burst=2, now=100.0)
    bucket.try_take(100.0)
    assert bucket.is_full(1000.0)
    assert bucket.tokens == 2
    bucket.try_take(1000.0)
    bucket.try_take(999.0)  # an earlier time must not refill
    assert bucket.tokens == pytest.approx(0.0)


@given(
    rate=st.floats(min_value=0.01, max_value=100),
    burst=st.integers(min_value=1, max_value=50),
    gaps=st.lists(st.floats(min_value=0, max_value=10), min_size=1, max_size=200),
)
def test_allowed_actions_never_exceed_burst_plus_refill(
    rate: float, burst: int, gaps: list[float]
) -> None:
    limiter = RateLimiter(rate, burst)
    now = 0.0
    allowed = 0
    for gap in gaps:
        now += gap
        if limiter.check("k", now) == 0.0:
            allowed += 1
    assert allowed <= burst + rate * now + 1e-6


@given(wait_after=st.floats(min_value=0, max_value=5), rate=st.floats(min_value=0.1, max_value=10))
def test_waiting_the_advertised_time_succeeds(wait_after: float, rate: float) -> None:
    limiter = RateLimiter(rate, 1)
    assert limiter.check("k", 0.0) == 0.0
    wait = limiter.check("k", wait_after / 10)
    if wait > 0:
        assert limiter.check("k", wait_after / 10 + wait + 1e-9) == 0.0


def test_keys_are_independent() -> None:
    limiter = RateLimiter(0.1, 1)
    assert limiter.check("a", 0.0) == 0.0
    assert limiter.check("a", 0.0) > 0
    assert limiter.check("b", 0.0) == 0.0


def test_idle_keys_are_evicted_and_memory_is_capped() -> None:
    limiter = RateLimiter(1.0, 2, max_keys=100)
    for i in range(50):
        limiter.check(f"ip{i}", 0.0)
    assert len(limiter) == 50
    # After a full refill period, a new check sweeps the idle ones away.
    limiter.check("late", 10.0)
    assert len(limiter) == 1
    for i in range(1000):
        limiter.check(f"burst{i}", 20.0)
    assert len(limiter) <= 100


def test_retry_after_rounds_up() -> None:
    assert retry_after_ms(0.0001) == 1
    assert retry_after_ms(1.5) == 1500
    assert retry_after_ms(float("inf")) == 86_400_000


def test_rate_limits_raise_limit_exceeded_and_can_be_disabled() -> None:
    now = [0.0]
    config = RateLimitConfig(login_burst=1, login_per_second=0.5)
    limits = RateLimits(config, lambda: now[0])
    limits.check("login", "1.2.3.4")
    with pytest.raises(MatrixError) as info:
        limits.check("login", "1.2.3.4")
    error = info.value
    assert (error.status, error.errcode, error.extra["retry_after_ms"]) == (
        429,
        "M_LIMIT_EXCEEDED",
        2000,
    )
    assert ("Retry-After", "2") in error.headers
    now[0] = 2.0
    limits.check("login", "1.2.3.4")
    off = RateLimits(RateLimitConfig(enabled=False, login_burst=1), lambda: 0.0)
    for _ in range(10):
        off.check("login", "1.2.3.4")


def test_burst_must_be_positive() -> None:
    with pytest.raises(ValueError):
        RateLimiter(1.0, 0)
