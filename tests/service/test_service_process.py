"""``tickwork run`` as a real process: HTTP endpoints, token, rate limit, signals, shutdown."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from .._service_process import TICKWORK
from .conftest import StartService, free_port, poll

pytestmark = pytest.mark.slow


BASIC_APP = """
    import asyncio
    import logging

    from tickwork.service import ComponentStatus, register_component

    class Resource:
        async def aclose(self):
            logging.getLogger("testapp").info("resource released")

    async def ok():
        await asyncio.sleep(0)

    def failing():
        raise ValueError("x" * 5000)

    async def setup(scheduler):
        scheduler.schedule_task("ok", 0.2, ok)
        scheduler.schedule_task("failing", 0.2, failing)
        register_component(scheduler, "db", lambda: ComponentStatus("ready", details={"n": 1}))
        register_component(
            scheduler, "tmdb", lambda: ComponentStatus("needs_configuration", "no API key")
        )
        return Resource()
"""


async def _status(client: httpx.AsyncClient, url: str, **kw: Any) -> dict[str, Any]:
    response = await client.get(url, **kw)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


async def test_status_health_metrics_history_served(start_service: StartService) -> None:
    """A running service answers /status, /health, /metrics and /history with real task data."""
    service = await start_service(BASIC_APP)
    async with httpx.AsyncClient(timeout=5) as client:

        async def both_ran() -> dict[str, Any] | None:
            doc = await _status(client, service.url("/status"))
            tasks = {t["name"]: t for t in doc["tasks"]}
            done = tasks["ok"]["runs"] >= 2 and tasks["failing"]["failures"] >= 2
            return doc if done else None

        doc: Any = await poll(both_ran)
        assert doc["state"] == "running"
        assert doc["uptime"] > 0
        assert doc["started_at"] <= doc["now"]
        tasks = {t["name"]: t for t in doc["tasks"]}
        assert set(tasks) == {"ok", "failing"}
        for task in tasks.values():
            assert isinstance(task["overdue_by"], float)
            assert task["stuck"] is False
            assert task["interval"] == 0.2
        error = tasks["failing"]["last_error"]
        assert error.startswith("ValueError: xxx")
        assert len(error) <= 500
        assert doc["services"] == {
            "db": {"status": "ready", "reason": None, "details": {"n": 1}},
            "tmdb": {"status": "needs_configuration", "reason": "no API key", "details": {}},
        }

        health = await client.get(service.url("/health"))
        assert (health.status_code, health.json()) == (200, {"status": "ok"})

        metrics = await client.get(service.url("/metrics"))
        assert metrics.status_code == 200
        assert metrics.headers["content-type"].startswith("text/plain")
        text = metrics.text
        assert 'tickwork_task_runs_total{outcome="success",task="ok"}' in text
        assert 'tickwork_task_failures_total{task="failing"}' in text
        assert 'tickwork_task_duration_seconds_bucket{le="0.005",task="ok"}' in text
        assert 'tickwork_task_running{task="ok"}' in text
        assert 'tickwork_task_last_success_timestamp_seconds{task="ok"}' in text
        assert 'tickwork_task_overdue_seconds{task="failing"}' in text
        assert "tickwork_event_loop_lag_seconds " in text

        history = (await client.get(service.url("/history"), params={"task": "failing"})).json()
        runs = history["failing"]
        assert len(runs) >= 2
        assert set(runs[0]) == {"started_at", "duration", "outcome", "lateness", "reason"}
        assert {r["outcome"] for r in runs} == {"failure"}
        assert all(r["reason"].startswith("ValueError: xxx") for r in runs)
        assert all(len(r["reason"]) <= 500 for r in runs)
        everything = (await client.get(service.url("/history"))).json()
        assert set(everything) == {"ok", "failing"}
        missing = await client.get(service.url("/history"), params={"task": "nope"})
        assert missing.status_code == 404
    code, _ = await service.stop()
    assert code == 0


async def test_health_is_503_while_setup_runs(start_service: StartService, tmp_path: Path) -> None:
    """During a slow setup /health answers 503 with the reason and /status says starting."""
    port = free_port()
    service = await start_service(
        """
        import asyncio
        from pathlib import Path

        async def setup(scheduler):
            async with asyncio.timeout(20):
                while not Path("go").exists():
                    await asyncio.sleep(0.05)
        """,
        "--port",
        str(port),
        wait=False,
    )
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(timeout=5) as client:

        async def answered() -> httpx.Response | None:
            try:
                return await client.get(f"{base}/health")
            except httpx.TransportError:
                return None

        health: Any = await poll(answered)
        assert health.status_code == 503
        assert health.json() == {"status": "unavailable", "reason": "service is starting"}
        assert (await _status(client, f"{base}/status"))["state"] == "starting"
        (tmp_path / "go").touch()
        await service.wait_started()

        async def healthy() -> bool:
            return (await client.get(f"{base}/health")).status_code == 200

        await poll(healthy)
    code, _ = await service.stop()
    assert code == 0


@pytest.mark.parametrize(
    ("signum", "command"),
    [
        (signal.SIGTERM, (TICKWORK,)),
        (signal.SIGINT, (sys.executable, "-m", "tickwork")),
    ],
    ids=["SIGTERM-console-script", "SIGINT-python-m"],
)
async def test_signal_shuts_down_gracefully(
    start_service: StartService, signum: int, command: tuple[str, ...]
) -> None:
    """One signal lets the running execution finish, releases resources and exits 0."""
    service = await start_service(
        """
        import asyncio
        import logging

        class Resource:
            async def aclose(self):
                logging.getLogger("testapp").info("resource released")

        async def slow():
            logging.getLogger("testapp").info("slow started")
            await asyncio.sleep(1.5)

        async def setup(scheduler):
            scheduler.schedule_task("slow", 60, slow)
            return Resource()
        """,
        "--grace",
        "3",
        command=command,
    )
    await service.wait_for_line("slow started")
    code, elapsed = await service.stop(signum)
    assert code == 0, service.output
    assert elapsed < 3
    name = signal.Signals(signum).name
    assert f"Received {name}, shutting down gracefully..." in service.output
    assert "resource released" in service.output
    assert "Shutdown complete: finished: slow; cancelled: none" in service.output
    assert "Traceback" not in service.output


HUNG_APPS = {
    "coroutine-hung-forever": """
        import asyncio

        async def hung():
            print("hung started", flush=True, file=__import__("sys").stderr)
            await asyncio.Event().wait()

        def setup(scheduler):
            scheduler.schedule_task("hung", 60, hung)
        """,
    "plain-function-stuck-in-thread": """
        import sys
        import threading

        def hung():
            print("hung started", flush=True, file=sys.stderr)
            threading.Event().wait()

        def setup(scheduler):
            scheduler.schedule_task("hung", 60, hung)
        """,
    "to_thread-in-default-executor": """
        import asyncio
        import sys
        import threading

        async def hung():
            print("hung started", flush=True, file=sys.stderr)
            await asyncio.to_thread(threading.Event().wait)

        def setup(scheduler):
            scheduler.schedule_task("hung", 60, hung)
        """,
}


# What the shutdown log says of each, and the exit code: the scheduler cancels a coroutine
# (even one awaiting ``to_thread``, whose worker it cannot see; the thread check names that
# worker) and abandons a plain function's thread. Threads cannot be stopped, so leaving one
# behind is no overrun: exit 0.
HUNG_REPORTS = {
    "coroutine-hung-forever": (
        0,
        [
            "Shutdown complete: finished: none; cancelled: hung; abandoned in threads: none; "
            "ignored cancellation: none",
        ],
    ),
    "plain-function-stuck-in-thread": (
        0,
        [
            "Shutdown complete: finished: none; cancelled: none; abandoned in threads: hung",
            "Exiting at once (exit code 0): hung still running in threads",
        ],
    ),
    "to_thread-in-default-executor": (
        0,
        [
            "Shutdown complete: finished: none; cancelled: hung; abandoned in threads: none",
            "Exiting at once (exit code 0): tickwork-default_0 still running in threads",
        ],
    ),
}


@pytest.mark.parametrize(
    ("app", "expected"),
    [(HUNG_APPS[name], HUNG_REPORTS[name]) for name in HUNG_APPS],
    ids=HUNG_APPS.keys(),
)
async def test_hung_task_exits_within_grace_plus_one(
    start_service: StartService, app: str, expected: tuple[int, list[str]]
) -> None:
    """A never-ending task is cancelled or abandoned as logged; the exit comes in grace + 1 s."""
    code_expected, report = expected
    service = await start_service(app, "--grace", "1")
    await service.wait_for_line("hung started")
    code, elapsed = await service.stop()
    assert code == code_expected, service.output
    assert elapsed < 2.0, service.output
    assert "Received SIGTERM, shutting down gracefully..." in service.output
    for line in report:
        assert line in service.output
    assert ("Exiting at once" in service.output) == (len(report) > 1)


async def test_second_signal_exits_at_once(start_service: StartService) -> None:
    """A second signal during the grace period ends the process at once with a non-zero code."""
    service = await start_service(
        """
        import asyncio
        import sys

        async def slow():
            print("slow started", flush=True, file=sys.stderr)
            await asyncio.sleep(30)

        def setup(scheduler):
            scheduler.schedule_task("slow", 60, slow)
        """,
        "--grace",
        "20",
    )
    await service.wait_for_line("slow started")
    service.proc.send_signal(signal.SIGTERM)
    await service.wait_for_line("Received SIGTERM, shutting down gracefully")
    code, elapsed = await service.stop(signal.SIGINT)
    assert code == 128 + signal.SIGINT
    assert elapsed < 1.5
    assert "Received SIGINT again, exiting now" in service.output


async def test_token_guards_status_metrics_history(start_service: StartService) -> None:
    """With a token, /status, /metrics and /history need it (401 otherwise); /health is open."""
    service = await start_service(BASIC_APP, env={"TICKWORK_TOKEN": "s3cret-token"})
    async with httpx.AsyncClient(timeout=5) as client:
        for path in ("/status", "/metrics", "/history"):
            for headers in (
                {},
                {"Authorization": "Bearer wrong"},
                {"Authorization": "s3cret-token"},
            ):
                response = await client.get(service.url(path), headers=headers)
                assert response.status_code == 401, (path, headers)
                assert "failing" not in response.text
                assert response.headers["www-authenticate"].startswith("Bearer")
            good = await client.get(
                service.url(path), headers={"Authorization": "Bearer s3cret-token"}
            )
            assert good.status_code == 200, path
        assert (await client.get(service.url("/health"))).status_code == 200
    await service.stop()
    assert "s3cret-token" not in service.output


async def test_rate_limit_per_client_and_route(start_service: StartService) -> None:
    """Past the burst a route answers 429 with Retry-After, while another route still answers."""
    service = await start_service(BASIC_APP)
    async with httpx.AsyncClient(timeout=5) as client:
        responses = [await client.get(service.url("/health")) for _ in range(30)]
        assert responses[0].status_code == 200
        limited = [r for r in responses if r.status_code == 429]
        assert limited, [r.status_code for r in responses]
        assert int(limited[0].headers["retry-after"]) >= 1
        assert limited[0].json() == {"error": "too many requests"}
        assert (await client.get(service.url("/status"))).status_code == 200
    await service.stop()


async def test_json_logs_one_object_per_line(start_service: StartService) -> None:
    """With --log-format json every stderr line is a JSON object; task lines carry the task."""
    service = await start_service(
        """
        def bad():
            raise ValueError("row 7 is broken")

        def setup(scheduler):
            scheduler.schedule_task("bad", 60, bad)
        """,
        "--log-format",
        "json",
        "--log-level",
        "debug",
    )
    await service.wait_for_line("row 7 is broken")
    code, _ = await service.stop()
    assert code == 0
    records = [json.loads(line) for line in service.lines]
    for record in records:
        assert {"timestamp", "level", "logger", "message"} <= set(record)
    executing = [r for r in records if r["message"] == "Executing task: bad"]
    assert executing[0]["task"] == "bad"
    assert executing[0]["level"] == "DEBUG"
    assert executing[0]["logger"] == "tickwork.scheduler"
    failure = next(r for r in records if r["level"] == "ERROR" and r.get("task") == "bad")
    assert "Traceback" in failure["exc_info"]
    assert "ValueError: row 7 is broken" in failure["exc_info"]
    assert any(r["message"] == "Received SIGTERM, shutting down gracefully..." for r in records)


async def test_blocked_loop_is_reported(start_service: StartService) -> None:
    """A blocked loop gives one WARNING with its length and delayed tasks, a metric, last_stall."""
    service = await start_service(
        """
        import time

        async def blocker():
            time.sleep(1.6)  # blocks the event loop on purpose

        async def victim():
            pass

        def setup(scheduler):
            scheduler.schedule_task("victim", 0.2, victim)
            scheduler.schedule_task("blocker", 1.0, blocker, run_immediately=False)
        """,
    )
    match = await service.wait_for_line(r"WARNING .*Event loop was blocked for ([\d.]+) s.*")
    assert float(match.group(1)) >= 1.0
    assert "tasks overdue or delayed: victim" in match.group(0)
    async with httpx.AsyncClient(timeout=5) as client:
        doc = await _status(client, service.url("/status"))
        assert doc["last_stall"]["kind"] == "stall"
        assert doc["last_stall"]["seconds"] >= 1.0
        assert "victim" in doc["last_stall"]["delayed_tasks"]
        assert doc["stall_events"]["stall"] >= 1
        metrics = (await client.get(service.url("/metrics"))).text
        assert 'tickwork_stall_events_total{kind="stall"} 0.0' not in metrics
        assert 'tickwork_stall_events_total{kind="stall"}' in metrics
    code, _ = await service.stop()
    assert code == 0


async def test_http_stops_accepting_during_grace(
    start_service: StartService, tmp_path: Path
) -> None:
    """After SIGTERM the port stops accepting connections while executions finish."""
    service = await start_service(
        """
        import asyncio
        import sys
        from pathlib import Path

        async def slow():
            print("slow started", flush=True, file=sys.stderr)
            while not Path("release").exists():
                await asyncio.sleep(0.02)

        def setup(scheduler):
            scheduler.schedule_task("slow", 60, slow)
        """,
        "--grace",
        "20",
    )
    await service.wait_for_line("slow started")
    service.proc.send_signal(signal.SIGTERM)
    await service.wait_for_line("Received SIGTERM")

    async def refused() -> bool:
        try:
            async with httpx.AsyncClient(timeout=1) as client:
                await client.get(service.url("/health"))
        except httpx.ConnectError:
            return True
        except httpx.TransportError:
            return False  # accepted just before the close, then dropped: try again
        return False

    await poll(refused, timeout=5, every=0.05)
    assert service.proc.returncode is None  # still waiting for "slow"
    (tmp_path / "release").touch()
    assert await service.wait_exit() == 0
    assert "finished: slow" in service.output


async def test_signal_during_setup_exits_cleanly(start_service: StartService) -> None:
    """A signal while the app's setup still runs cancels the setup and exits 0."""
    service = await start_service(
        """
        import asyncio
        import sys

        async def setup(scheduler):
            print("setting up", flush=True, file=sys.stderr)
            await asyncio.sleep(60)
        """,
        wait=False,
    )
    await service.wait_for_line("setting up")
    code, elapsed = await service.stop()
    assert code == 0, service.output
    assert elapsed < 2
    assert "Received SIGTERM, shutting down gracefully..." in service.output


async def test_blocked_loop_at_shutdown_hits_the_watchdog(start_service: StartService) -> None:
    """When a task blocks the loop itself, the watchdog still ends the process by grace + 1 s."""
    service = await start_service(
        """
        import sys
        import time

        async def wedge():
            print("wedged", flush=True, file=sys.stderr)
            time.sleep(60)  # blocks the event loop on purpose

        def setup(scheduler):
            scheduler.schedule_task("wedge", 0.3, wedge, run_immediately=False)
        """,
        "--grace",
        "1",
    )
    await service.wait_for_line("wedged")
    code, elapsed = await service.stop()
    assert code == 1
    assert elapsed < 2.0
    assert "Graceful shutdown did not finish within 1.9 s, exiting now" in service.output


async def test_hanging_resource_release_is_bounded(start_service: StartService) -> None:
    """An app whose aclose() never returns is cut off in time and the exit code says so."""
    service = await start_service(
        """
        import asyncio

        class Stuck:
            async def aclose(self):
                await asyncio.Event().wait()

        def setup(scheduler):
            return Stuck()
        """,
        "--grace",
        "1",
    )
    code, elapsed = await service.stop()
    assert code == 1
    assert elapsed < 2.5  # grace + 1 s, with slack for a loaded 2-core machine
    assert "Releasing the app's resources did not finish in time" in service.output


async def test_example_app_runs(start_service: StartService) -> None:
    """The bundled example app serves its tasks and component and releases itself on exit."""
    service = await start_service(None, target="tickwork.service._example:setup")
    async with httpx.AsyncClient(timeout=5) as client:
        doc = await _status(client, service.url("/status"))
    assert [t["name"] for t in doc["tasks"]] == ["heartbeat", "tally"]
    assert doc["services"]["example"]["status"] == "ready"
    code, _ = await service.stop()
    assert code == 0
    assert "Example app released" in service.output


@pytest.mark.parametrize("error", ["SystemExit(3)", "KeyboardInterrupt"])
async def test_body_asking_to_exit_shuts_down_gracefully_with_exit_1(
    start_service: StartService, error: str
) -> None:
    """A body's SystemExit/KeyboardInterrupt starts the graceful shutdown; its report names it."""
    service = await start_service(
        f"""
        import asyncio
        import logging

        class Resource:
            async def aclose(self):
                logging.getLogger("testapp").info("resource released")

        async def slow():
            logging.getLogger("testapp").info("slow started")
            await asyncio.sleep(1.0)

        async def leave():
            await asyncio.sleep(0.3)
            raise {error}

        async def setup(scheduler):
            scheduler.schedule_task("slow", 60, slow)
            scheduler.schedule_task("leave", 60, leave)
            return Resource()
        """,
        "--grace",
        "3",
    )
    code = await service.wait_exit()
    assert code == 1, service.output
    name = error.removesuffix("(3)")
    assert f"Task leave failed: {name}" in service.output
    assert f"Task leave raised {name}" in service.output
    assert "shutting down gracefully (exit code 1)" in service.output
    assert "resource released" in service.output
    assert (
        f"Shutdown complete (requested by task leave: {error.replace('(3)', ': 3')}): "
        "finished: slow; cancelled: none"
    ) in service.output
