"""The scenarios of issue 2's "Performance" section, each run in a fresh process per implementation.

Every scenario is an ``async`` function ``(implementation, params) -> dict of figures``, run by
:mod:`benchmarks._worker` in its own interpreter, so no implementation inherits another's heap,
caches or timers. All task bodies are the same function for the three implementations.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import threading
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

from benchmarks._impls import Job, bare_loop, make
from benchmarks._measure import WakeupCounter, allocated_blocks, percentile, rss_bytes

__all__ = ["SCENARIOS"]

Params = dict[str, Any]
Figures = dict[str, Any]

# Waiting for a scenario to reach a state (all first runs done, ...) never takes longer than this.
_SETUP_LIMIT = 120.0


class _Counter:
    """The trivial body shared by every implementation: count one execution."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    async def job(self) -> None:
        self.count += 1

    async def reach(self, target: int, poll: float = 0.005) -> None:
        """Wait until ``count >= target`` (bounded by ``_SETUP_LIMIT``)."""
        # Polling, not an Event: the body must stay one increment, the same for everyone.
        async with asyncio.timeout(_SETUP_LIMIT):
            while self.count < target:  # noqa: ASYNC110
                await asyncio.sleep(poll)


async def exec_cpu(impl_name: str, params: Params) -> Figures:
    """CPU time per execution: ``tasks`` trivial jobs at ``interval``, over a fixed wall window.

    ``time.process_time()`` is read at both ends of the window after a warm-up; CPU time, not
    wall time, so that other processes on a shared machine do not count against us. It is also
    read at the ends of ``slices`` equal parts of the window: ``cpu_per_exec_best_us`` is the
    cheapest part, the one least disturbed by the other processes' use of the shared cores and
    caches (the estimator ``timeit`` uses), for the same window and the same executions.
    """
    counter = _Counter()
    impl = make(impl_name)
    impl.start([(f"t{i}", params["interval"], counter.job) for i in range(params["tasks"])])
    await asyncio.sleep(params["warmup"])
    slices: int = params.get("slices", 1)
    marks = [(time.process_time(), counter.count)]
    wall0 = time.perf_counter()
    for _ in range(slices):
        await asyncio.sleep(params["window"] / slices)
        marks.append((time.process_time(), counter.count))
    wall1 = time.perf_counter()
    (cpu0, runs0), (cpu1, runs1) = marks[0], marks[-1]
    runs = runs1 - runs0
    parts = [
        (c1 - c0) / (n1 - n0) * 1e6 for (c0, n0), (c1, n1) in itertools.pairwise(marks) if n1 > n0
    ]
    return {
        "cpu_per_exec_us": (cpu1 - cpu0) / runs * 1e6 if runs else None,
        "cpu_per_exec_best_us": min(parts) if parts else None,
        "executions": runs,
        "cpu_share": (cpu1 - cpu0) / (wall1 - wall0),
        "warnings": impl.warnings(),
    }


def _spin(stop: threading.Event) -> None:
    """Keep one thread busy in pure Python (it holds the GIL whenever it can)."""
    x = 0
    while not stop.is_set():
        for _ in range(1000):
            x += 1


async def lateness(impl_name: str, params: Params) -> Figures:
    """Lateness of each start against its due time, measured in the body, the same for all.

    Each body records its start at its first line and its completion at its last line. For the
    bare loop and tickwork (fixed delay) a start is due ``interval`` after the previous
    completion. APScheduler is fixed-rate: a start is due on its grid ``first + k * interval``,
    so its lateness is the distance from the nearest grid point (valid while below half an
    interval; skipped runs show up in ``executions`` and ``warnings``).
    """
    interval: float = params["interval"]
    body_sleep: float = params["body_sleep"]
    impl = make(impl_name)
    samples: list[float] = []
    recording = False
    anchor: float | None = None
    executions = 0

    def make_job() -> Job:
        last_end: float | None = None

        async def job() -> None:
            nonlocal last_end, executions
            if anchor is None:
                start = time.monotonic()
                if recording and last_end is not None:
                    samples.append(start - last_end - interval)
            else:
                start = time.time()
                if recording:
                    samples.append((start - anchor + interval / 2) % interval - interval / 2)
            if recording:
                executions += 1
            await asyncio.sleep(body_sleep)
            last_end = time.monotonic()

        return job

    stop = threading.Event()
    if params.get("busy_thread"):
        threading.Thread(target=_spin, args=(stop,), daemon=True).start()
    impl.start([(f"t{i}", interval, make_job()) for i in range(params["tasks"])])
    anchor = impl.first_run_epoch()
    await asyncio.sleep(params["warmup"])
    recording = True
    await asyncio.sleep(params["window"])
    recording = False
    stop.set()
    expected = params["tasks"] * params["window"] / (interval + body_sleep)
    return {
        "p50_ms": percentile(samples, 50) * 1e3,
        "p99_ms": percentile(samples, 99) * 1e3,
        "max_ms": max(samples) * 1e3,
        "samples": len(samples),
        "executions": executions,
        "executions_vs_ideal": executions / expected,
        "warnings": impl.warnings(),
    }


async def idle(impl_name: str, params: Params) -> Figures:
    """Idle cost of ``tasks`` jobs at ``interval`` (3600 s) after each has run once.

    After every first run and a settling pause, the loop's iterations and callbacks are counted
    (:class:`WakeupCounter`) over ``window`` seconds, and CPU time is read, by a helper thread:
    the harness itself sets no timer in the loop during the window, so an idle loop counts 0.
    """
    counter = _Counter()
    impl = make(impl_name)
    impl.start([(f"t{i}", params["interval"], counter.job) for i in range(params["tasks"])])
    await counter.reach(params["tasks"])
    await asyncio.sleep(params["settle"])
    gc.collect()
    loop = asyncio.get_running_loop()
    wakeups = WakeupCounter(loop)
    done: asyncio.Future[Figures] = loop.create_future()
    window: float = params["window"]

    def watch() -> None:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        time.sleep(window)
        figures = {
            "cpu_ms_per_s": (time.process_time() - cpu0) * 1e3 / (time.perf_counter() - wall0),
            "iterations": wakeups.iterations,
            "callbacks": wakeups.callbacks,
            "executions_in_window": counter.count - params["tasks"],
        }
        loop.call_soon_threadsafe(done.set_result, figures)

    wakeups.install()
    threading.Thread(target=watch, daemon=True).start()
    figures = await done
    wakeups.uninstall()
    figures["warnings"] = impl.warnings()
    return figures


async def _settle(turns: int = 3) -> None:
    for _ in range(turns):
        await asyncio.sleep(0)


async def churn(impl_name: str, params: Params) -> Figures:
    """Per-call cost of scheduling and cancelling ``n`` jobs at 3600 s, and their memory.

    Phase 1 (no tracing): ``n`` registrations timed with ``process_time`` (the call only), then
    until every job has run once and is idle (bare, tickwork; APScheduler's first run is one
    interval away), RSS growth per job, then ``n`` cancellations (the call only, then until the
    loop has processed them). Phase 2: the same registrations again under ``tracemalloc``; the
    traced growth once all are idle, divided by ``n``, is the memory per idle job.
    """
    n: int = params["n"]
    interval = 3600.0
    counter = _Counter()
    job = counter.job
    names = [f"task-{i}" for i in range(n)]
    loop = asyncio.get_running_loop()
    schedule: Callable[[list[str]], Any]
    cancel: Callable[[Any], None]

    if impl_name == "bare":

        def schedule(names: list[str]) -> Any:
            return [asyncio.create_task(bare_loop(job, interval)) for _ in names]

        def cancel(handle: Any) -> None:
            for task in handle:
                task.cancel()

        expect_first_runs = True
    elif impl_name == "tickwork":
        from tickwork import Scheduler

        scheduler = Scheduler()
        schedule_task = scheduler.schedule_task
        cancel_task = scheduler.cancel_task

        def schedule(names: list[str]) -> Any:
            for name in names:
                schedule_task(name, interval, job)
            return names

        def cancel(handle: Any) -> None:
            for name in handle:
                cancel_task(name)

        expect_first_runs = True
    else:
        aps = make("apscheduler")
        aps.start([])
        add_job = aps.scheduler.add_job  # type: ignore[attr-defined]
        remove_job = aps.scheduler.remove_job  # type: ignore[attr-defined]

        def schedule(names: list[str]) -> Any:
            for name in names:
                add_job(
                    job,
                    "interval",
                    seconds=interval,
                    id=name,
                    max_instances=1,
                    coalesce=True,
                    misfire_grace_time=None,
                )
            return names

        def cancel(handle: Any) -> None:
            for name in handle:
                remove_job(name)

        expect_first_runs = False

    async def until_idle(target: int) -> None:
        await _settle()
        if expect_first_runs:
            await counter.reach(target, poll=0)
        await _settle()

    await _settle()
    gc.collect()
    rss0 = rss_bytes()
    cpu0 = time.process_time()
    handle = schedule(names)
    cpu1 = time.process_time()
    await until_idle(n)
    cpu2 = time.process_time()
    gc.collect()
    rss1 = rss_bytes()
    cpu3 = time.process_time()
    cancel(handle)
    cpu4 = time.process_time()
    await _settle()
    cpu5 = time.process_time()
    del handle
    figures: Figures = {
        "schedule_us": (cpu1 - cpu0) / n * 1e6,
        "first_run_us": (cpu2 - cpu1) / n * 1e6,
        "cancel_us": (cpu4 - cpu3) / n * 1e6,
        "cancel_settle_us": (cpu5 - cpu3) / n * 1e6,
        "rss_per_task_b": None if rss0 is None or rss1 is None else (rss1 - rss0) / n,
    }
    if params.get("tracemalloc", True):
        names2 = [f"mem-{i}" for i in range(n)]
        await _settle()
        gc.collect()
        tracemalloc.start()
        traced0 = tracemalloc.get_traced_memory()[0]
        handle = schedule(names2)
        await until_idle(2 * n if expect_first_runs else 0)
        gc.collect()
        traced1 = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        del handle  # held until now: the bare loop needs its list of tasks to cancel them
        figures["traced_per_task_b"] = (traced1 - traced0) / n
    del loop
    return figures


async def soak(impl_name: str, params: Params) -> Figures:
    """Memory along ``executions`` runs of ``tasks`` trivial jobs at interval 0.

    Every ``executions / samples`` runs: ``gc.collect()``, then RSS and the allocator's live block
    count are sampled. The harness itself keeps each sample (about 5 blocks per sample).
    """
    counter = _Counter()
    impl = make(impl_name)
    total: int = params["executions"]
    step = total // params["samples"]
    cpu0 = time.process_time()
    impl.start([(f"t{i}", 0.0, counter.job) for i in range(params["tasks"])])
    samples: list[tuple[int, int | None, int]] = []
    mark = step
    async with asyncio.timeout(_SETUP_LIMIT * 5):
        while counter.count < total:
            await asyncio.sleep(0.01)
            if counter.count >= mark:
                gc.collect()
                samples.append((counter.count, rss_bytes(), allocated_blocks()))
                mark += step
    cpu1 = time.process_time()
    first, middle, last = samples[0], samples[len(samples) // 2], samples[-1]
    return {
        "samples": samples,
        "first_rss_kb": None if first[1] is None else first[1] / 1024,
        "last_rss_kb": None if last[1] is None else last[1] / 1024,
        "max_rss_kb": max((s[1] or 0) for s in samples) / 1024,
        "first_blocks": first[2],
        "middle_blocks": middle[2],
        "last_blocks": last[2],
        "cpu_per_exec_us": (cpu1 - cpu0) / counter.count * 1e6,
        "executions": counter.count,
        "warnings": impl.warnings(),
    }


SCENARIOS: dict[str, Callable[[str, Params], Awaitable[Figures]]] = {
    "exec_cpu": exec_cpu,
    "lateness": lateness,
    "idle": idle,
    "churn": churn,
    "soak": soak,
}
