"""How miauflix starts as one of several replicas, or refuses to: the setup's side.

PostgreSQL: a coordinator on the same database by default, fencing on, the draining tasks on
every replica, provider budgets divided by the live replicas. SQLite: one process per data
directory, and no coordinator.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from miauflix.app import TASKS, setup, share_budgets_once
from miauflix.providers import build_providers
from miauflix.settings import Settings, SettingsError
from tickwork import Scheduler
from tickwork.coordination import InProcessCoordinator, MemoryStore
from tickwork.coordination.postgres import PostgresCoordinator

from .._service_process import environment, spawner
from .test_e2e_demo import _OWN_VARIABLES, SERVING


def _settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env(
        {"MIAUFLIX_DATA_DIR": str(tmp_path / "data"), "DISABLE_BACKGROUND_TASKS": "true", **env}
    )


@pytest.fixture
async def fresh_database_url(postgres_url: str) -> AsyncIterator[str]:
    """The URL of a PostgreSQL database of its own (the coordinator's schema included)."""
    server = make_url(postgres_url)
    name = f"miauflix_replicas_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(server, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as connection:
            await connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.dispose()


async def test_a_second_setup_on_the_same_sqlite_data_dir_names_the_holder(
    tmp_path: Path,
) -> None:
    """While one setup holds a SQLite data directory, another fails naming the pid holding it."""
    async with (
        Scheduler() as first_scheduler,
        await setup(first_scheduler, settings=_settings(tmp_path)),
        Scheduler() as second,
    ):
        with pytest.raises(SettingsError, match=r"in use by another miauflix process \(pid \d+"):
            await setup(second, settings=_settings(tmp_path))
    async with Scheduler() as third, await setup(third, settings=_settings(tmp_path)) as app:
        assert app.lock is not None


async def test_a_coordinator_with_sqlite_is_refused(tmp_path: Path) -> None:
    """A scheduler with a coordinator and a SQLite database: setup says to use PostgreSQL."""
    async with Scheduler(coordinator=InProcessCoordinator()) as scheduler:
        with pytest.raises(SettingsError, match=r"SQLite serves one replica.*postgresql"):
            await setup(scheduler, settings=_settings(tmp_path))
    assert not (tmp_path / "data" / "simulator.json").exists()


@pytest.mark.slow
async def test_a_second_process_on_a_sqlite_data_dir_exits_at_once_with_one_line(
    tmp_path: Path,
) -> None:
    """`tickwork run` on a data directory in use exits 1 at once, one line naming the holder."""
    env = environment(
        _OWN_VARIABLES,
        {"MIAUFLIX_DATA_DIR": str(tmp_path / "data"), "DISABLE_BACKGROUND_TASKS": "true"},
    )
    async with spawner(tmp_path) as spawn:
        first = await spawn("miauflix.app:setup", "--port", "0", env=env)
        await first.wait_started(timeout=20.0, serving=SERVING)
        second = await spawn("miauflix.app:setup", "--port", "0", env=env)
        code = await second.wait_exit(timeout=20.0)
        await first.stop()
    assert code != 0
    refusals = [line for line in second.lines if "in use by another miauflix process" in line]
    assert len(refusals) == 1, second.output
    assert f"pid {first.proc.pid}" in refusals[0]
    assert not any("simulated providers" in line for line in second.lines), second.output


@pytest.mark.external_service
async def test_postgresql_coordinates_through_the_same_database_by_default(
    tmp_path: Path, fresh_database_url: str
) -> None:
    """With a PostgreSQL URL setup installs a PostgresCoordinator there and fences writes."""
    settings = _settings(tmp_path, DATABASE_URL=fresh_database_url)
    async with Scheduler() as scheduler, await setup(scheduler, settings=settings) as app:
        assert isinstance(scheduler.coordinator, PostgresCoordinator)
        assert scheduler.coordinator.cluster == "miauflix"
        assert app.database.fencing_schema == "tickwork"
        assert app.sources.claim_ttl == app.media.claim_ttl == 120.0
        assert app.lock is None


@pytest.mark.external_service
async def test_the_coordinate_setting_turns_coordination_off(
    tmp_path: Path, fresh_database_url: str
) -> None:
    """`MIAUFLIX_COORDINATE=false` on PostgreSQL: no coordinator, no claims, no fencing."""
    settings = _settings(tmp_path, DATABASE_URL=fresh_database_url, MIAUFLIX_COORDINATE="false")
    async with Scheduler() as scheduler, await setup(scheduler, settings=settings) as app:
        assert scheduler.coordinator is None
        assert app.database.fencing_schema is None
        assert app.sources.claim_ttl is None


def test_only_the_two_slow_tasks_are_singletons() -> None:
    """`refreshLists` and `syncMovies` run once cluster-wide; the five draining tasks everywhere."""
    assert [task.name for task in TASKS if task.singleton] == ["refreshLists", "syncMovies"]


async def test_budgets_are_divided_by_the_live_replicas() -> None:
    """Three live peers in the cluster view: each provider limiter gets a third of its rate."""
    store = MemoryStore()
    peers = [InProcessCoordinator(store, cluster="miauflix") for _ in range(3)]
    for peer in peers:
        await peer.heartbeat(["syncIncompleteSeasons"])
    settings = Settings.from_env({"MIAUFLIX_TMDB_RATE": "30/s", "MIAUFLIX_YTS_RATE": "6/s"})
    async with build_providers(settings) as providers:
        assert await share_budgets_once(peers[0], providers) == 3
        assert providers.tmdb._http._limiter is not None
        assert providers.tmdb._http._limiter.max_rate == pytest.approx(10.0)
        assert providers.yts._http._limiter is not None
        assert providers.yts._http._limiter.max_rate == pytest.approx(2.0)
        assert providers.torrent_files._http._host_rate == pytest.approx(settings.download_rate / 3)
        providers.share_budget(1)
        assert providers.tmdb._http._limiter.max_rate == pytest.approx(30.0)


async def test_an_unreachable_store_keeps_the_last_division() -> None:
    """When the cluster view fails the budgets stay as they were."""

    class _Down(InProcessCoordinator):
        async def cluster_view(self):  # type: ignore[no-untyped-def]
            raise OSError("store down")

    async with build_providers(Settings()) as providers:
        providers.share_budget(2)
        async with asyncio.timeout(5):
            assert await share_budgets_once(_Down(), providers) == 2
        assert providers.replicas == 2
