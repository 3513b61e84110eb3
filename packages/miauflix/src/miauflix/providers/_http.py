"""The one place where provider clients make HTTP requests.

`_HttpEndpoint.get()` applies, in this order: the host's wait (with `hold_on_busy`, after a
429 or 503 from a host its next calls fail fast with `RateLimited` until its `Retry-After`,
or a doubling backoff of 1 s up to 5 min when it gave none), the rate limiters (the
endpoint's, and one per host for URLs outside the base URL; waiting for them does not count
against the timeout), an overall deadline around the whole exchange (httpx's own timeouts
are per network operation, so a server that drips one byte a second would never trip them),
the status -> error mapping, and a bounded streamed read that stops past `max_bytes`. Every
outcome is recorded in the client's `_Health`.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from aiolimiter import AsyncLimiter

from miauflix.providers._shape import ShapeError
from miauflix.providers._status import _Health
from miauflix.providers.errors import (
    BadResponse,
    NotFound,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    Unauthorized,
)

logger = logging.getLogger("miauflix.providers")

USER_AGENT = "miauflix/0.1 (+tickwork)"

T = TypeVar("T")


# After a 429 or 503 without `Retry-After`: 1 s, doubling per consecutive one, up to 5 min.
HOLD_BASE = 1.0
HOLD_CAP = 300.0
# Per-host limiters kept at most (the least recently created is dropped past this).
_MAX_HOST_LIMITERS = 256


def _check_positive(name: str, value: float) -> None:
    if not isinstance(value, int | float) or not value > 0 or value == float("inf"):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def rate_limiter(rate: float) -> AsyncLimiter:
    """An `AsyncLimiter` of `rate` requests per second.

    At 1/s or more: a one-second bucket (bursts up to the rate, then smooth). Below 1/s
    (`0.5` is one request every 2 s, YTS's 20/min one every 3 s): one request per period,
    never a burst (aiolimiter cannot hold less than one request in its bucket).
    """
    if rate >= 1.0:
        return AsyncLimiter(rate, 1.0)
    return AsyncLimiter(1, 1.0 / rate)


def origin(url: httpx.URL) -> str:
    """`scheme://host:port` of `url`: what per-host limits and waits are keyed on."""
    return f"{url.scheme}://{url.netloc.decode('ascii', 'replace')}"


@dataclass(slots=True)
class _Hold:
    """A host that answered 429 or 503: no request to it before `until` (monotonic)."""

    until: float
    strikes: int


@dataclass(frozen=True, slots=True)
class _Body:
    """A complete response body that passed the size limit, with what callers look at."""

    status_code: int
    content_type: str
    content: bytes
    path: str


class _HttpEndpoint:
    """One provider's HTTP access: base URL, headers, limits, rate limiter and health."""

    def __init__(
        self,
        provider: str,
        base_url: str,
        *,
        timeout: float,
        max_bytes: int,
        rate_limit: float | None,
        host_rate_limit: float | None = None,
        hold_on_busy: bool = False,
        headers: Mapping[str, str] | None = None,
        health: _Health,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        _check_positive("timeout", timeout)
        if not isinstance(max_bytes, int) or max_bytes <= 0:
            raise ValueError(f"max_bytes must be an int > 0, got {max_bytes!r}")
        if rate_limit is not None:
            _check_positive("rate_limit", rate_limit)
        if host_rate_limit is not None:
            _check_positive("host_rate_limit", host_rate_limit)
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.timeout = float(timeout)
        self.max_bytes = max_bytes
        self.health = health
        self._rate = rate_limit
        self._limiter = None if rate_limit is None else rate_limiter(rate_limit)
        # URLs outside base_url (a directory's direct `.torrent` links) are limited per host.
        self._base_host_rate = host_rate_limit
        self._host_rate = host_rate_limit
        self.replicas = 1
        self._host_limiters: dict[str, AsyncLimiter] = {}
        self._hold_on_busy = hold_on_busy
        self._holds: dict[str, _Hold] = {}
        self._client = httpx.AsyncClient(
            headers={"User-Agent": USER_AGENT, **(headers or {})},
            timeout=httpx.Timeout(timeout),
            follow_redirects=True,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    def share(self, replicas: int) -> None:
        """Limit this process to `1/replicas` of the endpoint's rates (and of each host's).

        Calls waiting on the previous limiter finish their wait on it; the next calls use the
        new one. Unchanged `replicas`: nothing happens.
        """
        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
            raise ValueError(f"replicas must be an integer >= 1, got {replicas!r}")
        if replicas == self.replicas:
            return
        self.replicas = replicas
        if self._rate is not None:
            self._limiter = rate_limiter(self._rate / replicas)
        if self._base_host_rate is not None:
            self._host_rate = self._base_host_rate / replicas
            self._host_limiters.clear()

    def url_for(self, path: str) -> str:
        return path if "://" in path else f"{self.base_url}{path}"

    async def get(
        self,
        path: str,
        parse: Callable[[_Body], T],
        params: Mapping[str, str | int] | None = None,
    ) -> T:
        """GET `path` (relative to the base URL, or absolute) and return `parse(body)`.

        `parse` may raise `ProviderError` or `ShapeError` (turned into `BadResponse`); either
        way the failure is recorded in the health history, and so is a success.
        """
        url = self.url_for(path)
        try:
            shown = httpx.URL(url).path or "/"
        except httpx.InvalidURL:
            error = BadResponse(self.provider, "/", f"not a usable URL: {url!r}")
            self.health.failure(error)
            raise error from None
        try:
            body = await self._get(url, shown, params)
            try:
                result = parse(body)
            except ShapeError as exc:
                raise BadResponse(self.provider, shown, f"unexpected answer: {exc}") from None
        except ProviderError as error:
            self.health.failure(error)
            logger.debug("%s request failed: %s", self.provider, error)
            raise
        self.health.success()
        return result

    async def get_json(
        self,
        path: str,
        parse: Callable[[Any], T],
        params: Mapping[str, str | int] | None = None,
    ) -> T:
        """GET `path`, decode the body as JSON and return `parse(document)`."""
        return await self.get(path, lambda body: parse(self.decode_json(body)), params)

    def decode_json(self, body: _Body) -> Any:
        """The body as JSON, or `BadResponse` naming HTML or the decoding error."""
        try:
            return json.loads(body.content)
        except (ValueError, UnicodeDecodeError) as exc:
            if "html" in body.content_type or body.content.lstrip()[:1] == b"<":
                detail = f"HTML where JSON was expected (Content-Type {body.content_type!r})"
            else:
                detail = f"invalid or truncated JSON ({len(body.content)} bytes): {exc}"
            raise BadResponse(self.provider, body.path, detail) from None

    def _host_limiter(self, url: str, host: str) -> AsyncLimiter | None:
        if self._host_rate is None or url.startswith(self.base_url + "/"):
            return None
        limiter = self._host_limiters.get(host)
        if limiter is None:
            if len(self._host_limiters) >= _MAX_HOST_LIMITERS:
                del self._host_limiters[next(iter(self._host_limiters))]
            limiter = self._host_limiters[host] = rate_limiter(self._host_rate)
        return limiter

    def _check_hold(self, host: str, shown: str) -> None:
        hold = self._holds.get(host)
        if hold is None:
            return
        left = hold.until - time.monotonic()
        if left > 0:
            raise RateLimited(
                self.provider,
                shown,
                round(left, 1),
                reason=f"held back: {host} asked to wait (HTTP 429/503)",
            )

    def _record_answer(self, host: str, response: httpx.Response) -> None:
        if not self._hold_on_busy:
            return
        if response.status_code not in (429, 503):
            self._holds.pop(host, None)
            return
        previous = self._holds.get(host)
        strikes = 1 if previous is None else previous.strikes + 1
        wait = parse_retry_after(response.headers.get("retry-after"))
        if wait is None:
            wait = min(HOLD_CAP, HOLD_BASE * 2 ** min(strikes - 1, 16))
        self._holds[host] = _Hold(time.monotonic() + wait, strikes)
        logger.info(
            "%s: %s answered HTTP %d; no request to it for %.1f s",
            self.provider,
            host,
            response.status_code,
            wait,
        )

    async def _get(self, url: str, shown: str, params: Mapping[str, str | int] | None) -> _Body:
        host = origin(httpx.URL(url))
        self._check_hold(host, shown)
        if self._limiter is not None:
            await self._limiter.acquire()
        host_limiter = self._host_limiter(url, host)
        if host_limiter is not None:
            await host_limiter.acquire()
        # The wait may have outlasted a hold set by a concurrent request meanwhile.
        self._check_hold(host, shown)
        try:
            async with asyncio.timeout(self.timeout):
                async with self._client.stream("GET", url, params=params) as response:
                    self._record_answer(host, response)
                    self._check_status(response, shown)
                    content = await self._read_bounded(response, shown)
                    return _Body(
                        response.status_code,
                        response.headers.get("content-type", "").lower(),
                        content,
                        shown,
                    )
        except TimeoutError:
            raise ProviderTimeout(self.provider, shown, self.timeout) from None
        except httpx.TimeoutException:
            raise ProviderTimeout(self.provider, shown, self.timeout) from None
        except httpx.RemoteProtocolError as exc:
            # The server closed mid-answer: a truncated body or a broken status line.
            raise BadResponse(self.provider, shown, f"incomplete answer: {exc}") from None
        except (httpx.TransportError, OSError) as exc:
            raise ProviderUnavailable(
                self.provider, shown, f"cannot reach the provider: {type(exc).__name__}: {exc}"
            ) from None
        except httpx.HTTPError as exc:
            # Too many redirects, an undecodable Content-Encoding, an unusable redirect URL.
            raise BadResponse(self.provider, shown, f"{type(exc).__name__}: {exc}") from None
        except httpx.InvalidURL as exc:
            raise BadResponse(self.provider, shown, f"unusable redirect: {exc}") from None

    def _check_status(self, response: httpx.Response, shown: str) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        if status == 404:
            raise NotFound(self.provider, shown, "not found (HTTP 404)")
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            raise RateLimited(self.provider, shown, retry_after)
        if status in (401, 403):
            raise Unauthorized(
                self.provider, shown, f"credential rejected (HTTP {status})", status_code=status
            )
        if status >= 500:
            raise ProviderUnavailable(
                self.provider, shown, f"server error (HTTP {status})", status_code=status
            )
        raise BadResponse(self.provider, shown, f"unexpected status HTTP {status}")

    async def _read_bounded(self, response: httpx.Response, shown: str) -> bytes:
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            raise BadResponse(
                self.provider,
                shown,
                f"body of {declared} bytes exceeds the limit of {self.max_bytes} bytes",
            )
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self.max_bytes:
                # Stop reading: leaving the stream context closes the connection.
                raise BadResponse(
                    self.provider,
                    shown,
                    f"body exceeds the limit of {self.max_bytes} bytes",
                )
            chunks.append(chunk)
        return b"".join(chunks)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP date), or None."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - time.time())
