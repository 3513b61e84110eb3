"""Coordinator backends for the contract suite: in-process (exact clock) and real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg
import pytest

from tickwork.coordination import Coordinator, InProcessCoordinator, MemoryStore

from ..conftest import POSTGRES_URL, require_service

PG_DSN = POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://")


@dataclass
class Backend:
    """Makes replicas of one cluster on one store, and moves that store's time forward."""

    name: str
    make: Callable[..., Coordinator]
    advance: Callable[[float], Awaitable[None]]
    made: list[Coordinator] = field(default_factory=list)

    async def replica(self, **kwargs: object) -> Coordinator:
        coordinator = self.make(**kwargs)
        self.made.append(coordinator)
        await coordinator.start()
        return coordinator


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(
    params=[
        "memory",
        pytest.param("postgresql", marks=pytest.mark.external_service),
        pytest.param("redis", marks=pytest.mark.external_service),
    ]
)
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    """A fresh cluster store: a MemoryStore on a manual clock, or a PostgreSQL schema of its own."""
    cluster = f"c{uuid.uuid4().hex[:8]}"
    if request.param == "memory":
        clock = ManualClock()
        store = MemoryStore(clock=clock, heartbeat=1.0)

        async def advance_memory(seconds: float) -> None:
            clock.now += seconds

        def make_memory(**kwargs: object) -> Coordinator:
            kwargs.setdefault("ttl", 2.0)
            kwargs.setdefault("cluster", cluster)
            return InProcessCoordinator(store, **kwargs)  # type: ignore[arg-type]

        yield Backend("memory", make_memory, advance_memory)
        return

    async def advance_real(seconds: float) -> None:
        await asyncio.sleep(seconds)

    if request.param == "redis":
        require_service("Redis", "127.0.0.1", 6379)
        from tickwork.coordination.redis import RedisCoordinator

        def make_redis(**kwargs: object) -> Coordinator:
            kwargs.setdefault("ttl", 2.0)
            kwargs.setdefault("heartbeat", 1.0)
            kwargs.setdefault("cluster", cluster)
            return RedisCoordinator(REDIS_URL, **kwargs)  # type: ignore[arg-type]

        made_redis = Backend("redis", make_redis, advance_real)
        try:
            yield made_redis
        finally:
            for coordinator in made_redis.made:
                await coordinator.close()
            import redis.asyncio as aioredis

            client = aioredis.Redis.from_url(REDIS_URL)
            keys = [key async for key in client.scan_iter(match=f"{{tw:{cluster}*")]
            keys += [key async for key in client.scan_iter(match="{tw:someone-else}*")]
            if keys:
                await client.delete(*keys)
            await client.aclose()
        return

    require_service("PostgreSQL", "127.0.0.1", 5432)
    from tickwork.coordination.postgres import PostgresCoordinator

    schema = f"tw_{uuid.uuid4().hex[:12]}"

    def make_postgres(**kwargs: object) -> Coordinator:
        kwargs.setdefault("ttl", 2.0)
        kwargs.setdefault("heartbeat", 1.0)
        kwargs.setdefault("cluster", cluster)
        return PostgresCoordinator(PG_DSN, schema=schema, **kwargs)  # type: ignore[arg-type]

    made = Backend("postgresql", make_postgres, advance_real)
    try:
        yield made
    finally:
        for coordinator in made.made:
            await coordinator.close()
        connection = await asyncpg.connect(PG_DSN)
        try:
            await connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        finally:
            await connection.close()
