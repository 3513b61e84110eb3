"""The app the cluster benchmark's replicas run (``tickwork run benchmarks._cluster_app:setup``).

Tasks (all singletons), each run audited under its lease on the engine's clock:

* ``long``: every 1 s, a 1.5 s body (killed mid-run by the failover measurement);
* ``short``: every 3 s, a 50 ms body (killed between runs);
* ``tick-00`` ... ``tick-NN`` (``BENCH_TICKS`` tasks, default 0): every 0.2 s, a 20 ms body (the
  duplicates measurement).

Configured by BENCH_ENGINE ("postgresql" or "redis"), BENCH_DSN, BENCH_SCHEMA (PostgreSQL),
BENCH_TICKS.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from tickwork import Lease, Scheduler, current_lease

ENGINE = os.environ["BENCH_ENGINE"]
DSN = os.environ["BENCH_DSN"]
SCHEMA = os.environ.get("BENCH_SCHEMA", "")
TICKS = int(os.environ.get("BENCH_TICKS", "0"))

_AUDIT_LUA = """
redis.call('RPUSH', KEYS[1],
           cjson.encode({ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), now, ARGV[4]}))
return 1
"""


async def setup(scheduler: Scheduler) -> Any:
    if ENGINE == "postgresql":
        import asyncpg

        from tickwork.coordination.postgres import guard

        pool = await asyncpg.create_pool(DSN, min_size=1, max_size=4, statement_cache_size=0)

        async def now() -> float:
            async with pool.acquire() as connection:
                value: float = await connection.fetchval(
                    "SELECT EXTRACT(EPOCH FROM clock_timestamp())::float8"
                )
                return value

        async def write(task: str, lease: Lease, started: float) -> None:
            async with pool.acquire() as connection, connection.transaction():
                await guard(connection, lease)
                await connection.execute(
                    f"INSERT INTO {SCHEMA}.audit VALUES "
                    "($1, $2, $3, EXTRACT(EPOCH FROM clock_timestamp()), $4)",
                    task,
                    lease.token,
                    started,
                    lease.replica,
                )

        closer: Any = pool
    else:
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(DSN)
        coordinator: Any = scheduler.coordinator

        async def now() -> float:
            seconds, micros = await client.time()
            return float(seconds) + micros / 1e6

        async def write(task: str, lease: Lease, started: float) -> None:
            await coordinator.fenced_eval(
                lease,
                _AUDIT_LUA,
                [coordinator.key("audit")],
                [task, lease.token, started * 1000, lease.replica],
            )

        class _Closer:
            async def close(self) -> None:
                await client.aclose()

        closer = _Closer()

    def body(task: str, seconds: float) -> Any:
        async def run() -> None:
            lease = current_lease()
            assert lease is not None
            started = await now()
            await asyncio.sleep(seconds)
            await write(task, lease, started)

        return run

    scheduler.schedule_task("long", 1.0, body("long", 1.5))
    scheduler.schedule_task("short", 3.0, body("short", 0.05))
    for index in range(TICKS):
        name = f"tick-{index:02d}"
        scheduler.schedule_task(name, 0.2, body(name, 0.02))

    class _App:
        async def aclose(self) -> None:
            await closer.close()

    return _App()
