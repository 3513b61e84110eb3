"""`miauflix.app.setup`: demo mode, the seven tasks, the /status components, release."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import httpx
import pytest

from miauflix.app import TASKS, setup
from miauflix.providers import build_providers
from miauflix.settings import DEFAULT_TRACKERS, Settings, SettingsError, format_rate
from miauflix.simulator import Simulator
from tickwork import Scheduler, SchedulerError, TaskSpec
from tickwork.service import create_app

# The seed's tasks come from the one table the application registers from.
SEED_TASKS = [(task.name, float(task.interval)) for task in TASKS]


async def _services(scheduler: Scheduler) -> dict[str, dict[str, object]]:
    """The `services` section of the service's /status document."""
    transport = httpx.ASGITransport(app=create_app(scheduler))
    async with httpx.AsyncClient(transport=transport, base_url="http://miauflix") as client:
        response = await client.get("/status")
    assert response.status_code == 200
    services: dict[str, dict[str, object]] = response.json()["services"]
    return services


def _settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"MIAUFLIX_DATA_DIR": str(tmp_path / "data"), **env})


async def test_demo_mode_starts_the_simulator_and_says_so_first(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Without a TMDB token the simulator serves every provider, logged before the database."""
    settings = _settings(tmp_path, DISABLE_BACKGROUND_TASKS="true")
    with caplog.at_level(logging.INFO):
        async with Scheduler() as scheduler:
            app = await setup(scheduler, settings=settings)
            try:
                assert app.simulator is not None
                sim = app.simulator
                assert app.settings.tmdb_api_url == sim.tmdb_url
                assert app.settings.tmdb_api_token == sim.tmdb_token
                assert app.settings.trackers == (sim.http_tracker_url, sim.udp_tracker_url)
                assert await app.providers.tmdb.movie_genres()
            finally:
                await app.aclose()
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("miauflix")]
    demo = next(i for i, m in enumerate(messages) if m.startswith("demo mode: simulated"))
    schema = next(i for i, m in enumerate(messages) if "upgrading the database schema" in m)
    assert demo < schema
    with pytest.raises(RuntimeError, match="not running"):
        _ = sim.base_url


async def test_disable_background_tasks_registers_no_task(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`DISABLE_BACKGROUND_TASKS=true` schedules nothing and logs it; components still show."""
    settings = _settings(tmp_path, DISABLE_BACKGROUND_TASKS="true")
    with caplog.at_level(logging.INFO, logger="miauflix.app"):
        async with Scheduler() as scheduler, await setup(scheduler, settings=settings) as app:
            assert scheduler.list_tasks() == []
            assert app.tasks == ()
            services = await _services(scheduler)
    assert "DISABLE_BACKGROUND_TASKS" in caplog.text
    assert list(services) == ["catalog", "tmdb", "yts", "torrent_files", "trackers"]
    assert services["catalog"]["status"] == "ready"
    assert services["catalog"]["details"] == {
        "lists": 0,
        "movies": 0,
        "shows": 0,
        "seasons": 0,
        "synced_seasons": 0,
        "sources": 0,
        "sources_with_file": 0,
        "sources_with_stats": 0,
        "processed_here": {
            "syncMovies": 0,
            "syncIncompleteSeasons": 0,
            "movieSourceSearch": 0,
            "dataFileSearch": 0,
            "updateSourcesStats": 0,
            "resyncMovieSources": 0,
        },
    }
    assert all(services[name]["status"] == "ready" for name in ("tmdb", "yts", "torrent_files"))


async def test_setup_registers_the_seed_tasks_with_their_intervals(tmp_path: Path) -> None:
    """The seven tasks of the seed, in its order and with its intervals, each with a timeout."""
    async with Scheduler() as scheduler:
        app = await setup(scheduler, settings=_settings(tmp_path, MIAUFLIX_HTTP_TIMEOUT="20"))
        try:
            statuses = scheduler.status()
            assert [(s.name, s.interval) for s in statuses] == SEED_TASKS
            assert app.tasks == tuple(name for name, _ in SEED_TASKS)
            timeouts = {s.name: s.timeout for s in statuses}
            assert timeouts["movieSourceSearch"] == 60.0  # 3 requests of 20 s
            assert timeouts["refreshLists"] == 1200.0
            assert all(t is not None and t > 0 for t in timeouts.values())
        finally:
            await scheduler.shutdown(grace=2)
            await app.aclose()
    assert [task.name for task in TASKS] == [name for name, _ in SEED_TASKS]


async def test_each_task_calls_its_table_method_on_the_app_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The seven tasks are registered in one call, each calling its `TASKS` method on the app."""
    calls: list[list[TaskSpec]] = []
    async with Scheduler() as scheduler:
        schedule_tasks = scheduler.schedule_tasks

        def spy(specs: Iterable[TaskSpec]) -> None:
            calls.append(list(specs))
            schedule_tasks(calls[-1])

        monkeypatch.setattr(scheduler, "schedule_tasks", spy)
        app = await setup(scheduler, settings=_settings(tmp_path))
        try:
            assert len(calls) == 1
            for spec, definition in zip(calls[0], TASKS, strict=True):
                assert spec.name == definition.name
                # A task with a provider pause calls its method through `snoozing`, one with
                # an outage snooze through `snoozing_on_outage`.
                method = getattr(spec.task, "__wrapped__", spec.task)
                wrapped = definition.pause is not None or definition.outage_snooze is not None
                assert (method is not spec.task) == wrapped
                assert method == definition.method(app), definition.name
                assert getattr(method, "__self__", None) in (app.lists, app.media, app.sources)
        finally:
            await scheduler.shutdown(grace=2)
            await app.aclose()


async def test_a_task_that_cannot_be_registered_leaves_none_registered(tmp_path: Path) -> None:
    """A name already taken fails setup with no seed task registered and the app released."""
    async with Scheduler() as scheduler:

        async def taken() -> None:
            return None

        scheduler.schedule_task(TASKS[3].name, 60, taken)
        with pytest.raises(SchedulerError) as error:
            await setup(scheduler, settings=_settings(tmp_path))
        assert error.value.code == "already_scheduled"
        assert scheduler.list_tasks() == [TASKS[3].name]


async def test_configured_providers_are_used_without_a_simulator(tmp_path: Path) -> None:
    """With a token and URLs set, no simulator starts and the clients use those URLs."""
    async with Simulator(seed=3, movies=5, shows=1) as sim:
        settings = _settings(tmp_path, DISABLE_BACKGROUND_TASKS="1", **sim.environment())
        async with Scheduler() as scheduler, await setup(scheduler, settings=settings) as app:
            assert app.simulator is None
            assert app.settings.tmdb_api_url == sim.tmdb_url
            assert len(await app.providers.yts.search(_imdb_with_sources(sim))) > 0


def _imdb_with_sources(sim: Simulator) -> str:
    movie = next(m for m in sim.catalogue.movies if m.imdb_id and m.sources)
    assert movie.imdb_id is not None
    return movie.imdb_id


async def test_demo_simulator_faults_come_from_the_environment(tmp_path: Path) -> None:
    """`MIAUFLIX_SIMULATOR_FAULTS` sets the in-process simulator's fault knobs."""
    settings = _settings(
        tmp_path,
        DISABLE_BACKGROUND_TASKS="true",
        MIAUFLIX_SIMULATOR_FAULTS="error_rate=0.3, hang_rate=0.02,retry_after=4",
    )
    async with Scheduler() as scheduler, await setup(scheduler, settings=settings) as app:
        assert app.simulator is not None
        assert app.simulator.faults.error_rate == 0.3
        assert app.simulator.faults.hang_rate == 0.02
        assert app.simulator.faults.retry_after == 4


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("error_rate", "must be NAME=NUMBER"),
        ("speed=2", "got 'speed=2'"),
        ("error_rate=lots", "error_rate must be a number, got 'lots'"),
        ("latency=-1", "latency must be a finite number >= 0, got '-1'"),
    ],
)
def test_bad_simulator_faults_name_the_value(value: str, message: str) -> None:
    """A malformed `MIAUFLIX_SIMULATOR_FAULTS` raises `SettingsError` showing what was wrong."""
    with pytest.raises(SettingsError, match="MIAUFLIX_SIMULATOR_FAULTS") as error:
        Settings.from_env({"MIAUFLIX_SIMULATOR_FAULTS": value})
    assert message in str(error.value)


async def test_an_out_of_range_fault_fails_setup_and_releases_nothing_half_open(
    tmp_path: Path,
) -> None:
    """A rate above 1 fails setup with the knob's name, before anything is left running."""
    settings = _settings(tmp_path, MIAUFLIX_SIMULATOR_FAULTS="error_rate=2")
    async with Scheduler() as scheduler:
        with pytest.raises(ValueError, match=r"error_rate must be a number in \[0, 1\], got 2"):
            await setup(scheduler, settings=settings)
        assert scheduler.list_tasks() == []


def test_provider_limits_default_to_the_original_backends_rates() -> None:
    """With a TMDB token: TMDB 40/s, YTS 20/min, direct downloads 0.5/s per host."""
    settings = Settings.from_env({"TMDB_API_TOKEN": "t"})
    assert (settings.tmdb_rate, settings.yts_rate, settings.download_rate) == (40.0, 20 / 60, 0.5)
    assert [format_rate(r) for r in (settings.yts_rate, settings.download_rate)] == [
        "20/min",
        "0.5/s",
    ]


def test_demo_mode_raises_unset_limits_and_keeps_set_ones() -> None:
    """Without a token the unset limits take the simulator's rates; a set one is kept."""
    settings = Settings.from_env({"MIAUFLIX_YTS_RATE": "30/min"})
    assert settings.yts_rate == 0.5
    assert settings.tmdb_rate == 50.0
    assert settings.download_rate == 10.0


@pytest.mark.parametrize("value", ["fast", "0/s", "-2", "5/day", "inf"])
def test_a_bad_rate_names_the_variable_and_the_value(value: str) -> None:
    """An unusable provider limit raises `SettingsError` naming the variable and the value."""
    with pytest.raises(SettingsError, match="MIAUFLIX_DOWNLOAD_RATE must be a rate") as error:
        Settings.from_env({"MIAUFLIX_DOWNLOAD_RATE": value})
    assert repr(value) in str(error.value)


async def test_demo_mode_says_it_raised_the_provider_limits(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Demo mode's first lines say which limits it raised, next to the real defaults."""
    settings = _settings(tmp_path, DISABLE_BACKGROUND_TASKS="true")
    with caplog.at_level(logging.INFO, logger="miauflix"):
        async with Scheduler() as scheduler, await setup(scheduler, settings=settings) as app:
            assert app.providers.torrent_files.cache_url == app.settings.torrent_cache_url
    messages = [r.getMessage() for r in caplog.records if r.name == "miauflix.app"]
    assert messages[0].startswith("demo mode: simulated providers")
    assert messages[1] == (
        "demo mode: provider limits raised for the simulator: TMDB 50/s, YTS 10/s, direct "
        "downloads 10/s per host (real providers' defaults: 40/s, 20/min, 0.5/s)"
    )


def test_unset_trackers_are_the_original_backends_and_empty_turns_scraping_off() -> None:
    """Unset `TRACKERS` means the original's three public UDP trackers; `TRACKERS=` none."""
    assert Settings.from_env({"TMDB_API_TOKEN": "t"}).tracker_urls == DEFAULT_TRACKERS
    assert DEFAULT_TRACKERS == (
        "udp://tracker.opentrackr.org:1337/announce",
        "udp://tracker.openbittorrent.com:80/announce",
        "udp://tracker.openbittorrent.com:6969/announce",
    )
    assert Settings.from_env({"TMDB_API_TOKEN": "t", "TRACKERS": ""}).tracker_urls == ()


async def test_default_trackers_go_into_magnets_and_scrapes() -> None:
    """Without `TRACKERS`, the YTS client's magnets and the scraper use the default trackers."""
    settings = Settings.from_env({"TMDB_API_TOKEN": "t"})
    async with build_providers(settings) as providers:
        assert providers.trackers.trackers == DEFAULT_TRACKERS
        assert providers.yts.trackers == DEFAULT_TRACKERS


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "trackers (the simulator's, demo mode; TRACKERS= turns scraping off): http://"),
        ({"TRACKERS": ""}, "TRACKERS is empty: no tracker is scraped"),
    ],
)
async def test_setup_says_which_trackers_are_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, env: dict[str, str], expected: str
) -> None:
    """Startup logs the trackers in use (the simulator's in demo mode), or that none are."""
    settings = _settings(tmp_path, DISABLE_BACKGROUND_TASKS="true", **env)
    with caplog.at_level(logging.INFO, logger="miauflix.app"):
        async with Scheduler() as scheduler:
            app = await setup(scheduler, settings=settings)
            try:
                assert app.simulator is not None
                simulated = (app.simulator.http_tracker_url, app.simulator.udp_tracker_url)
            finally:
                await app.aclose()
    lines = [r.getMessage() for r in caplog.records if "TRACKERS" in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].startswith(expected)
    assert app.settings.tracker_urls == (() if env else simulated)


def test_genre_languages_default_to_spanish_and_french_and_are_checked() -> None:
    """`MIAUFLIX_LANGUAGES` defaults to es,fr, may be empty, and rejects a non-ISO code."""
    assert Settings.from_env({}).languages == ("es", "fr")
    assert Settings.from_env({"MIAUFLIX_LANGUAGES": " DE, it ,de"}).languages == ("de", "it")
    assert Settings.from_env({"MIAUFLIX_LANGUAGES": ""}).languages == ()
    with pytest.raises(SettingsError, match=r"MIAUFLIX_LANGUAGES .* got 'spanish'"):
        Settings.from_env({"MIAUFLIX_LANGUAGES": "spanish"})
