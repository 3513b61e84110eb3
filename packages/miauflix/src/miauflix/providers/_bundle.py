"""`Providers`: every provider client the application uses, built from `Settings`."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import httpx

from miauflix.providers._status import ProviderStatus
from miauflix.providers.directories import ContentDirectory
from miauflix.providers.tmdb import TmdbClient
from miauflix.providers.torrents import TorrentFileFetcher
from miauflix.providers.trackers import TrackerScraper
from miauflix.providers.yts import YtsDirectory
from miauflix.settings import Settings


@dataclass(frozen=True, slots=True)
class Providers:
    """The application's provider clients; close them with `aclose()` (or `async with`).

    Attributes:
        tmdb: The TMDB client.
        yts: The YTS directory (also the first of `directories`).
        directories: The content directories, in the order they are asked.
        torrent_files: The torrent file fetcher.
        trackers: The tracker scraper.
    """

    tmdb: TmdbClient
    yts: YtsDirectory
    directories: tuple[ContentDirectory, ...]
    torrent_files: TorrentFileFetcher
    trackers: TrackerScraper

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every client's connections, each even when closing an earlier one failed.

        Raises:
            Exception: What a client raised, once every client was closed; when several
                failed, the last one's error, with the earlier ones as its `__context__`.
        """
        async with contextlib.AsyncExitStack() as stack:
            # Pushed in reverse: the stack closes the last pushed first.
            stack.push_async_callback(self.trackers.aclose)
            stack.push_async_callback(self.torrent_files.aclose)
            stack.push_async_callback(self.yts.aclose)
            stack.push_async_callback(self.tmdb.aclose)

    def share_budget(self, replicas: int) -> None:
        """Divide each provider's rate limit by `replicas`: this process's share of it.

        With N live replicas each sends at most 1/N of TMDB's, YTS's and each download
        host's budget, so the cluster stays within it. Tracker scrapes keep their per-tracker
        rate (the trackers are the swarm's, asked a few times a minute).

        Raises:
            ValueError: `replicas` is not an integer >= 1.
        """
        for client in (self.tmdb, self.yts, self.torrent_files):
            client.share_budget(replicas)

    @property
    def replicas(self) -> int:
        """The number of replicas the budgets are currently divided by (1: the whole)."""
        return self.tmdb._http.replicas

    def statuses(self) -> dict[str, ProviderStatus]:
        """Each client's status by name: `tmdb`, `yts`, `torrent_files`, `trackers`.

        Ready to register as `/status` components (`ProviderStatus` has the fields of
        `tickwork.service.ComponentStatus`).
        """
        return {
            "tmdb": self.tmdb.status(),
            "yts": self.yts.status(),
            "torrent_files": self.torrent_files.status(),
            "trackers": self.trackers.status(),
        }


def build_providers(
    settings: Settings,
    *,
    udp_base_timeout: float = 15.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Providers:
    """Build every provider client from the settings.

    Args:
        settings: Uses `tmdb_api_url`, `tmdb_api_token`, `yts_api_url`, `torrent_cache_url`,
            `trackers`, `http_timeout` (the per-request timeout of every client, and the
            overall timeout of one tracker scrape) and the provider limits `tmdb_rate`,
            `yts_rate` and `download_rate` (per host).
        udp_base_timeout: First UDP tracker retransmission timeout (BEP 15: 15 s).
        transport: An httpx transport for every HTTP client (tests).

    In demo mode (empty token) the caller starts the simulator first and passes settings
    pointing at it, e.g. `dataclasses.replace(settings, tmdb_api_url=sim.tmdb_url,
    tmdb_api_token=sim.tmdb_token, ...)`; with an empty token the TMDB client reports
    `needs_configuration` and every call raises `NotConfigured`.
    """
    timeout = settings.http_timeout
    tmdb = TmdbClient(
        settings.tmdb_api_url,
        settings.tmdb_api_token,
        timeout=timeout,
        rate_limit=settings.tmdb_rate,
        transport=transport,
    )
    yts = YtsDirectory(
        settings.yts_api_url,
        trackers=settings.tracker_urls,
        timeout=timeout,
        rate_limit=settings.yts_rate,
        transport=transport,
    )
    return Providers(
        tmdb=tmdb,
        yts=yts,
        directories=(yts,),
        torrent_files=TorrentFileFetcher(
            settings.torrent_cache_url,
            timeout=timeout,
            rate_limit=settings.download_rate,
            transport=transport,
        ),
        trackers=TrackerScraper(
            settings.tracker_urls,
            timeout=timeout,
            udp_base_timeout=udp_base_timeout,
            transport=transport,
        ),
    )
