"""Chaos on real PostgreSQL: three `tickwork run` replicas, their holders killed, frozen, stopped.

Asserted from the audit table, on the database's clock: committed runs of a task never overlap,
tokens rise in commit order (no stale write accepted), the frozen holders' writes were refused,
the work kept going, and every replica is back in the cluster view.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import shutil
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from .._service_process import ServiceProcess, environment, spawner
from ..conftest import require_service
from ..coordination.conftest import PG_DSN

pytestmark = [pytest.mark.slow, pytest.mark.external_service, pytest.mark.timeout(240)]

TTL = 2.0
CHAOS_SECONDS = float(os.environ.get("TICKWORK_CHAOS_SECONDS", "45"))
APP = Path(__file__).with_name("chaos_app.py")


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    name = f"chaos_{uuid.uuid4().hex[:10]}"
    connection = await asyncpg.connect(PG_DSN)
    try:
        await connection.execute(f"CREATE SCHEMA {name}")
        await connection.execute(
            f"CREATE TABLE {name}.audit (task text, token bigint, replica text, "
            "started_at timestamptz, ended_at timestamptz)"
        )
        await connection.execute(
            f"CREATE TABLE {name}.refused (task text, token bigint, replica text)"
        )
        yield name
    finally:
        await connection.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        await connection.close()


async def _holders(connection: asyncpg.Connection, schema: str, cluster: str) -> dict[str, str]:
    rows = await connection.fetch(
        f"SELECT task, holder FROM {schema}.task WHERE cluster = $1 AND lease_until > now()",
        cluster,
    )
    return {row["task"]: row["holder"] for row in rows}


async def test_no_overlap_and_no_stale_write_under_chaos(tmp_path: Path, schema: str) -> None:
    """kill -9, SIGSTOP past the lease and SIGTERM of holders: 0 overlaps, 0 stale writes."""
    shutil.copy(APP, tmp_path / "chaos_app.py")
    cluster = f"chaos-{uuid.uuid4().hex[:6]}"
    env = environment(
        "TICKWORK_", {"CHAOS_DSN": PG_DSN, "CHAOS_SCHEMA": schema, "PYTHONPATH": str(tmp_path)}
    )
    args = (
        "chaos_app:setup",
        "--port",
        "0",
        "--grace",
        "1",
        "--coordinator",
        PG_DSN,
        "--cluster",
        cluster,
        "--lease-ttl",
        str(TTL),
    )
    events: list[str] = []
    rng = random.Random(1234)
    connection = await asyncpg.connect(PG_DSN)
    async with spawner(tmp_path) as spawn:

        async def start() -> ServiceProcess:
            service = await spawn(*args, env=env)
            await service.wait_started(timeout=30)
            return service

        replicas = [await start() for _ in range(3)]
        by_pid = {r.proc.pid: r for r in replicas}
        loop = asyncio.get_running_loop()
        ends = loop.time() + CHAOS_SECONDS
        stops = 0
        while loop.time() < ends:
            await asyncio.sleep(rng.uniform(3.0, 5.0))
            action = ["stop", "kill", "term"][len(events) % 3]
            holders = await _holders(connection, "tickwork", cluster)
            if action == "stop":  # the plain function's holder: it will try its write
                holders = {k: v for k, v in holders.items() if k == "long"}
            victims = [by_pid.get(int(h.split(":")[1])) for h in holders.values()]
            victims = [v for v in victims if v is not None and v.proc.returncode is None]
            if not victims:
                continue
            victim = rng.choice(victims)
            events.append(action)
            if action == "kill":
                victim.proc.kill()
                await victim.wait_exit()
            elif action == "term":
                await victim.stop(signal.SIGTERM, timeout=10)
            else:
                stops += 1
                victim.proc.send_signal(signal.SIGSTOP)
                await asyncio.sleep(TTL + 1.5)
                victim.proc.send_signal(signal.SIGCONT)
                continue
            replicas.remove(victim)
            fresh = await start()
            replicas.append(fresh)
            by_pid[fresh.proc.pid] = fresh
        await asyncio.sleep(TTL + 3.0)  # let every replica heartbeat after the last event
        view = await connection.fetch(
            "SELECT replica FROM tickwork.replica WHERE cluster = $1 "
            "AND seen_at > now() - make_interval(secs => $2)",
            cluster,
            3 * TTL,
        )
        live = {int(row["replica"].split(":")[1]) for row in view}
        for service in replicas:
            code, _ = await service.stop(signal.SIGTERM, timeout=15)
            assert code == 0, service.output[-3000:]
    try:
        audit = await connection.fetch(
            f"SELECT task, token, started_at, ended_at FROM {schema}.audit ORDER BY ended_at"
        )
        refused = await connection.fetchval(f"SELECT count(*) FROM {schema}.refused")
        await connection.execute("DELETE FROM tickwork.task WHERE cluster = $1", cluster)
        await connection.execute("DELETE FROM tickwork.replica WHERE cluster = $1", cluster)
    finally:
        await connection.close()
    assert {r.proc.pid for r in replicas} <= live, "a replica is missing from the cluster view"
    for task in ("fast", "long"):
        runs = [row for row in audit if row["task"] == task]
        assert len(runs) >= (20 if task == "fast" else 5), f"{task}: only {len(runs)} runs"
        for earlier, later in itertools.pairwise(runs):
            assert later["token"] > earlier["token"], f"{task}: stale write accepted"
            assert later["started_at"] >= earlier["ended_at"], f"{task}: overlapping runs"
    assert events.count("stop") >= 1
    assert refused >= 1, f"no write refused after {stops} SIGSTOPs: the fence was not exercised"
