"""``SimulatedCluster``: several coordinated schedulers in one process, with faults, for tests.

Each replica is a :class:`~tickwork.Scheduler` with its own
:class:`~tickwork.coordination.InProcessCoordinator` on one shared
:class:`~tickwork.coordination.MemoryStore`, all on the running loop, so on
:class:`tickwork.testing.VirtualTimeLoop` hours of cluster life take a moment. Faults:

* :meth:`SimulatedCluster.crash`: the replica stops at once and says nothing to the store (as
  ``kill -9``): its leases expire on their own;
* :meth:`SimulatedCluster.partition`: its calls to the store fail until healed; its own clock
  keeps running, so a holder cut off mid-run loses its lease at its local deadline;
* :meth:`SimulatedCluster.skew`: its lease clock runs at another rate (a replica whose clock is
  slow believes in its lease longer than the store does; fencing must still refuse its writes).

Bodies write through :meth:`SimulatedCluster.fenced_write`, which the store accepts only under
the current, unexpired token: the simulated version of a fenced database write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tickwork._lease import current_lease
from tickwork._scheduler import Scheduler
from tickwork.coordination._memory import InProcessCoordinator, MemoryStore

__all__ = ["SimulatedCluster", "SimulatedReplica"]


@dataclass
class SimulatedReplica:
    """One replica of a :class:`SimulatedCluster`."""

    id: str
    scheduler: Scheduler
    coordinator: InProcessCoordinator
    alive: bool = True


@dataclass
class _Registration:
    name: str
    interval: float
    task: Callable[[], Any]
    options: dict[str, Any] = field(default_factory=dict)
    cron: str | None = None  # a calendar task's expression (``interval`` unused)

    def add_to(self, scheduler: Scheduler) -> None:
        if self.cron is None:
            scheduler.schedule_task(self.name, self.interval, self.task, **self.options)
        else:
            scheduler.schedule_cron(self.name, self.cron, self.task, **self.options)


class SimulatedCluster:
    """Replicas of one cluster sharing an in-process store, on the running event loop.

    Create it inside the running loop (virtual time: ``tickwork.testing.run``).

    Args:
        size: Replicas to start with.
        ttl: The lease TTL of every replica (seconds).
        heartbeat: The replicas' heartbeat period (seconds).
        cluster: The cluster name.

    Example (on virtual time)::

        async def scenario() -> None:
            cluster = SimulatedCluster(3, ttl=10)
            cluster.schedule_task("sync", 60, sync)
            await asyncio.sleep(600)
            await cluster.crash(0)
            await asyncio.sleep(600)
            await cluster.shutdown()

        tickwork.testing.run(scenario())
    """

    def __init__(
        self, size: int = 3, *, ttl: float = 30.0, heartbeat: float = 10.0, cluster: str = "sim"
    ) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"size must be an int >= 1, got {size!r}")
        self.store = MemoryStore(heartbeat=heartbeat)
        self.ttl = ttl
        self.cluster = cluster
        self.replicas: list[SimulatedReplica] = []
        self._tasks: list[_Registration] = []
        self._started = 0
        self.writes: list[tuple[str, int, str]] = []
        self.refused: list[tuple[str, int, str]] = []
        for _ in range(size):
            self.add_replica()

    def add_replica(self) -> SimulatedReplica:
        """Start a new replica (with a new id) running every task scheduled so far."""
        self._started += 1
        replica_id = f"replica-{self._started}"
        coordinator = InProcessCoordinator(
            self.store, cluster=self.cluster, ttl=self.ttl, replica=replica_id
        )
        scheduler = Scheduler(coordinator=coordinator)
        assert scheduler._coordination is not None
        # Every replica's lease clock can be skewed later, also in the middle of a run.
        scheduler._coordination.lease_clock = _SkewedClock(asyncio.get_running_loop().time)
        replica = SimulatedReplica(replica_id, scheduler, coordinator)
        self.replicas.append(replica)
        for registration in self._tasks:
            registration.add_to(replica.scheduler)
        return replica

    @property
    def alive(self) -> list[SimulatedReplica]:
        """The replicas not crashed or shut down."""
        return [r for r in self.replicas if r.alive]

    def schedule_task(
        self, name: str, interval: float, task: Callable[[], Any], **options: Any
    ) -> None:
        """Schedule ``task`` on every live replica, and on replicas added later."""
        self._tasks.append(_Registration(name, interval, task, options))
        for replica in self.alive:
            replica.scheduler.schedule_task(name, interval, task, **options)

    def schedule_cron(
        self, name: str, expression: str, task: Callable[[], Any], **options: Any
    ) -> None:
        """Schedule a calendar task on every live replica, and on replicas added later."""
        registration = _Registration(name, 0.0, task, options, cron=expression)
        self._tasks.append(registration)
        for replica in self.alive:
            registration.add_to(replica.scheduler)

    def fenced_write(self) -> bool:
        """From a body: write under the run's lease. Return whether the store accepted it.

        Accepted only while the lease's token is the task's current one and unexpired on the
        store's clock; either way the attempt is recorded (``writes`` or ``refused``).
        """
        lease = current_lease()
        if lease is None:
            raise RuntimeError("fenced_write() must be called from a coordinated run")
        row = self.store.rows.get((self.cluster, lease.task))
        now = self.store.now()
        accepted = (
            row is not None
            and row.fence == lease.token
            and row.holder == lease.replica
            and row.lease_until is not None
            and row.lease_until > now
        )
        entry = (lease.task, lease.token, lease.replica)
        (self.writes if accepted else self.refused).append(entry)
        return accepted

    def _replica(self, index: int) -> SimulatedReplica:
        replica = self.replicas[index]
        if not replica.alive:
            raise ValueError(f"replica {replica.id} is not alive")
        return replica

    async def crash(self, index: int) -> None:
        """Stop replica ``index`` at once, telling the store nothing (its leases expire)."""
        replica = self._replica(index)
        replica.alive = False
        self.store.partition(replica.id)
        await replica.scheduler.shutdown(grace=0)

    def partition(self, index: int, cut: bool = True) -> None:
        """Cut (or heal) replica ``index``'s access to the store."""
        self.store.partition(self.replicas[index].id, cut)

    def skew(self, index: int, rate: float) -> None:
        """Run replica ``index``'s lease clock at ``rate`` times the loop's (1.0: no skew)."""
        coordination = self.replicas[index].scheduler._coordination
        assert coordination is not None
        clock = coordination.lease_clock
        assert isinstance(clock, _SkewedClock)
        clock.set_rate(rate)

    async def shutdown(self, grace: float = 5.0) -> None:
        """Shut every live replica down cleanly."""
        for replica in self.alive:
            replica.alive = False
            await replica.scheduler.shutdown(grace)


class _SkewedClock:
    """A clock running at ``rate`` times its base clock; the rate may change at any time."""

    def __init__(self, base: Callable[[], float]) -> None:
        self._base = base
        self._origin_base = self._origin = base()
        self._rate = 1.0

    def set_rate(self, rate: float) -> None:
        self._origin, self._origin_base = self(), self._base()
        self._rate = rate

    def __call__(self) -> float:
        return self._origin + (self._base() - self._origin_base) * self._rate
