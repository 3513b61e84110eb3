"""Three `tickwork run miauflix.app:setup` replicas on PostgreSQL against one simulator.

One standalone simulator (`python -m miauflix.simulator`, counting requests per item), one
fresh database, three replicas coordinating through it by default. One replica is killed
with SIGKILL mid-work. Asserted: the catalogue reaches the simulator's contents; no
`.torrent`, season or stats scrape is fetched twice except an item the killed replica may
have held (fetched before the kill, again after its claim expired); the list refresh and the
movie sync ran once cluster-wide; nothing half-written.
"""

from __future__ import annotations

import asyncio
import re
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from miauflix.simulator._catalogue import Catalogue

from .._service_process import ServiceProcess, environment, spawner
from ..conftest import require_service
from ..coordination.conftest import PG_DSN

pytestmark = [pytest.mark.slow, pytest.mark.external_service, pytest.mark.timeout(150)]

SEED, MOVIES, SHOWS = 5, 40, 4
CLAIM_TTL = 15.0
# What one replica can hold claimed at once: a file batch (4), a stats batch (5), a season.
HELD_AT_ONCE = 4 + 5 + 1
SERVING = re.compile(r"Serving miauflix\.app:setup on http://127\.0\.0\.1:(\d+)")
_OWN_VARIABLES = ("TICKWORK_", "MIAUFLIX_", "DATABASE_URL", "TMDB_", "YTS_", "TORRENT_", "TRACKERS")


@pytest.fixture
async def database() -> AsyncIterator[str]:
    """A fresh PostgreSQL database (DSN), dropped afterwards."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    name = f"miauflix_cluster_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(PG_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield PG_DSN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def simulator(tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    """A standalone simulator process; yields the environment it printed."""
    # Its output goes to a file, not a pipe: a pipe nobody drains fills up and blocks it.
    printed = tmp_path / "simulator.env"
    with printed.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "miauflix.simulator", "--seed", str(SEED), "--movies",
            str(MOVIES), "--shows", str(SHOWS), "--latency", "0.01",
            stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
    try:
        env: dict[str, str] = {}
        async with asyncio.timeout(20):
            while "TRACKERS" not in env:
                assert proc.returncode is None, "the simulator exited before its environment"
                lines = printed.read_text().splitlines()
                env = dict(line.partition("=")[::2] for line in lines if "=" in line)
                await asyncio.sleep(0.1)
        yield env
    finally:
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(15):
            await proc.wait()


async def _query(dsn: str, sql: str) -> list[Any]:
    connection = await asyncpg.connect(dsn)
    try:
        return list(await connection.fetch(sql))
    finally:
        await connection.close()


async def _pending(dsn: str) -> dict[str, int]:
    """Work left in each queue (0 everywhere: the catalogue is complete)."""
    rows = await _query(
        dsn,
        """SELECT
             (SELECT count(*) FROM media_list) AS lists_missing,
             (SELECT count(*) FROM movie_source WHERE NOT has_file) AS files,
             (SELECT count(*) FROM movie_source WHERE last_stats_check IS NULL) AS stats,
             (SELECT count(*) FROM season WHERE NOT synced) AS seasons,
             (SELECT count(*) FROM movie WHERE next_resync_at IS NOT NULL) AS resyncs,
             (SELECT count(*) FROM movie m WHERE imdb_id IS NOT NULL
                AND last_source_search_at IS NULL) AS searches,
             (SELECT count(*) FROM movie_source) AS sources""",
    )
    pending = dict(rows[0])
    pending["lists_missing"] = 3 - pending["lists_missing"]
    pending["no_sources_yet"] = int(pending.pop("sources") == 0)
    return pending


async def _wait(condition: Any, timeout: float, what: str) -> Any:
    last: Any = None
    try:
        async with asyncio.timeout(timeout):
            while True:
                ok, last = await condition()
                if ok:
                    return last
                await asyncio.sleep(0.3)
    except TimeoutError:
        pytest.fail(f"{what} not reached within {timeout} s: {last}")


async def _requests(client: httpx.AsyncClient, env: dict[str, str]) -> dict[str, int]:
    base = env["TMDB_API_URL"].removesuffix("/tmdb/3")
    answer = (await client.get(f"{base}/_simulator/requests")).json()
    items: dict[str, int] = answer["items"]
    return items


def _fetched_twice(items: dict[str, int]) -> dict[str, int]:
    return {
        key: count
        for key, count in items.items()
        if count > 1 and key.startswith(("torrent:", "season:", "scrape:"))
    }


async def test_three_replicas_share_the_work_and_survive_a_kill(
    tmp_path: Path, database: str, simulator: dict[str, str]
) -> None:
    """Three replicas drain every queue once between them, one SIGKILLed mid-work."""
    env = environment(
        _OWN_VARIABLES,
        {
            **simulator,
            # Scrapes go to the HTTP tracker only, so each one is counted per info hash.
            "TRACKERS": simulator["TRACKERS"].split(",")[0],
            "DATABASE_URL": database.replace("postgresql://", "postgresql+asyncpg://"),
            "MIAUFLIX_DATA_DIR": str(tmp_path / "data"),
            "MIAUFLIX_CLAIM_TTL": str(CLAIM_TTL),
        },
    )
    catalogue = Catalogue(seed=SEED, movies=MOVIES, shows=SHOWS)
    async with spawner(tmp_path) as spawn, httpx.AsyncClient(timeout=5.0) as client:
        replicas: list[ServiceProcess] = [
            await spawn("miauflix.app:setup", "--port", "0", "--grace", "3", env=env)
            for _ in range(3)
        ]
        for replica in replicas:
            await replica.wait_started(timeout=30.0, serving=SERVING)

        async def victim_busy() -> tuple[bool, Any]:
            status = (await client.get(replicas[1].url("/status"))).json()
            done = status["services"]["catalog"]["details"]["processed_here"]
            pending = await _pending(database)
            busy = done["dataFileSearch"] > 0 and pending["files"] > HELD_AT_ONCE
            return busy, (done, pending)

        await _wait(victim_busy, 60, "the second replica storing files")
        before_kill = await _requests(client, simulator)
        replicas[1].proc.send_signal(signal.SIGKILL)
        await replicas[1].wait_exit(timeout=10)

        async def complete() -> tuple[bool, Any]:
            pending = await _pending(database)
            return not any(pending.values()), pending

        try:
            await _wait(complete, 90, "a complete catalogue")
        except BaseException:
            print("\n".join(replicas[0].lines[-40:]))
            raise
        after = await _requests(client, simulator)
        statuses = [(await client.get(r.url("/status"))).json() for r in (replicas[0], replicas[2])]
        for replica in (replicas[0], replicas[2]):
            assert (await replica.stop())[0] == 0, replica.output

    assert _fetched_twice(before_kill) == {}
    twice = _fetched_twice(after)
    # Only what the killed replica held: first fetched before the kill, again after the expiry.
    assert len(twice) <= HELD_AT_ONCE, twice
    assert all(key in before_kill for key in twice), twice

    # The simulator's contents: every stored movie has exactly the catalogue's sources.
    rows = await _query(
        database,
        "SELECT m.tmdb_id, array_agg(lower(s.info_hash)) AS hashes FROM movie m"
        " LEFT JOIN movie_source s ON s.movie_id = m.id GROUP BY m.tmdb_id",
    )
    assert rows
    for row in rows:
        movie = catalogue.movie(row["tmdb_id"])
        assert movie is not None
        stored = {h for h in row["hashes"] if h is not None}
        assert stored == {s.info_hash.hex() for s in movie.sources}, movie.tmdb_id
    seasons = await _query(
        database,
        "SELECT t.tmdb_id, s.season_number, s.episode_count,"
        " (SELECT count(*) FROM episode e WHERE e.season_id = s.id) AS episodes"
        " FROM season s JOIN tv_show t ON t.id = s.show_id",
    )
    assert seasons
    for row in seasons:
        assert row["episodes"] == row["episode_count"], dict(row)
    half_written = await _query(
        database,
        "SELECT count(*) AS n FROM movie_source s LEFT JOIN movie_source_file f"
        " ON f.source_id = s.id WHERE s.has_file != (f.source_id IS NOT NULL)",
    )
    assert half_written[0]["n"] == 0

    # The singletons ran once cluster-wide (their intervals are an hour and more).
    runs = await _query(
        database,
        "SELECT task, runs FROM tickwork.task WHERE cluster = 'miauflix'"
        " AND task IN ('refreshLists', 'syncMovies') ORDER BY task",
    )
    assert [(r["task"], r["runs"]) for r in runs] == [("refreshLists", 1), ("syncMovies", 1)]
    # The survivors both drained items (the work was spread, not done by one).
    for status in statuses:
        done = status["services"]["catalog"]["details"]["processed_here"]
        assert done["dataFileSearch"] > 0, done
        assert status["cluster"] is not None
