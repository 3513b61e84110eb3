"""`setup(scheduler)`: the Miauflix service, the target of `tickwork run miauflix.app:setup`.

At startup it reads the settings, starts the provider simulator when no TMDB token is set
(demo mode), opens and migrates the database, builds the provider clients and the services,
registers the seed's seven tasks from the one table `TASKS`, all or nothing (the seed's
"Scheduled Tasks" and "Task Registration" sections), and the `/status` components, and returns
a `MiauflixApp` whose `aclose()` releases everything at shutdown::

    tickwork run miauflix.app:setup          # or: make run

=======================  ========  =========================================================
task                     interval  one execution
=======================  ========  =========================================================
refreshLists             3600 s    rebuild the three TMDB lists
syncMovies               5400 s    walk TMDB's movie changes from the checkpoint, day by day
syncIncompleteSeasons    1 s       sync one season's episodes
movieSourceSearch        0.1 s     search the directories for one movie's sources
dataFileSearch           0.2 s     download a few sources' `.torrent` files
updateSourcesStats       2 s       scrape seeders/leechers of up to 5 sources
resyncMovieSources       5 s       fill one movie's missing source upload dates and types
=======================  ========  =========================================================

Components under `/status` -> `services`: `catalog` (row counts in `details`), and the
providers `tmdb`, `yts`, `torrent_files`, `trackers`. The read API (`miauflix.api`: `/api/lists`,
`/api/movies/{tmdb_id}`, `/api/shows/{tmdb_id}`...) is served beside `/status`, under its token
and rate limit.

A task whose provider is down (its service's `ProviderPause`) ends its run snoozed
(`tickwork.Snooze`) for what is left of the pause, the provider and the cause in the reason,
so its row reads e.g. "snoozed 45 s: tmdb unreachable (connect error)" and the scheduler does
not start it meanwhile. A failing item (a season, a movie, a source) stays the item's matter:
logged, backed off on its own, counted under its provider's component.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from miauflix._storage import open_configured_database, prepare_data_dir, start_demo_simulator
from miauflix.api import read_routes
from miauflix.db import Database, catalog_counts
from miauflix.providers import Providers, build_providers
from miauflix.services import ListSynchronizer, MediaService, ProviderPause, SourceService
from miauflix.settings import RATE_DEFAULTS, Settings, format_rate
from miauflix.simulator import Faults, Simulator
from tickwork import Scheduler, Snooze, TaskSpec
from tickwork.service import ComponentStatus, register_component, register_routes

__all__ = ["TASKS", "MiauflixApp", "TaskDefinition", "setup"]

logger = logging.getLogger("miauflix.app")


@dataclass(slots=True)
class MiauflixApp:
    """What `setup` built; `aclose()` (or `async with`) releases it.

    Attributes:
        settings: The settings in effect (in demo mode: pointing at the simulator).
        database: The open, migrated catalogue.
        providers: The provider clients.
        simulator: The in-process simulator in demo mode, else None.
        lists: The `refreshLists` service.
        media: The `syncMovies` and `syncIncompleteSeasons` service.
        sources: The source search, file, stats and resync service.
        tasks: The names of the tasks registered (empty with `DISABLE_BACKGROUND_TASKS`).
    """

    settings: Settings
    database: Database
    providers: Providers
    simulator: Simulator | None
    lists: ListSynchronizer
    media: MediaService
    sources: SourceService
    tasks: tuple[str, ...] = ()

    async def aclose(self) -> None:
        """Close the provider clients, then the simulator, then the database.

        Each is closed even when an earlier one fails; the first error is raised at the end.
        """
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(self.database.aclose)
            if self.simulator is not None:
                stack.push_async_callback(self.simulator.aclose)
            stack.push_async_callback(self.providers.aclose)
        logger.info("miauflix released its providers and database")

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskDefinition:
    """One of the seed's scheduled tasks.

    Attributes:
        name: The task name (the seed's).
        interval: Seconds between the end of one execution and the start of the next.
        method: Picks the service method one execution calls from the built application,
            e.g. `lambda app: app.lists.synchronize` (a callable, so type checking sees it).
        timeout: Seconds one execution may run (raised to `timeout_per_request` times the
            provider timeout when that is longer).
        timeout_per_request: Provider timeouts one execution may need in the worst case.
        max_backoff: Cap of the scheduler's backoff after unexpected errors, or None.
        pause: Picks the task's provider pause from the built application, or None: a run
            after which it lasts ends snoozed (`snoozing`).
    """

    name: str
    interval: float
    method: Callable[[MiauflixApp], Callable[[], Awaitable[object]]]
    timeout: float
    timeout_per_request: float
    max_backoff: float | None = None
    pause: Callable[[MiauflixApp], ProviderPause] | None = None

    def spec(self, app: MiauflixApp) -> TaskSpec:
        """The scheduler registration of this task on `app`'s services and settings."""
        task = self.method(app)
        if self.pause is not None:
            task = snoozing(task, self.pause(app))
        return TaskSpec(
            self.name,
            self.interval,
            task,
            timeout=max(self.timeout, self.timeout_per_request * app.settings.http_timeout),
            max_backoff=self.max_backoff,
        )


TASKS: tuple[TaskDefinition, ...] = (
    TaskDefinition(
        name="refreshLists",
        interval=3600,
        method=lambda app: app.lists.synchronize,
        timeout=600,
        timeout_per_request=60,
    ),
    TaskDefinition(
        name="syncMovies",
        interval=5400,
        method=lambda app: app.media.sync_movies,
        timeout=1800,
        timeout_per_request=120,
    ),
    TaskDefinition(
        name="syncIncompleteSeasons",
        interval=1,
        method=lambda app: app.media.sync_incomplete_seasons,
        timeout=30,
        timeout_per_request=3,
        max_backoff=60,
        pause=lambda app: app.media.season_pause,
    ),
    TaskDefinition(
        name="movieSourceSearch",
        interval=0.1,
        method=lambda app: app.sources.search_sources_for_movies,
        timeout=30,
        timeout_per_request=3,
        max_backoff=60,
        pause=lambda app: app.sources.search_pause,
    ),
    TaskDefinition(
        name="dataFileSearch",
        interval=0.2,
        method=lambda app: app.sources.search_torrent_files_for_sources,
        timeout=60,
        timeout_per_request=5,
        max_backoff=60,
        pause=lambda app: app.sources.file_pause,
    ),
    TaskDefinition(
        name="updateSourcesStats",
        interval=2,
        method=lambda app: app.sources.sync_stats_for_sources,
        timeout=30,
        timeout_per_request=3,
        max_backoff=60,
        pause=lambda app: app.sources.stats_pause,
    ),
    TaskDefinition(
        name="resyncMovieSources",
        interval=5,
        method=lambda app: app.sources.resync_movie_sources,
        timeout=30,
        timeout_per_request=3,
        max_backoff=60,
        pause=lambda app: app.sources.resync_pause,
    ),
)
"""The seed's seven tasks, in its order, with their intervals (seconds)."""


def snoozing(
    method: Callable[[], Awaitable[object]], pause: ProviderPause
) -> Callable[[], Awaitable[object]]:
    """Return `method` as a task body that ends its run snoozed while `pause` lasts after it.

    The run that trips the pause, and a run started while it lasts (which returns at once),
    raise `tickwork.Snooze(pause.remaining(), pause.reason)`: the next run starts when the
    pause ends, and status shows the task snoozed with the provider and the cause. The
    wrapped method is `__wrapped__`.
    """

    @functools.wraps(method)
    async def run() -> object:
        result = await method()
        if pause.active():
            raise Snooze(pause.remaining(), pause.reason)
        return result

    return run


def _faults(settings: Settings) -> Faults:
    knobs: dict[str, float | int] = dict(settings.simulator_faults)
    if "retry_after" in knobs:
        knobs["retry_after"] = int(knobs["retry_after"])
    return Faults(**knobs)  # type: ignore[arg-type]


async def setup(scheduler: Scheduler, *, settings: Settings | None = None) -> MiauflixApp:
    """Build the Miauflix service on `scheduler` and register its tasks and components.

    Args:
        scheduler: The running scheduler (`tickwork run` passes it).
        settings: The configuration; default `Settings.from_env()`.

    Returns:
        The application; `tickwork run` calls its `aclose()` at shutdown.

    Raises:
        miauflix.settings.SettingsError: An environment variable holds an unusable value, the
            data directory is unusable, or the database cannot be opened; the message names
            the variable to fix.
        ValueError: A simulator fault knob is out of range.
    """
    if settings is None:
        settings = Settings.from_env()
    httpx_logger = logging.getLogger("httpx")
    if httpx_logger.level == logging.NOTSET:
        # httpx logs every request at INFO: ten lines a second from the 0.1 s task alone.
        httpx_logger.setLevel(logging.WARNING)
    if settings.trackers is not None:
        tracker_origin = "TRACKERS"
    elif settings.demo_mode:
        tracker_origin = "the simulator's, demo mode"
    else:
        tracker_origin = "the original backend's defaults"
    async with contextlib.AsyncExitStack() as stack:
        simulator: Simulator | None = None
        if settings.demo_mode or not settings.database_url:
            await asyncio.to_thread(prepare_data_dir, settings.data_dir)
        if settings.demo_mode:
            simulator = await start_demo_simulator(settings.data_dir, _faults(settings))
            stack.push_async_callback(simulator.aclose)
            logger.info(
                "demo mode: simulated providers at %s and %s (set TMDB_API_TOKEN to use the "
                "real providers)",
                simulator.base_url,
                simulator.udp_tracker_url,
            )
            logger.info(
                "demo mode: provider limits raised for the simulator: TMDB %s, YTS %s, direct "
                "downloads %s per host (real providers' defaults: %s, %s, %s)",
                format_rate(settings.tmdb_rate),
                format_rate(settings.yts_rate),
                format_rate(settings.download_rate),
                *RATE_DEFAULTS.values(),
            )
            if settings.simulator_faults:
                logger.info(
                    "demo mode: simulator faults %s",
                    ", ".join(f"{k}={v:g}" for k, v in settings.simulator_faults),
                )
            settings = dataclasses.replace(
                settings,
                tmdb_api_url=simulator.tmdb_url,
                tmdb_api_token=simulator.tmdb_token,
                yts_api_url=simulator.yts_url,
                torrent_cache_url=simulator.torrent_cache_url,
                # Unset: the simulator's trackers, which know the simulated swarms (the
                # public ones would be asked about hashes they never saw).
                trackers=(simulator.http_tracker_url, simulator.udp_tracker_url)
                if settings.trackers is None
                else settings.trackers,
            )
        database = await open_configured_database(settings)
        stack.push_async_callback(database.aclose)
        await database.migrate()
        providers = build_providers(settings)
        stack.push_async_callback(providers.aclose)
        _log_trackers(settings, tracker_origin)
        rng = random.Random()
        app = MiauflixApp(
            settings=settings,
            database=database,
            providers=providers,
            simulator=simulator,
            lists=ListSynchronizer(database, providers.tmdb, languages=settings.languages),
            media=MediaService(database, providers.tmdb, rng=rng),
            sources=SourceService(
                database,
                directories=providers.directories,
                torrent_files=providers.torrent_files,
                trackers=providers.trackers,
                rng=rng,
            ),
        )
        _register_components(scheduler, app)
        register_routes(scheduler, read_routes(database))
        if settings.disable_background_tasks:
            logger.info("DISABLE_BACKGROUND_TASKS is set: no background task is scheduled")
        else:
            app.tasks = _register_tasks(scheduler, app)
        stack.pop_all()
    return app


def _log_trackers(settings: Settings, origin: str) -> None:
    trackers = settings.tracker_urls
    if not trackers:
        logger.info("TRACKERS is empty: no tracker is scraped and magnets carry no trackers")
        return
    logger.info("trackers (%s; TRACKERS= turns scraping off): %s", origin, ", ".join(trackers))


def _register_tasks(scheduler: Scheduler, app: MiauflixApp) -> tuple[str, ...]:
    # All or nothing: a name already taken leaves none of the seven registered, and setup's
    # exit stack releases what it built.
    scheduler.schedule_tasks([task.spec(app) for task in TASKS])
    return tuple(task.name for task in TASKS)


def _register_components(scheduler: Scheduler, app: MiauflixApp) -> None:
    async def catalog() -> ComponentStatus:
        async with app.database.read_session() as session:
            counts = await catalog_counts(session)
        return ComponentStatus("ready", None, counts.to_dict())

    register_component(scheduler, "catalog", catalog)
    for name in ("tmdb", "yts", "torrent_files", "trackers"):

        def check(name: str = name) -> ComponentStatus:
            status = app.providers.statuses()[name]
            return ComponentStatus(status.status, status.reason, status.details)

        register_component(scheduler, name, check)
