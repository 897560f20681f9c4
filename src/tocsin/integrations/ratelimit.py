"""Per-integration rate limits: a token bucket per integration, in this process's memory.

Each API process keeps its own buckets, so with N processes behind a load balancer an
integration may get up to N times its limit; the limit exists to stop a runaway sender, and
that bound is enough for it. Time comes from the app's clock.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime

from tocsin.errors import TocsinError


class RateLimited(TocsinError):
    status_code = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"rate limit exceeded; retry in {retry_after} s")
        self.retry_after = retry_after


@dataclass
class _Bucket:
    limit: int
    tokens: float
    at: datetime


class RateLimiter:
    def __init__(self) -> None:
        self._buckets: dict[uuid.UUID, _Bucket] = {}

    def take(self, integration_id: uuid.UUID, per_minute: int | None, now: datetime) -> None:
        """Spend one request of the integration's allowance; RateLimited when none is left."""
        if per_minute is None:
            return
        bucket = self._buckets.get(integration_id)
        if bucket is None or bucket.limit != per_minute:
            bucket = _Bucket(per_minute, float(per_minute), now)
            self._buckets[integration_id] = bucket
        rate = per_minute / 60.0
        elapsed = max(0.0, (now - bucket.at).total_seconds())
        bucket.tokens = min(float(per_minute), bucket.tokens + elapsed * rate)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return
        raise RateLimited(max(1, math.ceil((1.0 - bucket.tokens) / rate)))
