"""Operators' controls through real stores: a pause asked of one replica holds on all of them.

Two schedulers in this process, each with its own coordinator on one real store (PostgreSQL,
through PgBouncer, Redis), real time: TTL 2 s, heartbeat 1 s, a task every 0.5 s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from tickwork import Scheduler
from tickwork.coordination import Coordinator
from tickwork.testing import wait_until

from .conftest import BACKENDS, Backend, open_backend

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(params=[b for b in BACKENDS if b != "memory"])
async def real_backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    """A real store (the in-process one runs on virtual time: tests/core/test_controls_*)."""
    async with open_backend(request.param, request) as made:
        yield made


class Starts:
    def __init__(self) -> None:
        self.at: list[tuple[str, float]] = []

    def body(self, replica: str):  # type: ignore[no-untyped-def]
        async def job() -> None:
            self.at.append((replica, time.monotonic()))
            await asyncio.sleep(0.05)

        return job

    def since(self, moment: float) -> list[tuple[str, float]]:
        return [(r, t) for r, t in self.at if t > moment]


def _replica(backend: Backend, name: str) -> Coordinator:
    coordinator = backend.make(replica=name)
    backend.made.append(coordinator)
    return coordinator


async def test_a_pause_on_one_replica_holds_on_all_and_survives_a_restart(
    real_backend: Backend,
) -> None:
    backend = real_backend
    starts = Starts()
    schedulers = [Scheduler(coordinator=_replica(backend, f"r{i}")) for i in range(2)]
    for i, scheduler in enumerate(schedulers):
        scheduler.schedule_task("sync", 0.5, starts.body(f"r{i}"))
        scheduler.schedule_task("drain", 0.5, starts.body(f"d{i}"), singleton=False)
    try:
        await wait_until(lambda: len(starts.at) >= 6, timeout=20)
        status = await schedulers[0].pause_task("sync", by="ops (test)")
        await schedulers[0].pause_task("drain", by="ops (test)")
        assert status.paused_by == "ops (test)"
        paused = time.monotonic()
        # Every replica shows it within a heartbeat (1 s) or a paused recheck.
        for scheduler in schedulers:
            for name in ("sync", "drain"):
                await wait_until(
                    lambda s=scheduler, n=name: s.task_status(n).state == "paused",  # type: ignore[misc]
                    timeout=10,
                )
                assert scheduler.task_status(name).paused_by == "ops (test)"
        settled = time.monotonic()
        await asyncio.sleep(3)
        # Nothing starts once every replica saw the pause (a run under way may end).
        assert starts.since(settled + 0.1) == []
        assert len(starts.since(paused + 0.1)) <= 2 * 2  # at most one per task per replica
        view = await schedulers[1].coordinator.cluster_view()  # type: ignore[union-attr]
        rows = {row.name: row for row in view.tasks}
        assert rows["sync"].paused
        assert rows["sync"].paused_by == "ops (test)"
        # A restarted replica (a new process would be the same) still obeys the pause.
        await schedulers[0].shutdown()
        restarted = Scheduler(coordinator=_replica(backend, "r0-restarted"))
        schedulers[0] = restarted
        restarted.schedule_task("sync", 0.5, starts.body("r0b"))
        await wait_until(lambda: restarted.task_status("sync").state == "paused", timeout=10)
        # Run now on a paused task: one run, and it stays paused.
        before = time.monotonic()
        await schedulers[1].trigger("sync")
        await wait_until(lambda: len(starts.since(before)) >= 1, timeout=10)
        await asyncio.sleep(1.5)
        assert len([r for r, _ in starts.since(before) if r[0] == "r"]) == 1
        # Resumed through the other replica: runs start again.
        await restarted.resume_task("sync")
        await schedulers[1].resume_task("drain")
        resumed = time.monotonic()
        await wait_until(lambda: len(starts.since(resumed)) >= 4, timeout=20)
        assert restarted.task_status("sync").state != "paused"
    finally:
        for scheduler in schedulers:
            await scheduler.shutdown()
