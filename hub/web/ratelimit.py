"""Rate limits of the HTTP API: a token bucket per client (and per address for failed sign-ins).

HUB_API_RATE="<requests per second>/<burst>" sets them (default 20/60); "0" turns them off (benchmarks). The
buckets live in the serving process: behind several API processes each holds its own, which bounds a client at
that many times the rate; a shared limit belongs in the reverse proxy in front of them.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from core.settings import settings


@dataclass(frozen=True)
class Limit:
    rate: float  # tokens per second; 0 = unlimited
    burst: float

    @classmethod
    def parse(cls, spec: str) -> "Limit":
        spec = spec.strip()
        if spec in ("0", "off", ""):
            return cls(0.0, 0.0)
        try:
            rate, _, burst = spec.partition("/")
            limit = cls(float(rate), float(burst or rate))
        except ValueError:
            raise ValueError("HUB_API_RATE is '<requests per second>/<burst>', e.g. 20/60, or 0 for none") from None
        if not (0 <= limit.rate < math.inf and 1 <= limit.burst < math.inf):  # also refuses nan
            raise ValueError("HUB_API_RATE: the rate must be >= 0 and the burst >= 1")
        return limit


class Limiter:
    """Token buckets keyed by client; ``take`` answers how long to wait (0 when the request may go on)."""

    MAX_KEYS = 100_000

    def __init__(self, limit: Limit, clock=time.monotonic):
        self.limit, self.clock = limit, clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        if not self.limit.rate:
            return 0.0
        now = self.clock()
        with self._lock:
            if len(self._buckets) >= self.MAX_KEYS:  # forget idle buckets (a full bucket is the default anyway)
                self._buckets = {k: v for k, v in self._buckets.items()
                                 if v[0] + (now - v[1]) * self.limit.rate < self.limit.burst}
            tokens, at = self._buckets.get(key, (self.limit.burst, now))
            tokens = min(self.limit.burst, tokens + (now - at) * self.limit.rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.limit.rate


def from_env() -> Limiter:
    return Limiter(Limit.parse(settings().api_rate))
