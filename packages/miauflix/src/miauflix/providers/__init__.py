"""Clients of the outside services miauflix depends on: TMDB, content directories, torrent
files and trackers.

Every client is async (httpx, or asyncio UDP for trackers), has explicit timeouts, a bounded
response size and a rate limiter, raises `miauflix.providers.errors.ProviderError` subclasses,
and reports a `ProviderStatus` from its recent history. `build_providers(settings)` builds
them all.
"""

from miauflix.providers._bundle import Providers, build_providers
from miauflix.providers._status import ProviderState, ProviderStatus
from miauflix.providers.directories import (
    ContentDirectory,
    DirectorySearchResult,
    SourceCandidate,
    search_directories,
)
from miauflix.providers.errors import (
    BadResponse,
    HashMismatch,
    NotConfigured,
    NotFound,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    Unauthorized,
)
from miauflix.providers.tmdb import TmdbClient
from miauflix.providers.torrents import TorrentFile, TorrentFileFetcher
from miauflix.providers.trackers import ScrapeResult, TrackerScraper
from miauflix.providers.yts import YtsDirectory

__all__ = [
    "BadResponse",
    "ContentDirectory",
    "DirectorySearchResult",
    "HashMismatch",
    "NotConfigured",
    "NotFound",
    "ProviderError",
    "ProviderState",
    "ProviderStatus",
    "ProviderTimeout",
    "ProviderUnavailable",
    "Providers",
    "RateLimited",
    "ScrapeResult",
    "SourceCandidate",
    "TmdbClient",
    "TorrentFile",
    "TorrentFileFetcher",
    "TrackerScraper",
    "Unauthorized",
    "YtsDirectory",
    "build_providers",
    "search_directories",
]
