"""Type-checked only, never run: the public API reads as documented under mypy --strict."""

from __future__ import annotations

import asyncio

from tickwork import (
    Execution,
    ExecutionHook,
    ExecutionResult,
    Outcome,
    Scheduler,
    SchedulerError,
    ShutdownReport,
    Snooze,
    TaskSpec,
    TaskState,
    TaskStatus,
    bind,
)
from tickwork.testing import VirtualTimeLoop, run, wait_for_runs


class Catalogue:
    async def refresh(self, pages: int) -> None:
        await asyncio.sleep(0)

    def vacuum(self) -> int:
        return 0

    async def sync(self) -> None:
        raise Snooze(45, "tmdb unreachable (connect error)")

    def quota(self) -> None:
        raise Snooze(0.5)


class Timing:
    def on_start(self, execution: Execution) -> None:
        print(execution.task, execution.lateness)

    def on_finish(self, execution: Execution, result: ExecutionResult) -> None:
        outcome: Outcome = result.outcome
        reason: str | None = result.reason
        print(outcome, reason, result.duration)


async def main() -> None:
    hook: ExecutionHook = Timing()
    catalogue = Catalogue()
    async with Scheduler(hooks=[hook]) as scheduler:
        scheduler.schedule_task("refresh", 60.0, bind(catalogue, "refresh", 6), timeout=30)
        scheduler.schedule_task("vacuum", 3600, catalogue.vacuum, jitter=60, max_backoff=7200)
        scheduler.schedule_tasks([TaskSpec("again", 1, bind(catalogue, "refresh", 1))])
        names: list[str] = scheduler.list_tasks()
        statuses: list[TaskStatus] = scheduler.status()
        one: TaskStatus = scheduler.task_status(names[0])
        state: TaskState = one.state
        last: Outcome | None = one.last_outcome
        why: str | None = one.last_outcome_reason
        print(state, last, why)
        scheduler.schedule_task("sync", 60.0, catalogue.sync)
        scheduler.schedule_task("quota", 60.0, catalogue.quota)
        print(one.to_dict()["runs"], statuses)
        await wait_for_runs(scheduler, "refresh", 1)
        try:
            scheduler.cancel_task("missing")
        except SchedulerError as error:
            code: str = error.code
            print(code)
        report: ShutdownReport = await scheduler.shutdown(grace=5.0)
        print(report.finished, report.to_dict())


loop: asyncio.AbstractEventLoop = VirtualTimeLoop()
loop.close()
run(main())
