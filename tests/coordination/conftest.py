"""Coordinator backends for the contract suite.

In-process and SQLite on an exact manual clock; real PostgreSQL (directly and through PgBouncer)
and real Redis on their servers' clocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest

from tickwork.coordination import Coordinator, InProcessCoordinator, MemoryStore

from ..conftest import IN_CI, POSTGRES_URL, require_service

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

_PGBOUNCER_INI = """
[databases]
test = host=127.0.0.1 port=5432 dbname=test
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
auth_type = trust
auth_file = {folder}/users.txt
pool_mode = transaction
max_client_conn = 200
default_pool_size = 4
unix_socket_dir =
ignore_startup_parameters = extra_float_digits
"""


@pytest.fixture(scope="session")
def pgbouncer_dsn() -> Iterator[str]:
    """A DSN of the test database through PgBouncer in transaction pooling mode.

    PgBouncer (Debian's package; `.ci/run` installs it) is started for the session on a free
    port. Without it: skipped on a user's machine, a failure under CI=true.
    """
    require_service("PostgreSQL", "127.0.0.1", 5432)
    binary = shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if os.path.exists("/usr/sbin/pgbouncer") else None
    )
    if binary is None:
        message = "pgbouncer is not installed (apt-get install pgbouncer)"
        if IN_CI:
            pytest.fail(f"{message}; CI must install it (see .ci/run)")
        pytest.skip(message)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # PgBouncer refuses to run as root: as root it switches to the postgres user, which must
    # be able to read its files.
    folder = tempfile.mkdtemp(prefix="tickwork-pgbouncer-")
    os.chmod(folder, 0o755)
    with open(os.path.join(folder, "pgbouncer.ini"), "w") as ini:
        ini.write(_PGBOUNCER_INI.format(port=port, folder=folder))
    with open(os.path.join(folder, "users.txt"), "w") as users:
        users.write('"postgres" ""\n')
    for name in ("pgbouncer.ini", "users.txt"):
        os.chmod(os.path.join(folder, name), 0o644)
    command = [
        binary,
        *(["-u", "postgres"] if os.geteuid() == 0 else []),
        f"{folder}/pgbouncer.ini",
    ]
    log = open(os.path.join(folder, "pgbouncer.log"), "wb")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    with open(os.path.join(folder, "pgbouncer.log"), "rb") as written:
                        error = written.read().decode(errors="replace")
                    pytest.fail(f"pgbouncer did not start: {error[-2000:]}")
                time.sleep(0.05)
        yield f"postgresql://postgres@127.0.0.1:{port}/test"
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


# The stores every cluster-level test of this folder runs on; the contract suite adds SQLite.
BACKENDS = [
    "memory",
    pytest.param("postgresql", marks=pytest.mark.external_service),
    pytest.param("redis", marks=pytest.mark.external_service),
    pytest.param("pgbouncer", marks=pytest.mark.external_service),
]


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    """A fresh cluster store: a MemoryStore on a manual clock, or a real server's of its own."""
    async with open_backend(request.param, request) as made:
        yield made


@contextlib.asynccontextmanager
async def open_backend(name: str, request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    """A fresh cluster store named ``name`` (one of BACKENDS, or ``"sqlite"``), cleaned after."""
    cluster = f"c{uuid.uuid4().hex[:8]}"
    if name == "memory":
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

    if name == "sqlite":
        sqlite = _sqlite_backend(cluster, request.getfixturevalue("tmp_path"))
        try:
            yield sqlite
        finally:
            for coordinator in sqlite.made:
                await coordinator.close()  # the shared connection closes once, at the first
        return

    async def advance_real(seconds: float) -> None:
        await asyncio.sleep(seconds)

    if name == "redis":
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

    # Through PgBouncer in transaction pooling mode: the same contract must hold.
    dsn = request.getfixturevalue("pgbouncer_dsn") if name == "pgbouncer" else PG_DSN
    schema = f"tw_{uuid.uuid4().hex[:12]}"

    def make_postgres(**kwargs: object) -> Coordinator:
        kwargs.setdefault("ttl", 2.0)
        kwargs.setdefault("heartbeat", 1.0)
        kwargs.setdefault("cluster", cluster)
        return PostgresCoordinator(dsn, schema=schema, **kwargs)  # type: ignore[arg-type]

    made = Backend(name, make_postgres, advance_real)
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


def _sqlite_backend(cluster: str, folder: Path) -> Backend:
    """Replicas on one SQLite file, on a manual clock.

    The file serves one process at a time (its lock file), so the replicas of the contract share
    the first one's open connection: each of their calls is still one transaction of its own,
    which is all the contract needs to hold.
    """
    from tickwork.coordination.sqlite import SQLiteCoordinator

    clock = ManualClock()
    path = folder / "contract.sqlite3"
    first: list[SQLiteCoordinator] = []

    async def advance_sqlite(seconds: float) -> None:
        clock.now += seconds

    def make_sqlite(**kwargs: object) -> Coordinator:
        kwargs.setdefault("ttl", 2.0)
        kwargs.setdefault("cluster", cluster)
        coordinator = SQLiteCoordinator(path, clock=clock, **kwargs)  # type: ignore[arg-type]
        if first:
            coordinator._db = first[0]._db  # start() is then a no-op: the file is open
        else:
            first.append(coordinator)
        return coordinator

    return Backend("sqlite", make_sqlite, advance_sqlite)
