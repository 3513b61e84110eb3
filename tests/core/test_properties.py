"""Property-based checks of the scheduling invariants, over random workloads on virtual time."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tickwork import Scheduler
from tickwork import testing as tw_testing

# Durations are > 0: an interval-0 task whose body takes no time keeps the loop busy forever,
# so virtual time (which only jumps when the loop is idle) would never reach the cancel.
runs_strategy = st.lists(
    st.tuples(st.floats(0.01, 5, allow_nan=False), st.booleans()), min_size=1, max_size=12
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    interval=st.floats(0, 10, allow_nan=False),
    plan=runs_strategy,
    cancel_at=st.floats(0, 80, allow_nan=False),
    timeout=st.one_of(st.none(), st.floats(0.5, 4, allow_nan=False)),
    jitter=st.floats(0, 2, allow_nan=False),
)
def test_never_overlaps_waits_at_least_interval_and_stops_after_cancel(
    interval: float,
    plan: list[tuple[float, bool]],
    cancel_at: float,
    timeout: float | None,
    jitter: float,
) -> None:
    """No overlap, completion-to-start gap >= interval, and no start after cancel_task."""
    starts: list[float] = []
    ends: list[float] = []

    async def body() -> None:
        loop = asyncio.get_running_loop()
        index = len(starts)
        starts.append(loop.time())
        duration, fails = plan[index % len(plan)]
        try:
            await asyncio.sleep(duration)
            if fails:
                raise RuntimeError(f"planned failure {index}")
        finally:
            ends.append(loop.time())

    async def main() -> float:
        loop = asyncio.get_running_loop()
        async with Scheduler() as scheduler:
            scheduler.schedule_task("p", interval, body, timeout=timeout, jitter=jitter)
            await asyncio.sleep(cancel_at)
            scheduler.cancel_task("p")
            cancelled = loop.time()
            await asyncio.sleep(100)
        return cancelled

    cancelled = tw_testing.run(main())
    assert len(ends) == len(starts)
    for i in range(1, len(starts)):
        assert starts[i] >= ends[i - 1]  # never overlaps itself
        assert starts[i] - ends[i - 1] >= interval - 1e-9  # fixed delay after completion
        assert starts[i] - ends[i - 1] <= interval + jitter + 1e-9
    assert all(start <= cancelled for start in starts)  # a cancelled task never starts again
    if timeout is not None:
        assert all(e - s <= timeout + 1e-9 for s, e in zip(starts, ends, strict=True))
