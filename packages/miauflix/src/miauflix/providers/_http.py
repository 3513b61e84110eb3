"""The one place where provider clients make HTTP requests.

`_HttpEndpoint.get()` applies, in this order: the rate limiter (waiting for it does not count
against the timeout), an overall deadline around the whole exchange (httpx's own timeouts are
per network operation, so a server that drips one byte a second would never trip them), the
status -> error mapping, and a bounded streamed read that stops past `max_bytes`. Every
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


def _check_positive(name: str, value: float) -> None:
    if not isinstance(value, int | float) or not value > 0 or value == float("inf"):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


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
        headers: Mapping[str, str] | None = None,
        health: _Health,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        _check_positive("timeout", timeout)
        if not isinstance(max_bytes, int) or max_bytes <= 0:
            raise ValueError(f"max_bytes must be an int > 0, got {max_bytes!r}")
        if rate_limit is not None:
            _check_positive("rate_limit", rate_limit)
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.timeout = float(timeout)
        self.max_bytes = max_bytes
        self.health = health
        # A limiter of `rate_limit` tokens per second with a one-second bucket: bursts up to
        # the rate, then smooth.
        self._limiter = None if rate_limit is None else AsyncLimiter(rate_limit, 1.0)
        self._client = httpx.AsyncClient(
            headers={"User-Agent": USER_AGENT, **(headers or {})},
            timeout=httpx.Timeout(timeout),
            follow_redirects=True,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

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

    async def _get(self, url: str, shown: str, params: Mapping[str, str | int] | None) -> _Body:
        if self._limiter is not None:
            await self._limiter.acquire()
        try:
            async with asyncio.timeout(self.timeout):
                async with self._client.stream("GET", url, params=params) as response:
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
