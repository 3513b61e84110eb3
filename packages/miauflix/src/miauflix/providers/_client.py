"""What every provider client shares: `async with`, `aclose()`, `status()` and the repr.

Two levels::

    _ProviderClient      the lifecycle: `async with` closes, repr shows the status
      _EndpointClient    one `_HttpEndpoint` and its `_Health` (TMDB, YTS, torrent files)

The tracker scraper has one endpoint (and one health history) per tracker, so it derives
from `_ProviderClient` and implements `aclose()` and `status()` itself.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from types import TracebackType
from typing import Self

import httpx

from miauflix.providers._http import _HttpEndpoint
from miauflix.providers._status import ProviderStatus, _Health


class _ProviderClient(abc.ABC):
    # Also the `ContentDirectory.name` protocol member, hence not a ClassVar.
    name: str

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._describe()} {self.status().status}>"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @abc.abstractmethod
    async def aclose(self) -> None: ...

    @abc.abstractmethod
    def status(self) -> ProviderStatus: ...

    @abc.abstractmethod
    def _describe(self) -> str:
        """What the repr shows between the class name and the status."""


class _EndpointClient(_ProviderClient):
    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        max_bytes: int,
        rate_limit: float | None,
        host_rate_limit: float | None = None,
        hold_on_busy: bool = False,
        headers: Mapping[str, str],
        transport: httpx.AsyncBaseTransport | None,
        missing_setting: str | None = None,
    ) -> None:
        self._health = _Health(self.name, missing_setting=missing_setting)
        self._http = _HttpEndpoint(
            self.name,
            base_url,
            timeout=timeout,
            max_bytes=max_bytes,
            rate_limit=rate_limit,
            host_rate_limit=host_rate_limit,
            hold_on_busy=hold_on_busy,
            headers=headers,
            health=self._health,
            transport=transport,
        )

    async def aclose(self) -> None:
        """Close the connection pool; the client cannot be used afterwards."""
        await self._http.aclose()

    def share_budget(self, replicas: int) -> None:
        """Send at most `1/replicas` of the configured rate from this process.

        Raises:
            ValueError: `replicas` is not an integer >= 1.
        """
        self._http.share(replicas)

    def status(self) -> ProviderStatus:
        """A snapshot of the client's health (see `ProviderStatus`)."""
        return self._health.status()

    def _describe(self) -> str:
        return repr(self._http.base_url)
