"""A durable store for one replica: the schedule in a local SQLite file (standard library only).

A single service keeps its due times, failure counts and operators' controls (a pause, a run-now
request) across restarts: an hourly task that ran ten minutes before a restart does not run again at
start. It is **single-host**: one process uses the file at a time. A second process on the same
file waits (one WARNING: the store is in use, with the holder's pid) and runs no task until the
first one exits; for several replicas on several hosts use PostgreSQL or Redis.

Times are the host's wall clock (``time.time()``): with one process there is no other clock to
disagree with, and due times survive restarts, which monotonic clocks do not. Each call is one
short local transaction (WAL journal), run on the event loop.

::

    from tickwork.coordination.sqlite import SQLiteCoordinator

    async with Scheduler(coordinator=SQLiteCoordinator("data/schedule.sqlite3")) as scheduler:
        scheduler.schedule_task("report", 3600, make_report)

or ``tickwork run app:setup --coordinator sqlite:///var/lib/app/schedule.sqlite3``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

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

__all__ = ["SQLiteCoordinator"]

_ALIVE_HEARTBEATS = 3.0
# How often a paused task is looked at again (seconds).
_PAUSED_RECHECK = 5.0
_MIN_WAIT = 0.05

# The version of the file's schema in ``meta``: _SCHEMA creates version 1, then each step of
# _MIGRATIONS moves one version forward, in one transaction at start().
_SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS task (
    cluster TEXT NOT NULL,
    task TEXT NOT NULL,
    interval_s REAL,
    next_due REAL NOT NULL,
    holder TEXT,
    fence INTEGER NOT NULL DEFAULT 0,
    lease_until REAL,
    runs INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    last_outcome TEXT,
    paused INTEGER NOT NULL DEFAULT 0,
    run_requested INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (cluster, task)
);
CREATE TABLE IF NOT EXISTS replica (
    cluster TEXT NOT NULL,
    replica TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    tasks TEXT NOT NULL,
    started REAL NOT NULL,
    seen REAL NOT NULL,
    PRIMARY KEY (cluster, replica)
);
INSERT OR IGNORE INTO meta VALUES ('version', '1');
INSERT OR IGNORE INTO meta VALUES ('fence', '0');
"""

_MIGRATIONS: dict[int, tuple[str, ...]] = {
    # Who paused a task and when (the pause and run-now flags were there from version 1).
    2: (
        "ALTER TABLE task ADD COLUMN paused_at REAL",
        "ALTER TABLE task ADD COLUMN paused_by TEXT",
    ),
}

# The control columns as Control's fields (after the task name), for SELECT lists.
_CONTROL_COLUMNS = "paused, paused_at, paused_by, run_requested"


class SQLiteCoordinator:
    """A coordinator on a local SQLite file: a durable schedule for a single replica.

    Args:
        path: The SQLite file (created, with its folder, when missing); a lock file
            ``PATH.lock`` beside it holds the one process allowed to use it.
        cluster: The cluster name (several apps may share one file).
        ttl: Lease time to live in seconds (a crash mid-run is detected after it).
        clock: Seconds since the epoch; ``time.time`` by default (tests pass a virtual clock).
        replica: This replica's id; ``host:pid:random`` by default.
    """

    backend = "sqlite"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        cluster: str = "default",
        ttl: float = 30.0,
        clock: Callable[[], float] | None = None,
        replica: str | None = None,
    ) -> None:
        if not isinstance(cluster, str) or not cluster:
            raise ValueError(f"cluster must be a non-empty string, got {cluster!r}")
        if isinstance(ttl, bool) or not isinstance(ttl, int | float):
            raise TypeError(f"ttl must be a number of seconds, got {ttl!r}")
        if not math.isfinite(ttl) or ttl <= 0:
            raise ValueError(f"ttl must be a finite number > 0, got {ttl!r}")
        self._path = Path(path)
        self._cluster = cluster
        self._ttl = float(ttl)
        self._clock = clock or time.time
        self._replica = replica or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._db: sqlite3.Connection | None = None
        self._lock: IO[str] | None = None
        self._decls: dict[str, TaskDecl] = {}

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
        return min(10.0, self._ttl)

    @property
    def path(self) -> Path:
        """The SQLite file."""
        return self._path

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise CoordinatorError(f"SQLite coordinator: {self._path} is not open (start() first)")
        return self._db

    async def start(self) -> None:
        """Take the file's lock (or fail: another process holds it), then create the schema."""
        if self._db is not None:
            return
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            # Held while the store is open; a local file, opened once per process start.
            lock = open(f"{self._path}.lock", "a+")  # noqa: SIM115, ASYNC230
        except OSError as exc:
            raise CoordinatorError(f"SQLite coordinator: cannot open {self._path}: {exc}") from exc
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.seek(0)
            holder = lock.read().strip() or "unknown"
            lock.close()
            raise CoordinatorError(
                f"SQLite coordinator: {self._path} is in use by another process (pid {holder}); "
                "it serves one process at a time, this one waits for it"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        try:
            db = sqlite3.connect(self._path, isolation_level=None, timeout=5.0)
        except sqlite3.Error as exc:
            lock.close()
            raise CoordinatorError(f"SQLite coordinator: {self._path}: {exc}") from exc
        self._db = db
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            self._write(_migrate)  # raises CoordinatorError (sqlite3.Error, a newer schema)
        except (sqlite3.Error, CoordinatorError) as exc:
            self._db = None
            db.close()
            lock.close()
            if isinstance(exc, CoordinatorError):
                raise
            raise CoordinatorError(f"SQLite coordinator: {self._path}: {exc}") from exc
        self._lock = lock

    def _write(self, body: Callable[[sqlite3.Connection, float], Any]) -> Any:
        db = self._connection()
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                result = body(db, self._clock())
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise CoordinatorError(f"SQLite coordinator: {self._path}: {exc}") from exc
        return result

    async def declare(self, tasks: Sequence[TaskDecl]) -> None:
        for decl in tasks:
            self._decls[decl.name] = decl

        def body(db: sqlite3.Connection, now: float) -> None:
            for decl in tasks:
                due = now if decl.run_immediately else now + decl.interval
                db.execute(
                    "INSERT INTO task (cluster, task, interval_s, next_due) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (cluster, task) DO UPDATE SET interval_s = excluded.interval_s",
                    (self._cluster, decl.name, decl.interval, due),
                )

        self._write(body)

    async def acquire(self, task: str) -> Grant | Busy:
        def body(db: sqlite3.Connection, now: float) -> Grant | Busy | None:
            row = db.execute(
                "SELECT next_due, holder, lease_until, failures, paused, paused_at, paused_by, "
                "run_requested FROM task WHERE cluster = ? AND task = ?",
                (self._cluster, task),
            ).fetchone()
            if row is None:
                return None
            due, holder, lease_until, failures, paused, paused_at, by, requested = row
            held = lease_until is not None and lease_until > now
            # A run-now request overrides the due time and a pause (one run, consumed below).
            if paused and not requested:
                return Busy(
                    wait=_PAUSED_RECHECK,
                    holder=holder if held else None,
                    paused=True,
                    paused_for=None if paused_at is None else now - paused_at,
                    paused_by=by,
                )
            if held:
                return Busy(wait=max(_MIN_WAIT, lease_until - now), holder=holder)
            if due > now and not requested:
                return Busy(wait=max(_MIN_WAIT, due - now))
            fence = int(db.execute("SELECT value FROM meta WHERE key = 'fence'").fetchone()[0]) + 1
            db.execute("UPDATE meta SET value = ? WHERE key = 'fence'", (str(fence),))
            db.execute(
                "UPDATE task SET holder = ?, fence = ?, lease_until = ?, run_requested = 0 "
                "WHERE cluster = ? AND task = ?",
                (self._replica, fence, now + self._ttl, self._cluster, task),
            )
            return Grant(
                task=task, token=fence, ttl=self._ttl, failures=failures, requested=bool(requested)
            )

        answer: Grant | Busy | None = self._write(body)
        if answer is None:
            decl = self._decls.get(task)
            if decl is not None:
                await self.declare([decl])
            return Busy(wait=_MIN_WAIT if decl is not None else 1.0)
        return answer

    async def renew(self, grant: Grant) -> float | None:
        def body(db: sqlite3.Connection, now: float) -> int:
            return db.execute(
                "UPDATE task SET lease_until = ? WHERE cluster = ? AND task = ? AND fence = ? "
                "AND holder = ? AND lease_until > ?",
                (now + self._ttl, self._cluster, grant.task, grant.token, self._replica, now),
            ).rowcount

        return self._ttl if self._write(body) else None

    async def release(
        self, grant: Grant, *, wait: float, failures: int, outcome: str
    ) -> float | None:
        def body(db: sqlite3.Connection, now: float) -> float | None:
            row = db.execute(
                "SELECT run_requested FROM task "
                "WHERE cluster = ? AND task = ? AND fence = ? AND holder = ?",
                (self._cluster, grant.task, grant.token, self._replica),
            ).fetchone()
            if row is None:
                return None
            # A run-now request came in during the run: due again at once.
            after = 0.0 if row[0] else wait
            db.execute(
                "UPDATE task SET holder = NULL, lease_until = NULL, next_due = ?, "
                "runs = runs + 1, failures = ?, last_outcome = ? WHERE cluster = ? AND task = ?",
                (now + max(0.0, after), failures, outcome, self._cluster, grant.task),
            )
            return after

        released: float | None = self._write(body)
        return released

    async def heartbeat(self, tasks: Sequence[str]) -> Sequence[Control]:
        host = self._replica.partition(":")[0]

        def body(db: sqlite3.Connection, now: float) -> list[Control]:
            db.execute(
                "INSERT INTO replica VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (cluster, replica) "
                "DO UPDATE SET seen = excluded.seen, tasks = excluded.tasks",
                (
                    self._cluster,
                    self._replica,
                    host,
                    os.getpid(),
                    json.dumps(list(tasks)),
                    now,
                    now,
                ),
            )
            rows = db.execute(
                f"SELECT task, {_CONTROL_COLUMNS} FROM task "
                "WHERE cluster = ? AND (paused OR run_requested) ORDER BY task",
                (self._cluster,),
            ).fetchall()
            return [_control(row, now) for row in rows]

        controls: list[Control] = self._write(body)
        return controls

    async def set_paused(self, task: str, paused: bool, *, by: str | None = None) -> Control | None:
        def body(db: sqlite3.Connection, now: float) -> Control | None:
            # Pausing a paused task keeps the first paused_at/paused_by (SET reads the old row).
            db.execute(
                "UPDATE task SET paused = ?1, "
                "paused_at = CASE WHEN NOT ?1 THEN NULL WHEN paused THEN paused_at ELSE ?2 END, "
                "paused_by = CASE WHEN NOT ?1 THEN NULL WHEN paused THEN paused_by ELSE ?3 END "
                "WHERE cluster = ?4 AND task = ?5",
                (int(paused), now, by, self._cluster, task),
            )
            return self._read_control(db, task, now)

        control: Control | None = self._write(body)
        return control

    async def request_run(self, task: str) -> Control | None:
        def body(db: sqlite3.Connection, now: float) -> Control | None:
            db.execute(
                "UPDATE task SET run_requested = 1 WHERE cluster = ? AND task = ?",
                (self._cluster, task),
            )
            return self._read_control(db, task, now)

        control: Control | None = self._write(body)
        return control

    def _read_control(self, db: sqlite3.Connection, task: str, now: float) -> Control | None:
        row = db.execute(
            f"SELECT task, {_CONTROL_COLUMNS} FROM task WHERE cluster = ? AND task = ?",
            (self._cluster, task),
        ).fetchone()
        return None if row is None else _control(row, now)

    async def cluster_view(self) -> ClusterView:
        db = self._connection()
        now = self._clock()
        alive_after = _ALIVE_HEARTBEATS * self.heartbeat_interval
        try:
            peer_rows = db.execute(
                "SELECT replica, host, pid, tasks, started, seen FROM replica WHERE cluster = ? "
                "ORDER BY replica",
                (self._cluster,),
            ).fetchall()
            task_rows = db.execute(
                "SELECT task, interval_s, holder, fence, lease_until, next_due, runs, failures, "
                f"last_outcome, {_CONTROL_COLUMNS} FROM task WHERE cluster = ? ORDER BY task",
                (self._cluster,),
            ).fetchall()
        except sqlite3.Error as exc:
            raise CoordinatorError(f"SQLite coordinator: {self._path}: {exc}") from exc
        peers = tuple(
            PeerView(
                replica=replica,
                host=host,
                pid=pid,
                started_ago=now - started,
                last_seen_ago=now - seen,
                alive=now - seen <= alive_after,
                tasks=tuple(json.loads(tasks)),
            )
            for replica, host, pid, tasks, started, seen in peer_rows
        )
        declared = {name for peer in peers if peer.alive for name in peer.tasks}
        views = tuple(
            TaskView(
                name=name,
                interval=interval,
                holder=holder if lease_until is not None and lease_until > now else None,
                token=fence,
                lease_expires_in=None if lease_until is None else lease_until - now,
                next_due_in=due - now,
                runs=runs,
                failures=failures,
                last_outcome=outcome,
                paused=bool(paused),
                orphaned=name not in declared,
                paused_for=None if paused_at is None else now - paused_at,
                paused_by=paused_by,
                run_requested=bool(requested),
            )
            for (
                name,
                interval,
                holder,
                fence,
                lease_until,
                due,
                runs,
                failures,
                outcome,
                paused,
                paused_at,
                paused_by,
                requested,
            ) in task_rows
        )
        return ClusterView(self.backend, self._cluster, self._replica, peers, views)

    async def forget(self, task: str) -> bool:
        def body(db: sqlite3.Connection, now: float) -> int:
            return db.execute(
                "DELETE FROM task WHERE cluster = ? AND task = ?", (self._cluster, task)
            ).rowcount

        return bool(self._write(body))

    async def close(self) -> None:
        db, self._db = self._db, None
        lock, self._lock = self._lock, None
        if db is not None:
            with contextlib.suppress(sqlite3.Error):  # leaving is best effort
                db.execute(
                    "DELETE FROM replica WHERE cluster = ? AND replica = ?",
                    (self._cluster, self._replica),
                )
            db.close()
        if lock is not None:
            lock.close()  # releases the flock


def _migrate(db: sqlite3.Connection, now: float) -> None:
    version = int(db.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()[0])
    if version > _SCHEMA_VERSION:
        raise CoordinatorError(
            f"SQLite coordinator: the file's schema is at version {version}, newer than this "
            f"tickwork's {_SCHEMA_VERSION}: upgrade tickwork"
        )
    for step in range(version + 1, _SCHEMA_VERSION + 1):
        for statement in _MIGRATIONS[step]:
            db.execute(statement)
    db.execute("UPDATE meta SET value = ? WHERE key = 'version'", (str(_SCHEMA_VERSION),))


def _control(row: Sequence[Any], now: float) -> Control:
    task, paused, paused_at, paused_by, requested = row
    return Control(
        task=task,
        paused=bool(paused),
        paused_for=None if paused_at is None else now - paused_at,
        paused_by=paused_by,
        run_requested=bool(requested),
    )
