"""The HTTP app in process: mounting, status fields, history, health, auth (ASGI transport)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from tickwork import Execution, ExecutionResult, Scheduler, Snooze
from tickwork.service import ComponentStatus, create_app, register_component
from tickwork.testing import wait_for_runs, wait_until

from .conftest import poll, serving

pytestmark = pytest.mark.slow


async def test_mounted_under_prefix_with_parent_lifespan() -> None:
    """The app works mounted under a prefix of a user's Starlette app, lifespan included."""
    async with Scheduler() as scheduler:
        tickwork_app = create_app(scheduler, token="t")

        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            async with tickwork_app.router.lifespan_context(tickwork_app):
                yield

        parent = Starlette(routes=[Mount("/scheduler", app=tickwork_app)], lifespan=lifespan)
        scheduler.schedule_task("job", 60, lambda: None)
        async with serving(parent) as client:
            runtime = tickwork_app.state.tickwork
            assert runtime.monitor.running
            health = await client.get("/scheduler/health")
            assert health.json() == {"status": "ok"}
            assert (await client.get("/scheduler/status")).status_code == 401
            status = await client.get("/scheduler/status", headers={"Authorization": "Bearer t"})
            assert [t["name"] for t in status.json()["tasks"]] == ["job"]
        assert not runtime.monitor.running


async def test_stuck_and_bounded_error_in_status() -> None:
    """A timed-out plain function still in its thread shows stuck; long errors are cut."""
    release = threading.Event()

    def blocked() -> None:
        release.wait(10)

    async def noisy() -> None:
        raise RuntimeError("e" * 10_000)

    async with Scheduler() as scheduler:
        app = create_app(scheduler)
        scheduler.schedule_task("blocked", 60, blocked, timeout=0.05)
        scheduler.schedule_task("noisy", 60, noisy)
        try:
            async with serving(app) as client:

                async def document() -> dict[str, Any]:
                    data: dict[str, Any] = (await client.get("/status")).json()
                    return {t["name"]: t for t in data["tasks"]}

                async def stuck() -> dict[str, Any] | None:
                    tasks = await document()
                    return tasks if tasks["blocked"]["stuck"] else None

                tasks: Any = await poll(stuck, timeout=5, every=0.02)
                assert tasks["blocked"]["state"] == "running"
                assert tasks["blocked"]["running_for"] > 0.05
                assert tasks["noisy"]["stuck"] is False
                assert len(tasks["noisy"]["last_error"]) == 500
                assert tasks["noisy"]["last_error"].endswith("…")
        finally:
            release.set()


async def test_history_records_recent_executions_bounded() -> None:
    """/history keeps the last ``history_size`` executions per task, oldest first."""
    runs = 0

    async def quick() -> None:
        nonlocal runs
        runs += 1

    async with Scheduler() as scheduler:
        app = create_app(scheduler, history_size=5, rate_limit=1000)
        scheduler.schedule_task("quick", 0, quick)
        async with serving(app) as client:
            await wait_until(lambda: runs >= 12, timeout=5)
            history = (await client.get("/history", params={"task": "quick"})).json()
        entries = history["quick"]
        assert len(entries) == 5
        starts = [e["started_at"] for e in entries]
        assert starts == sorted(starts)
        assert all(e["outcome"] == "success" and e["duration"] >= 0 for e in entries)
        assert all(e["lateness"] >= 0 for e in entries)


async def test_a_snoozed_task_in_status_history_and_metrics() -> None:
    """A run that snoozed shows as state and outcome with its reason in every endpoint."""
    calls = 0

    async def body() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ValueError("bad row")
        raise Snooze(60, "tmdb unreachable (connect error)")

    async with Scheduler() as scheduler:
        app = create_app(scheduler, rate_limit=1000)
        scheduler.schedule_task("sync", 0.01, body)
        async with serving(app) as client:
            await wait_until(lambda: calls >= 2, timeout=5)
            await wait_until(lambda: scheduler.task_status("sync").state == "snoozed", timeout=5)
            status = (await client.get("/status")).json()
            history = (await client.get("/history", params={"task": "sync"})).json()
            metrics = (await client.get("/metrics")).text
    (task,) = status["tasks"]
    assert task["state"] == "snoozed"
    assert task["last_outcome"] == "snoozed"
    assert task["last_outcome_reason"] == "tmdb unreachable (connect error)"
    assert task["next_run_at"] - task["last_finished_at"] == pytest.approx(60.0)
    assert task["overdue_by"] == 0.0
    assert [(e["outcome"], e["reason"]) for e in history["sync"]] == [
        ("failure", "ValueError: bad row"),
        ("snoozed", "tmdb unreachable (connect error)"),
    ]
    assert 'tickwork_task_runs_total{outcome="snoozed",task="sync"} 1.0' in metrics
    assert 'tickwork_task_runs_total{outcome="failure",task="sync"} 1.0' in metrics
    assert 'tickwork_task_failures_total{task="sync"} 1.0' in metrics


async def test_history_keeps_the_last_100_executions_by_default() -> None:
    """Without ``history_size``, /history gives exactly a task's last 100 executions."""
    finished: list[float] = []
    release = asyncio.Event()

    class Record:
        def on_start(self, execution: Execution) -> None:
            pass

        def on_finish(self, execution: Execution, result: ExecutionResult) -> None:
            finished.append(execution.started_at)

    async def quick() -> None:
        if len(finished) >= 130:
            await release.wait()  # hold the 131st run so no execution ends while we compare

    async with Scheduler(hooks=[Record()]) as scheduler:
        app = create_app(scheduler, rate_limit=1000)
        scheduler.schedule_task("quick", 0, quick)
        async with serving(app) as client:
            await wait_until(lambda: len(finished) >= 130, timeout=10)
            history = (await client.get("/history", params={"task": "quick"})).json()
            recorded = list(finished)
            release.set()
    assert len(recorded) == 130
    assert [e["started_at"] for e in history["quick"]] == recorded[-100:]


async def test_health_503_when_shutting_down_or_shut_down() -> None:
    """/health answers 503 with a reason while shutting down and after the scheduler stopped."""
    scheduler = Scheduler()
    app = create_app(scheduler)
    async with serving(app) as client:
        assert (await client.get("/health")).status_code == 200
        app.state.tickwork.state = "shutting_down"
        response = await client.get("/health")
        assert response.status_code == 503
        assert response.json() == {"status": "unavailable", "reason": "service is shutting_down"}
        app.state.tickwork.state = "running"
        await scheduler.shutdown(0)
        response = await client.get("/health")
        assert response.json() == {"status": "unavailable", "reason": "scheduler is shut down"}


async def test_health_503_when_loop_lags() -> None:
    """/health answers 503 naming the lag after the event loop was blocked past the threshold."""
    async with Scheduler() as scheduler:
        app = create_app(scheduler, lag_threshold=0.2)
        async with serving(app) as client:
            monitor = app.state.tickwork.monitor
            await wait_until(lambda: monitor.current_lag() < 0.2, timeout=5)
            # A block shows as a lag of at least (block - probe interval).
            threading.Event().wait(0.2 + monitor.interval + 0.2)  # block the loop on purpose
            response = await client.get("/health")
            assert response.status_code == 503
            assert "event loop lag" in response.json()["reason"]


async def test_components_in_status() -> None:
    """Registered components appear under services, including failing and slow checks."""

    async def slow() -> ComponentStatus:
        await asyncio.sleep(30)
        return ComponentStatus("ready")

    def broken() -> ComponentStatus:
        raise ConnectionError("refused")

    async def degraded() -> ComponentStatus:
        return ComponentStatus("degraded", "slow answers", {"p99": 2.5})

    async with Scheduler() as scheduler:
        app = create_app(scheduler)
        register_component(scheduler, "cache", degraded)
        register_component(scheduler, "db", broken)
        register_component(scheduler, "tmdb", slow)
        register_component(scheduler, "odd", lambda: "ready")  # type: ignore[arg-type,return-value]
        async with serving(app) as client:
            async with asyncio.timeout(10):
                services = (await client.get("/status")).json()["services"]
    assert list(services) == ["cache", "db", "tmdb", "odd"]
    assert services["cache"] == {
        "status": "degraded",
        "reason": "slow answers",
        "details": {"p99": 2.5},
    }
    assert services["db"] == {
        "status": "error",
        "reason": "ConnectionError: refused",
        "details": {},
    }
    assert services["tmdb"]["status"] == "error"
    assert "timed out" in services["tmdb"]["reason"]
    assert services["odd"]["reason"] == "check returned str, not ComponentStatus"


def test_component_status_and_registration_validate() -> None:
    """Bad component states, reasons and duplicate names raise errors naming the value."""
    with pytest.raises(ValueError, match="'fine'"):
        ComponentStatus("fine")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="reason"):
        ComponentStatus("ready", reason=3)  # type: ignore[arg-type]
    owner = Scheduler()
    with pytest.raises(TypeError, match=r"scheduler must be a tickwork\.Scheduler, got 'x'"):
        register_component("x", "db", lambda: ComponentStatus("ready"))  # type: ignore[arg-type]
    register_component(owner, "db", lambda: ComponentStatus("ready"))
    with pytest.raises(ValueError, match="'db' is already registered"):
        register_component(owner, "db", lambda: ComponentStatus("ready"))
    with pytest.raises(ValueError, match="non-empty"):
        register_component(owner, "", lambda: ComponentStatus("ready"))
    with pytest.raises(TypeError, match="check must be callable"):
        register_component(owner, "x", None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"token": ""}, "token must be a non-empty"),
        ({"rate_limit": 0}, "rate_limit must be a finite number > 0, got 0"),
        ({"rate_limit": float("nan")}, "got nan"),
        ({"lag_threshold": -1.0}, "lag_threshold"),
        ({"stuck_after": float("inf")}, "stuck_after"),
        ({"history_size": 0}, "size must be an int >= 1, got 0"),
    ],
)
async def test_create_app_rejects_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    """create_app refuses out-of-range settings with a message naming them."""
    async with Scheduler() as scheduler:
        with pytest.raises(ValueError, match=message):
            create_app(scheduler, **kwargs)


async def test_two_apps_have_separate_metric_registries() -> None:
    """Each app counts in its own registry, so two apps in one process never collide."""
    async with Scheduler() as first, Scheduler() as second:
        app_one, app_two = create_app(first), create_app(second)
        first.schedule_task("only_in_first", 60, lambda: None)
        async with serving(app_one) as one, serving(app_two) as two:
            await wait_for_runs(first, "only_in_first", 1, timeout=5)
            assert 'task="only_in_first"' in (await one.get("/metrics")).text
            assert "only_in_first" not in (await two.get("/metrics")).text


async def test_full_history_is_the_same_json_as_per_task_and_leaves_the_loop_responsive() -> None:
    """/history of every task equals the per-task answers, and encoding it never blocks the loop
    for as long as encoding it in one go takes."""
    async with Scheduler() as scheduler:
        app = create_app(scheduler, history_size=100, rate_limit=1000)
        runtime = app.state.tickwork
        for i in range(500):
            scheduler.schedule_task(f"task-{i}", 3600, lambda: None, run_immediately=False)
        # Fill every ring through the hook itself, as finished executions would.
        for i in range(500):
            for n in range(100):
                execution = Execution(f"task-{i}", 3600.0, n + 1, 1000.0 + n, 1000.0 + n, 0.0)
                result = ExecutionResult("success", 0.001, 1000.0 + n, None)
                runtime.history.on_finish(execution, result)
        began = time.perf_counter()
        json.dumps(runtime.history_document(None))
        in_one_go = time.perf_counter() - began
        gaps: list[float] = []
        stop = asyncio.Event()

        async def probe() -> None:
            last = time.perf_counter()
            while not stop.is_set():
                await asyncio.sleep(0)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        async with serving(app) as client:
            probing = asyncio.create_task(probe())
            response = await client.get("/history")
            stop.set()
            await probing
            full = response.json()  # decoded after the probe: the test's own work, not the app's
            one = (await client.get("/history", params={"task": "task-7"})).json()
    assert len(full) == 500
    assert full["task-7"] == one["task-7"]
    assert len(full["task-7"]) == 100
    assert max(gaps) < in_one_go * 0.75, (max(gaps), in_one_go)


async def test_history_of_several_tasks_in_one_request() -> None:
    """/history with several ``task`` names answers each known one once, leaving unknown ones
    out."""
    async with Scheduler() as scheduler:
        app = create_app(scheduler, rate_limit=1000)
        scheduler.schedule_task("a", 0, lambda: None)
        scheduler.schedule_task("b", 60, lambda: None, run_immediately=False)
        async with serving(app) as client:
            await wait_for_runs(scheduler, "a", 2, timeout=5)
            params = [("task", "a"), ("task", "gone"), ("task", "b"), ("task", "a")]
            response = await client.get("/history", params=params)
        assert response.status_code == 200
        document = response.json()
        assert list(document) == ["a", "b"]
        assert len(document["a"]) >= 2
        assert document["b"] == []


async def test_history_refuses_more_than_100_task_names() -> None:
    """/history answers 400, naming the count, when asked for more than 100 tasks at once."""
    async with Scheduler() as scheduler:
        app = create_app(scheduler, rate_limit=1000)
        async with serving(app) as client:
            names = [("task", f"t{i}") for i in range(101)]
            response = await client.get("/history", params=names)
            hundred = await client.get("/history", params=names[:100])
        assert response.status_code == 400
        assert response.json() == {"error": "at most 100 task names per request, got 101"}
        assert (hundred.status_code, hundred.json()) == (200, {})


async def test_metrics_export_component_states_and_no_created_series() -> None:
    """/metrics has a 0/1 series per component and state, and no ``*_created`` series."""
    async with Scheduler() as scheduler:
        app = create_app(scheduler, rate_limit=1000)
        register_component(scheduler, "db", lambda: ComponentStatus("ready"))
        register_component(scheduler, "tmdb", lambda: ComponentStatus("degraded", "HTTP 503"))
        scheduler.schedule_task("a", 0, lambda: None)
        async with serving(app) as client:
            await wait_for_runs(scheduler, "a", 1, timeout=5)
            text = (await client.get("/metrics")).text
        lines = text.splitlines()
        series = {
            line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in lines
            if line.startswith("tickwork_component_status{")
        }
        states = ("ready", "degraded", "error", "needs_configuration")
        assert series == {
            f'tickwork_component_status{{component="{name}",status="{state}"}}': float(
                state == current
            )
            for name, current in (("db", "ready"), ("tmdb", "degraded"))
            for state in states
        }
        assert "# TYPE tickwork_component_status gauge" in lines
        assert 'tickwork_task_runs_total{outcome="success",task="a"}' in text
        assert "_created" not in text
