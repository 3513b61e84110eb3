"""End to end: `tickwork run miauflix.app:setup` in demo mode, as a real process."""

from __future__ import annotations

import asyncio
import itertools
import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from miauflix.app import TASKS
from miauflix.db import QUALITY_RANK

from .._service_process import ServiceProcess, environment, spawner

pytestmark = pytest.mark.slow

SERVING = re.compile(r"Serving miauflix\.app:setup on http://127\.0\.0\.1:(\d+)")
SEED_TASKS = [(task.name, float(task.interval)) for task in TASKS]
FREQUENT = tuple(task.name for task in TASKS if task.interval < 60)
RESYNC_INTERVAL = 5.0
BUILT = ("lists", "sources", "sources_with_file", "sources_with_stats")
GRACE = 5.0
# Seconds a fixed-delay start may come after its due time on a busy 2-core machine (the
# event loop's lag; /status calls a task overdue from 0.1 s).
LATE = 0.5
# Variables of the developer's shell that would change what the service does.
_OWN_VARIABLES = (
    "TICKWORK_",
    "MIAUFLIX_",
    "DATABASE_URL",
    "TMDB_",
    "YTS_",
    "TORRENT_CACHE_URL",
    "TRACKERS",
    "DISABLE_BACKGROUND_TASKS",
)


StartService = Callable[..., Awaitable[ServiceProcess]]


@pytest.fixture
async def start_service(tmp_path: Path) -> AsyncIterator[StartService]:
    """Start the service in demo mode with its data in `tmp_path/data`, on a free port."""
    async with spawner(tmp_path) as spawn:

        async def start(**env: str) -> ServiceProcess:
            service = await spawn(
                "miauflix.app:setup",
                "--port",
                "0",
                "--grace",
                str(GRACE),
                env=environment(
                    _OWN_VARIABLES, {"MIAUFLIX_DATA_DIR": str(tmp_path / "data"), **env}
                ),
            )
            await service.wait_started(timeout=20.0, serving=SERVING)
            return service

        yield start


async def _status(
    service: ServiceProcess, client: httpx.AsyncClient, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """GET /status."""
    response = await client.get(service.url("/status"), headers=headers)
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


async def _wait_until_built(
    service: ServiceProcess,
    client: httpx.AsyncClient,
    timeout: float,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Poll /status until every count of `BUILT` is above zero; return that document."""
    document: dict[str, Any] = {}
    try:
        async with asyncio.timeout(timeout):
            while True:
                document = await _status(service, client, headers)
                counts = document["services"]["catalog"]["details"]
                if all(counts.get(name, 0) > 0 for name in BUILT):
                    return document
                await asyncio.sleep(0.5)
    except TimeoutError:
        pytest.fail(f"not built within {timeout} s: {document.get('services')}\n{service.output}")


async def _wait_for_runs(
    service: ServiceProcess, client: httpx.AsyncClient, before: dict[str, int], timeout: float
) -> dict[str, Any]:
    """Poll /status until each frequent task ran at least twice more than in `before`."""
    document: dict[str, Any] = {}
    try:
        async with asyncio.timeout(timeout):
            while True:
                document = await _status(service, client)
                runs = {t["name"]: t["runs"] for t in document["tasks"]}
                if all(runs[name] >= before[name] + 2 for name in FREQUENT):
                    return document
                await asyncio.sleep(0.5)
    except TimeoutError:
        pytest.fail(f"tasks lost their cadence: {before} -> {document.get('tasks')}")


def _runs(document: dict[str, Any]) -> dict[str, int]:
    return {task["name"]: task["runs"] for task in document["tasks"]}


async def _check_resync_spacing(service: ServiceProcess, client: httpx.AsyncClient) -> None:
    """`resyncMovieSources` ran at least twice, each start 5 s after the previous run ended."""
    response = await client.get(service.url("/history"), params={"task": "resyncMovieSources"})
    assert response.status_code == 200, response.text
    runs = response.json()["resyncMovieSources"]
    assert len(runs) >= 2, runs
    for before, after in itertools.pairwise(runs):
        gap = after["started_at"] - (before["started_at"] + before["duration"])
        # Fixed delay: never early (0.05 s for the wall clock against the monotonic one).
        assert RESYNC_INTERVAL - 0.05 <= gap <= RESYNC_INTERVAL + LATE, runs


def _check_database(path: Path) -> dict[str, Any]:
    """Integrity check and no half-written rows; return row counts and the checkpoint."""
    connection = sqlite3.connect(path)
    try:
        query = connection.execute
        assert query("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert query("PRAGMA foreign_key_check").fetchall() == []
        # A file flag without its bytes, or bytes without the flag, is a half-written source.
        assert query(
            "SELECT count(*) FROM movie_source s LEFT JOIN movie_source_file f"
            " ON f.source_id = s.id WHERE s.has_file != (f.source_id IS NOT NULL)"
        ).fetchone() == (0,)
        assert query(
            "SELECT count(*) FROM movie_source WHERE last_stats_check IS NOT NULL"
            " AND (seeders IS NULL OR leechers IS NULL OR next_stats_check_at IS NULL)"
        ).fetchone() == (0,)
        # A synced season has all its episodes; a list is never left empty.
        assert query(
            "SELECT count(*) FROM season s WHERE s.synced AND s.episode_count !="
            " (SELECT count(*) FROM episode e WHERE e.season_id = s.id)"
        ).fetchone() == (0,)
        assert query(
            "SELECT count(*) FROM media_list l WHERE NOT EXISTS"
            " (SELECT 1 FROM media_list_movie m WHERE m.list_id = l.id) AND NOT EXISTS"
            " (SELECT 1 FROM media_list_show s WHERE s.list_id = l.id)"
        ).fetchone() == (0,)
        counts = {
            table: query(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("movie", "tv_show", "season", "episode", "movie_source", "media_list")
        }
        counts["distinct_movies"] = query("SELECT count(DISTINCT tmdb_id) FROM movie").fetchone()[0]
        counts["files"] = query("SELECT count(*) FROM movie_source_file").fetchone()[0]
        counts["checkpoint"] = query(
            "SELECT last_sync_at FROM sync_state WHERE name = 'movie_changes'"
        ).fetchone()
        return counts
    finally:
        connection.close()


def _check_resynced(path: Path) -> None:
    """Some movie was resynced and no source of a resynced movie still lacks date or type."""
    connection = sqlite3.connect(path)
    try:
        resynced: int = connection.execute(
            "SELECT count(*) FROM movie WHERE resync_attempts > 0"
        ).fetchone()[0]
        incomplete = connection.execute(
            "SELECT count(*) FROM movie_source s JOIN movie m ON m.id = s.movie_id"
            " WHERE m.resync_attempts > 0 AND (s.uploaded_at IS NULL OR s.source_type IS NULL)"
        ).fetchone()
    finally:
        connection.close()
    assert resynced > 0
    assert incomplete == (0,)


@pytest.mark.timeout(150)
async def test_demo_service_builds_the_catalogue_stops_cleanly_and_resumes(
    start_service: StartService, tmp_path: Path
) -> None:
    """Demo mode fills lists, sources, files and stats; SIGTERM exits 0; a restart resumes."""
    database = tmp_path / "data" / "miauflix.sqlite3"
    async with httpx.AsyncClient(timeout=5.0) as client:
        service = await start_service()
        demo = next(i for i, line in enumerate(service.lines) if "demo mode: simulated" in line)
        assert demo < next(i for i, line in enumerate(service.lines) if SERVING.search(line))

        built = await _wait_until_built(service, client, timeout=60)
        assert [(t["name"], t["interval"]) for t in built["tasks"]] == SEED_TASKS
        later = await _wait_for_runs(service, client, _runs(built), timeout=30)
        await _check_resync_spacing(service, client)
        for task in later["tasks"]:
            assert task["timeout"] is not None
            assert not task["stuck"], task
            assert task["failures"] == 0, task
        assert _runs(later)["refreshLists"] == _runs(later)["syncMovies"] == 1
        assert {later["services"][n]["status"] for n in ("tmdb", "yts", "torrent_files")} == {
            "ready"
        }

        code, took = await service.stop()
        assert code == 0, service.output
        # The "clean exit within the grace period": the lists and movie changes are
        # done and the other tasks are short, so it takes well under GRACE (about 0.6 s).
        assert took <= GRACE, took
        first = _check_database(database)
        assert first["movie"] == first["distinct_movies"] <= 300
        assert first["files"] > 0
        assert first["checkpoint"] is not None
        # The simulator lists some movies without upload dates or types at first (as YTS does
        # for fresh entries); resyncMovieSources (every 5 s, due at once) has filled some.
        _check_resynced(database)

        again = await start_service()
        resumed = await _wait_until_built(again, client, timeout=30)
        await _wait_for_runs(again, client, _runs(resumed), timeout=30)
        code, _ = await again.stop()
        assert code == 0, again.output

    second = _check_database(database)
    assert second["checkpoint"] == first["checkpoint"]  # synced under an hour ago: skipped
    assert "movie changes synced for" in service.output
    assert "movie changes synced for" not in again.output
    assert second["movie"] == second["distinct_movies"] == first["movie"]
    assert second["tv_show"] == first["tv_show"]
    assert second["season"] == first["season"]
    assert second["media_list"] == first["media_list"] == 3
    assert second["movie_source"] >= first["movie_source"]
    assert second["files"] >= first["files"]


@pytest.mark.timeout(150)
async def test_demo_service_keeps_its_cadence_with_a_faulty_simulator(
    start_service: StartService, tmp_path: Path
) -> None:
    """With 30 % errors and some hangs every task keeps running and nothing is corrupted."""
    async with httpx.AsyncClient(timeout=5.0) as client:
        service = await start_service(
            MIAUFLIX_SIMULATOR_FAULTS="error_rate=0.3,hang_rate=0.02",
            MIAUFLIX_HTTP_TIMEOUT="1",
        )
        built = await _wait_until_built(service, client, timeout=80)
        before = _runs(built)
        later = await _wait_for_runs(service, client, before, timeout=30)
        await _check_resync_spacing(service, client)
        for task in later["tasks"]:
            assert not task["stuck"], task
            # Provider errors are handled per item: none reaches the scheduler as a failure.
            assert task["failures"] == 0, task
        assert later["state"] == "running"
        health = await client.get(f"http://127.0.0.1:{service.port}/health")
        assert health.status_code == 200
        providers = later["services"]
        assert providers["yts"]["details"]["failures"] > 0  # the faults were really there
        code, took = await service.stop()
        assert code == 0, service.output
        # Not within GRACE here: a list refresh still retrying the flaky TMDB can outlive the
        # grace period; it is cancelled at GRACE (as designed) and the exit follows at once.
        assert took <= GRACE + 1.5, took
    assert "Traceback" not in service.output
    _check_database(tmp_path / "data" / "miauflix.sqlite3")


async def _query_one(path: Path, sql: str, timeout: float = 30.0) -> tuple[Any, ...]:
    """The first row `sql` finds in the service's database, polled until there is one."""
    async with asyncio.timeout(timeout):
        while True:
            connection = sqlite3.connect(path)
            try:
                row = connection.execute(sql).fetchone()
            finally:
                connection.close()
            if row is not None:
                return tuple(row)
            await asyncio.sleep(0.2)


@pytest.mark.timeout(120)
async def test_read_api_serves_what_the_demo_built(
    start_service: StartService, tmp_path: Path
) -> None:
    """Over real HTTP, with the token, the read API answers the lists, movies and seasons built."""
    database = tmp_path / "data" / "miauflix.sqlite3"
    auth = {"Authorization": "Bearer secret"}
    async with httpx.AsyncClient(timeout=5.0, headers=auth) as client:
        service = await start_service(TICKWORK_TOKEN="secret")
        await _wait_until_built(service, client, timeout=60, headers=auth)

        denied = await client.get(service.url("/api/lists"), headers={"Authorization": ""})
        assert denied.status_code == 401
        lists: list[dict[str, Any]] = []
        async with asyncio.timeout(30):
            # refreshLists writes the show list after the two movie lists.
            while len(lists) < 3:
                await asyncio.sleep(0.2)
                lists = (await client.get(service.url("/api/lists"))).json()["lists"]
        assert all(entry["item_count"] > 0 for entry in lists)
        slug, count = lists[0]["slug"], lists[0]["item_count"]
        first = await client.get(service.url(f"/api/lists/{slug}"), params={"per_page": 5})
        assert first.headers["cache-control"] == "no-store"
        page = first.json()
        assert (page["page"], page["per_page"], page["total"]) == (1, 5, count)
        assert len(page["items"]) == min(5, count)
        assert {item["kind"] for item in page["items"]} <= {"movie", "show"}
        second = (
            await client.get(service.url(f"/api/lists/{slug}"), params={"per_page": 5, "page": 2})
        ).json()
        assert not {i["tmdb_id"] for i in second["items"]} & {i["tmdb_id"] for i in page["items"]}
        for params in ({"per_page": "101"}, {"page": "0"}, {"per_page": "x"}):
            bad = await client.get(service.url(f"/api/lists/{slug}"), params=params)
            assert bad.status_code == 400, params
            assert "error" in bad.json()
        unknown = await client.get(service.url("/api/lists/no-such-list"))
        assert (unknown.status_code, unknown.json()) == (404, {"error": "unknown list"})

        (movie_id,) = await _query_one(
            database,
            "SELECT m.tmdb_id FROM movie m JOIN movie_source s ON s.movie_id = m.id"
            " WHERE s.has_file GROUP BY m.id ORDER BY count(*) DESC LIMIT 1",
        )
        movie = (await client.get(service.url(f"/api/movies/{movie_id}"))).json()
        assert movie["tmdb_id"] == movie_id
        sources = movie["sources"]
        ranks = [QUALITY_RANK.get(source["quality"], 0) for source in sources]
        assert ranks == sorted(ranks, reverse=True)
        assert any(source["file_stored"] for source in sources)
        for source in sources:
            assert source["magnet"].startswith(f"magnet:?xt=urn:btih:{source['info_hash']}")
            assert "&tr=" in source["magnet"]
        assert movie["logo_url"] is not None
        assert movie["languages"] == ["en", "es", "fr"]
        spanish = (await client.get(service.url(f"/api/movies/{movie_id}?lang=es"))).json()
        assert spanish["title"] == f"{movie['title']} [es]"
        assert all(genre["name"].endswith(" [es]") for genre in spanish["genres"])
        missing = await client.get(service.url("/api/movies/1"))
        assert (missing.status_code, missing.json()) == (404, {"error": "unknown movie"})

        show_id, number, episodes = await _query_one(
            database,
            "SELECT t.tmdb_id, s.season_number, s.episode_count FROM season s"
            " JOIN tv_show t ON t.id = s.show_id WHERE s.synced LIMIT 1",
        )
        show = (await client.get(service.url(f"/api/shows/{show_id}"))).json()
        assert number in [season["season_number"] for season in show["seasons"]]
        assert show["tagline"]
        assert show["type"] in {"Scripted", "Miniseries"}
        assert isinstance(show["in_production"], bool)
        assert show["episode_run_time"] > 0
        season = (await client.get(service.url(f"/api/shows/{show_id}/seasons/{number}"))).json()
        assert season["synced"] is True
        assert len(season["episodes"]) == episodes
        assert season["poster_url"] is not None
        assert all(episode["still_url"] for episode in season["episodes"])
        gone = await client.get(service.url(f"/api/shows/{show_id}/seasons/999"))
        assert gone.status_code == 404
        code, _ = await service.stop()
        assert code == 0, service.output
