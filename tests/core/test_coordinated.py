"""Singleton tasks of schedulers sharing an in-process coordinator, on virtual time."""

from __future__ import annotations

import asyncio
import itertools
import logging

import pytest

from tickwork import LeaseLostError, Scheduler, SchedulerError, current_lease
from tickwork.coordination import InProcessCoordinator, MemoryStore
from tickwork.testing import wait_for_runs, wait_until


def now() -> float:
    return asyncio.get_running_loop().time()


def replicas(count: int, ttl: float = 2.0) -> list[InProcessCoordinator]:
    store = MemoryStore(heartbeat=1.0)
    return [
        InProcessCoordinator(store, cluster="c", ttl=ttl, replica=f"r{i}") for i in range(count)
    ]


async def test_a_singleton_runs_once_per_interval_across_replicas() -> None:
    """Three replicas, one task at 10 s: starts 10 s after each completion, never overlapping."""
    runs: list[tuple[str, float, float]] = []

    def body(replica: str):  # type: ignore[no-untyped-def]
        async def job() -> None:
            started = now()
            await asyncio.sleep(1.0)
            runs.append((replica, started, now()))

        return job

    coordinators = replicas(3)
    schedulers = [Scheduler(coordinator=c) for c in coordinators]
    for c, s in zip(coordinators, schedulers, strict=True):
        s.schedule_task("sync", 10.0, body(c.replica))
    await wait_until(lambda: len(runs) >= 6, timeout=120)
    for s in schedulers:
        await s.shutdown()
    for (_, _, end), (_, start, _) in itertools.pairwise(runs):
        assert start >= end + 10.0
        assert start <= end + 10.0 + 0.1
    assert runs[0][1] == 0.0


async def test_each_run_carries_a_rising_token() -> None:
    """current_lease() in the body gives the run's lease; tokens rise; None outside a run."""
    tokens: list[int] = []
    plain_tokens: list[int | None] = []

    async def job() -> None:
        lease = current_lease()
        assert lease is not None
        lease.check()
        tokens.append(lease.token)

    def plain() -> None:
        lease = current_lease()
        plain_tokens.append(None if lease is None else lease.token)

    (coordinator,) = replicas(1)
    async with Scheduler(coordinator=coordinator) as scheduler:
        scheduler.schedule_task("a", 1.0, job)
        scheduler.schedule_task("free", 1.0, job, singleton=False)
        await wait_for_runs(scheduler, "a", 3)
        assert scheduler.task_status("free").failures >= 1  # no lease: the assert fails
    assert current_lease() is None
    assert tokens == sorted(tokens)
    assert len(set(tokens)) == len(tokens)
    async with Scheduler(coordinator=replicas(1)[0]) as scheduler:
        scheduler.schedule_task("p", 1.0, plain)
        await wait_until(lambda: len(plain_tokens) >= 1, timeout=10)
    assert plain_tokens[0] is not None


async def test_holder_cut_off_mid_run_loses_its_lease_and_a_peer_takes_over() -> None:
    """A partitioned holder's run is cancelled as lease_lost; a peer starts within TTL + 1 s."""
    starts: list[tuple[str, float]] = []
    cancelled: list[float] = []
    a, b = replicas(2, ttl=3.0)

    def body(replica: str):  # type: ignore[no-untyped-def]
        async def job() -> None:
            starts.append((replica, now()))
            try:
                await asyncio.sleep(30.0)
            except asyncio.CancelledError:
                cancelled.append(now())
                raise

        return job

    sa, sb = Scheduler(coordinator=a), Scheduler(coordinator=b)
    sa.schedule_task("long", 60.0, body("r0"))
    await wait_until(lambda: starts, timeout=5)
    sb.schedule_task("long", 60.0, body("r1"))
    cut = now()
    a.store.partition("r0")
    await wait_until(lambda: len(starts) >= 2, timeout=30)
    assert starts[1][0] == "r1"
    assert starts[1][1] - cut <= 3.0 + 1.0
    # The holder's own deadline (0.9 TTL after its last renewal) cancelled its body first.
    assert cancelled
    assert cancelled[0] < starts[1][1]
    await wait_until(lambda: sa.task_status("long").state == "scheduled", timeout=30)
    status = sa.task_status("long")
    assert status.failures == 0
    assert status.runs == 1
    assert sa._coordination is not None
    assert sa._coordination.leases_lost == 1
    await sa.shutdown()
    await sb.shutdown(grace=0)


async def test_coordinator_errors_never_remove_a_task(caplog: pytest.LogCaptureFixture) -> None:
    """An unreachable store stops runs, logs one WARNING, and runs resume when it answers."""
    caplog.set_level(logging.INFO, logger="tickwork.coordination")
    runs: list[float] = []

    async def job() -> None:
        runs.append(now())

    (coordinator,) = replicas(1)
    async with Scheduler(coordinator=coordinator) as scheduler:
        scheduler.schedule_task("t", 1.0, job)
        await wait_until(lambda: len(runs) >= 2, timeout=10)
        coordinator.store.partition("r0")
        await asyncio.sleep(30)
        stalled = len(runs)
        await asyncio.sleep(30)
        assert len(runs) == stalled
        assert scheduler.list_tasks() == ["t"]
        assert not scheduler.coordinator_ready
        coordinator.store.partition("r0", cut=False)
        await wait_until(lambda: len(runs) > stalled, timeout=30)
        assert scheduler.coordinator_ready
    messages = [r.getMessage() for r in caplog.records]
    assert sum("unreachable" in m for m in messages) == 1
    assert sum("reachable again" in m for m in messages) == 1


async def test_joining_replica_never_moves_the_due_time() -> None:
    """A replica joining with run_immediately=True does not re-run a task that just ran."""
    starts: list[float] = []

    async def job() -> None:
        starts.append(now())

    a, b = replicas(2)
    sa = Scheduler(coordinator=a)
    sa.schedule_task("hourly", 3600.0, job)
    await wait_until(lambda: starts, timeout=5)
    await asyncio.sleep(600)
    sb = Scheduler(coordinator=b)
    sb.schedule_task("hourly", 3600.0, job)
    await sa.shutdown()
    await asyncio.sleep(3600)
    await sb.shutdown()
    assert starts[0] == 0.0
    assert len(starts) == 2
    assert 3600.0 <= starts[1] <= 3600.05  # busy waits carry up to 20 ms of jitter


async def test_lease_lost_error_from_the_body_is_not_a_failure() -> None:
    """A body that lets LeaseLostError escape ends lease_lost: no failure, no backoff."""
    runs: list[float] = []

    async def job() -> None:
        runs.append(now())
        lease = current_lease()
        assert lease is not None
        raise LeaseLostError(lease.task, lease.token, "refused by the data")

    (coordinator,) = replicas(1)
    async with Scheduler(coordinator=coordinator) as scheduler:
        scheduler.schedule_task("t", 5.0, job, max_backoff=100)
        await wait_until(lambda: len(runs) >= 3, timeout=60)
        status = scheduler.task_status("t")
    assert status.failures == 0
    assert status.last_error is None


async def test_clean_shutdown_hands_the_lease_over_at_once() -> None:
    """A holder shut down mid-run releases its lease: a peer starts within 2 s, not the TTL."""
    starts: list[tuple[str, float]] = []
    a, b = replicas(2, ttl=30.0)

    def body(replica: str):  # type: ignore[no-untyped-def]
        async def job() -> None:
            starts.append((replica, now()))
            await asyncio.sleep(100.0)

        return job

    sa, sb = Scheduler(coordinator=a), Scheduler(coordinator=b)
    sa.schedule_task("long", 600.0, body("r0"))
    await wait_until(lambda: starts, timeout=5)
    sb.schedule_task("long", 600.0, body("r1"))
    await asyncio.sleep(5)
    stopped = now()
    await sa.shutdown(grace=0)
    await wait_until(lambda: len(starts) >= 2, timeout=60)
    assert starts[1][0] == "r1"
    assert starts[1][1] - stopped <= 2.1  # the followers' hand-over poll
    await sb.shutdown(grace=0)


async def test_backoff_survives_a_failover() -> None:
    """Consecutive failures recorded by one replica set the backoff of the next holder."""
    starts: list[tuple[str, float]] = []
    a, b = replicas(2)

    def body(replica: str):  # type: ignore[no-untyped-def]
        async def job() -> None:
            starts.append((replica, now()))
            raise RuntimeError("down")

        return job

    sa = Scheduler(coordinator=a)
    sa.schedule_task("t", 1.0, body("r0"), max_backoff=64)
    await wait_until(lambda: len(starts) >= 4, timeout=60)  # waits 2, 4, 8 after failures
    await sa.shutdown()
    sb = Scheduler(coordinator=b)
    sb.schedule_task("t", 1.0, body("r1"), max_backoff=64)
    await wait_until(lambda: len(starts) >= 6, timeout=200)
    await sb.shutdown()
    gaps = [later[1] - earlier[1] for earlier, later in itertools.pairwise(starts)]
    assert gaps[-1] >= 32.0 - 1e-6  # the sixth failure in a row: 2**5 s, not 2 s


async def test_use_coordinator_before_tasks_only_and_the_first_wins() -> None:
    """use_coordinator works before the first task; a second one is not used; after a task, no."""
    a, b = replicas(2)
    scheduler = Scheduler()
    assert scheduler.use_coordinator(a) is True
    assert scheduler.use_coordinator(b) is False
    assert scheduler.coordinator is a

    async def job() -> None:
        pass

    scheduler.schedule_task("t", 1.0, job)
    with pytest.raises(SchedulerError) as info:
        scheduler.use_coordinator(b)
    assert info.value.code == "coordinator_too_late"
    with pytest.raises(TypeError, match="coordinator must implement"):
        Scheduler(coordinator="postgresql://x")  # type: ignore[arg-type]
    await scheduler.shutdown()


async def test_non_singleton_tasks_run_on_every_replica() -> None:
    """singleton=False: each replica runs the task on its own schedule."""
    seen: set[str] = set()
    schedulers = [Scheduler(coordinator=c) for c in replicas(3)]
    for index, scheduler in enumerate(schedulers):

        async def job(index: int = index) -> None:
            seen.add(f"r{index}")

        scheduler.schedule_task("drain", 1.0, job, singleton=False)
    await wait_until(lambda: len(seen) == 3, timeout=5)
    for scheduler in schedulers:
        await scheduler.shutdown()


async def test_a_changed_interval_applies_from_the_next_release() -> None:
    """A deploy that changes a task's interval: the cluster waits the new interval next."""
    starts: list[float] = []

    async def job() -> None:
        starts.append(now())

    old, new = replicas(2)
    before = Scheduler(coordinator=old)
    before.schedule_task("t", 10.0, job)
    await wait_until(lambda: len(starts) >= 2, timeout=60)
    await before.shutdown()
    after = Scheduler(coordinator=new)
    after.schedule_task("t", 30.0, job)
    await wait_until(lambda: len(starts) >= 4, timeout=200)
    await after.shutdown()
    assert 9.9 <= starts[1] - starts[0] <= 10.1
    assert 9.9 <= starts[2] - starts[1] <= 10.1  # due time set by the old release
    assert 29.9 <= starts[3] - starts[2] <= 30.1


async def test_a_coordinator_raising_anything_never_removes_a_task(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A coordinator whose acquire raises a bug of its own: no run, the task stays, one WARNING."""
    runs: list[float] = []

    async def job() -> None:
        runs.append(now())

    (coordinator,) = replicas(1)
    broken = True
    acquire = coordinator.acquire

    async def flaky(task: str):  # type: ignore[no-untyped-def]
        if broken:
            raise RuntimeError("a bug in the coordinator")
        return await acquire(task)

    coordinator.acquire = flaky  # type: ignore[method-assign]
    async with Scheduler(coordinator=coordinator) as scheduler:
        scheduler.schedule_task("t", 1.0, job)
        await asyncio.sleep(60)
        assert runs == []
        assert scheduler.list_tasks() == ["t"]
        broken = False
        await wait_until(lambda: runs, timeout=30)
    warnings = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].exc_info is not None
