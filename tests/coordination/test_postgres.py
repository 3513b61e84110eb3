"""PostgreSQL specifics: schema created once under a race, fenced writes, an unreachable server."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tickwork import LeaseLostError
from tickwork._lease import Lease
from tickwork.coordination import CoordinatorError, Grant, TaskDecl
from tickwork.coordination.postgres import PostgresCoordinator, guard, guard_sqlalchemy

from ..conftest import require_service
from .conftest import PG_DSN

pytestmark = [pytest.mark.external_service, pytest.mark.timeout(30)]


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    """A schema name of its own, dropped afterwards."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    name = f"tw_{uuid.uuid4().hex[:12]}"
    yield name
    connection = await asyncpg.connect(PG_DSN)
    try:
        await connection.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
    finally:
        await connection.close()


def _lease(coordinator: PostgresCoordinator, grant: Grant) -> Lease:
    return Lease(
        task=grant.task,
        token=grant.token,
        replica=coordinator.replica,
        cluster=coordinator.cluster,
        ttl=grant.ttl,
        _valid_until=time.monotonic() + grant.ttl,
    )


async def test_replicas_starting_together_create_the_schema_once(schema: str) -> None:
    """Ten replicas migrating at once: no error, one schema at the current version."""
    replicas = [PostgresCoordinator(PG_DSN, cluster="c", schema=schema) for _ in range(10)]
    try:
        await asyncio.gather(*(r.start() for r in replicas))
    finally:
        await asyncio.gather(*(r.close() for r in replicas))
    connection = await asyncpg.connect(PG_DSN)
    try:
        version = await connection.fetchval(f"SELECT value FROM {schema}.meta WHERE key='version'")
    finally:
        await connection.close()
    assert version == "1"


@pytest.mark.parametrize("through", ["direct", "pgbouncer"])
async def test_guard_refuses_a_stale_token_and_accepts_the_current_one(
    schema: str, through: str, request: pytest.FixtureRequest
) -> None:
    """A write fenced by a superseded lease is refused; the new holder's write commits.

    Directly and through PgBouncer in transaction pooling mode.
    """
    dsn = PG_DSN if through == "direct" else request.getfixturevalue("pgbouncer_dsn")
    a = PostgresCoordinator(dsn, cluster="c", schema=schema, ttl=0.5)
    b = PostgresCoordinator(dsn, cluster="c", schema=schema, ttl=0.5)
    await a.start()
    await b.start()
    connection = await asyncpg.connect(dsn, statement_cache_size=0)
    try:
        await connection.execute(f"CREATE TABLE {schema}.data (token bigint)")
        await a.declare([TaskDecl("t", 10.0)])
        old = await a.acquire("t")
        assert isinstance(old, Grant)
        stale = _lease(a, old)
        await asyncio.sleep(0.6)
        new = await b.acquire("t")
        assert isinstance(new, Grant)
        stale._valid_until = time.monotonic() + 10  # a paused replica that does not know yet
        with pytest.raises(LeaseLostError):  # noqa: PT012 (the write must not run)
            async with connection.transaction():
                await guard(connection, stale, schema=schema)
                await connection.execute(f"INSERT INTO {schema}.data VALUES ($1)", old.token)
        assert stale.lost
        async with connection.transaction():
            await guard(connection, _lease(b, new), schema=schema)
            await connection.execute(f"INSERT INTO {schema}.data VALUES ($1)", new.token)
        assert await connection.fetch(f"SELECT token FROM {schema}.data") == [(new.token,)]
    finally:
        await connection.close()
        await a.close()
        await b.close()


async def test_guarded_transaction_holds_off_a_takeover(schema: str) -> None:
    """While a fenced transaction is busy, an expired lease is not granted to a peer."""
    a = PostgresCoordinator(PG_DSN, cluster="c", schema=schema, ttl=1.0)
    b = PostgresCoordinator(PG_DSN, cluster="c", schema=schema, ttl=1.0)
    await a.start()
    await b.start()
    connection = await asyncpg.connect(PG_DSN)
    try:
        await a.declare([TaskDecl("t", 10.0)])
        grant = await a.acquire("t")
        assert isinstance(grant, Grant)
        await asyncio.sleep(0.5)
        async with connection.transaction():
            await guard(connection, _lease(a, grant), schema=schema)
            await connection.execute("SELECT pg_sleep(0.7)")  # the lease expires meanwhile
            assert not isinstance(await b.acquire("t"), Grant)
        assert isinstance(await b.acquire("t"), Grant)
    finally:
        await connection.close()
        await a.close()
        await b.close()


async def test_a_frozen_holder_cannot_pin_the_row(schema: str) -> None:
    """A fenced transaction left idle past the TTL is ended by the server: its write never lands."""
    a = PostgresCoordinator(PG_DSN, cluster="c", schema=schema, ttl=0.5)
    b = PostgresCoordinator(PG_DSN, cluster="c", schema=schema, ttl=0.5)
    await a.start()
    await b.start()
    connection = await asyncpg.connect(PG_DSN)
    try:
        await a.declare([TaskDecl("t", 10.0)])
        grant = await a.acquire("t")
        assert isinstance(grant, Grant)
        transaction = connection.transaction()
        await transaction.start()
        await guard(connection, _lease(a, grant), schema=schema)
        await asyncio.sleep(1.0)  # frozen (SIGSTOP) past the lease, idle in its transaction
        assert isinstance(await b.acquire("t"), Grant)
        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, OSError)):
            await connection.execute("SELECT 1")
    finally:
        await connection.close()
        await a.close()
        await b.close()


async def test_guard_sqlalchemy_fences_a_session(schema: str) -> None:
    """The SQLAlchemy helper refuses a stale token the same way."""
    from sqlalchemy.ext.asyncio import create_async_engine

    a = PostgresCoordinator(PG_DSN, cluster="c", schema=schema, ttl=5)
    await a.start()
    engine = create_async_engine(PG_DSN.replace("postgresql://", "postgresql+asyncpg://"))
    try:
        await a.declare([TaskDecl("t", 10.0)])
        grant = await a.acquire("t")
        assert isinstance(grant, Grant)
        async with engine.begin() as connection:
            await guard_sqlalchemy(connection, _lease(a, grant), schema=schema)
        await a.release(grant, wait=10, failures=0, outcome="success")
        with pytest.raises(LeaseLostError):
            async with engine.begin() as connection:
                await guard_sqlalchemy(connection, _lease(a, grant), schema=schema)
    finally:
        await engine.dispose()
        await a.close()


async def test_unreachable_server_raises_coordinator_error() -> None:
    """A server that does not answer is a CoordinatorError, not a crash."""
    coordinator = PostgresCoordinator(
        "postgresql://postgres@127.0.0.1:1/test", cluster="c", timeout=2.0
    )
    with pytest.raises(CoordinatorError, match="cannot reach the database"):
        await coordinator.start()
    await coordinator.close()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dsn": "mysql://x"}, "dsn must be a postgresql:// URL, got 'mysql://x'"),
        ({"cluster": ""}, "cluster must be a non-empty string"),
        ({"ttl": 0}, "ttl must be a finite number > 0, got 0"),
        ({"schema": "Bad-Name"}, "schema must be a lower-case SQL identifier, got 'Bad-Name'"),
    ],
)
def test_bad_arguments_name_the_value(kwargs: dict[str, object], message: str) -> None:
    """Each bad argument raises ValueError naming the parameter and the value."""
    arguments: dict[str, object] = {"dsn": PG_DSN, "cluster": "c", **kwargs}
    dsn = arguments.pop("dsn")
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        PostgresCoordinator(dsn, **arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize("through", ["direct", "pgbouncer"])
async def test_heartbeat_and_its_controls_are_one_statement(
    schema: str, through: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A heartbeat is one statement that also returns the cluster's controls, even via PgBouncer."""
    dsn = PG_DSN if through == "direct" else request.getfixturevalue("pgbouncer_dsn")
    coordinator = PostgresCoordinator(dsn, cluster="c", schema=schema)
    await coordinator.start()
    try:
        await coordinator.declare([TaskDecl("t", 10.0)])
        await coordinator.set_paused("t", True, by="alice")
        statements: list[str] = []
        fetch = coordinator._fetch

        async def counting(sql: str, *args: object) -> list[object]:
            statements.append(sql)
            return await fetch(sql, *args)

        monkeypatch.setattr(coordinator, "_fetch", counting)
        controls = await coordinator.heartbeat(["t"])
        assert [(c.task, c.paused_by) for c in controls] == [("t", "alice")]
        assert len(statements) == 1
        peers = (await coordinator.cluster_view()).peers
        assert [p.tasks for p in peers] == [("t",)]  # the upsert ran too
    finally:
        await coordinator.close()


async def test_a_close_cut_short_by_a_shutdown_leaves_no_connection_open(schema: str) -> None:
    """Scheduler.shutdown bounds close(); cancelled mid-way it still closes every socket."""
    cluster = f"close-{uuid.uuid4().hex[:8]}"
    coordinator = PostgresCoordinator(PG_DSN, cluster=cluster, schema=schema)
    await coordinator.start()
    await asyncio.gather(*(coordinator.heartbeat([]) for _ in range(4)))  # several connections
    observer = await asyncpg.connect(PG_DSN)
    try:

        async def open_connections() -> int:
            count: int = await observer.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                f"tickwork {cluster}",
            )
            return count

        assert await open_connections() >= 1
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.001):
                await coordinator.close()
        # The server notices the closed sockets at once; give its view a moment.
        for _ in range(100):
            if not await open_connections():
                break
            await asyncio.sleep(0.05)
        assert await open_connections() == 0
    finally:
        await observer.close()
