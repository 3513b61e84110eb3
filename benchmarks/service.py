"""The benchmark of issue 5: the Miauflix service against the provider simulator.

Run ``python -m benchmarks.service`` (about 2 minutes with the defaults). It starts the
simulator as its own process (``python -m miauflix.simulator``, so its CPU is not counted),
then, in this process, a ``tickwork.Scheduler`` with ``miauflix.app.setup`` pointed at it
through the same environment variables a user would set, with the SQLite database in a
temporary directory. It reports:

- items processed per minute by each task while it had work (a small catalogue, so the
  queues drain); ``syncMovies`` is measured apart, as one 14-day walk over the stored
  catalogue, because at startup it runs before any movie is stored;
- the CPU this process uses once the work is done, while the seven tasks keep ticking
  (target: under 5 % of one core for all seven together);
- the database size per 1,000 movies.

Options: ``--movies N`` / ``--shows N`` (catalogue size, default 60 / 6), ``--idle S`` (seconds
of the idle measurement, default 30), ``--json`` (raw figures instead of the Markdown table).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["main"]

_SETTLE = 6.0  # seconds without any change in the catalogue that mean "the work is done"
_BUILD_TIMEOUT = 600.0

_UNITS = {
    "refreshLists": "movies and shows written",
    "syncMovies": "changed movies updated",
    "syncIncompleteSeasons": "seasons synced",
    "movieSourceSearch": "movies searched",
    "dataFileSearch": ".torrent files stored",
    "updateSourcesStats": "sources scraped",
    "resyncMovieSources": "movies resynced",
}


def _start_simulator(movies: int, shows: int) -> tuple[subprocess.Popen[str], dict[str, str]]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "miauflix.simulator",
            "--movies",
            str(movies),
            "--shows",
            str(shows),
            "--seed",
            "42",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    env: dict[str, str] = {}
    deadline = time.monotonic() + 30
    while len(env) < 5 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        name, sep, value = line.strip().partition("=")
        if sep:
            env[name] = value
    if len(env) < 5:
        proc.kill()
        raise RuntimeError(f"the simulator did not print its environment: {env}")
    return proc, env


def _processed(app: Any) -> dict[str, int]:
    return {
        "refreshLists": app.lists.processed,
        **app.media.processed,
        **app.sources.processed,
    }


async def _run(movies: int, shows: int, idle: float, data_dir: Path) -> dict[str, Any]:
    from sqlalchemy import func, select

    from miauflix.app import setup
    from miauflix.db import MovieSourceFile, catalog_counts, set_sync_state
    from miauflix.services import MOVIE_CHANGES_CHECKPOINT
    from miauflix.settings import Settings
    from tickwork import Scheduler

    sim, env = _start_simulator(movies, shows)
    try:
        settings = Settings.from_env({**env, "MIAUFLIX_DATA_DIR": str(data_dir)})
        scheduler = Scheduler()
        started = time.monotonic()
        app = await setup(scheduler, settings=settings)
        last_change: dict[str, float] = {}
        previous = _processed(app)
        previous_counts = None
        quiet_since = time.monotonic()
        while True:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            current = _processed(app)
            for name, value in current.items():
                if value != previous[name]:
                    last_change[name] = now
            previous = current
            async with app.database.session() as session:
                counts = (await catalog_counts(session)).to_dict()
            first_runs_done = all(
                s.runs >= 1 and s.state == "scheduled"
                for s in scheduler.status()
                if s.name in ("refreshLists", "syncMovies")
            )
            if counts != previous_counts:
                previous_counts, quiet_since = counts, now
            if first_runs_done and now - quiet_since >= _SETTLE:
                break
            if now - started > _BUILD_TIMEOUT:
                raise RuntimeError(f"the catalogue did not settle within {_BUILD_TIMEOUT} s")
        built_in = quiet_since - started
        rates: dict[str, dict[str, float]] = {}
        durations = {s.name: s.last_duration or 0.0 for s in scheduler.status()}
        for name, items in previous.items():
            if name == "refreshLists":
                seconds = durations[name]
            else:
                seconds = last_change.get(name, started) - started
            rates[name] = {
                "items": items,
                "seconds": round(seconds, 2),
                "per_minute": round(items / seconds * 60, 1) if items and seconds else 0.0,
            }

        # Idle: the queues are empty (or backing off); the seven tasks keep ticking.
        runs_before = {s.name: s.runs for s in scheduler.status()}
        cpu_before, wall_before = time.process_time(), time.monotonic()
        await asyncio.sleep(idle)
        cpu = time.process_time() - cpu_before
        wall = time.monotonic() - wall_before
        runs_idle = {s.name: s.runs - runs_before[s.name] for s in scheduler.status()}
        await scheduler.shutdown(grace=5)

        # syncMovies, measured apart: one walk of 14 days over the stored catalogue.
        async with app.database.session() as session:
            await set_sync_state(
                session,
                MOVIE_CHANGES_CHECKPOINT,
                dt.datetime.now(dt.UTC) - dt.timedelta(days=14),
            )
        walk_started = time.monotonic()
        report = await app.media.sync_movies()
        walk = time.monotonic() - walk_started
        rates["syncMovies"] = {
            "items": report.updated,
            "seconds": round(walk, 2),
            "per_minute": round(report.updated / walk * 60, 1) if walk else 0.0,
        }
        async with app.database.session() as session:
            final = (await catalog_counts(session)).to_dict()
            torrent_bytes = int(
                await session.scalar(select(func.sum(func.length(MovieSourceFile.data)))) or 0
            )
        await app.aclose()
    finally:
        sim.terminate()
        sim.wait(timeout=10)
    files = [data_dir / name for name in os.listdir(data_dir)]
    size = sum(path.stat().st_size for path in files if path.name.startswith("miauflix.sqlite3"))
    return {
        "catalogue": {"movies": movies, "shows": shows},
        "built_in_seconds": round(built_in, 1),
        "counts": final,
        "rates": rates,
        "idle": {
            "seconds": round(wall, 1),
            "cpu_seconds": round(cpu, 3),
            "cpu_percent_of_one_core": round(100 * cpu / wall, 2),
            "runs": runs_idle,
        },
        "database": {
            "bytes": size,
            "bytes_per_1000_movies": round(size / max(final["movies"], 1) * 1000),
            "torrent_file_bytes": torrent_bytes,
            "movies": final["movies"],
            "sources": final["sources"],
            "files": final["sources_with_file"],
        },
    }


def _table(result: dict[str, Any]) -> str:
    lines = [
        f"Catalogue: {result['catalogue']['movies']} movies, {result['catalogue']['shows']} "
        f"shows; the queues drained in {result['built_in_seconds']} s.",
        "",
        "| task | interval | items | active (s) | items/min | item |",
        "|---|---:|---:|---:|---:|---|",
    ]
    intervals = {
        "refreshLists": "3600 s",
        "syncMovies": "5400 s",
        "syncIncompleteSeasons": "1 s",
        "movieSourceSearch": "0.1 s",
        "dataFileSearch": "0.2 s",
        "updateSourcesStats": "2 s",
        "resyncMovieSources": "5 s",
    }
    for name, rate in result["rates"].items():
        lines.append(
            f"| {name} | {intervals[name]} | {rate['items']} | {rate['seconds']} | "
            f"{rate['per_minute']} | {_UNITS[name]} |"
        )
    idle = result["idle"]
    runs = ", ".join(f"{k} {v}" for k, v in idle["runs"].items())
    database = result["database"]
    lines += [
        "",
        f"Idle CPU, all seven tasks, {idle['seconds']} s once the work was done: "
        f"**{idle['cpu_percent_of_one_core']} % of one core** ({idle['cpu_seconds']} s CPU; "
        f"runs meanwhile: {runs}).",
        "",
        f"Database: {database['bytes']:,} bytes for {database['movies']} movies, "
        f"{database['sources']} sources, {database['files']} stored .torrent files "
        f"({database['torrent_file_bytes']:,} bytes of them): "
        f"**{database['bytes_per_1000_movies'] / 1e6:.1f} MB per 1,000 movies**.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table (or the raw figures with ``--json``)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.service", description=__doc__)
    parser.add_argument("--movies", type=int, default=60, help="simulated movies (default 60)")
    parser.add_argument("--shows", type=int, default=6, help="simulated shows (default 6)")
    parser.add_argument("--idle", type=float, default=30.0, help="idle window, seconds")
    parser.add_argument("--json", action="store_true", help="print the raw figures as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="miauflix-bench-") as tmp:
        result = asyncio.run(_run(args.movies, args.shows, args.idle, Path(tmp)))
    print(json.dumps(result, indent=2) if args.json else _table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
