"""Issue 16's benchmark: miauflix's drain throughput with 1, 2 and 4 replicas on PostgreSQL.

Run ``python -m benchmarks.replicas`` (PostgreSQL on 127.0.0.1:5432, trust, database
``test``). For each replica count it creates a fresh database, starts one standalone simulator
(``python -m miauflix.simulator --latency L``) and N ``tickwork run miauflix.app:setup``
processes, waits for the list refresh (a singleton, the same for every N), then times the
drain of the five queues until every source has its file and stats, every movie was searched
and every season synced. Throughput is drained items (searches + files + stats + seasons)
per second of that drain. Provider limits are far above the demand (the work is
latency-bound), except with ``--rate-bound``: YTS limited to ``--yts-rate`` for the cluster,
and the report gives the cluster's YTS requests per second (mean and busiest second).
Duplicates: ``.torrent``, season and scrape items the simulator served more than once.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


async def _pending(dsn: str) -> tuple[int, int]:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            """SELECT (SELECT count(*) FROM media_list) AS lists,
                 (SELECT count(*) FROM movie_source WHERE NOT has_file)
               + (SELECT count(*) FROM movie_source WHERE last_stats_check IS NULL)
               + (SELECT count(*) FROM season WHERE NOT synced)
               + (SELECT count(*) FROM movie WHERE imdb_id IS NOT NULL
                    AND last_source_search_at IS NULL) AS pending,
                 (SELECT 2 * count(*) FROM movie_source)
               + (SELECT count(*) FROM season)
               + (SELECT count(*) FROM movie WHERE imdb_id IS NOT NULL) AS total"""
        )
    except asyncpg.UndefinedTableError:
        return 0, -1
    finally:
        await conn.close()
    assert row is not None
    return int(row["lists"]), int(row["pending"]) if row["total"] else -1


async def run(replicas: int, args: argparse.Namespace) -> dict[str, Any]:
    name = f"bench_replicas_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = ADMIN.rsplit("/", 1)[0] + f"/{name}"
    procs: list[asyncio.subprocess.Process] = []
    with tempfile.TemporaryDirectory() as tmp:
        printed = Path(tmp) / "sim.env"
        with printed.open("wb") as out:
            sim = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "miauflix.simulator", "--seed", "3", "--movies",
                str(args.movies), "--shows", str(args.shows), "--latency", str(args.latency),
                stdout=out, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
        try:
            env: dict[str, str] = {}
            while "TRACKERS" not in env:
                await asyncio.sleep(0.1)
                env = dict(x.partition("=")[::2] for x in printed.read_text().splitlines())
            env["TRACKERS"] = env["TRACKERS"].split(",")[0]
            rates = {"MIAUFLIX_TMDB_RATE": "1000/s", "MIAUFLIX_YTS_RATE": "1000/s",
                     "MIAUFLIX_DOWNLOAD_RATE": "1000/s"}  # fmt: skip
            if args.rate_bound:
                rates["MIAUFLIX_YTS_RATE"] = f"{args.yts_rate}/s"
            base = {
                k: v for k, v in os.environ.items() if not k.startswith(("MIAUFLIX_", "TICKWORK_"))
            }
            for i in range(replicas):
                procs.append(
                    await asyncio.create_subprocess_exec(
                        str(Path(sys.executable).parent / "tickwork"),
                        "run",
                        "miauflix.app:setup",
                        "--port",
                        "0",
                        env={
                            **base,
                            **env,
                            **rates,
                            "MIAUFLIX_DATA_DIR": f"{tmp}/d{i}",
                            "DATABASE_URL": dsn.replace("postgresql://", "postgresql+asyncpg://"),
                        },
                        stdout=asyncio.subprocess.DEVNULL,
                        stderr=asyncio.subprocess.DEVNULL,
                    )
                )
            while (await _pending(dsn))[0] < 3:  # noqa: ASYNC110 (polling other processes)
                await asyncio.sleep(0.1)
            started = time.monotonic()
            async with httpx.AsyncClient() as client:
                sim_url = env["TMDB_API_URL"].removesuffix("/tmdb/3")
                await client.get(f"{sim_url}/_simulator/requests")
                while (await _pending(dsn))[1] != 0:  # noqa: ASYNC110 (polling other processes)
                    await asyncio.sleep(0.1)
                elapsed = time.monotonic() - started
                counts = (await client.get(f"{sim_url}/_simulator/requests")).json()
            conn = await asyncpg.connect(dsn)
            items = await conn.fetchval(
                """SELECT (SELECT 2 * count(*) FROM movie_source) + (SELECT count(*) FROM season)
                 + (SELECT count(*) FROM movie WHERE imdb_id IS NOT NULL)"""
            )
            await conn.close()
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                await proc.wait()
            sim.send_signal(signal.SIGTERM)
            await sim.wait()
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
    twice = [k for k, n in counts["items"].items()
             if n > 1 and k.startswith(("torrent:", "season:", "scrape:"))]  # fmt: skip
    yts = counts["per_second"].get("yts", {})
    seconds = sorted(int(s) for s in yts)
    window = [yts.get(str(s), 0) for s in range(seconds[0], seconds[-1] + 1)] if seconds else [0]
    return {
        "replicas": replicas,
        "items": int(items),
        "seconds": elapsed,
        "per_second": items / elapsed,
        "duplicates": len(twice),
        "yts_mean": sum(yts.values()) / max(1, len(window)),
        "yts_busiest": max(yts.values(), default=0),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.replicas")
    parser.add_argument("--replicas", default="1,2,4")
    parser.add_argument("--movies", type=int, default=60)
    parser.add_argument("--shows", type=int, default=6)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--rate-bound", action="store_true")
    parser.add_argument("--yts-rate", type=float, default=4.0)
    args = parser.parse_args()
    results = [await run(int(n), args) for n in args.replicas.split(",")]
    base = results[0]["per_second"]
    print(
        "| replicas | items | drain (s) | items/s | speed-up | duplicates | YTS req/s mean"
        " | busiest second |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['replicas']} | {r['items']} | {r['seconds']:.1f} | {r['per_second']:.1f} | "
            f"{r['per_second'] / base:.2f}x | {r['duplicates']} | {r['yts_mean']:.2f} | "
            f"{r['yts_busiest']} |"
        )


if __name__ == "__main__":
    asyncio.run(main())
