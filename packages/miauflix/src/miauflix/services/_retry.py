"""What the services share: the injected clock, per-item retry policies and provider pauses.

A failing item (a season, a movie, a source) never blocks its queue: the service computes the
item's own next attempt from its failure count and the kind of error, writes it with the
failure, and the queue's pick moves on to the next due item. A provider that is down or
rate limiting is a different matter: every item would fail in turn, ten times a second, so
the service also pauses the task that calls it (`ProviderPause`) and returns at once until
the pause ends.

Error kinds (from `miauflix.providers.errors`)::

    RateLimited                  wait at least `retry_after`; pause the task as long
    ProviderTimeout, Unavailable back off exponentially; pause the task after 3 in a row
    NotFound                     the item is gone (or not there yet): long backoff, give up
    anything else ProviderError  a bad answer about this item: exponential backoff

The two hourly tasks have no queue to pause: they walk a fixed set (three lists, the days of
changes). A run that did none of its work because of its provider says so in its report
(`ProviderOutage`), and the application ends that run snoozed instead of a success.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from miauflix.providers import (
    NotConfigured,
    NotFound,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    Unauthorized,
)

__all__ = ["Clock", "ProviderOutage", "ProviderPause", "RetryPolicy", "outage_reason", "utc_now"]

Clock = Callable[[], datetime]
"""A zero-argument callable returning the current time as an aware UTC datetime."""

# Jitter applied to every computed delay: +-20 %, so items that failed together spread out.
JITTER = 0.2

logger = logging.getLogger("miauflix.services")


def utc_now() -> datetime:
    """Return the current time as an aware UTC datetime (the services' default clock)."""
    return datetime.now(UTC)


def jittered(seconds: float, rng: random.Random) -> float:
    """Return `seconds` times a random factor in [0.8, 1.2]."""
    return seconds * rng.uniform(1.0 - JITTER, 1.0 + JITTER)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When a failed item is tried again.

    After the n-th consecutive failure the item waits `base * 2**(n-1)` seconds, at most
    `cap`, +-20 % jitter; a `NotFound` starts from `gone_base` instead (the item is gone, or
    not there yet: asking again soon is pointless); a `RateLimited` waits at least its
    `retry_after`. After `give_up_after` failures the item leaves its queue (None: never).

    Attributes:
        base: Seconds after the first failure.
        cap: Longest wait, in seconds.
        gone_base: Seconds after the first `NotFound`.
        give_up_after: Failures after which the item is given up, or None.
    """

    base: float
    cap: float
    gone_base: float
    give_up_after: int | None = None

    def __post_init__(self) -> None:
        for name in ("base", "cap", "gone_base"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0 < value < float("inf"):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if self.give_up_after is not None and self.give_up_after < 1:
            raise ValueError(f"give_up_after must be >= 1 or None, got {self.give_up_after!r}")

    def delay(self, failures: int, error: BaseException, rng: random.Random) -> float:
        """Seconds to wait after the `failures`-th consecutive failure (>= 1) with `error`."""
        if failures < 1:
            raise ValueError(f"failures must be >= 1, got {failures!r}")
        start = self.gone_base if isinstance(error, NotFound) else self.base
        # min() before the power would overflow for a large count: cap the exponent first.
        seconds = min(self.cap, start * 2.0 ** min(failures - 1, 60))
        seconds = jittered(seconds, rng)
        if isinstance(error, RateLimited) and error.retry_after is not None:
            seconds = max(seconds, error.retry_after)
        return seconds

    def next_attempt(
        self, now: datetime, failures: int, error: BaseException, rng: random.Random
    ) -> datetime | None:
        """The item's next attempt after its `failures`-th failure, or None to give it up."""
        if self.give_up_after is not None and failures >= self.give_up_after:
            return None
        return now + timedelta(seconds=self.delay(failures, error, rng))


def is_provider_wide(error: ProviderError) -> bool:
    """Whether `error` says the provider itself is unwell (so every item would fail now)."""
    return isinstance(
        error, RateLimited | ProviderTimeout | ProviderUnavailable | Unauthorized | NotConfigured
    )


# ProviderUnavailable's detail when no answer came: "cannot reach the provider: Type: message".
_UNREACHABLE = re.compile(r"cannot reach the provider: (?P<type>[A-Za-z]+Error)\b")


def outage_reason(error: ProviderError) -> str:
    """A provider-wide error in a few words, provider first: "tmdb unreachable (connect error)".

    For the status page's snoozed rows: what is wrong and with which provider, without the
    URL path or the item the call was about.
    """
    provider = error.provider
    if isinstance(error, ProviderUnavailable):
        if error.status_code is not None:
            return f"{provider} unavailable (HTTP {error.status_code})"
        match = _UNREACHABLE.match(error.detail)
        if match is None:
            return f"{provider} unreachable ({error.detail})"
        # ConnectError -> "connect error", ReadError -> "read error".
        words = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", match["type"]).lower()
        return f"{provider} unreachable ({words})"
    if isinstance(error, ProviderTimeout):
        return f"{provider} not answering (no complete answer within {error.timeout:g} s)"
    if isinstance(error, RateLimited):
        if error.retry_after is None:
            return f"{provider} rate limited"
        return f"{provider} rate limited (retry after {error.retry_after:g} s)"
    if isinstance(error, NotConfigured):
        return f"{provider} not configured ({error.setting} is not set)"
    if isinstance(error, Unauthorized):
        return f"{provider} refused the credential (HTTP {error.status_code})"
    return f"{provider}: {error.detail}"


@dataclass(frozen=True, slots=True)
class ProviderOutage:
    """Why a run of `refreshLists` or `syncMovies` did none of its work: its provider failed.

    The services put one in their report (`ListSyncReport.outage`, `MovieSyncReport.outage`);
    the application ends such a run snoozed with `reason` (`miauflix.app`).

    Attributes:
        error: The provider's error that stopped the work (the last one, when several did).
        undone: What was left undone, in a few words: `"no list refreshed"`.
    """

    error: ProviderError
    undone: str

    @property
    def reason(self) -> str:
        """The provider, the cause, what was undone: "tmdb unreachable (connect error): ..."."""
        return f"{outage_reason(self.error)}: {self.undone}"

    @property
    def retry_after(self) -> float | None:
        """The seconds a 429 asked to wait (its `Retry-After`), else None."""
        if isinstance(self.error, RateLimited):
            return self.error.retry_after
        return None


class ProviderPause:
    """Pauses one task while the provider it calls is down, rate limiting or unconfigured.

    Call `trip(error)` after each provider-wide error and `clear()` after each answer. A 429
    pauses at once for its `retry_after`; a missing setting or a rejected credential for
    `config_pause` seconds. Timeouts and 5xx pause only from the `threshold`-th in a row
    (one in three requests failing is a flaky provider, not a down one): 1, 2, 4... seconds,
    up to `cap`. While `active()`, the task returns without a query or a call; the
    application ends such a run snoozed for `remaining()` seconds with `reason`
    (`miauflix.app`), so the scheduler does not even start it meanwhile.

    Args:
        name: What is paused, for the log (`"movieSourceSearch"`).
        clock: The services' clock.
        threshold: Consecutive timeouts or 5xx that start a pause.
        cap: Longest pause after timeouts or 5xx, in seconds.
        config_pause: Pause after `NotConfigured` or `Unauthorized`, in seconds.
    """

    def __init__(
        self,
        name: str,
        clock: Clock,
        *,
        threshold: int = 3,
        cap: float = 60.0,
        config_pause: float = 300.0,
    ) -> None:
        if threshold < 1:
            raise ValueError(f"threshold must be >= 1, got {threshold!r}")
        self.name = name
        self._clock = clock
        self.threshold = threshold
        self.cap = cap
        self.config_pause = config_pause
        self.until: datetime | None = None
        self.trips = 0
        self.reason: str | None = None

    def active(self) -> bool:
        """True while the pause lasts."""
        return self.until is not None and self._clock() < self.until

    def remaining(self) -> float:
        """Seconds left of the pause; 0.0 when there is none."""
        if self.until is None:
            return 0.0
        return max(0.0, (self.until - self._clock()).total_seconds())

    def trip(self, error: ProviderError) -> None:
        """Count `error` if it is provider-wide, and pause when it calls for one."""
        if not is_provider_wide(error):
            return
        self.trips += 1
        if isinstance(error, NotConfigured | Unauthorized):
            seconds = self.config_pause
        elif isinstance(error, RateLimited) and error.retry_after is not None:
            seconds = max(1.0, error.retry_after)
        elif self.trips < self.threshold:
            return
        else:
            seconds = min(self.cap, 2.0 ** min(self.trips - self.threshold, 30))
        self.until = self._clock() + timedelta(seconds=seconds)
        self.reason = outage_reason(error)
        logger.info("%s paused for %.1f s: %s", self.name, seconds, error)

    def clear(self) -> None:
        """End the streak after a provider answered."""
        self.trips = 0
        self.until = None
        self.reason = None
