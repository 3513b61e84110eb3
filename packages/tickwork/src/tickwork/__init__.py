"""tickwork: exact, observable recurring tasks for asyncio.

Schedule a task, and it runs at once, then ``interval`` seconds after each completion, for as
long as it is scheduled::

    import asyncio
    from tickwork import Scheduler

    async def refresh() -> None: ...

    async def main() -> None:
        async with Scheduler() as scheduler:
            scheduler.schedule_task("refresh", 30.0, refresh)
            await asyncio.sleep(120)

    asyncio.run(main())

Errors are logged, never fatal; tasks are independent; ``status()`` says what each is doing;
``shutdown()`` is bounded. A body that cannot do its work now raises ``Snooze(seconds, reason)``:
not an error, the next run after ``seconds``. See ``tickwork.testing`` for deterministic tests
on virtual time.
"""

from tickwork._bind import bind
from tickwork._cron import CronSpec
from tickwork._errors import ErrorCode, SchedulerError
from tickwork._hooks import Execution, ExecutionHook, ExecutionResult, Outcome
from tickwork._lease import Lease, LeaseLostError, current_lease
from tickwork._scheduler import Scheduler
from tickwork._snooze import Snooze
from tickwork._spec import TaskSpec
from tickwork._status import ShutdownReport, TaskState, TaskStatus
from tickwork._version import __version__

__all__ = [
    "CronSpec",
    "ErrorCode",
    "Execution",
    "ExecutionHook",
    "ExecutionResult",
    "Lease",
    "LeaseLostError",
    "Outcome",
    "Scheduler",
    "SchedulerError",
    "ShutdownReport",
    "Snooze",
    "TaskSpec",
    "TaskState",
    "TaskStatus",
    "__version__",
    "bind",
    "current_lease",
]
