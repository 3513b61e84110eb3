"""Operators' controls with a coordinator, on virtual time: stored in the store, cluster-wide.

Replicas share a ``MemoryStore`` (heartbeat 1 s, TTL 2 s). A pause asked of one replica holds on
every replica, shows in each one's status, and outlives a replica that restarts.
"""

from __future__ import annotations

import asyncio
import itertools

import pytest

from tickwork import Scheduler, SchedulerError
from tickwork.coordination import InProcessCoordinator, MemoryStore
from tickwork.testing import wait_until


def now() -> float:
    return asyncio.get_running_loop().time()


class Runs:
    """Records (replica, start, end) of every run of the task, across replicas."""

    def __init__(self, duration: float = 1.0) -> None:
        self.duration = duration
        self.runs: list[tuple[str, float, float]] = []

    def body(self, replica: str):  # type: ignore[no-untyped-def]
        async def job() -> None:
            started = now()
            await asyncio.sleep(self.duration)
            self.runs.append((replica, started, now()))

        return job

    @property
    def starts(self) -> list[float]:
        return [start for _, start, _ in self.runs]

    def assert_no_overlap(self) -> None:
        for (_, _, end), (_, start, _) in itertools.pairwise(self.runs):
            assert start >= end


def cluster(store: MemoryStore, count: int) -> list[Scheduler]:
    return [
        Scheduler(coordinator=InProcessCoordinator(store, cluster="c", ttl=2.0, replica=f"r{i}"))
        for i in range(count)
    ]


async def test_a_pause_asked_of_one_replica_holds_on_every_replica_until_resumed() -> None:
    store = MemoryStore(heartbeat=1.0)
    runs = Runs()
    schedulers = cluster(store, 3)
    for i, scheduler in enumerate(schedulers):
        scheduler.schedule_task("sync", 10.0, runs.body(f"r{i}"))
    await wait_until(lambda: len(runs.runs) >= 2, timeout=60)
    status = await schedulers[2].pause_task("sync", by="ops")
    assert status.paused_by == "ops"
    paused_at = status.paused_at
    count = len(runs.runs)
    await asyncio.sleep(120)
    assert len(runs.runs) <= count + 1  # a run in progress may end; none starts
    for scheduler in schedulers:  # every replica's status shows the pause, who and when
        mirrored = scheduler.task_status("sync")
        assert mirrored.state == "paused"
        assert mirrored.paused_by == "ops"
        assert mirrored.paused_at == pytest.approx(paused_at, abs=0.01)
    view = await schedulers[0].coordinator.cluster_view()  # type: ignore[union-attr]
    (row,) = view.tasks
    assert row.paused
    assert row.paused_by == "ops"
    count = len(runs.runs)
    resumed = now()
    await schedulers[1].resume_task("sync")
    await wait_until(lambda: len(runs.runs) >= count + 1, timeout=60)
    # The due time passed long ago: one run at once (the resuming replica asks at once).
    assert runs.starts[-1] - resumed <= 0.1
    await asyncio.sleep(25)
    for scheduler in schedulers:
        assert scheduler.task_status("sync").state != "paused"
        await scheduler.shutdown()
    runs.assert_no_overlap()
    for (_, _, end), (_, start, _) in itertools.pairwise(runs.runs[-3:]):
        assert start >= end + 10.0


async def test_a_pause_survives_every_replica_restarting() -> None:
    store = MemoryStore(heartbeat=1.0)
    runs = Runs()
    (first,) = cluster(store, 1)
    first.schedule_task("sync", 10.0, runs.body("r0"))
    await wait_until(lambda: len(runs.runs) >= 1, timeout=60)
    await first.pause_task("sync", by="ops")
    await first.shutdown()
    (second,) = cluster(store, 1)
    second.schedule_task("sync", 10.0, runs.body("r0b"))
    await wait_until(lambda: second.task_status("sync").state == "paused", timeout=30)
    await asyncio.sleep(100)
    assert len(runs.runs) == 1
    assert second.task_status("sync").paused_by == "ops"
    await second.shutdown()


async def test_trigger_runs_a_held_task_once_on_whichever_replica_is_free() -> None:
    """Run-now asked of a follower while the holder runs: one run right after, no overlap."""
    store = MemoryStore(heartbeat=1.0)
    runs = Runs(duration=5.0)
    schedulers = cluster(store, 2)
    for i, scheduler in enumerate(schedulers):
        scheduler.schedule_task("sync", 3600.0, runs.body(f"r{i}"))
    await asyncio.sleep(1)  # the first run is under way on one replica
    view = await schedulers[0].coordinator.cluster_view()  # type: ignore[union-attr]
    holder = view.tasks[0].holder
    follower = next(s for s in schedulers if s.coordinator.replica != holder)  # type: ignore[union-attr]
    await follower.trigger("sync")
    await follower.trigger("sync")  # twice: still one run
    await asyncio.sleep(60)
    assert len(runs.runs) == 2
    runs.assert_no_overlap()
    assert runs.starts[1] - runs.runs[0][2] <= 2.1  # right after (the follower's poll at most)
    await asyncio.sleep(3000)
    assert len(runs.runs) == 2  # then the interval again, from the triggered run's end
    for scheduler in schedulers:
        await scheduler.shutdown()


async def test_trigger_a_paused_task_runs_once_cluster_wide_and_it_stays_paused() -> None:
    store = MemoryStore(heartbeat=1.0)
    runs = Runs()
    schedulers = cluster(store, 2)
    for i, scheduler in enumerate(schedulers):
        scheduler.schedule_task("sync", 10.0, runs.body(f"r{i}"))
    await wait_until(lambda: len(runs.runs) >= 1, timeout=60)
    await schedulers[0].pause_task("sync")
    await asyncio.sleep(30)
    count = len(runs.runs)
    await schedulers[1].trigger("sync")
    await asyncio.sleep(60)
    assert len(runs.runs) == count + 1
    for scheduler in schedulers:
        assert scheduler.task_status("sync").state == "paused"
        await scheduler.shutdown()


async def test_a_paused_non_singleton_task_is_paused_on_every_replica() -> None:
    """singleton=False tasks run on every replica; a pause through the store holds them all."""
    store = MemoryStore(heartbeat=1.0)
    runs = Runs(duration=0.0)
    schedulers = cluster(store, 3)
    for i, scheduler in enumerate(schedulers):
        scheduler.schedule_task("drain", 5.0, runs.body(f"r{i}"), singleton=False)
    await asyncio.sleep(11)
    assert len(runs.runs) == 9
    await schedulers[0].pause_task("drain", by="ops")
    await asyncio.sleep(2)  # one heartbeat mirrors it everywhere
    count = len(runs.runs)
    await asyncio.sleep(60)
    assert len(runs.runs) <= count
    assert all(s.task_status("drain").state == "paused" for s in schedulers)
    await schedulers[1].resume_task("drain")
    await asyncio.sleep(8)
    assert {replica for replica, _, _ in runs.runs[count:]} == {"r0", "r1", "r2"}
    for scheduler in schedulers:
        await scheduler.shutdown()


async def test_an_unreachable_coordinator_refuses_the_action_and_changes_nothing() -> None:
    store = MemoryStore(heartbeat=1.0)
    runs = Runs()
    (scheduler,) = cluster(store, 1)
    scheduler.schedule_task("sync", 10.0, runs.body("r0"))
    await wait_until(lambda: len(runs.runs) >= 1, timeout=60)
    store.partition("r0")
    with pytest.raises(SchedulerError, match="coordinator could not be reached") as info:
        await scheduler.pause_task("sync")
    assert info.value.code == "coordinator_unavailable"
    assert scheduler.task_status("sync").state != "paused"
    store.partition("r0", cut=False)
    await scheduler.pause_task("sync")
    assert scheduler.task_status("sync").state == "paused"
    await scheduler.shutdown()


async def test_run_now_of_a_coordinated_calendar_task_runs_outside_its_instants() -> None:
    """Run-now half an hour after an hourly instant (grace 60 s): one run, then the next hour."""
    pytest.importorskip("cronsim")
    from tickwork import _clock

    store = MemoryStore(heartbeat=1.0)
    starts: list[float] = []

    async def job() -> None:
        starts.append(_clock.wall_time(asyncio.get_running_loop()))

    schedulers = cluster(store, 2)
    for scheduler in schedulers:
        scheduler.schedule_cron("c", "0 * * * *", job, misfire_grace=60)
    status = schedulers[0].task_status("c")
    assert status.next_run_at is not None
    first = status.next_run_at
    await asyncio.sleep(first - _clock.wall_time(asyncio.get_running_loop()) + 1800)
    assert starts == [pytest.approx(first, abs=1)]
    # Asked of the store directly (another replica's request): the grant says it is one.
    await schedulers[1].coordinator.request_run("c")  # type: ignore[union-attr]
    await asyncio.sleep(70)
    assert len(starts) == 2
    assert starts[1] == pytest.approx(first + 1800, abs=61)
    await asyncio.sleep(1800)
    assert len(starts) == 3
    assert starts[2] == pytest.approx(first + 3600, abs=1)
    for scheduler in schedulers:
        await scheduler.shutdown()


async def test_shutdown_lets_a_heartbeat_in_flight_end_instead_of_cancelling_it() -> None:
    """A driver may leak a connection cancelled while it opens (asyncpg): shutdown asks the
    heartbeat to stop and waits for its call; it cancels only past half its margin."""
    store = MemoryStore(heartbeat=1.0)
    ended: list[str] = []

    class SlowHeartbeat(InProcessCoordinator):
        async def heartbeat(self, tasks):  # type: ignore[no-untyped-def]
            try:
                await asyncio.sleep(0.1)  # a connection being opened
            except asyncio.CancelledError:
                ended.append("cancelled")
                raise
            ended.append("finished")
            return await super().heartbeat(tasks)

    scheduler = Scheduler(coordinator=SlowHeartbeat(store, cluster="c", ttl=2.0, replica="r0"))
    scheduler.schedule_task("t", 10.0, Runs(duration=0.0).body("r0"))
    await asyncio.sleep(3.35)  # the fourth heartbeat (0, 1.1, 2.2, 3.3 s) is under way
    ended.clear()
    await scheduler.shutdown()
    assert ended == ["finished"]
