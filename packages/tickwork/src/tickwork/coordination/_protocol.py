"""The coordination protocol: what a replica asks of the store that keeps the cluster's schedule.

A coordinator keeps one row per task of a cluster, on the store's own clock: its absolute due
time, the current lease (holder, fencing token, expiry), the run count, the consecutive
failures, the last outcome, a paused flag and a run-now request. Replicas only ever receive
durations ("due in 12.5 s", "lease valid for 30 s"), never timestamps, so their clocks do not
matter. Every call is one statement or one script on the store (safe behind a
transaction-pooling connection pooler); a call that cannot reach the store raises
:class:`CoordinatorError`.

Lifecycle of one singleton run, as the runner drives it::

    declare(tasks)            once per task (idempotent; an existing due time is never moved)
    acquire(task) -> Busy     not due, held, or paused: ask again in Busy.wait seconds
    acquire(task) -> Grant    due and free: the run starts, with Grant.token
      renew(grant)            every ttl/3 while the run lasts; None = superseded
    release(grant, wait=..)   the run ended: due again ``wait`` seconds from now (store clock),
                              or at once when a run-now request came in meanwhile

Operators' instructions (``Scheduler.pause_task``/``resume_task``/``trigger``) are kept in the
row too, so every replica obeys them and they outlive restarts::

    set_paused(task, True, by=..)   acquire answers Busy(paused=True) until set_paused(False)
    request_run(task)               the next acquire grants as soon as no lease is live, even
                                    when the task is not due or is paused (one run; the request
                                    is consumed by the grant)
    heartbeat(tasks) -> controls    the cluster's paused and run-requested tasks, so replicas
                                    that are waiting mirror them within a heartbeat
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = [
    "Busy",
    "ClusterView",
    "Control",
    "Coordinator",
    "CoordinatorError",
    "Grant",
    "PeerView",
    "TaskDecl",
    "TaskView",
]


class CoordinatorError(Exception):
    """The coordinator's store could not be reached or refused a call.

    The runner treats it as "not the holder": the singleton task does not run, and it asks
    again later. ``code`` is ``"coordinator_unavailable"``.
    """

    code = "coordinator_unavailable"


@dataclass(frozen=True, slots=True)
class TaskDecl:
    """A task as a replica declares it.

    Attributes:
        name: The task name.
        interval: Seconds between a completion and the next start.
        run_immediately: For a task with no row yet: due at once (True) or after ``interval``.
    """

    name: str
    interval: float
    run_immediately: bool = True


@dataclass(frozen=True, slots=True)
class Grant:
    """A lease granted for one run.

    Attributes:
        task: The task name.
        token: The fencing token, strictly greater than every earlier grant of the task.
        ttl: Seconds the lease is valid, counted from when the request was sent.
        failures: The task's consecutive failures so far, cluster-wide (backoff survives a
            failover).
        requested: The grant answers a run-now request (``request_run``), not a due time: a
            calendar task then runs outside its instants.
    """

    task: str
    token: int
    ttl: float
    failures: int
    requested: bool = False


@dataclass(frozen=True, slots=True)
class Busy:
    """No lease this time.

    Attributes:
        wait: Seconds until asking again makes sense (the due time, or the lease's expiry).
        holder: The replica holding the lease, if any.
        paused: True when the task is paused cluster-wide.
        paused_for: Seconds since it was paused (store clock), when paused.
        paused_by: Who paused it (the words given to ``set_paused``), when paused.
    """

    wait: float
    holder: str | None = None
    paused: bool = False
    paused_for: float | None = None
    paused_by: str | None = None


@dataclass(frozen=True, slots=True)
class Control:
    """An operator's standing instruction for a task, as the store keeps it.

    Attributes:
        task: The task name.
        paused: True while the task is paused cluster-wide.
        paused_for: Seconds since it was paused (store clock), or None when not paused.
        paused_by: Who paused it (free text such as ``"127.0.0.1 via HTTP"``), or None.
        run_requested: A run-now request waits for the next grant.
    """

    task: str
    paused: bool
    paused_for: float | None = None
    paused_by: str | None = None
    run_requested: bool = False


@dataclass(frozen=True, slots=True)
class PeerView:
    """A replica of the cluster, as the store last saw it."""

    replica: str
    host: str
    pid: int
    started_ago: float
    last_seen_ago: float
    alive: bool
    tasks: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TaskView:
    """A task row of the cluster. Durations are seconds from now on the store's clock."""

    name: str
    interval: float | None
    holder: str | None
    token: int
    lease_expires_in: float | None
    next_due_in: float
    runs: int
    failures: int
    last_outcome: str | None
    paused: bool
    orphaned: bool
    paused_for: float | None = None
    paused_by: str | None = None
    run_requested: bool = False


@dataclass(frozen=True, slots=True)
class ClusterView:
    """What the cluster looks like from one replica."""

    backend: str
    cluster: str
    replica: str
    peers: tuple[PeerView, ...]
    tasks: tuple[TaskView, ...]


@runtime_checkable
class Coordinator(Protocol):
    """The store a cluster of schedulers shares. Implementations: in-process, PostgreSQL, Redis.

    All durations are seconds. Every method may raise :class:`CoordinatorError`.
    """

    @property
    def backend(self) -> str:
        """A short name for status pages: ``"memory"``, ``"postgresql"``, ``"redis"``."""
        ...

    @property
    def cluster(self) -> str:
        """The cluster name: replicas of one cluster share the schedule."""
        ...

    @property
    def replica(self) -> str:
        """This replica's id, unique per process start."""
        ...

    @property
    def ttl(self) -> float:
        """The lease TTL in seconds."""
        ...

    @property
    def heartbeat_interval(self) -> float:
        """Seconds between this replica's heartbeats; a peer silent for three is gone."""
        ...

    async def start(self) -> None:
        """Connect and bring the store's schema up to date (once per cluster, under a lock)."""
        ...

    async def declare(self, tasks: Sequence[TaskDecl]) -> None:
        """Create rows for new tasks and update intervals; never move an existing due time."""
        ...

    async def acquire(self, task: str) -> Grant | Busy:
        """Grant a lease if the task is due, not paused and not held; else say how long to wait."""
        ...

    async def renew(self, grant: Grant) -> float | None:
        """Extend the lease; return its new TTL, or None when it is no longer this grant's."""
        ...

    async def release(
        self, grant: Grant, *, wait: float, failures: int, outcome: str
    ) -> float | None:
        """End the run: due again ``wait`` s from now. Return that, or None if superseded."""
        ...

    async def heartbeat(self, tasks: Sequence[str]) -> Sequence[Control]:
        """Record this replica as alive, declaring ``tasks``.

        Returns the controls of the cluster's tasks that are paused or have a run requested
        (any task of the cluster, declared by this replica or not), in one round trip.
        """
        ...

    async def set_paused(self, task: str, paused: bool, *, by: str | None = None) -> Control | None:
        """Pause (or resume) ``task`` cluster-wide; None when the store has no row for it.

        Pausing a paused task keeps its first ``paused_for``/``paused_by``; resuming clears
        them and leaves the due time as it was (a task whose due time passed while paused runs
        once at the next acquire). A run in progress is not interrupted.
        """
        ...

    async def request_run(self, task: str) -> Control | None:
        """Ask for one run as soon as no lease is live; None when the store has no row for it.

        The next ``acquire`` grants even when the task is not due or is paused, and the grant
        consumes the request; a release while the request waits is due again at once.
        """
        ...

    async def cluster_view(self) -> ClusterView:
        """The peers and task rows of the cluster."""
        ...

    async def forget(self, task: str) -> bool:
        """Remove a task's row (an orphan no replica declares); True if there was one."""
        ...

    async def close(self) -> None:
        """Leave the cluster (drop this replica's row) and release connections."""
        ...
