"""The model cluster on virtual time: faults drawn by Hypothesis, the invariants asserted.

Three replicas (``tickwork.testing.SimulatedCluster``) run one singleton task; a driver crashes,
partitions and skews the clocks of replicas, one fault at a time. From every committed (fenced)
write: runs never overlap, tokens rise, the next start is at least the previous end plus the
interval when no fault intervened, and no gap is longer than interval + body + TTL + 1 s.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tickwork import SchedulerError, current_lease
from tickwork.testing import SimulatedCluster, run

INTERVAL = 5.0
TTL = 3.0
BODY = 1.0
SPAN = 1500.0


@dataclass(frozen=True)
class Fault:
    at: float
    kind: str
    replica: int
    seconds: float
    rate: float


faults = st.builds(
    Fault,
    at=st.floats(0.0, 60.0),
    kind=st.sampled_from(["crash", "partition", "skew"]),
    replica=st.integers(0, 2),
    seconds=st.floats(0.5, 3 * TTL),
    rate=st.sampled_from([0.5, 0.8, 1.25, 2.0]),
)


@dataclass(frozen=True)
class Run:
    token: int
    replica: str
    start: float
    end: float


def _audited(cluster: SimulatedCluster, committed: list[Run]) -> Callable[[], Awaitable[None]]:
    """The task of the model: a run of BODY seconds whose fenced write records it."""

    async def job() -> None:
        lease = current_lease()
        assert lease is not None
        start = cluster.store.now()
        await asyncio.sleep(BODY)
        if cluster.fenced_write():
            committed.append(Run(lease.token, lease.replica, start, cluster.store.now()))

    return job


async def _scenario(plan: list[Fault]) -> tuple[list[Run], list[tuple[float, float]], int]:
    cluster = SimulatedCluster(3, ttl=TTL, heartbeat=1.0)
    committed: list[Run] = []

    cluster.schedule_task("job", INTERVAL, _audited(cluster, committed))
    windows: list[tuple[float, float]] = []
    loop = asyncio.get_running_loop()
    for fault in plan:
        await asyncio.sleep(fault.at)
        alive = cluster.alive
        index = cluster.replicas.index(alive[fault.replica % len(alive)])
        began = loop.time()
        if fault.kind == "crash":
            await cluster.crash(index)
            await asyncio.sleep(fault.seconds)
            cluster.add_replica()
        elif fault.kind == "partition":
            cluster.partition(index)
            await asyncio.sleep(fault.seconds)
            cluster.partition(index, cut=False)
        else:
            cluster.skew(index, fault.rate)
            await asyncio.sleep(fault.seconds)
            cluster.skew(index, 1.0)
        # The fault's effects last until the holder's lease has surely expired.
        windows.append((began, loop.time() + TTL + BODY))
    await asyncio.sleep(max(0.0, SPAN - loop.time()))
    await cluster.shutdown()
    return committed, windows, len(cluster.refused)


def _touches(windows: list[tuple[float, float]], start: float, end: float) -> bool:
    return any(begin <= end and start <= until for begin, until in windows)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=st.lists(faults, max_size=10))
def test_faults_never_break_the_invariants(plan: list[Fault]) -> None:
    """Under crashes, partitions and clock skew: no overlap, rising tokens, bounded gaps."""
    committed, windows, _ = run(_scenario(plan))
    assert len(committed) >= SPAN / (INTERVAL + BODY + TTL + 1) * 0.5
    for earlier, later in itertools.pairwise(committed):
        assert later.token > earlier.token
        assert later.start >= earlier.end  # never two holders' runs at once
        gap = later.start - earlier.end
        assert gap <= INTERVAL + BODY + TTL + 1.0 + 0.1, (earlier, later)
        if not _touches(windows, earlier.start, later.start):
            assert gap >= INTERVAL - 1e-6, (earlier, later)


def test_a_partitioned_holder_with_a_slow_clock_is_refused_by_the_fence() -> None:
    """A holder cut off whose lease clock runs slow keeps going, but its write is refused."""

    async def scenario() -> tuple[list[str], list[str]]:
        cluster = SimulatedCluster(2, ttl=TTL, heartbeat=1.0)
        accepted: list[str] = []
        first = True

        async def job() -> None:
            nonlocal first
            lease = current_lease()
            assert lease is not None
            if first:
                first = False
                cluster.partition(0)  # cut off mid-run: its renewals fail from now on
                cluster.skew(0, 0.25)  # its own deadline passes four times later
                await asyncio.sleep(TTL * 2)  # past the store's expiry, before its own
            if cluster.fenced_write():
                accepted.append(lease.replica)

        cluster.replicas[0].scheduler.schedule_task("job", INTERVAL, job)
        await asyncio.sleep(0.5)
        cluster.replicas[1].scheduler.schedule_task("job", INTERVAL, job)
        await asyncio.sleep(60)
        await cluster.shutdown()
        return [entry[2] for entry in cluster.refused], accepted

    refused, accepted = run(scenario())
    assert refused == ["replica-1"]
    assert len(accepted) >= 5
    assert set(accepted) == {"replica-2"}


@dataclass(frozen=True)
class Action:
    at: float
    kind: str
    replica: int


actions = st.builds(
    Action,
    at=st.floats(0.0, 40.0),
    kind=st.sampled_from(["pause", "resume", "trigger", "crash", "partition"]),
    replica=st.integers(0, 2),
)


async def _operated(plan: list[Action]) -> tuple[list[Run], list[tuple[float, float]], list[float]]:
    """Operators pause, resume and trigger through random replicas amid crashes and cuts."""
    cluster = SimulatedCluster(3, ttl=TTL, heartbeat=1.0)
    committed: list[Run] = []

    cluster.schedule_task("job", INTERVAL, _audited(cluster, committed))
    loop = asyncio.get_running_loop()
    paused: list[tuple[float, float]] = []  # (pause stored, resume asked) on the store's clock
    paused_since: float | None = None
    triggers: list[float] = []
    for action in plan:
        await asyncio.sleep(action.at)
        alive = cluster.alive
        replica = alive[action.replica % len(alive)]
        index = cluster.replicas.index(replica)
        if action.kind in ("crash", "partition"):
            if action.kind == "crash":
                await cluster.crash(index)
                await asyncio.sleep(TTL)
                cluster.add_replica()
            else:
                cluster.partition(index)
                await asyncio.sleep(TTL)
                cluster.partition(index, cut=False)
            continue
        try:
            if action.kind == "pause":
                await replica.scheduler.pause_task("job", by="model")
                if paused_since is None:
                    paused_since = loop.time()
            elif action.kind == "resume":
                asked = loop.time()
                await replica.scheduler.resume_task("job")
                if paused_since is not None:
                    paused.append((paused_since, asked))
                    paused_since = None
            else:
                triggers.append(loop.time())
                await replica.scheduler.trigger("job")
        except SchedulerError as exc:
            if exc.code != "coordinator_unavailable":  # a partitioned replica refuses; else a bug
                raise
    if paused_since is not None:
        paused.append((paused_since, float("inf")))
    await asyncio.sleep(30.0)
    await cluster.shutdown()
    return committed, paused, triggers


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=st.lists(actions, max_size=12))
def test_operator_actions_amid_faults_keep_pauses_and_never_overlap(plan: list[Action]) -> None:
    """No run starts while paused but for run-now requests (one each); never two at once."""
    committed, paused, triggers = run(_operated(plan))
    for earlier, later in itertools.pairwise(committed):
        assert later.token > earlier.token
        assert later.start >= earlier.end
    for begin, end in paused:
        started = [r.start for r in committed if begin + 1e-6 < r.start < end]
        asked = [t for t in triggers if t < end]
        assert len(started) <= len(asked), (begin, end, started, asked)
    if not paused or paused[-1][1] != float("inf"):  # not paused at the end: it runs again
        resumed = paused[-1][1] if paused else 0.0
        assert any(resumed <= r.start <= resumed + INTERVAL + BODY + TTL + 5 for r in committed)
