"""refreshLists and syncMovies with TMDB down: their runs end snoozed and `/status` says why.

The service is built by `setup` on the simulator (not demo mode) in this process, on SQLite and
on PostgreSQL with its default coordinator (the two tasks are fenced singletons there); the
two tasks are scheduled from their `TASKS` definitions, with no waits between in-run retries.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from miauflix.app import TASKS, MiauflixApp, setup
from miauflix.db import catalog_counts, get_sync_state, set_sync_state
from miauflix.providers.tmdb import TmdbChange, TmdbPage
from miauflix.services import MOVIE_CHANGES_CHECKPOINT
from miauflix.settings import Settings
from miauflix.simulator import Simulator
from tickwork import Scheduler
from tickwork.coordination.postgres import PostgresCoordinator
from tickwork.service import create_app
from tickwork.testing import wait_for_runs

from .test_replicas import fresh_database_url  # noqa: F401 (a fixture of the postgresql case)

pytestmark = pytest.mark.slow

SLOW_TASKS = ("refreshLists", "syncMovies")
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.external_service),
]


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    """The providers' simulator, in this process (real time: the tasks run on real sockets)."""
    async with Simulator(seed=7, movies=40, shows=2) as simulator:
        yield simulator


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest, sim: Simulator, tmp_path: Path) -> Settings:
    """The service's settings on `sim`: SQLite, or PostgreSQL (coordinated by default)."""
    env = {
        "MIAUFLIX_DATA_DIR": str(tmp_path / "data"),
        "DISABLE_BACKGROUND_TASKS": "true",
        "MIAUFLIX_LANGUAGES": "",
        **sim.environment(),
    }
    if request.param == "postgresql":
        env["DATABASE_URL"] = request.getfixturevalue("fresh_database_url")
    return Settings.from_env(env)


@asynccontextmanager
async def _service(settings: Settings) -> AsyncIterator[tuple[Scheduler, MiauflixApp]]:
    """`setup` on `settings` with no task, and no waits between in-run retries."""
    async with Scheduler() as scheduler, await setup(scheduler, settings=settings) as app:
        postgres = settings.resolved_database_url.startswith("postgresql")
        assert isinstance(scheduler.coordinator, PostgresCoordinator) == postgres
        app.lists.retry_delays = ()
        app.media.retry_delays = ()
        try:
            yield scheduler, app
        finally:
            await scheduler.shutdown(grace=5)


def _schedule(
    scheduler: Scheduler,
    app: MiauflixApp,
    names: tuple[str, ...] = SLOW_TASKS,
    *,
    outage_snooze: float | None = None,
) -> None:
    """Schedule tasks `names` from their `TASKS` definitions (optionally another outage snooze)."""
    definitions = [task for task in TASKS if task.name in names]
    if outage_snooze is not None:
        definitions = [dataclasses.replace(t, outage_snooze=outage_snooze) for t in definitions]
    scheduler.schedule_tasks([task.spec(app) for task in definitions])


async def _status_tasks(scheduler: Scheduler) -> dict[str, dict[str, object]]:
    """The `tasks` of the service's /status document, by name."""
    transport = httpx.ASGITransport(app=create_app(scheduler))
    async with httpx.AsyncClient(transport=transport, base_url="http://miauflix") as client:
        response = await client.get("/status")
    assert response.status_code == 200
    return {task["name"]: task for task in response.json()["tasks"]}


@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    ("fault", "snooze", "reason"),
    [
        # A 5xx says nothing of how long: the task's outage snooze (shortened for the test).
        ("error_rate", 1.5, r"tmdb unavailable \(HTTP 50[023]\)"),
        # A 429 says how long: its Retry-After, whatever the outage snooze (5 min here).
        ("rate_limit_rate", 1.0, r"tmdb rate limited \(retry after 1 s\)"),
    ],
    ids=["5xx", "429"],
)
async def test_tmdb_down_snoozes_both_tasks_with_the_reason_then_they_recover(
    settings: Settings, sim: Simulator, fault: str, snooze: float, reason: str
) -> None:
    """With every TMDB request failing, refreshLists and syncMovies end their runs snoozed with
    TMDB and the cause as the reason, shown in /status, and write nothing; once TMDB answers,
    the run after the snooze succeeds and refreshes the lists and the checkpoint."""
    sim.faults.only = ("/tmdb",)
    sim.faults.retry_after = 1
    setattr(sim.faults, fault, 1.0)
    outage_snooze = snooze if fault == "error_rate" else None
    async with _service(settings) as (scheduler, app):
        _schedule(scheduler, app, outage_snooze=outage_snooze)
        for name in SLOW_TASKS:
            await wait_for_runs(scheduler, name, 1, timeout=30)
        tasks = await _status_tasks(scheduler)
        undone = {"refreshLists": "no list refreshed", "syncMovies": "movie changes from .+"}
        for name in SLOW_TASKS:
            task = tasks[name]
            assert (task["state"], task["last_outcome"]) == ("snoozed", "snoozed"), task
            assert re.fullmatch(f"{reason}: {undone[name]}", str(task["last_outcome_reason"]))
            assert task["failures"] == 0
            status = scheduler.task_status(name)
            assert status.next_run_at is not None
            assert status.last_finished_at is not None
            # Coordinated, the due time is on the database's clock: a few ms apart.
            wait = status.next_run_at - status.last_finished_at
            assert wait == pytest.approx(snooze, abs=0.2)
        async with app.database.read_session() as session:
            assert (await catalog_counts(session)).lists == 0
            assert await get_sync_state(session, MOVIE_CHANGES_CHECKPOINT) is None

        sim.faults.reset()
        runs = {name: scheduler.task_status(name).runs for name in SLOW_TASKS}
        for name in SLOW_TASKS:
            # A run started before the reset may still have failed: wait for the success.
            while scheduler.task_status(name).last_outcome != "success":
                runs[name] += 1
                await wait_for_runs(scheduler, name, runs[name], timeout=30)
        tasks = await _status_tasks(scheduler)
        async with app.database.read_session() as session:
            counts = await catalog_counts(session)
            checkpoint = await get_sync_state(session, MOVIE_CHANGES_CHECKPOINT)
    for name in SLOW_TASKS:
        assert tasks[name]["state"] != "snoozed"
        assert tasks[name]["last_outcome_reason"] is None
    assert counts.lists == 3
    assert counts.movies > 0
    assert checkpoint is not None


@pytest.mark.timeout(60)
async def test_a_day_failing_mid_walk_keeps_the_days_before_and_snoozes(
    settings: Settings, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When TMDB fails on a later day, the days before keep their checkpoint (written under
    the run's fencing token on PostgreSQL) and the run ends snoozed from the failing day."""
    today = dt.datetime.now(dt.UTC).date()
    start, failing = today - dt.timedelta(days=3), today - dt.timedelta(days=1)
    async with _service(settings) as (scheduler, app):
        async with app.database.session() as session:
            await set_sync_state(
                session, MOVIE_CHANGES_CHECKPOINT, dt.datetime.combine(start, dt.time(), dt.UTC)
            )
        real = app.providers.tmdb.movie_changes

        async def movie_changes(
            start_date: dt.date, end_date: dt.date, page: int = 1
        ) -> TmdbPage[TmdbChange]:
            sim.faults.only = ("/tmdb/3/movie/changes",)
            sim.faults.error_rate = 1.0 if start_date == failing else 0.0
            return await real(start_date, end_date, page)

        monkeypatch.setattr(app.providers.tmdb, "movie_changes", movie_changes)
        _schedule(scheduler, app, ("syncMovies",))
        await wait_for_runs(scheduler, "syncMovies", 1, timeout=30)
        status = scheduler.task_status("syncMovies")
        async with app.database.read_session() as session:
            checkpoint = await get_sync_state(session, MOVIE_CHANGES_CHECKPOINT)
    assert status.last_outcome == "snoozed"
    assert re.fullmatch(
        rf"tmdb unavailable \(HTTP 50[023]\): movie changes from {failing} not synced",
        str(status.last_outcome_reason),
    )
    assert checkpoint == dt.datetime.combine(failing, dt.time(), dt.UTC)
