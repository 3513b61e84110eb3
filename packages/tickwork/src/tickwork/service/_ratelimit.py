"""A token-bucket rate limiter per (client address, route).

Each key owns a bucket holding up to ``burst`` tokens, refilled at ``rate`` tokens per second;
a request takes one token or is refused with the seconds until the next token. The table of
buckets is bounded (least recently used keys are dropped first) so a scan from many addresses
cannot grow memory without limit; a dropped key simply starts again with a full bucket.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

from tickwork._spec import check_finite

__all__ = ["RateLimiter"]


class RateLimiter:
    """Allow ``rate`` requests per second per key, with bursts of up to ``burst``.

    Args:
        rate: Sustained requests per second per key; ``> 0`` and finite.
        burst: Bucket size (requests allowed at once after a quiet period); ``>= 1``.
            Defaults to ``rate`` rounded up, so an idle client may send one second's worth at once.
        max_keys: How many keys to remember before forgetting the least recently used.
        clock: Monotonic seconds; replaceable in tests.

    Raises:
        ValueError: A parameter out of range.
    """

    def __init__(
        self,
        rate: float,
        burst: int | None = None,
        *,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        check_finite("rate", rate, zero=False, unit="requests per second")
        if burst is None:
            burst = max(1, math.ceil(rate))
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise ValueError(f"burst must be an int >= 1, got {burst!r}")
        if max_keys < 1:
            raise ValueError(f"max_keys must be >= 1, got {max_keys!r}")
        self.rate = float(rate)
        self.burst = burst
        self._max_keys = max_keys
        self._clock = clock
        # key -> (tokens, monotonic time of the last update)
        self._buckets: OrderedDict[tuple[str, str], tuple[float, float]] = OrderedDict()

    def acquire(self, client: str, route: str) -> float:
        """Take one token for ``(client, route)``.

        Returns:
            0.0 when the request is allowed, else the seconds until a token is available.
        """
        key = (client, route)
        now = self._clock()
        tokens, updated = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - updated) * self.rate)
        if tokens >= 1.0:
            self._remember(key, tokens - 1.0, now)
            return 0.0
        self._remember(key, tokens, now)
        return (1.0 - tokens) / self.rate

    def _remember(self, key: tuple[str, str], tokens: float, now: float) -> None:
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)

    def __len__(self) -> int:
        return len(self._buckets)
