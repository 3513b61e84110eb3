"""The services behind the seed's seven scheduled tasks: lists, media and sources.

Each task method does one execution's unit of work and returns quickly when nothing is due
(one indexed query). Failing items get their own next attempt with backoff (see
`RetryPolicy`); a provider that is down pauses the task that calls it (`ProviderPause`), and
a run of the two hourly tasks that it stopped entirely reports it (`ProviderOutage`).
Every service takes the clock (`now()` returning an aware UTC datetime) and, where it draws
jitter, a `random.Random`, so tests are deterministic::

    lists = ListSynchronizer(database, providers.tmdb)
    media = MediaService(database, providers.tmdb)
    sources = SourceService(
        database,
        directories=providers.directories,
        torrent_files=providers.torrent_files,
        trackers=providers.trackers,
    )

=======================  ==========================================  ===================
task                     method                                      interval (seconds)
=======================  ==========================================  ===================
refreshLists             `ListSynchronizer.synchronize`              3600
syncMovies               `MediaService.sync_movies`                  5400
syncIncompleteSeasons    `MediaService.sync_incomplete_seasons`      1
movieSourceSearch        `SourceService.search_sources_for_movies`   0.1
dataFileSearch           `SourceService.search_torrent_files_for_sources`  0.2
updateSourcesStats       `SourceService.sync_stats_for_sources`      2
resyncMovieSources       `SourceService.resync_movie_sources`        5
=======================  ==========================================  ===================
"""

from miauflix.services._lists import LIST_SPECS, ListSpec, ListSynchronizer, ListSyncReport
from miauflix.services._media import (
    MOVIE_CHANGES_CHECKPOINT,
    MOVIE_DETAILS_RETRY,
    SEASON_RETRY,
    MediaService,
    MovieSyncReport,
)
from miauflix.services._retry import Clock, ProviderOutage, ProviderPause, RetryPolicy, utc_now
from miauflix.services._sources import (
    FILE_RETRY,
    RESYNC_RETRY,
    SEARCH_RETRY,
    STATS_MAX_WAIT,
    STATS_MIN_WAIT,
    STATS_RETRY,
    SourceService,
    relative_change,
    stats_wait,
)

__all__ = [
    "FILE_RETRY",
    "LIST_SPECS",
    "MOVIE_CHANGES_CHECKPOINT",
    "MOVIE_DETAILS_RETRY",
    "RESYNC_RETRY",
    "SEARCH_RETRY",
    "SEASON_RETRY",
    "STATS_MAX_WAIT",
    "STATS_MIN_WAIT",
    "STATS_RETRY",
    "Clock",
    "ListSpec",
    "ListSyncReport",
    "ListSynchronizer",
    "MediaService",
    "MovieSyncReport",
    "ProviderOutage",
    "ProviderPause",
    "RetryPolicy",
    "SourceService",
    "relative_change",
    "stats_wait",
    "utc_now",
]
