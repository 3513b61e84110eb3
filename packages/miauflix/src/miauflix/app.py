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

Components under `/status` -> `services`: `catalog` (row counts in `details`, and what this
replica processed per task), and the providers `tmdb`, `yts`, `torrent_files`, `trackers`. The
read API (`miauflix.api`: `/api/lists`, `/api/movies/{tmdb_id}`, `/api/shows/{tmdb_id}`...) is
served beside `/status`, under its token and rate limit.

A draining task whose provider is down (its service's `ProviderPause`) ends its run snoozed
(`tickwork.Snooze`) for what is left of the pause, the provider and the cause in the reason,
so its row reads e.g. "snoozed 45 s: tmdb unreachable (connect error)" and the scheduler does
not start it meanwhile. `refreshLists` and `syncMovies` end their run snoozed when TMDB kept
them from doing their work (their report's `outage`: no list refreshed, or a day's changes
not read): "snoozed 5 min: tmdb unavailable (HTTP 502): no list refreshed", tried again after
a 429's `Retry-After` or 5 minutes rather than the interval (`snoozing_on_outage`); a run
that refreshed some lists is a success. A failing item (a season, a movie, a source) stays
the item's matter: logged, backed off on its own, counted under its provider's component.

Several replicas (PostgreSQL). With `DATABASE_URL=postgresql+asyncpg://...` setup gives the
scheduler a `PostgresCoordinator` on the same database (cluster `miauflix`) unless
`MIAUFLIX_COORDINATE=false` or the command line's `--coordinator` gave one. Then
`refreshLists` and `syncMovies` run once per interval cluster-wide and write under their
run's fencing token (`Database.session(lease=...)`); the five draining tasks are
`singleton=False` on every replica and claim their items (`miauflix.db._claims`); and each
provider's budget is divided by the live replicas of the cluster view, refreshed every
heartbeat (`share_budgets`).

One replica (SQLite). The data directory is locked first (`miauflix.lock`): a second
process on it fails at once naming the holder's pid; a coordinator with SQLite is refused.
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

from miauflix._storage import (
    DataDirLock,
    lock_data_dir,
    open_configured_database,
    prepare_data_dir,
    start_demo_simulator,
)
from miauflix.api import read_routes
from miauflix.db import Database, catalog_counts
from miauflix.providers import Providers, build_providers
from miauflix.services import (
    ListSynchronizer,
    MediaService,
    ProviderOutage,
    ProviderPause,
    SourceService,
)
from miauflix.settings import RATE_DEFAULTS, Settings, SettingsError, format_rate
from miauflix.simulator import Faults, Simulator
from tickwork import Scheduler, Snooze, TaskSpec
from tickwork.coordination import Coordinator
from tickwork.service import ComponentStatus, register_component, register_routes

__all__ = [
    "CLUSTER",
    "TASKS",
    "MiauflixApp",
    "TaskDefinition",
    "setup",
    "share_budgets",
    "share_budgets_once",
]

logger = logging.getLogger("miauflix.app")

CLUSTER = "miauflix"
"""The coordinator's cluster name: replicas on one database with this name share the schedule."""

# The wait of refreshLists and syncMovies after a run TMDB stopped (unless a 429 said how long).
# The interval (1 h, 1.5 h) would leave the lists stale that long after TMDB is back, and a
# 5xx or a refused connection says nothing of how long the outage lasts; TMDB outages are
# usually minutes. A failed run costs about 20 requests (the genres and each list's first page,
# each tried 5 times), so one every 5 minutes is nothing against TMDB's 40/s, and the row
# says "snoozed" at most 5 minutes after TMDB answers again.
_OUTAGE_SNOOZE = 300.0


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
        lock: The data directory's lock (SQLite), else None.
        budgets: The task keeping provider budgets divided by the live replicas (several
            replicas), else None.
    """

    settings: Settings
    database: Database
    providers: Providers
    simulator: Simulator | None
    lists: ListSynchronizer
    media: MediaService
    sources: SourceService
    tasks: tuple[str, ...] = ()
    lock: DataDirLock | None = None
    budgets: asyncio.Task[None] | None = None

    async def aclose(self) -> None:
        """Stop the budget task, close the provider clients, the simulator, the database.

        Each is closed even when an earlier one fails; the first error is raised at the end.
        The data directory's lock is released last.
        """
        async with contextlib.AsyncExitStack() as stack:
            if self.lock is not None:
                stack.callback(self.lock.release)
            stack.push_async_callback(self.database.aclose)
            if self.simulator is not None:
                stack.push_async_callback(self.simulator.aclose)
            stack.push_async_callback(self.providers.aclose)
            if self.budgets is not None:
                stack.push_async_callback(_stop, self.budgets)
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
        singleton: True: once per interval cluster-wide under a coordinator (the slow tasks,
            whose writes are fenced); False: on every replica (the draining tasks, which
            claim their items).
        pause: Picks the task's provider pause from the built application, or None: a run
            after which it lasts ends snoozed (`snoozing`).
        outage_snooze: None, or seconds a run whose report has an `outage` (its provider
            kept it from doing any of its work) ends snoozed for, unless a 429 said how long
            (`snoozing_on_outage`).
    """

    name: str
    interval: float
    method: Callable[[MiauflixApp], Callable[[], Awaitable[object]]]
    timeout: float
    timeout_per_request: float
    max_backoff: float | None = None
    singleton: bool = True
    pause: Callable[[MiauflixApp], ProviderPause] | None = None
    outage_snooze: float | None = None

    def spec(self, app: MiauflixApp) -> TaskSpec:
        """The scheduler registration of this task on `app`'s services and settings."""
        task = self.method(app)
        if self.pause is not None:
            task = snoozing(task, self.pause(app))
        if self.outage_snooze is not None:
            task = snoozing_on_outage(task, self.outage_snooze)
        return TaskSpec(
            self.name,
            self.interval,
            task,
            timeout=self.timeout_for(app.settings),
            max_backoff=self.max_backoff,
            singleton=self.singleton,
        )

    def timeout_for(self, settings: Settings) -> float:
        """The execution timeout on `settings` (seconds)."""
        return max(self.timeout, self.timeout_per_request * settings.http_timeout)


TASKS: tuple[TaskDefinition, ...] = (
    TaskDefinition(
        name="refreshLists",
        interval=3600,
        method=lambda app: app.lists.synchronize,
        timeout=600,
        timeout_per_request=60,
        outage_snooze=_OUTAGE_SNOOZE,
    ),
    TaskDefinition(
        name="syncMovies",
        interval=5400,
        method=lambda app: app.media.sync_movies,
        timeout=1800,
        timeout_per_request=120,
        outage_snooze=_OUTAGE_SNOOZE,
    ),
    TaskDefinition(
        name="syncIncompleteSeasons",
        interval=1,
        method=lambda app: app.media.sync_incomplete_seasons,
        timeout=30,
        timeout_per_request=3,
        max_backoff=60,
        singleton=False,
        pause=lambda app: app.media.season_pause,
    ),
    TaskDefinition(
        name="movieSourceSearch",
        interval=0.1,
        method=lambda app: app.sources.search_sources_for_movies,
        timeout=30,
        timeout_per_request=3,
        max_backoff=60,
        singleton=False,
        pause=lambda app: app.sources.search_pause,
    ),
    TaskDefinition(
        name="dataFileSearch",
        interval=0.2,
        method=lambda app: app.sources.search_torrent_files_for_sources,
        timeout=60,
        timeout_per_request=5,
        max_backoff=60,
        singleton=False,
        pause=lambda app: app.sources.file_pause,
    ),
    TaskDefinition(
        name="updateSourcesStats",
        interval=2,
        method=lambda app: app.sources.sync_stats_for_sources,
        timeout=30,
        timeout_per_request=3,
        max_backoff=60,
        singleton=False,
        pause=lambda app: app.sources.stats_pause,
    ),
    TaskDefinition(
        name="resyncMovieSources",
        interval=5,
        method=lambda app: app.sources.resync_movie_sources,
        timeout=30,
        timeout_per_request=3,
        max_backoff=60,
        singleton=False,
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


def snoozing_on_outage(
    method: Callable[[], Awaitable[object]], seconds: float
) -> Callable[[], Awaitable[object]]:
    """Return `method` as a task body whose run ends snoozed when its report has an outage.

    `method` returns a report with an `outage` (`ListSyncReport`, `MovieSyncReport`). When
    it is set, the provider kept the run from doing its work, and the run raises
    `tickwork.Snooze` with the outage's reason ("tmdb unavailable (HTTP 502): no list
    refreshed") for the 429's `Retry-After` (at least 1 s) when it gave one, else for
    `seconds`; the work done before the provider failed stays done (written, checkpointed).
    Otherwise the report is the run's result. The wrapped method is `__wrapped__`.
    """

    @functools.wraps(method)
    async def run() -> object:
        result = await method()
        outage = getattr(result, "outage", None)
        if isinstance(outage, ProviderOutage):
            # The provider's own word on when to ask again beats any guess of ours.
            retry_after = outage.retry_after
            raise Snooze(seconds if retry_after is None else max(1.0, retry_after), outage.reason)
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
            data directory is unusable or in use by another process (SQLite), the scheduler
            has a coordinator while the database is SQLite, or the database cannot be opened;
            the message names the variable to fix.
        ValueError: A simulator fault knob is out of range.
    """
    if settings is None:
        settings = Settings.from_env()
    httpx_logger = logging.getLogger("httpx")
    if httpx_logger.level == logging.NOTSET:
        # httpx logs every request at INFO: ten lines a second from the 0.1 s task alone.
        httpx_logger.setLevel(logging.WARNING)
    postgres = settings.resolved_database_url.startswith("postgresql")
    if not postgres and scheduler.coordinator is not None:
        raise SettingsError(
            f"SQLite serves one replica, but a coordinator ({scheduler.coordinator.backend}) "
            "is configured: set DATABASE_URL=postgresql+asyncpg://... to run several replicas, "
            "or drop --coordinator"
        )
    if settings.trackers is not None:
        tracker_origin = "TRACKERS"
    elif settings.demo_mode:
        tracker_origin = "the simulator's, demo mode"
    else:
        tracker_origin = "the original backend's defaults"
    async with contextlib.AsyncExitStack() as stack:
        simulator: Simulator | None = None
        lock: DataDirLock | None = None
        if settings.demo_mode or not postgres:
            await asyncio.to_thread(prepare_data_dir, settings.data_dir)
        if not postgres:
            # Before anything else, the simulator's ports included: a second process on the
            # same SQLite data directory stops here with one line.
            lock = lock_data_dir(settings.data_dir)
            stack.callback(lock.release)
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
        coordinated = postgres and _coordinate(scheduler, settings, database)
        claim_ttl = _claim_ttl(settings) if coordinated else None
        _log_trackers(settings, tracker_origin)
        rng = random.Random()
        app = MiauflixApp(
            settings=settings,
            database=database,
            providers=providers,
            simulator=simulator,
            lists=ListSynchronizer(database, providers.tmdb, languages=settings.languages),
            media=MediaService(database, providers.tmdb, rng=rng, claim_ttl=claim_ttl),
            sources=SourceService(
                database,
                directories=providers.directories,
                torrent_files=providers.torrent_files,
                trackers=providers.trackers,
                rng=rng,
                claim_ttl=claim_ttl,
            ),
            lock=lock,
        )
        _register_components(scheduler, app)
        register_routes(scheduler, read_routes(database))
        if settings.disable_background_tasks:
            logger.info("DISABLE_BACKGROUND_TASKS is set: no background task is scheduled")
        else:
            app.tasks = _register_tasks(scheduler, app)
        if scheduler.coordinator is not None:
            app.budgets = asyncio.create_task(
                share_budgets(scheduler, providers), name="miauflix-budgets"
            )
        stack.pop_all()
    return app


def _coordinate(scheduler: Scheduler, settings: Settings, database: Database) -> bool:
    # Whether this replica shares the database with others: the coordinator the command line
    # gave, or one on the same database (the default), or none (MIAUFLIX_COORDINATE=false).
    from tickwork.coordination.postgres import PostgresCoordinator

    if scheduler.coordinator is None:
        if not settings.coordinate:
            logger.info("MIAUFLIX_COORDINATE is false: this replica assumes it is the only one")
            return False
        scheduler.use_coordinator(
            PostgresCoordinator(settings.resolved_database_url, cluster=CLUSTER)
        )
        logger.info(
            "coordinating with the other replicas on the same database (cluster %r; "
            "MIAUFLIX_COORDINATE=false turns it off)",
            CLUSTER,
        )
    coordinator = scheduler.coordinator
    # The guard reads the coordinator's task rows, so it can fence only when they live in
    # this database.
    if isinstance(coordinator, PostgresCoordinator) and _same_database(
        coordinator.dsn, settings.resolved_database_url
    ):
        database.fencing_schema = coordinator.schema
    else:
        logger.warning(
            "the coordinator (%s) is not this database: the singleton tasks' writes are not "
            "fenced by their tokens (run several replicas with the default coordinator)",
            getattr(coordinator, "backend", type(coordinator).__name__),
        )
    return True


def _same_database(a: str, b: str) -> bool:
    from sqlalchemy.engine import make_url

    ua, ub = make_url(a), make_url(b)
    return (ua.host, ua.port or 5432, ua.database) == (ub.host, ub.port or 5432, ub.database)


def _claim_ttl(settings: Settings) -> float:
    if settings.claim_ttl:
        return settings.claim_ttl
    # Twice the longest draining run: a live replica always writes back before its claim
    # expires (a run is cancelled at its timeout), a dead one's items return soon after.
    return 2 * max(task.timeout_for(settings) for task in TASKS if not task.singleton)


async def share_budgets(scheduler: Scheduler, providers: Providers) -> None:
    """Keep each provider's budget divided by the cluster's live replicas, until cancelled.

    Every heartbeat interval it reads the coordinator's cluster view and calls
    `Providers.share_budget(max(1, live peers))`. A replica that joins sends its full share
    at once while the others see it one heartbeat later, so the cluster may exceed a budget
    by one replica's share for up to one heartbeat interval; a replica that dies leaves its
    share unused until it stops counting as alive (three heartbeats). An unreachable store
    keeps the last division.

    Args:
        scheduler: A scheduler with a coordinator.
        providers: The clients whose limits are divided.
    """
    coordinator = scheduler.coordinator
    assert coordinator is not None
    while True:
        await share_budgets_once(coordinator, providers)
        await asyncio.sleep(coordinator.heartbeat_interval)


async def share_budgets_once(coordinator: Coordinator, providers: Providers) -> int:
    """One step of `share_budgets`: divide the budgets by the live replicas now.

    Returns:
        The divisor in effect afterwards (the previous one when the store did not answer).
    """
    try:
        view = await coordinator.cluster_view()
    except Exception as exc:  # the store's own errors: keep the last division
        logger.debug("cluster view unavailable, provider budgets unchanged: %s", exc)
        return providers.replicas
    replicas = max(1, sum(1 for peer in view.peers if peer.alive))
    if replicas != providers.replicas:
        logger.info(
            "provider budgets divided by %d live replica(s) (was %d)", replicas, providers.replicas
        )
        providers.share_budget(replicas)
    return replicas


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.wait([task])


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
        details: dict[str, object] = dict(counts.to_dict())
        # What this replica did (the counts above are the cluster's): per task, the items it
        # wrote back, and those it could not because its claim was lost.
        details["processed_here"] = {**app.media.processed, **app.sources.processed}
        lost = {**app.media.claims_lost, **app.sources.claims_lost}
        if any(lost.values()):
            details["claims_lost_here"] = {k: v for k, v in lost.items() if v}
        if app.providers.replicas > 1:
            details["provider_budget_share"] = f"1/{app.providers.replicas}"
        return ComponentStatus("ready", None, details)

    register_component(scheduler, "catalog", catalog)
    for name in ("tmdb", "yts", "torrent_files", "trackers"):

        def check(name: str = name) -> ComponentStatus:
            status = app.providers.statuses()[name]
            return ComponentStatus(status.status, status.reason, status.details)

        register_component(scheduler, name, check)
