"""Token-bucket rate limits, pure: the caller passes ``now`` (seconds, monotonic).

A bucket holds up to ``burst`` tokens and refills at ``rate`` tokens a second;
each action takes one. A key (an IP, a user ID) that has been idle long enough
for its bucket to refill completely carries no information, so it is dropped:
memory stays bounded by the keys active within one refill period, and a hard
``max_keys`` cap evicts the least recently used beyond that.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import attrs

from homeserver.config import RateLimitConfig
from homeserver.errors import limit_exceeded


@attrs.define
class TokenBucket:
    rate: float
    burst: float
    tokens: float
    updated: float

    @classmethod
    def full(cls, rate: float, burst: float, now: float) -> TokenBucket:
        return cls(rate=rate, burst=burst, tokens=burst, updated=now)

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now

    def try_take(self, now: float, cost: float = 1.0) -> float:
        """Take ``cost`` tokens; return 0.0 on success or the seconds until it would succeed."""
        self._refill(now)
        if self.tokens >= cost:
            self.tokens -= cost
            return 0.0
        if self.rate <= 0:
            return float("inf")
        return (cost - self.tokens) / self.rate

    def is_full(self, now: float) -> bool:
        self._refill(now)
        return self.tokens >= self.burst


class RateLimiter:
    """One token bucket per key, all with the same rate and burst."""

    def __init__(self, rate: float, burst: int, *, max_keys: int = 100_000) -> None:
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.rate = rate
        self.burst = float(burst)
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self._last_sweep = float("-inf")

    def __len__(self) -> int:
        return len(self._buckets)

    def check(self, key: str, now: float) -> float:
        """Take one action for ``key``; return 0.0 if allowed, else seconds to wait."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = TokenBucket.full(self.rate, self.burst, now)
            self._buckets[key] = bucket
        else:
            self._buckets.move_to_end(key)
        wait = bucket.try_take(now)
        self._evict(now)
        return wait

    def _evict(self, now: float) -> None:
        # Drop idle keys at most once per refill period (amortized O(1) per check).
        refill_period = self.burst / self.rate if self.rate > 0 else float("inf")
        if now - self._last_sweep >= refill_period or len(self._buckets) > self.max_keys:
            self._last_sweep = now
            for key in [k for k, b in self._buckets.items() if b.is_full(now)]:
                del self._buckets[key]
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)


def retry_after_ms(wait_seconds: float) -> int:
    """Milliseconds to tell the client (rounded up so it never retries too early)."""
    return max(1, int(min(wait_seconds, 86_400.0) * 1000 + 0.999))


class RateLimits:
    """The server's named limits (``login``, ``register``, ``writes``) from configuration.

    ``check`` raises ``M_LIMIT_EXCEEDED`` (429, ``retry_after_ms`` and
    ``Retry-After``) when the key's bucket is empty; with ``enabled = false``
    every check passes.
    """

    def __init__(self, config: RateLimitConfig, clock: Callable[[], float]) -> None:
        self.enabled = config.enabled
        self._clock = clock
        self._limiters = {
            "login": RateLimiter(config.login_per_second, config.login_burst),
            "register": RateLimiter(config.register_per_second, config.register_burst),
            "writes": RateLimiter(config.writes_per_second, config.writes_burst),
        }

    def check(self, kind: str, key: str) -> None:
        if not self.enabled:
            return
        wait = self._limiters[kind].check(key, self._clock())
        if wait > 0:
            raise limit_exceeded(retry_after_ms(wait))
