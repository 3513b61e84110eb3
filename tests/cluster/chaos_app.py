"""The app each chaos replica runs: three singleton tasks whose runs are audited under fencing.

Every run records its start on the engine's clock, works a while, then writes an audit entry
fenced by its lease: on PostgreSQL in a transaction that starts with
``tickwork.coordination.postgres.guard``; on Redis in one script run by
``RedisCoordinator.fenced_eval``. A refused write is recorded, unfenced, as "refused".
Configured by CHAOS_ENGINE ("postgresql" or "redis"), CHAOS_DSN and CHAOS_SCHEMA.

``fast`` is a coroutine (a lost lease cancels it); ``long`` is a plain function in a worker
thread, which cannot be cancelled: resumed after a SIGSTOP past its lease, it goes on to its
write, and the fence must refuse it. ``held`` is ``fast`` under another name: the chaos test
pauses it through one replica's HTTP API and checks that no replica starts it again, whatever
happens to the replicas, until a run-now request runs it once.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from typing import Any

from tickwork import Lease, LeaseLostError, Scheduler, current_lease

ENGINE = os.environ["CHAOS_ENGINE"]
DSN = os.environ["CHAOS_DSN"]
SCHEMA = os.environ.get("CHAOS_SCHEMA", "")

_AUDIT_LUA = """
redis.call('RPUSH', KEYS[1], cjson.encode({ARGV[1], tonumber(ARGV[2]), ARGV[3],
                                           tonumber(ARGV[4]), now}))
return 1
"""


class PostgresAudit:
    def __init__(self, pool: Any) -> None:
        self.pool = pool

    @classmethod
    async def open(cls, scheduler: Scheduler) -> PostgresAudit:
        import asyncpg

        return cls(await asyncpg.create_pool(DSN, min_size=1, max_size=4, statement_cache_size=0))

    async def aclose(self) -> None:
        await self.pool.close()

    async def now(self) -> Any:
        async with self.pool.acquire() as connection:
            return await connection.fetchval("SELECT clock_timestamp()")

    async def write(self, task: str, lease: Lease, started: Any) -> None:
        from tickwork.coordination.postgres import guard

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


class RedisAudit:
    def __init__(self, coordinator: Any) -> None:
        self.coordinator = coordinator
        import redis.asyncio as aioredis

        self.client = aioredis.Redis.from_url(DSN, decode_responses=True)

    @classmethod
    async def open(cls, scheduler: Scheduler) -> RedisAudit:
        return cls(scheduler.coordinator)

    async def aclose(self) -> None:
        await self.client.aclose()

    async def now(self) -> int:
        seconds, micros = await self.client.time()
        return int(seconds * 1000 + micros // 1000)

    async def write(self, task: str, lease: Lease, started: Any) -> None:
        key = self.coordinator.key("audit")
        try:
            await self.coordinator.fenced_eval(
                lease, _AUDIT_LUA, [key], [task, lease.token, lease.replica, started]
            )
        except LeaseLostError:
            await self.client.rpush(
                self.coordinator.key("refused"), json.dumps([task, lease.token, lease.replica])
            )
            raise


async def setup(scheduler: Scheduler) -> Any:
    audit: Any = await (PostgresAudit if ENGINE == "postgresql" else RedisAudit).open(scheduler)

    def audited(name: str) -> Any:
        async def body() -> None:
            lease = current_lease()
            assert lease is not None
            started = await audit.now()
            await asyncio.sleep(random.uniform(0.1, 0.4))
            await audit.write(name, lease, started)

        return body

    loop = asyncio.get_running_loop()

    def long() -> None:
        lease = current_lease()  # a plain function sees its run's lease too
        assert lease is not None
        started = asyncio.run_coroutine_threadsafe(audit.now(), loop).result()
        time.sleep(random.uniform(2.5, 3.5))  # longer than the 2 s TTL: renewals
        asyncio.run_coroutine_threadsafe(audit.write("long", lease, started), loop).result()

    scheduler.schedule_task("fast", 0.5, audited("fast"))
    scheduler.schedule_task("long", 1.0, long)
    scheduler.schedule_task("held", 0.5, audited("held"))
    return audit
