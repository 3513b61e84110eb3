"""Redis specifics: a fenced script runs only under the current lease; keys share one slot."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from tickwork import LeaseLostError
from tickwork._lease import Lease
from tickwork.coordination import Grant, TaskDecl
from tickwork.coordination.redis import RedisCoordinator, check

from ..conftest import require_service
from .conftest import REDIS_URL

pytestmark = [pytest.mark.external_service, pytest.mark.timeout(30)]

WRITE = "redis.call('RPUSH', KEYS[1], ARGV[1]) return now"


@pytest.fixture
async def cluster() -> AsyncIterator[str]:
    require_service("Redis", "127.0.0.1", 6379)
    name = f"r{uuid.uuid4().hex[:8]}"
    yield name
    client = aioredis.Redis.from_url(REDIS_URL)
    keys = [key async for key in client.scan_iter(match=f"{{tw:{name}}}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def _lease(coordinator: RedisCoordinator, grant: Grant) -> Lease:
    return Lease(
        task=grant.task,
        token=grant.token,
        replica=coordinator.replica,
        cluster=coordinator.cluster,
        ttl=grant.ttl,
        _valid_until=time.monotonic() + 60,  # a paused replica that does not know yet
    )


async def test_fenced_eval_writes_only_under_the_current_lease(cluster: str) -> None:
    """The script runs for the holder; after a takeover the old holder's script is refused."""
    a = RedisCoordinator(REDIS_URL, cluster=cluster, ttl=0.5)
    b = RedisCoordinator(REDIS_URL, cluster=cluster, ttl=0.5)
    try:
        await a.declare([TaskDecl("t", 10.0)])
        old = await a.acquire("t")
        assert isinstance(old, Grant)
        stale = _lease(a, old)
        key = a.key("data")
        assert key.startswith(f"{{tw:{cluster}}}:")  # the cluster's hash slot
        assert isinstance(await a.fenced_eval(stale, WRITE, [key], ["first"]), int)
        await check(a, stale)
        await asyncio.sleep(0.6)
        new = await b.acquire("t")
        assert isinstance(new, Grant)
        with pytest.raises(LeaseLostError):
            await a.fenced_eval(stale, WRITE, [key], ["stale"])
        assert stale.lost
        with pytest.raises(LeaseLostError):
            await check(a, _lease(a, old))
        await b.fenced_eval(_lease(b, new), WRITE, [key], ["second"])
        client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
        assert await client.lrange(key, 0, -1) == ["first", "second"]
        await client.aclose()
    finally:
        await a.close()
        await b.close()


async def test_heartbeat_reads_the_controls_in_its_own_script(
    cluster: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One script records the heartbeat and returns the controls; forget drops a task's controls."""
    coordinator = RedisCoordinator(REDIS_URL, cluster=cluster)
    try:
        await coordinator.declare([TaskDecl("t", 10.0), TaskDecl("u", 10.0)])
        await coordinator.set_paused("t", True, by="alice")
        await coordinator.request_run("u")
        scripts: list[str] = []
        script = coordinator._script

        async def counting(name: str, keys: list[str], args: list[object]) -> object:
            scripts.append(name)
            assert all(key.startswith(f"{{tw:{cluster}}}:") for key in keys)  # one slot
            return await script(name, keys, args)

        monkeypatch.setattr(coordinator, "_script", counting)
        controls = await coordinator.heartbeat(["t"])
        assert [(c.task, c.paused, c.run_requested) for c in controls] == [
            ("t", True, False),
            ("u", False, True),
        ]
        assert scripts == ["heartbeat"]
        assert await coordinator.forget("t") is True
        assert [c.task for c in await coordinator.heartbeat([])] == ["u"]
    finally:
        await coordinator.close()
