"""Chaos on real engines: three `tickwork run` replicas, their holders killed, frozen, cut off.

On PostgreSQL and on Redis. Each replica reaches the engine's coordinator through its own TCP
proxy; "cut" stops forwarding without closing anything (the worst partition: no error, only
silence) for longer than the lease, then drops the stale connections. Asserted from the audit
entries, on the engine's clock: committed runs of a task never overlap, tokens rise in commit
order (no stale write accepted), the frozen holders' writes were refused, the work kept going,
and every replica is back in the cluster view. A third task, paused through one replica's HTTP
API early on, never starts again on any replica (killed, frozen, cut off, replaced) until a
run-now request through another replica at the end runs it exactly once.
``TICKWORK_CHAOS_SECONDS`` (default 45) sets how long the driver runs per engine:
``TICKWORK_CHAOS_SECONDS=1800 make test PYTEST_ARGS=tests/cluster`` is the long run.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import shutil
import signal
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis

from .._service_process import ServiceProcess, environment, spawner
from ..conftest import require_service
from ..coordination.conftest import PG_DSN, REDIS_URL

pytestmark = [pytest.mark.slow, pytest.mark.external_service, pytest.mark.timeout(300)]

TTL = 2.0
CHAOS_SECONDS = float(os.environ.get("TICKWORK_CHAOS_SECONDS", "45"))
APP = Path(__file__).with_name("chaos_app.py")


@dataclass(frozen=True)
class Entry:
    """One committed run: its task, token, and start and end on the engine's clock (seconds)."""

    task: str
    token: int
    started: float
    ended: float


class Blackhole:
    """A TCP proxy to the engine that can go silent without closing its connections."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.port = 0
        self._healed = asyncio.Event()
        self._healed.set()
        self._open: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return
        self._open.update((writer, upstream))

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    if not self._healed.is_set():
                        await self._healed.wait()  # silence; heal() closes this connection
                        return
                    sink.write(data)
                    await sink.drain()
            except (OSError, ConnectionError):
                pass
            finally:
                sink.close()

        await asyncio.gather(pump(reader, upstream), pump(upstream_reader, writer))
        self._open.difference_update((writer, upstream))

    def cut(self) -> None:
        """Stop forwarding in both directions; nothing is closed, nothing answers."""
        self._healed.clear()

    def heal(self) -> None:
        """Forward again; the connections open during the cut are dropped (as a NAT would)."""
        for stream in list(self._open):
            stream.close()
        self._healed.set()

    async def aclose(self) -> None:
        self.heal()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


class Engine(Protocol):
    url: str
    env: dict[str, str]

    async def holders(self) -> dict[str, str]: ...

    async def now(self) -> float: ...

    async def live(self) -> set[str]: ...

    async def audit(self) -> list[Entry]: ...

    async def refused(self) -> int: ...

    async def aclose(self) -> None: ...


def _seconds(value: datetime) -> float:
    return value.timestamp()


class Postgres:
    def __init__(self, cluster: str, schema: str, connection: asyncpg.Connection) -> None:
        self.url = PG_DSN
        self.cluster = cluster
        self.schema = schema
        self.connection = connection
        self.env = {"CHAOS_ENGINE": "postgresql", "CHAOS_DSN": PG_DSN, "CHAOS_SCHEMA": schema}

    @classmethod
    async def open(cls, cluster: str) -> Postgres:
        require_service("PostgreSQL", "127.0.0.1", 5432)
        schema = f"chaos_{uuid.uuid4().hex[:10]}"
        connection = await asyncpg.connect(PG_DSN)
        await connection.execute(f"CREATE SCHEMA {schema}")
        await connection.execute(
            f"CREATE TABLE {schema}.audit (task text, token bigint, replica text, "
            "started_at timestamptz, ended_at timestamptz)"
        )
        await connection.execute(
            f"CREATE TABLE {schema}.refused (task text, token bigint, replica text)"
        )
        return cls(cluster, schema, connection)

    async def holders(self) -> dict[str, str]:
        rows = await self.connection.fetch(
            "SELECT task, holder FROM tickwork.task WHERE cluster = $1 AND lease_until > now()",
            self.cluster,
        )
        return {row["task"]: row["holder"] for row in rows}

    async def now(self) -> float:
        value: datetime = await self.connection.fetchval("SELECT clock_timestamp()")
        return _seconds(value)

    async def live(self) -> set[str]:
        rows = await self.connection.fetch(
            "SELECT replica FROM tickwork.replica WHERE cluster = $1 "
            "AND seen_at > now() - make_interval(secs => $2)",
            self.cluster,
            3 * TTL,
        )
        return {row["replica"] for row in rows}

    async def audit(self) -> list[Entry]:
        rows = await self.connection.fetch(
            f"SELECT task, token, started_at, ended_at FROM {self.schema}.audit ORDER BY ended_at"
        )
        return [
            Entry(r["task"], r["token"], _seconds(r["started_at"]), _seconds(r["ended_at"]))
            for r in rows
        ]

    async def refused(self) -> int:
        count: int = await self.connection.fetchval(f"SELECT count(*) FROM {self.schema}.refused")
        return count

    async def aclose(self) -> None:
        try:
            await self.connection.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")
            await self.connection.execute(
                "DELETE FROM tickwork.task WHERE cluster = $1", self.cluster
            )
            await self.connection.execute(
                "DELETE FROM tickwork.replica WHERE cluster = $1", self.cluster
            )
        finally:
            await self.connection.close()


class Redis:
    def __init__(self, cluster: str, client: Any) -> None:
        self.url = REDIS_URL
        self.cluster = cluster
        self.client = client
        self.prefix = f"{{tw:{cluster}}}:"
        self.env = {"CHAOS_ENGINE": "redis", "CHAOS_DSN": REDIS_URL}

    @classmethod
    async def open(cls, cluster: str) -> Redis:
        require_service("Redis", "127.0.0.1", 6379)
        return cls(cluster, aioredis.Redis.from_url(REDIS_URL, decode_responses=True))

    async def _now(self) -> int:
        seconds, micros = await self.client.time()
        return int(seconds * 1000 + micros // 1000)

    async def now(self) -> float:
        return await self._now() / 1000

    async def holders(self) -> dict[str, str]:
        now = await self._now()
        found = {}
        for task in ("fast", "long"):
            holder, until = await self.client.hmget(
                f"{self.prefix}task:{task}", "holder", "lease_until_ms"
            )
            if holder and until and int(until) > now:
                found[task] = holder
        return found

    async def live(self) -> set[str]:
        now = await self._now()
        seen = await self.client.hgetall(f"{self.prefix}seen")
        return {replica for replica, at in seen.items() if now - int(at) <= 3 * TTL * 1000}

    async def audit(self) -> list[Entry]:
        raw = await self.client.lrange(f"{self.prefix}app:audit", 0, -1)
        entries = [json.loads(item) for item in raw]
        return [Entry(e[0], int(e[1]), e[3] / 1000, e[4] / 1000) for e in entries]

    async def refused(self) -> int:
        count: int = await self.client.llen(f"{self.prefix}app:refused")
        return count

    async def aclose(self) -> None:
        keys = [key async for key in self.client.scan_iter(match=f"{self.prefix}*")]
        if keys:
            await self.client.delete(*keys)
        await self.client.aclose()


@pytest.fixture(params=["postgresql", "redis"])
async def engine(request: pytest.FixtureRequest) -> AsyncIterator[Engine]:
    cluster = f"chaos-{uuid.uuid4().hex[:6]}"
    opened: Engine = await (Postgres if request.param == "postgresql" else Redis).open(cluster)
    opened.cluster = cluster  # type: ignore[attr-defined]
    try:
        yield opened
    finally:
        await opened.aclose()


async def test_no_overlap_and_no_stale_write_under_chaos(tmp_path: Path, engine: Engine) -> None:
    """kill -9, SIGSTOP or a silent cut past the lease, SIGTERM of holders: 0 overlaps, 0 stale
    writes, every replica back."""
    shutil.copy(APP, tmp_path / "chaos_app.py")
    cluster: str = engine.cluster  # type: ignore[attr-defined]
    env = environment("TICKWORK_", {**engine.env, "PYTHONPATH": str(tmp_path)})
    engine_port = 5432 if engine.env["CHAOS_ENGINE"] == "postgresql" else 6379
    proxies: dict[int, Blackhole] = {}
    events: list[str] = []
    rng = random.Random(1234)
    async with spawner(tmp_path) as spawn:

        async def start() -> ServiceProcess:
            proxy = Blackhole(engine_port)
            port = await proxy.start()
            url = engine.url.replace(f":{engine_port}/", f":{port}/")
            service = await spawn(
                "chaos_app:setup",
                *("--port", "0", "--grace", "1", "--coordinator", url),
                *("--cluster", cluster, "--lease-ttl", str(TTL)),
                env=env,
            )
            await service.wait_started(timeout=30)
            proxies[service.proc.pid] = proxy
            return service

        replicas = [await start() for _ in range(3)]
        by_pid = {r.proc.pid: r for r in replicas}
        await asyncio.sleep(2.0)  # held runs a few times first
        await _act(replicas[0], "pause")
        paused_at = await engine.now()
        loop = asyncio.get_running_loop()
        ends = loop.time() + CHAOS_SECONDS
        while loop.time() < ends:
            await asyncio.sleep(rng.uniform(3.0, 5.0))
            action = ["stop", "cut", "kill", "term"][len(events) % 4]
            holders = await engine.holders()
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
            elif action == "cut":
                proxy = proxies[victim.proc.pid]
                proxy.cut()
                await asyncio.sleep(TTL + 2.0)
                proxy.heal()
                continue
            else:
                victim.proc.send_signal(signal.SIGSTOP)
                await asyncio.sleep(TTL + 1.5)
                victim.proc.send_signal(signal.SIGCONT)
                continue
            replicas.remove(victim)
            fresh = await start()
            replicas.append(fresh)
            by_pid[fresh.proc.pid] = fresh
        await asyncio.sleep(TTL + 3.0)  # every replica heartbeats after the last event
        live = {int(replica.split(":")[1]) for replica in await engine.live()}
        triggered_at = await engine.now()
        answer = await _act(replicas[-1], "trigger")
        await asyncio.sleep(3.0)  # the run now, then the task stays paused
        for service in replicas:
            assert (await _status(service, "held"))["state"] == "paused", answer
        for service in replicas:
            code, _ = await service.stop(signal.SIGTERM, timeout=15)
            assert code == 0, service.output[-3000:]
        for proxy in proxies.values():
            await proxy.aclose()
    audit = await engine.audit()
    refused = await engine.refused()
    assert {r.proc.pid for r in replicas} <= live, "a replica is missing from the cluster view"
    for task in ("fast", "long"):
        runs = sorted((e for e in audit if e.task == task), key=lambda e: e.ended)
        assert len(runs) >= (20 if task == "fast" else 5), f"{task}: only {len(runs)} runs"
        for earlier, later in itertools.pairwise(runs):
            assert later.token > earlier.token, f"{task}: stale write accepted"
            assert later.started >= earlier.ended, f"{task}: overlapping runs"
    assert events.count("stop") >= 1
    assert events.count("cut") >= 1
    assert refused >= 1, "no write refused after a SIGSTOP: the fence was not exercised"
    held = [e for e in audit if e.task == "held"]
    assert any(e.started < paused_at for e in held), "held never ran before its pause"
    after = [e for e in held if e.started > paused_at + 0.05]
    assert len(after) == 1, f"held started {len(after)} times after its pause (1 run-now)"
    assert after[0].started >= triggered_at - 0.05
    print(
        f"chaos {engine.env['CHAOS_ENGINE']}: events {events}, {len(audit)} runs, {refused} refused"
    )


async def _act(service: ServiceProcess, action: str) -> dict[str, Any]:
    """POST an operator action on the task ``held`` to ``service``, as the CLI does."""
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(service.url(f"/tasks/held/{action}"), json={"by": "chaos"})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def _status(service: ServiceProcess, task: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(service.url("/status"))
    (entry,) = [t for t in response.json()["tasks"] if t["name"] == task]
    return dict(entry)
