"""An in-process coordinator: the protocol's semantics on a dict, for tests and simulations.

Several schedulers in one process share one :class:`MemoryStore` (the "database") through
their own :class:`InProcessCoordinator` (their "connection"). The store has its own clock
(by default the running loop's, so it follows virtual time) and fault switches per replica:
:meth:`MemoryStore.partition` makes every call of that replica raise :class:`CoordinatorError`.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

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

__all__ = ["InProcessCoordinator", "MemoryStore"]

# A replica not seen for this many heartbeats counts as gone.
_ALIVE_HEARTBEATS = 3.0
# How often a paused task is looked at again (seconds).
_PAUSED_RECHECK = 5.0
# Floor of a Busy wait, so a replica never spins on the store.
_MIN_WAIT = 0.05


@dataclass
class _Row:
    interval: float
    next_due: float
    holder: str | None = None
    fence: int = 0
    lease_until: float | None = None
    runs: int = 0
    failures: int = 0
    last_outcome: str | None = None
    paused: bool = False
    paused_at: float | None = None
    paused_by: str | None = None
    run_requested: bool = False


@dataclass
class _Peer:
    host: str
    pid: int
    started: float
    seen: float
    tasks: tuple[str, ...] = ()


@dataclass
class MemoryStore:
    """The shared state of an in-process cluster: task rows, peers, the fence counter, a clock.

    Args:
        clock: Seconds on the store's clock; the running loop's ``time()`` by default.
        heartbeat: The peers' heartbeat period, to tell live peers from gone ones.
    """

    clock: Callable[[], float] | None = None
    heartbeat: float = 10.0
    rows: dict[tuple[str, str], _Row] = field(default_factory=dict)
    peers: dict[tuple[str, str], _Peer] = field(default_factory=dict)
    fence: int = 0
    partitioned: set[str] = field(default_factory=set)
    calls: int = 0

    def now(self) -> float:
        """The store's clock."""
        if self.clock is not None:
            return self.clock()
        return asyncio.get_running_loop().time()

    def partition(self, replica: str, cut: bool = True) -> None:
        """Cut (or restore) ``replica``'s access to the store."""
        if cut:
            self.partitioned.add(replica)
        else:
            self.partitioned.discard(replica)


class InProcessCoordinator:
    """One replica's handle on a :class:`MemoryStore`: the reference implementation.

    Args:
        store: The store shared by the cluster's replicas (a new one by default).
        cluster: The cluster name.
        ttl: The lease TTL in seconds.
        replica: This replica's id; ``host:pid:random`` by default.
    """

    backend = "memory"

    def __init__(
        self,
        store: MemoryStore | None = None,
        *,
        cluster: str = "default",
        ttl: float = 30.0,
        replica: str | None = None,
    ) -> None:
        self.store = store if store is not None else MemoryStore()
        self._cluster = cluster
        self._ttl = ttl
        self._replica = replica or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

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
        return self.store.heartbeat

    def _enter(self) -> float:
        store = self.store
        store.calls += 1
        if self._replica in store.partitioned:
            raise CoordinatorError(f"replica {self._replica} cannot reach the in-process store")
        return store.now()

    async def start(self) -> None:
        self._enter()

    async def declare(self, tasks: Sequence[TaskDecl]) -> None:
        now = self._enter()
        for decl in tasks:
            row = self.store.rows.get((self._cluster, decl.name))
            if row is None:
                due = now if decl.run_immediately else now + decl.interval
                self.store.rows[(self._cluster, decl.name)] = _Row(decl.interval, due)
            else:
                row.interval = decl.interval

    async def acquire(self, task: str) -> Grant | Busy:
        now = self._enter()
        row = self.store.rows.get((self._cluster, task))
        if row is None:
            return Busy(wait=1.0)
        held = row.lease_until is not None and row.lease_until > now
        if row.paused and not row.run_requested:
            return Busy(
                wait=_PAUSED_RECHECK,
                holder=row.holder if held else None,
                paused=True,
                paused_for=None if row.paused_at is None else now - row.paused_at,
                paused_by=row.paused_by,
            )
        due = row.run_requested or row.next_due <= now
        if held or not due:
            until = (
                max(row.next_due, row.lease_until or row.next_due) if not held else row.lease_until
            )
            assert until is not None
            return Busy(wait=max(_MIN_WAIT, until - now), holder=row.holder if held else None)
        self.store.fence += 1
        row.fence = self.store.fence
        row.holder = self._replica
        row.lease_until = now + self._ttl
        requested, row.run_requested = row.run_requested, False
        return Grant(
            task=task, token=row.fence, ttl=self._ttl, failures=row.failures, requested=requested
        )

    def _mine(self, grant: Grant, now: float) -> _Row | None:
        row = self.store.rows.get((self._cluster, grant.task))
        if row is None or row.fence != grant.token or row.holder != self._replica:
            return None
        if row.lease_until is None or row.lease_until <= now:
            return None
        return row

    async def renew(self, grant: Grant) -> float | None:
        now = self._enter()
        row = self._mine(grant, now)
        if row is None:
            return None
        row.lease_until = now + self._ttl
        return self._ttl

    async def release(
        self, grant: Grant, *, wait: float, failures: int, outcome: str
    ) -> float | None:
        now = self._enter()
        row = self.store.rows.get((self._cluster, grant.task))
        # A release after expiry still counts when nobody took over: the run did end.
        if row is None or row.fence != grant.token or row.holder != self._replica:
            return None
        if row.run_requested:
            wait = 0.0  # a run-now request came in during the run: due again at once
        row.holder = None
        row.lease_until = None
        row.next_due = now + wait
        row.runs += 1
        row.failures = failures
        row.last_outcome = outcome
        return wait

    def fenced_write_allowed(self, task: str, token: int) -> bool:
        """Whether a write under ``token`` would be accepted now (the fencing check)."""
        now = self.store.now()
        row = self.store.rows.get((self._cluster, task))
        return (
            row is not None
            and row.fence == token
            and row.holder == self._replica
            and row.lease_until is not None
            and row.lease_until > now
        )

    async def heartbeat(self, tasks: Sequence[str]) -> Sequence[Control]:
        now = self._enter()
        key = (self._cluster, self._replica)
        peer = self.store.peers.get(key)
        if peer is None:
            host, _, rest = self._replica.partition(":")
            pid = int(rest.split(":")[0]) if rest.split(":")[0].isdigit() else 0
            peer = self.store.peers[key] = _Peer(host=host, pid=pid, started=now, seen=now)
        peer.seen = now
        peer.tasks = tuple(tasks)
        return [
            _control(name, row, now)
            for (cluster, name), row in sorted(self.store.rows.items())
            if cluster == self._cluster and (row.paused or row.run_requested)
        ]

    async def set_paused(self, task: str, paused: bool, *, by: str | None = None) -> Control | None:
        now = self._enter()
        row = self.store.rows.get((self._cluster, task))
        if row is None:
            return None
        if paused and not row.paused:
            row.paused, row.paused_at, row.paused_by = True, now, by
        elif not paused:
            row.paused, row.paused_at, row.paused_by = False, None, None
        return _control(task, row, now)

    async def request_run(self, task: str) -> Control | None:
        now = self._enter()
        row = self.store.rows.get((self._cluster, task))
        if row is None:
            return None
        row.run_requested = True
        return _control(task, row, now)

    async def cluster_view(self) -> ClusterView:
        now = self._enter()
        store = self.store
        peers = tuple(
            PeerView(
                replica=replica,
                host=peer.host,
                pid=peer.pid,
                started_ago=now - peer.started,
                last_seen_ago=now - peer.seen,
                alive=now - peer.seen <= _ALIVE_HEARTBEATS * store.heartbeat,
                tasks=peer.tasks,
            )
            for (cluster, replica), peer in sorted(store.peers.items())
            if cluster == self._cluster
        )
        declared = {name for peer in peers if peer.alive for name in peer.tasks}
        tasks = tuple(
            TaskView(
                name=name,
                interval=row.interval,
                holder=row.holder
                if row.lease_until is not None and row.lease_until > now
                else None,
                token=row.fence,
                lease_expires_in=None if row.lease_until is None else row.lease_until - now,
                next_due_in=row.next_due - now,
                runs=row.runs,
                failures=row.failures,
                last_outcome=row.last_outcome,
                paused=row.paused,
                orphaned=name not in declared,
                paused_for=None if row.paused_at is None else now - row.paused_at,
                paused_by=row.paused_by,
                run_requested=row.run_requested,
            )
            for (cluster, name), row in sorted(store.rows.items())
            if cluster == self._cluster
        )
        return ClusterView(self.backend, self._cluster, self._replica, peers, tasks)

    async def forget(self, task: str) -> bool:
        self._enter()
        return self.store.rows.pop((self._cluster, task), None) is not None

    async def close(self) -> None:
        self._enter()  # a partitioned (or crashed) replica cannot say goodbye
        self.store.peers.pop((self._cluster, self._replica), None)


def _control(task: str, row: _Row, now: float) -> Control:
    return Control(
        task=task,
        paused=row.paused,
        paused_for=None if row.paused_at is None else now - row.paused_at,
        paused_by=row.paused_by,
        run_requested=row.run_requested,
    )
