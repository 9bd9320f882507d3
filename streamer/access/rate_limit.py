"""A token bucket per caller: how many render requests may start now, and when the next may."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class TokenBucket:
    rate: float  # tokens added per second
    burst: int  # the bucket's capacity
    tokens: float = -1.0  # -1: full on first use
    stamp: float = 0.0
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)

    def _refill(self) -> None:
        now = self.clock()
        if self.tokens < 0:
            self.tokens = float(self.burst)
        else:
            self.tokens = min(float(self.burst), self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def take(self, cost: float = 1.0) -> float:
        """Take `cost` tokens and return 0.0, or take nothing and return the seconds to wait."""
        self._refill()
        if self.tokens >= cost:
            self.tokens -= cost
            return 0.0
        return (cost - self.tokens) / self.rate


def retry_after_header(wait_s: float) -> str:
    """Retry-After is whole seconds; round up so a client that obeys it always succeeds."""
    return str(max(1, math.ceil(wait_s)))


@dataclass
class BucketTable:
    """One bucket per caller id, bounded: idle full buckets are dropped when the table grows."""
    rate: float
    burst: int
    max_entries: int = 10_000
    buckets: dict[str, TokenBucket] = field(default_factory=dict)

    def take(self, caller: str, cost: float = 1.0) -> float:
        bucket = self.buckets.get(caller)
        if bucket is None:
            if len(self.buckets) >= self.max_entries:
                self._prune()
            bucket = self.buckets[caller] = TokenBucket(self.rate, self.burst)
        return bucket.take(cost)

    def _prune(self) -> None:
        for caller, b in list(self.buckets.items()):
            b._refill()
            if b.tokens >= b.burst:
                del self.buckets[caller]
        if len(self.buckets) >= self.max_entries:  # all busy: forget the oldest
            del self.buckets[next(iter(self.buckets))]
