"""Coordination benchmark: failover, duplicates, cost per run, idle load, on PostgreSQL and Redis.

Run: ``.venv/bin/python -m benchmarks.cluster`` (about 10 minutes; ``--engine``, ``--kills``,
``--tick-seconds`` to change it). Needs PostgreSQL (127.0.0.1:5432, database ``test``) and Redis
(127.0.0.1:6379). Every replica is a real ``tickwork run`` process with ``--lease-ttl 2``.

1. Failover after ``kill -9``: of the holder mid-run (a 1.5 s body every 1 s: time from the kill
   to the next start, on the engine's clock), and of the last holder between runs (a 50 ms body
   every 3 s: how late the next start is against its due time). Median and max over ``--kills``.
2. Duplicates: 3 replicas, 20 singleton tasks at 0.2 s for ``--tick-seconds``: committed runs,
   and pairs of runs of one task closer than the interval or overlapping (target 0).
3. Coordination cost per run, in this process: acquire + release round trips, their wall time
   and CPU, against the engine.
4. Idle load: one scheduler with 20 singleton tasks at 3600 s for 60 s: coordinator calls per
   second per task (target <= 0.2).
The uncoordinated path is ``benchmarks.core`` case 1 (``--only 1``).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import signal
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from tickwork import Scheduler
from tickwork.coordination import Grant, TaskDecl, from_url

PG_DSN = os.environ.get("TICKWORK_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TICKWORK_BENCH_REDIS", "redis://127.0.0.1:6379/0")
TTL = 2.0
ROOT = Path(__file__).resolve().parent.parent
TICKWORK = str(Path(sys.executable).parent / "tickwork")


@dataclass(frozen=True)
class Entry:
    """One committed run: task, token, start and end (engine clock, seconds), replica."""

    task: str
    token: int
    started: float
    ended: float
    replica: str


class Engine:
    """The engine's audit table/list, its clock and its task rows, for one cluster."""

    def __init__(self, name: str, cluster: str) -> None:
        self.name = name
        self.cluster = cluster
        self.url = PG_DSN if name == "postgresql" else REDIS_URL
        self.schema = f"bench_{uuid.uuid4().hex[:8]}"
        self.prefix = f"{{tw:{cluster}}}:"
        self.pg: Any = None
        self.redis: Any = None

    async def open(self) -> None:
        if self.name == "postgresql":
            self.pg = await asyncpg.connect(PG_DSN)
            await self.pg.execute(f"CREATE SCHEMA {self.schema}")
            await self.pg.execute(
                f"CREATE TABLE {self.schema}.audit (task text, token bigint, started float8, "
                "ended float8, replica text)"
            )
        else:
            self.redis = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)

    async def close(self) -> None:
        if self.pg is not None:
            await self.pg.execute(f"DROP SCHEMA {self.schema} CASCADE")
            await self.pg.execute("DELETE FROM tickwork.task WHERE cluster = $1", self.cluster)
            await self.pg.execute("DELETE FROM tickwork.replica WHERE cluster = $1", self.cluster)
            await self.pg.close()
        if self.redis is not None:
            keys = [k async for k in self.redis.scan_iter(match=f"{self.prefix}*")]
            if keys:
                await self.redis.delete(*keys)
            await self.redis.aclose()

    def env(self, ticks: int) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TICKWORK_")}
        env.update(
            BENCH_ENGINE=self.name,
            BENCH_DSN=self.url,
            BENCH_SCHEMA=self.schema,
            BENCH_TICKS=str(ticks),
            PYTHONPATH=str(ROOT),
        )
        return env

    async def now(self) -> float:
        if self.pg is not None:
            value: float = await self.pg.fetchval("SELECT EXTRACT(EPOCH FROM clock_timestamp())")
            return float(value)
        seconds, micros = await self.redis.time()
        return float(seconds) + micros / 1e6

    async def audit(self) -> list[Entry]:
        if self.pg is not None:
            rows = await self.pg.fetch(
                f"SELECT task, token, started, ended, replica FROM {self.schema}.audit"
            )
            return [Entry(r[0], r[1], r[2], r[3], r[4]) for r in rows]
        raw = await self.redis.lrange(f"{self.prefix}app:audit", 0, -1)
        return [
            Entry(e[0], int(e[1]), e[2] / 1000, e[3] / 1000, e[4]) for e in map(json.loads, raw)
        ]

    async def holder(self, task: str) -> str | None:
        if self.pg is not None:
            value: str | None = await self.pg.fetchval(
                "SELECT holder FROM tickwork.task WHERE cluster = $1 AND task = $2 "
                "AND lease_until > now()",
                self.cluster,
                task,
            )
            return value
        holder, until = await self.redis.hmget(
            f"{self.prefix}task:{task}", "holder", "lease_until_ms"
        )
        now = await self.now()
        return holder if holder and until and int(until) / 1000 > now else None


class Replicas:
    """Three ``tickwork run`` replicas of the benchmark app; restarts what is killed."""

    def __init__(self, engine: Engine, ticks: int) -> None:
        self.engine = engine
        self.ticks = ticks
        self.processes: dict[int, asyncio.subprocess.Process] = {}

    async def start(self) -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            TICKWORK, "run", "benchmarks._cluster_app:setup", "--port", "0", "--grace", "1",
            "--coordinator", self.engine.url, "--cluster", self.engine.cluster,
            "--lease-ttl", str(TTL), "--log-level", "warning",
            cwd=ROOT, env=self.engine.env(self.ticks),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        self.processes[proc.pid] = proc
        return proc

    async def __aenter__(self) -> Replicas:
        for _ in range(3):
            await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for proc in self.processes.values():
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.processes.values():
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()

    async def kill(self, replica: str) -> None:
        proc = self.processes.pop(int(replica.split(":")[1]))
        proc.kill()
        await proc.wait()
        await self.start()


async def _wait(check: Callable[[], Awaitable[Any]], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.02)
    raise TimeoutError("condition not met")


async def failover(engine: Engine, kills: int) -> dict[str, Any]:
    mid: list[float] = []
    between: list[float] = []
    async with Replicas(engine, 0) as replicas:
        await asyncio.sleep(5)  # every replica up and declared
        for _ in range(kills):
            # Mid-run: kill the holder of a "long" run (1.5 s body).
            holder = await _wait(lambda: engine.holder("long"))
            killed_at = await engine.now()
            await replicas.kill(holder)

            async def next_start(at: float = killed_at) -> float | None:
                starts = [
                    e.started for e in await engine.audit() if e.task == "long" and e.started > at
                ]
                return min(starts) if starts else None

            mid.append(await _wait(next_start) - killed_at)
            # Between runs: right after a "short" run ends, kill the replica that ran it.
            seen = {e.token for e in await engine.audit() if e.task == "short"}

            async def new_run(old: set[int] = seen) -> Entry | None:
                fresh = [
                    e for e in await engine.audit() if e.task == "short" and e.token not in old
                ]
                return fresh[0] if fresh else None

            run = await _wait(new_run, 15)
            if int(run.replica.split(":")[1]) not in replicas.processes:
                continue
            await replicas.kill(run.replica)

            async def start_after(at: float = run.ended) -> float | None:
                starts = [
                    e.started for e in await engine.audit() if e.task == "short" and e.started > at
                ]
                return min(starts) if starts else None

            between.append(await _wait(start_after, 15) - (run.ended + 3.0))
    return {
        "mid_run": {"median": statistics.median(mid), "max": max(mid), "n": len(mid)},
        "between_runs": {
            "median": statistics.median(between) if between else None,
            "max": max(between) if between else None,
            "n": len(between),
        },
    }


async def duplicates(engine: Engine, seconds: float) -> dict[str, Any]:
    async with Replicas(engine, 20):
        await asyncio.sleep(seconds)
    entries = [e for e in await engine.audit() if e.task.startswith("tick-")]
    by_task: dict[str, list[Entry]] = {}
    for entry in entries:
        by_task.setdefault(entry.task, []).append(entry)
    overlaps = early = 0
    for runs in by_task.values():
        runs.sort(key=lambda e: e.started)
        for earlier, later in itertools.pairwise(runs):
            if later.started < earlier.ended:
                overlaps += 1
            elif later.started - earlier.ended < 0.2 - 0.005:
                early += 1
    return {"ticks": len(entries), "overlapping": overlaps, "closer_than_interval": early}


async def cost(engine: Engine, runs: int = 300) -> dict[str, Any]:
    coordinator = from_url(engine.url, cluster=f"{engine.cluster}-cost", ttl=30.0)
    await coordinator.start()
    await coordinator.declare([TaskDecl("t", 0.0)])
    walls: list[float] = []
    cpu_start = time.process_time()
    for _ in range(runs):
        began = time.perf_counter()
        grant = await coordinator.acquire("t")
        assert isinstance(grant, Grant)
        await coordinator.release(grant, wait=0.0, failures=0, outcome="success")
        walls.append(time.perf_counter() - began)
    cpu = (time.process_time() - cpu_start) / runs
    await coordinator.forget("t")
    await coordinator.close()
    return {
        "round_trips_per_run": 2,
        "wall_ms_median": statistics.median(walls) * 1000,
        "wall_ms_p99": sorted(walls)[int(len(walls) * 0.99) - 1] * 1000,
        "cpu_ms_per_run": cpu * 1000,
    }


async def idle(engine: Engine, seconds: float = 60.0) -> dict[str, Any]:
    coordinator = from_url(engine.url, cluster=f"{engine.cluster}-idle", ttl=30.0)
    scheduler = Scheduler(coordinator=coordinator)

    async def job() -> None:
        pass

    for index in range(20):
        scheduler.schedule_task(f"hourly-{index:02d}", 3600.0, job, run_immediately=False)
    coordination = scheduler._coordination
    assert coordination is not None
    await asyncio.sleep(5)  # declared
    before = coordination.calls
    await asyncio.sleep(seconds)
    calls = coordination.calls - before
    await scheduler.shutdown()
    return {
        "calls_per_second": calls / seconds,
        "per_task_per_second": calls / seconds / 20,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--engine", choices=["postgresql", "redis", "both"], default="both")
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--tick-seconds", type=float, default=180.0)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--save", type=Path)
    options = parser.parse_args()
    engines = ["postgresql", "redis"] if options.engine == "both" else [options.engine]
    results: dict[str, Any] = {}
    for name in engines:
        engine = Engine(name, f"bench-{uuid.uuid4().hex[:6]}")
        await engine.open()
        try:
            result: dict[str, Any] = {}
            result["cost"] = await cost(engine)
            print(name, "cost", result["cost"], flush=True)
            result["idle"] = await idle(engine, options.idle_seconds)
            print(name, "idle", result["idle"], flush=True)
            result["failover"] = await failover(engine, options.kills)
            print(name, "failover", result["failover"], flush=True)
            result["duplicates"] = await duplicates(engine, options.tick_seconds)
            print(name, "duplicates", result["duplicates"], flush=True)
            results[name] = result
        finally:
            await engine.close()
    print(json.dumps(results, indent=2))
    if options.save:
        options.save.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
