"""The app each chaos replica runs: two singleton tasks whose runs are audited under fencing.

Every run records its start on the database's clock, works a while, then writes an audit row in
a transaction guarded by its lease (``tickwork.coordination.postgres.guard``). A refused write is
recorded, outside any fence, in ``refused``. Configured by CHAOS_DSN and CHAOS_SCHEMA.

``fast`` is a coroutine (a lost lease cancels it); ``long`` is a plain function in a worker
thread, which cannot be cancelled: resumed after a SIGSTOP past its lease, it goes on to its
write, and the fence must refuse it.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from typing import Any

import asyncpg

from tickwork import Lease, LeaseLostError, Scheduler, current_lease
from tickwork.coordination.postgres import guard

DSN = os.environ["CHAOS_DSN"]
SCHEMA = os.environ["CHAOS_SCHEMA"]


class App:
    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        self.pool = pool

    async def aclose(self) -> None:
        await self.pool.close()

    async def now(self) -> Any:
        async with self.pool.acquire() as connection:
            return await connection.fetchval("SELECT clock_timestamp()")

    async def run(self, task: str, seconds: float) -> None:
        lease = current_lease()
        assert lease is not None
        started = await self.now()
        await asyncio.sleep(seconds)
        await self.write(task, lease, started)

    async def write(self, task: str, lease: Lease, started: Any) -> None:
        try:
            async with self.pool.acquire() as connection, connection.transaction():
                await guard(connection, lease)
                await connection.execute(
                    f"INSERT INTO {SCHEMA}.audit (task, token, replica, started_at, ended_at) "
                    "VALUES ($1, $2, $3, $4, clock_timestamp())",
                    task,
                    lease.token,
                    lease.replica,
                    started,
                )
        except LeaseLostError:
            async with self.pool.acquire() as connection:
                await connection.execute(
                    f"INSERT INTO {SCHEMA}.refused (task, token, replica) VALUES ($1, $2, $3)",
                    task,
                    lease.token,
                    lease.replica,
                )
            raise


async def setup(scheduler: Scheduler) -> App:
    pool = await asyncpg.create_pool(DSN, min_size=1, max_size=4, statement_cache_size=0)
    app = App(pool)

    async def fast() -> None:
        await app.run("fast", random.uniform(0.1, 0.4))

    loop = asyncio.get_running_loop()

    def long() -> None:
        lease = current_lease()  # a plain function sees its run's lease too
        assert lease is not None
        started = asyncio.run_coroutine_threadsafe(app.now(), loop).result()
        time.sleep(random.uniform(2.5, 3.5))  # longer than the 2 s TTL: renewals
        asyncio.run_coroutine_threadsafe(app.write("long", lease, started), loop).result()

    scheduler.schedule_task("fast", 0.5, fast)
    scheduler.schedule_task("long", 1.0, long)
    return app
