"""Provider status: a frozen snapshot computed from a client's recent call history.

States, worst last::

    ready                no failure since the last success (or no call yet)
    degraded             1 or 2 consecutive failures, or rate limited right now
    error                `error_after` (3) or more consecutive failures, or the credential
                         was rejected
    needs_configuration  a required setting is empty; the reason names it
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from miauflix.providers.errors import NotFound, ProviderError, RateLimited, Unauthorized

__all__ = ["ProviderState", "ProviderStatus"]

ProviderState = Literal["ready", "degraded", "error", "needs_configuration"]


@dataclass(frozen=True, slots=True)
class ProviderStatus:
    """What one provider client reports for `/status` -> `services`.

    Attributes:
        status: `"ready"`, `"degraded"`, `"error"` or `"needs_configuration"`.
        reason: Why it is not ready (the last error, the missing setting), None when ready.
        details: JSON-safe counters: `requests`, `failures`, `consecutive_failures`,
            `last_success_at`, `last_failure_at` (epoch seconds or None), `last_error`,
            `last_error_code`, and client-specific entries.
    """

    status: ProviderState
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The snapshot as a JSON-safe dict (a copy: changing it changes nothing here)."""
        return {"status": self.status, "reason": self.reason, "details": dict(self.details)}


class _Health:
    """Mutable call history of one provider client; `status()` hands out snapshots."""

    def __init__(
        self, provider: str, *, missing_setting: str | None = None, error_after: int = 3
    ) -> None:
        self.provider = provider
        self.missing_setting = missing_setting
        self.error_after = error_after
        self.requests = 0
        self.failures = 0
        self.consecutive_failures = 0
        self.last_success_at: float | None = None
        self.last_failure_at: float | None = None
        self.last_error: ProviderError | None = None
        self.rate_limited_until: float | None = None

    def success(self) -> None:
        self.requests += 1
        self.consecutive_failures = 0
        self.last_success_at = time.time()

    def failure(self, error: ProviderError) -> None:
        self.requests += 1
        if isinstance(error, NotFound):
            # A 404 is an answer ("gone", "not in the cache"), not a sign of an outage.
            self.consecutive_failures = 0
            self.last_success_at = time.time()
            return
        self.failures += 1
        self.consecutive_failures += 1
        self.last_failure_at = time.time()
        self.last_error = error
        if isinstance(error, RateLimited):
            self.rate_limited_until = self.last_failure_at + (error.retry_after or 0.0)

    def details(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "failures": self.failures,
            "consecutive_failures": self.consecutive_failures,
            "last_success_at": self.last_success_at,
            "last_failure_at": self.last_failure_at,
            "last_error": None if self.last_error is None else str(self.last_error),
            "last_error_code": None if self.last_error is None else self.last_error.code,
            "rate_limited_until": self.rate_limited_until,
        }

    def status(self) -> ProviderStatus:
        details = self.details()
        if self.missing_setting is not None:
            return ProviderStatus(
                "needs_configuration", f"{self.missing_setting} is not set", details
            )
        error = self.last_error
        if self.consecutive_failures == 0 or error is None:
            return ProviderStatus("ready", None, details)
        if isinstance(error, Unauthorized) or self.consecutive_failures >= self.error_after:
            return ProviderStatus("error", str(error), details)
        return ProviderStatus("degraded", str(error), details)
