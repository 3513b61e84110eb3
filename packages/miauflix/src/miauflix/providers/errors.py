"""Typed errors of the provider clients: what went wrong, in a form a caller can back off on.

Every failure of a provider call raises a subclass of `ProviderError`; nothing else escapes a
client except caller mistakes (`ValueError`/`TypeError` for a malformed argument) and
cancellation. Each error has a stable snake_case `code`, the `provider` name and the URL `path`
it concerns; its message names both and never contains a credential.

Hierarchy::

    ProviderError
     +-- ProviderUnavailable   code "unavailable": HTTP 5xx, connection refused or reset
     +-- ProviderTimeout       code "timeout": no complete answer within the timeout
     +-- RateLimited           code "rate_limited": HTTP 429; `retry_after` seconds or None
     +-- BadResponse           code "bad_response": HTML instead of JSON, truncated or invalid
     |                         JSON, an unexpected shape, an oversized body, an unexpected status
     +-- NotFound              code "not_found": HTTP 404 (TMDB details: the item is gone)
     +-- NotConfigured         code "not_configured": a required setting is empty; `setting`
     +-- Unauthorized          code "unauthorized": HTTP 401/403, the credential was rejected
     +-- HashMismatch          code "hash_mismatch": a torrent file whose info hash differs
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "BadResponse",
    "HashMismatch",
    "NotConfigured",
    "NotFound",
    "ProviderError",
    "ProviderErrorCode",
    "ProviderTimeout",
    "ProviderUnavailable",
    "RateLimited",
    "Unauthorized",
]

ProviderErrorCode = Literal[
    "unavailable",
    "timeout",
    "rate_limited",
    "bad_response",
    "not_found",
    "not_configured",
    "unauthorized",
    "hash_mismatch",
]


class ProviderError(Exception):
    """A provider call failed.

    Args:
        provider: The provider's name (`"tmdb"`, `"yts"`, `"torrent_cache"`, a tracker URL...).
        path: The URL path (no query string, no credentials) the call concerned.
        detail: What went wrong, in a few words.

    Attributes:
        code: Stable snake_case identifier of the failure kind (see `ProviderErrorCode`).
        provider: As given.
        path: As given.
        detail: As given.
    """

    code: ProviderErrorCode = "unavailable"

    def __init__(self, provider: str, path: str, detail: str) -> None:
        self.provider = provider
        self.path = path
        self.detail = detail
        super().__init__(f"{provider}: {path}: {detail}")


class ProviderUnavailable(ProviderError):
    """The provider answered with a 5xx status or could not be reached at all.

    Attributes:
        status_code: The HTTP status, or None when no answer came (connection refused, reset).
    """

    code: ProviderErrorCode = "unavailable"

    def __init__(
        self, provider: str, path: str, detail: str, *, status_code: int | None = None
    ) -> None:
        super().__init__(provider, path, detail)
        self.status_code = status_code


class ProviderTimeout(ProviderError):
    """No complete answer arrived within the configured timeout.

    Attributes:
        timeout: The timeout that was exceeded, in seconds.
    """

    code: ProviderErrorCode = "timeout"

    def __init__(self, provider: str, path: str, timeout: float) -> None:
        super().__init__(provider, path, f"no complete answer within {timeout:g} s")
        self.timeout = timeout


class RateLimited(ProviderError):
    """The provider refused the call with HTTP 429 (too many requests), or the client held
    the call back because the host asked it to wait (a recent 429 or 503).

    Attributes:
        retry_after: Seconds to wait before the next call, from the `Retry-After` header
            (delta-seconds or an HTTP date) or what is left of the host's wait, or None when
            the provider did not say.
    """

    code: ProviderErrorCode = "rate_limited"

    def __init__(
        self,
        provider: str,
        path: str,
        retry_after: float | None,
        *,
        reason: str = "rate limited (HTTP 429)",
    ) -> None:
        wait = "unspecified" if retry_after is None else f"{retry_after:g} s"
        super().__init__(provider, path, f"{reason}, retry after {wait}")
        self.retry_after = retry_after


class BadResponse(ProviderError):
    """The provider answered, but with something the client cannot use.

    HTML where JSON was expected, truncated or invalid JSON, a JSON document of the wrong
    shape, a body larger than the client's limit, a file that is not a torrent, or a status the
    client does not expect.
    """

    code: ProviderErrorCode = "bad_response"


class NotFound(ProviderError):
    """The provider answered HTTP 404: for TMDB details this means the item is gone."""

    code: ProviderErrorCode = "not_found"


class NotConfigured(ProviderError):
    """A setting the client needs is empty, so no call was made.

    Attributes:
        setting: The environment variable to set (for example `TMDB_API_TOKEN`).
    """

    code: ProviderErrorCode = "not_configured"

    def __init__(self, provider: str, path: str, setting: str) -> None:
        super().__init__(provider, path, f"{setting} is not set")
        self.setting = setting


class Unauthorized(ProviderError):
    """The provider rejected the credential (HTTP 401 or 403).

    Attributes:
        status_code: 401 or 403.
    """

    code: ProviderErrorCode = "unauthorized"

    def __init__(self, provider: str, path: str, detail: str, *, status_code: int) -> None:
        super().__init__(provider, path, detail)
        self.status_code = status_code


class HashMismatch(ProviderError):
    """A downloaded torrent file parses, but its info hash is not the one asked for.

    Attributes:
        expected: The info hash asked for (40 lowercase hex digits).
        actual: The info hash of the file received (40 lowercase hex digits).
    """

    code: ProviderErrorCode = "hash_mismatch"

    def __init__(self, provider: str, path: str, *, expected: str, actual: str) -> None:
        super().__init__(provider, path, f"info hash {actual} differs from expected {expected}")
        self.expected = expected
        self.actual = actual
