"""PostgreSQL coordinator: the cluster's schedule in two tables, on the database's clock.

Needs the ``[postgres]`` extra (``pip install 'tickwork[postgres]'``, asyncpg)::

    from tickwork import Scheduler
    from tickwork.coordination.postgres import PostgresCoordinator

    coordinator = PostgresCoordinator("postgresql://app@db/app", cluster="jobs")
    async with Scheduler(coordinator=coordinator) as scheduler:
        scheduler.schedule_task("report", 3600, make_report)   # once per hour cluster-wide

Design:

* One row per task in ``<schema>.task``: absolute due time, holder, fencing token (from a
  sequence, so it strictly increases even across deleted rows), lease expiry, runs, consecutive
  failures, last outcome, paused flag, run-now request. Every time is the database's ``now()``;
  replicas receive durations only.
* Operators' controls live in the task row (``paused``, ``paused_at``, ``paused_by``,
  ``run_requested_at``); the heartbeat's upsert and the read of the cluster's paused or
  run-requested rows are one statement (a data-modifying ``WITH``).
* Every call is one autocommitted statement: no session advisory lock, no LISTEN, no prepared
  statement cache (``statement_cache_size=0``), so it works through a transaction-pooling
  connection pooler.
* The schema carries a version in ``<schema>.meta`` and migrates itself forward inside one
  transaction under a transaction-level advisory lock: replicas starting together create it once.
* Fenced writes: :func:`guard` (asyncpg) or :func:`guard_sqlalchemy` as the first statement of the
  application's own transaction, in the same database: it locks the task row if the run's token
  is still current and unexpired, else raises :class:`tickwork.LeaseLostError`. While that
  transaction is open no other replica can be granted the task; it is bounded by
  ``idle_in_transaction_session_timeout`` (the lease TTL), so a frozen holder cannot pin it.

Guarantees: at most one holder of a task's lease at any instant of the database's clock, and a
write guarded by a stale token is refused. Across a failover of PostgreSQL itself this holds only
with synchronous replication (an asynchronous standby may lose the last grant).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import socket
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tickwork._extras import require_extra
from tickwork._lease import Lease, LeaseLostError
from tickwork.coordination._protocol import (
    Busy,
    ClusterView,
    Control,
    CoordinatorError,
    Grant,
    PeerView,
    TaskDecl,
    TaskView,
)

require_extra("tickwork.coordination.postgres", "postgres", ("asyncpg",))

import asyncpg  # noqa: E402

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

__all__ = ["SCHEMA_VERSION", "PostgresCoordinator", "guard", "guard_sqlalchemy"]

SCHEMA_VERSION = 1
# Serialises schema migrations of every cluster: pg_advisory_xact_lock's key ("tickwork").
_MIGRATION_LOCK = 0x7469636B776F726B
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# A replica not seen for this many heartbeats counts as gone.
_ALIVE_HEARTBEATS = 3.0
# How often a paused task is looked at again (seconds).
_PAUSED_RECHECK = 5.0
_MIN_WAIT = 0.05
_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)

_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE SEQUENCE {s}.fence;
    CREATE TABLE {s}.task (
        cluster text NOT NULL,
        task text NOT NULL,
        interval_s float8,
        next_due_at timestamptz NOT NULL,
        holder text,
        fence bigint NOT NULL DEFAULT 0,
        lease_until timestamptz,
        started_at timestamptz,
        finished_at timestamptz,
        runs bigint NOT NULL DEFAULT 0,
        failures integer NOT NULL DEFAULT 0,
        last_outcome text,
        last_reason text,
        paused boolean NOT NULL DEFAULT false,
        paused_at timestamptz,
        paused_by text,
        run_requested_at timestamptz,
        PRIMARY KEY (cluster, task)
    );
    CREATE TABLE {s}.replica (
        cluster text NOT NULL,
        replica text NOT NULL,
        host text NOT NULL,
        pid integer NOT NULL,
        tasks text[] NOT NULL DEFAULT '{{}}',
        started_at timestamptz NOT NULL DEFAULT now(),
        seen_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (cluster, replica)
    );
    """,
}


def _check_identifier(kind: str, value: str) -> str:
    if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
        raise ValueError(f"{kind} must be a lower-case SQL identifier, got {value!r}")
    return value


class PostgresCoordinator:
    """A coordinator on PostgreSQL (asyncpg), safe through a transaction-pooling pooler.

    Args:
        dsn: A ``postgresql://`` URL (``postgresql+asyncpg://`` is accepted too).
        cluster: The cluster name: replicas sharing a database and a cluster name share the
            schedule; other clusters in the same tables are invisible to them.
        ttl: Lease time to live in seconds (renewed every ttl/3 while a run lasts).
        schema: The PostgreSQL schema holding the tables (created when missing).
        replica: This replica's id; ``host:pid:random`` by default.
        heartbeat: Seconds between this replica's heartbeats (a peer silent for three is gone);
            ``min(10, ttl)`` by default.
        timeout: Seconds a call may take before it counts as a failure.
    """

    backend = "postgresql"

    def __init__(
        self,
        dsn: str,
        *,
        cluster: str,
        ttl: float = 30.0,
        schema: str = "tickwork",
        replica: str | None = None,
        heartbeat: float | None = None,
        timeout: float | None = None,
    ) -> None:
        if not isinstance(dsn, str) or not dsn.startswith(("postgresql", "postgres")):
            raise ValueError(f"dsn must be a postgresql:// URL, got {dsn!r}")
        if not isinstance(cluster, str) or not cluster:
            raise ValueError(f"cluster must be a non-empty string, got {cluster!r}")
        if heartbeat is None:
            heartbeat = min(10.0, ttl) if isinstance(ttl, int | float) else 10.0
        for name, value in (("ttl", ttl), ("heartbeat", heartbeat)):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"{name} must be a number of seconds, got {value!r}")
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        self._dsn = dsn.replace("postgresql+asyncpg://", "postgresql://", 1)
        self._cluster = cluster
        self._ttl = float(ttl)
        self._schema = _check_identifier("schema", schema)
        self._replica = replica or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._heartbeat = float(heartbeat)
        self._timeout = float(timeout) if timeout is not None else max(1.0, self._ttl / 3)
        self._pool: asyncpg.Pool[Any] | None = None
        self._decls: dict[str, TaskDecl] = {}
        s = self._schema
        # A run-now request overrides both the due time and a pause (one run, consumed here).
        self._sql_acquire = f"""
            WITH c AS MATERIALIZED (
                SELECT cluster, task, run_requested_at IS NOT NULL AS requested FROM {s}.task
                WHERE cluster = $1 AND task = $2
                  AND (run_requested_at IS NOT NULL OR (NOT paused AND next_due_at <= now()))
                  AND (lease_until IS NULL OR lease_until <= now())
                FOR UPDATE SKIP LOCKED
            ), g AS (
                UPDATE {s}.task t SET holder = $3, fence = nextval('{s}.fence'),
                    lease_until = now() + make_interval(secs => $4), started_at = now(),
                    run_requested_at = NULL
                FROM c WHERE t.cluster = c.cluster AND t.task = c.task
                RETURNING t.fence, t.failures, c.requested
            )
            SELECT true AS granted, fence, failures, NULL::float8 AS wait, NULL::text AS holder,
                   false AS paused, NULL::float8 AS paused_for, NULL::text AS paused_by,
                   requested
            FROM g
            UNION ALL
            SELECT false, NULL, NULL,
                   CASE WHEN paused AND run_requested_at IS NULL THEN {_PAUSED_RECHECK}
                        WHEN lease_until > now() THEN EXTRACT(EPOCH FROM lease_until - now())
                        ELSE EXTRACT(EPOCH FROM next_due_at - now()) END,
                   CASE WHEN lease_until > now() THEN holder END,
                   paused AND run_requested_at IS NULL,
                   CASE WHEN paused AND run_requested_at IS NULL
                        THEN EXTRACT(EPOCH FROM now() - paused_at)::float8 END,
                   CASE WHEN paused AND run_requested_at IS NULL THEN paused_by END,
                   false
            FROM {s}.task WHERE cluster = $1 AND task = $2 AND NOT EXISTS (SELECT 1 FROM g)
        """
        self._sql_renew = f"""
            UPDATE {s}.task SET lease_until = now() + make_interval(secs => $5)
            WHERE cluster = $1 AND task = $2 AND fence = $3 AND holder = $4
              AND lease_until > now()
            RETURNING 1
        """
        # A run-now request that came in during the run makes the task due again at once.
        self._sql_release = f"""
            UPDATE {s}.task SET holder = NULL, lease_until = NULL, finished_at = now(),
                next_due_at = CASE WHEN run_requested_at IS NULL
                                   THEN now() + make_interval(secs => $5) ELSE now() END,
                runs = runs + 1, failures = $6, last_outcome = $7
            WHERE cluster = $1 AND task = $2 AND fence = $3 AND holder = $4
            RETURNING run_requested_at IS NOT NULL AS requested
        """
        # The control columns as Control's fields, for RETURNING and SELECT lists.
        controls = """
            task, paused, EXTRACT(EPOCH FROM now() - paused_at)::float8 AS paused_for,
            paused_by, run_requested_at IS NOT NULL AS run_requested
        """
        # Pausing a paused task keeps the first paused_at/paused_by (SET reads the old row).
        self._sql_set_paused = f"""
            UPDATE {s}.task SET paused = $3,
                paused_at = CASE WHEN NOT $3 THEN NULL WHEN paused THEN paused_at ELSE now() END,
                paused_by = CASE WHEN NOT $3 THEN NULL WHEN paused THEN paused_by ELSE $4 END
            WHERE cluster = $1 AND task = $2
            RETURNING {controls}
        """
        self._sql_request_run = f"""
            UPDATE {s}.task SET run_requested_at = coalesce(run_requested_at, now())
            WHERE cluster = $1 AND task = $2
            RETURNING {controls}
        """
        # One statement: the heartbeat's upsert runs whether or not the SELECT reads it (a
        # data-modifying WITH always runs to completion), so the controls cost no round trip.
        self._sql_heartbeat = f"""
            WITH beat AS (
                INSERT INTO {s}.replica (cluster, replica, host, pid, tasks)
                VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT (cluster, replica) DO UPDATE SET seen_at = now(), tasks = EXCLUDED.tasks
                RETURNING 1
            )
            SELECT {controls} FROM {s}.task
            WHERE cluster = $1 AND (paused OR run_requested_at IS NOT NULL)
            ORDER BY task COLLATE "C"
        """

    @property
    def cluster(self) -> str:
        return self._cluster

    @property
    def replica(self) -> str:
        return self._replica

    @property
    def ttl(self) -> float:
        return self._ttl

    @property
    def heartbeat_interval(self) -> float:
        return self._heartbeat

    @property
    def dsn(self) -> str:
        """The database URL the coordinator connects to (``postgresql://``; never logged)."""
        return self._dsn

    @property
    def schema(self) -> str:
        """The PostgreSQL schema holding the tables."""
        return self._schema

    async def _connection_pool(self) -> asyncpg.Pool[Any]:
        if self._pool is None:
            try:
                self._pool = await asyncpg.create_pool(
                    self._dsn,
                    min_size=0,
                    max_size=4,
                    statement_cache_size=0,  # transaction-pooling poolers cannot keep them
                    timeout=self._timeout,
                    command_timeout=self._timeout,
                    # pg_stat_activity tells the coordinator's connections apart.
                    server_settings={"application_name": f"tickwork {self._cluster}"[:63]},
                )
            except _ERRORS as exc:
                raise CoordinatorError(f"PostgreSQL coordinator: cannot connect: {exc}") from exc
        return self._pool

    async def _fetch(self, sql: str, *args: object) -> list[Any]:
        pool = await self._connection_pool()
        try:
            return list(await pool.fetch(sql, *args, timeout=self._timeout))
        except _ERRORS as exc:
            raise CoordinatorError(f"PostgreSQL coordinator: {type(exc).__name__}: {exc}") from exc

    async def start(self) -> None:
        """Connect and migrate the schema forward (once, under a transaction advisory lock)."""
        pool = await self._connection_pool()
        s = self._schema
        try:
            async with pool.acquire() as connection, connection.transaction():
                await connection.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
                await connection.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
                await connection.execute(
                    f"CREATE TABLE IF NOT EXISTS {s}.meta (key text PRIMARY KEY, value text)"
                )
                raw = await connection.fetchval(f"SELECT value FROM {s}.meta WHERE key = 'version'")
                version = int(raw) if raw is not None else 0
                if version > SCHEMA_VERSION:
                    raise CoordinatorError(
                        f"PostgreSQL coordinator: schema {s} is at version {version}, newer than "
                        f"this tickwork's {SCHEMA_VERSION}: upgrade tickwork"
                    )
                for step in range(version + 1, SCHEMA_VERSION + 1):
                    await connection.execute(_MIGRATIONS[step].format(s=s))
                await connection.execute(
                    f"INSERT INTO {s}.meta VALUES ('version', $1) "
                    "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                    str(SCHEMA_VERSION),
                )
        except _ERRORS as exc:
            raise CoordinatorError(
                f"PostgreSQL coordinator: cannot reach the database or migrate its schema: {exc}"
            ) from exc

    async def declare(self, tasks: Sequence[TaskDecl]) -> None:
        for decl in tasks:
            self._decls[decl.name] = decl
        if not tasks:
            return
        await self._fetch(
            f"""
            INSERT INTO {self._schema}.task (cluster, task, interval_s, next_due_at)
            SELECT $1, d.name, d.interval_s,
                   CASE WHEN d.now THEN now() ELSE now() + make_interval(secs => d.interval_s) END
            FROM unnest($2::text[], $3::float8[], $4::bool[]) AS d(name, interval_s, now)
            ON CONFLICT (cluster, task) DO UPDATE SET interval_s = EXCLUDED.interval_s
            """,
            self._cluster,
            [d.name for d in tasks],
            [d.interval for d in tasks],
            [d.run_immediately for d in tasks],
        )

    async def acquire(self, task: str) -> Grant | Busy:
        rows = await self._fetch(self._sql_acquire, self._cluster, task, self._replica, self._ttl)
        if not rows:
            decl = self._decls.get(task)
            if decl is not None:  # the row was forgotten while this replica still runs it
                await self.declare([decl])
            return Busy(wait=_MIN_WAIT if decl is not None else 1.0)
        row = rows[0]
        if row["granted"]:
            return Grant(
                task=task,
                token=row["fence"],
                ttl=self._ttl,
                failures=row["failures"],
                requested=row["requested"],
            )
        return Busy(
            wait=max(_MIN_WAIT, float(row["wait"])),
            holder=row["holder"],
            paused=row["paused"],
            paused_for=row["paused_for"],
            paused_by=row["paused_by"],
        )

    async def renew(self, grant: Grant) -> float | None:
        rows = await self._fetch(
            self._sql_renew, self._cluster, grant.task, grant.token, self._replica, self._ttl
        )
        return self._ttl if rows else None

    async def release(
        self, grant: Grant, *, wait: float, failures: int, outcome: str
    ) -> float | None:
        rows = await self._fetch(
            self._sql_release,
            self._cluster,
            grant.task,
            grant.token,
            self._replica,
            max(0.0, wait),
            failures,
            outcome,
        )
        if not rows:
            return None
        return 0.0 if rows[0]["requested"] else wait

    async def heartbeat(self, tasks: Sequence[str]) -> Sequence[Control]:
        host = self._replica.partition(":")[0]
        rows = await self._fetch(
            self._sql_heartbeat, self._cluster, self._replica, host, os.getpid(), list(tasks)
        )
        return [_control(row) for row in rows]

    async def set_paused(self, task: str, paused: bool, *, by: str | None = None) -> Control | None:
        rows = await self._fetch(self._sql_set_paused, self._cluster, task, paused, by)
        return _control(rows[0]) if rows else None

    async def request_run(self, task: str) -> Control | None:
        rows = await self._fetch(self._sql_request_run, self._cluster, task)
        return _control(rows[0]) if rows else None

    async def cluster_view(self) -> ClusterView:
        s = self._schema
        alive_after = _ALIVE_HEARTBEATS * self._heartbeat
        peers = await self._fetch(
            f"""
            SELECT replica, host, pid, tasks,
                   EXTRACT(EPOCH FROM now() - started_at)::float8 AS started_ago,
                   EXTRACT(EPOCH FROM now() - seen_at)::float8 AS seen_ago
            FROM {s}.replica WHERE cluster = $1 ORDER BY replica
            """,
            self._cluster,
        )
        tasks = await self._fetch(
            f"""
            SELECT task, interval_s, fence, runs, failures, last_outcome, paused, paused_by,
                   EXTRACT(EPOCH FROM now() - paused_at)::float8 AS paused_for,
                   run_requested_at IS NOT NULL AS run_requested,
                   CASE WHEN lease_until > now() THEN holder END AS holder,
                   EXTRACT(EPOCH FROM lease_until - now())::float8 AS lease_in,
                   EXTRACT(EPOCH FROM next_due_at - now())::float8 AS due_in
            FROM {s}.task WHERE cluster = $1 ORDER BY task
            """,
            self._cluster,
        )
        peer_views = tuple(
            PeerView(
                replica=p["replica"],
                host=p["host"],
                pid=p["pid"],
                started_ago=p["started_ago"],
                last_seen_ago=p["seen_ago"],
                alive=p["seen_ago"] <= alive_after,
                tasks=tuple(p["tasks"]),
            )
            for p in peers
        )
        declared = {name for peer in peer_views if peer.alive for name in peer.tasks}
        task_views = tuple(
            TaskView(
                name=t["task"],
                interval=t["interval_s"],
                holder=t["holder"],
                token=t["fence"],
                lease_expires_in=t["lease_in"],
                next_due_in=t["due_in"],
                runs=t["runs"],
                failures=t["failures"],
                last_outcome=t["last_outcome"],
                paused=t["paused"],
                orphaned=t["task"] not in declared,
                paused_for=t["paused_for"],
                paused_by=t["paused_by"],
                run_requested=t["run_requested"],
            )
            for t in tasks
        )
        return ClusterView(self.backend, self._cluster, self._replica, peer_views, task_views)

    async def forget(self, task: str) -> bool:
        rows = await self._fetch(
            f"DELETE FROM {self._schema}.task WHERE cluster = $1 AND task = $2 RETURNING 1",
            self._cluster,
            task,
        )
        return bool(rows)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            # Leaving is best effort: a peer that stops heartbeating is gone anyway.
            with contextlib.suppress(*_ERRORS):
                await pool.execute(
                    f"DELETE FROM {self._schema}.replica WHERE cluster = $1 AND replica = $2",
                    self._cluster,
                    self._replica,
                    timeout=self._timeout,
                )
            await pool.close()
        except BaseException:
            # Cancelled (a shutdown bounds close()) or failed: close the sockets at once rather
            # than leave the pool's connections open with nobody holding the pool.
            pool.terminate()
            raise


def _control(row: Any) -> Control:
    return Control(
        task=row["task"],
        paused=row["paused"],
        paused_for=row["paused_for"],
        paused_by=row["paused_by"],
        run_requested=row["run_requested"],
    )


def _guard_sql(lease: Lease, schema: str) -> str:
    _check_identifier("schema", schema)
    return (
        f"UPDATE {schema}.task SET lease_until = lease_until "
        "WHERE cluster = $1 AND task = $2 AND fence = $3 AND holder = $4 AND lease_until > now() "
        "RETURNING 1"
    )


def _timeout_sql(lease: Lease) -> str:
    return f"SET LOCAL idle_in_transaction_session_timeout = {max(1, int(lease.ttl * 1000))}"


async def guard(
    connection: asyncpg.Connection[Any], lease: Lease, *, schema: str = "tickwork"
) -> None:
    """Fence the current transaction of ``connection`` with ``lease``, or raise.

    Call it first inside the application's transaction (same database as the coordinator's
    tables). It locks the task row while the token is current and unexpired, so the lease cannot
    pass to another replica before this transaction ends, and bounds the transaction's idle time
    by the lease TTL.

    Raises:
        LeaseLostError: The token is no longer current: roll back, write nothing.
        RuntimeError: ``connection`` is not inside a transaction.
    """
    if not connection.is_in_transaction():
        raise RuntimeError("guard() must run inside a transaction (async with conn.transaction())")
    lease.check()
    await connection.execute(_timeout_sql(lease))
    row = await connection.fetchval(
        _guard_sql(lease, schema), lease.cluster, lease.task, lease.token, lease.replica
    )
    if row is None:
        lease._lose("superseded: the database refused its token")
        raise LeaseLostError(lease.task, lease.token, "the database refused its token")


async def guard_sqlalchemy(
    session: AsyncSession | AsyncConnection, lease: Lease, *, schema: str = "tickwork"
) -> None:
    """The same as :func:`guard` for a SQLAlchemy ``AsyncSession`` or ``AsyncConnection``.

    Call it as the first statement of the transaction whose writes must be fenced.

    Raises:
        LeaseLostError: The token is no longer current: roll back, write nothing.
    """
    from sqlalchemy import text

    lease.check()
    await session.execute(text(_timeout_sql(lease)))
    sql = _guard_sql(lease, schema)
    for index, name in enumerate(("cluster", "task", "token", "replica"), start=1):
        sql = sql.replace(f"${index}", f":{name}")
    result = await session.execute(
        text(sql),
        {
            "cluster": lease.cluster,
            "task": lease.task,
            "token": lease.token,
            "replica": lease.replica,
        },
    )
    if result.first() is None:
        lease._lose("superseded: the database refused its token")
        raise LeaseLostError(lease.task, lease.token, "the database refused its token")
