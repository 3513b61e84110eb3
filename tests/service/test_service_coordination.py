"""`tickwork run --coordinator`: bad input, an unreachable store, the cluster view, `forget`."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest

from tickwork.coordination import TaskDecl
from tickwork.coordination.postgres import PostgresCoordinator

from .._service_process import TICKWORK
from ..conftest import require_service
from ..coordination.conftest import PG_DSN
from .conftest import StartService, get_json, poll

pytestmark = pytest.mark.slow

APP = """
import asyncio

async def tick() -> None:
    await asyncio.sleep(0)

def setup(scheduler):
    scheduler.schedule_task("tick", 0.2, tick)
    scheduler.schedule_task("local", 0.2, tick, singleton=False)
"""

APP_SUPPLIES = """
import asyncio
from tickwork.coordination import InProcessCoordinator

async def tick() -> None:
    await asyncio.sleep(0)

def setup(scheduler):
    used = scheduler.use_coordinator(InProcessCoordinator(cluster="app"))
    print("app coordinator used:", used, flush=True)
    scheduler.schedule_task("tick", 0.2, tick)
"""


async def _command(*args: str, cwd: Path) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKWORK_")}
    proc = await asyncio.create_subprocess_exec(
        TICKWORK,
        *args,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://db/x", "scheme 'mysql' is not supported"),
        ("not a url", "must look like postgresql://host/db"),
    ],
)
async def test_bad_coordinator_url_is_one_line_and_exit_2(
    tmp_path: Path, url: str, message: str
) -> None:
    """A coordinator URL naming no backend: one line naming the problem, exit 2."""
    (tmp_path / "testapp.py").write_text(APP)
    code, out, err = await _command(
        "run", "testapp:setup", "--port", "0", "--coordinator", url, cwd=tmp_path
    )
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert message in err
    assert "--coordinator" in err


async def test_unreachable_coordinator_degrades_and_ready_says_so(
    start_service: StartService,
) -> None:
    """A store that does not answer: the service runs, /health 200, /ready 503, one WARNING."""
    service = await start_service(
        APP, "--coordinator", "postgresql://postgres@127.0.0.1:1/test", "--lease-ttl", "3"
    )
    async with httpx.AsyncClient(timeout=10) as client:
        code, body = await get_json(client, service.url("/health"))
        assert code == 200, body
        code, body = await get_json(client, service.url("/ready"))
        assert code == 503
        assert "coordinator is unreachable" in str(body["reason"])
        code, status = await get_json(client, service.url("/status"))
        cluster = status["cluster"]
        assert isinstance(cluster, dict)
        assert cluster["reachable"] is False
        assert cluster["backend"] == "postgresql"
        tasks = {t["name"]: t for t in status["tasks"]}  # type: ignore[union-attr]
        assert tasks["tick"]["runs"] == 0  # the singleton waits for the store

        async def local_ran() -> bool:
            _, document = await get_json(client, service.url("/status"))
            return any(t["name"] == "local" and t["runs"] > 2 for t in document["tasks"])  # type: ignore[union-attr]

        await poll(local_ran)  # singleton=False tasks keep running
        await asyncio.sleep(2.0)
    code, _ = await service.stop()
    assert code == 0
    warnings = [line for line in service.lines if "unreachable" in line and "WARNING" in line]
    assert len(warnings) == 1, service.output


async def test_cluster_view_on_real_postgresql(start_service: StartService) -> None:
    """On PostgreSQL: /ready 200, the cluster section names this replica, its task and holder."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    cluster = f"svc-{uuid.uuid4().hex[:8]}"
    service = await start_service(
        APP, "--coordinator", PG_DSN, "--cluster", cluster, "--lease-ttl", "3"
    )
    try:
        async with httpx.AsyncClient(timeout=10) as client:

            async def cluster_ran() -> dict[str, object] | None:
                _, document = await get_json(client, service.url("/status"))
                view = document["cluster"]
                assert isinstance(view, dict)
                rows = {t["name"]: t for t in view.get("tasks", [])}
                return view if rows.get("tick", {}).get("runs", 0) >= 3 else None

            view = await poll(cluster_ran)
            assert isinstance(view, dict)
            assert view["cluster"] == cluster
            assert view["reachable"] is True
            (peer,) = view["peers"]
            assert peer["replica"] == view["replica"]
            assert peer["alive"] is True
            assert sorted(peer["tasks"]) == ["local", "tick"]
            code, _ = await get_json(client, service.url("/ready"))
            assert code == 200
            metrics = (await client.get(service.url("/metrics"))).text
            assert 'tickwork_leases_total{event="acquired"}' in metrics
            assert "tickwork_coordinator_ready 1.0" in metrics
        code, _ = await service.stop()
        assert code == 0
    finally:
        connection = await asyncpg.connect(PG_DSN)
        await connection.execute("DELETE FROM tickwork.task WHERE cluster = $1", cluster)
        await connection.execute("DELETE FROM tickwork.replica WHERE cluster = $1", cluster)
        await connection.close()


async def test_forget_removes_an_orphan_and_refuses_a_declared_task(tmp_path: Path) -> None:
    """`tickwork forget` removes a row no live replica declares; a declared one needs --force."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    cluster = f"forget-{uuid.uuid4().hex[:8]}"
    live = PostgresCoordinator(PG_DSN, cluster=cluster)
    await live.start()
    try:
        await live.declare([TaskDecl("kept", 60.0), TaskDecl("gone", 60.0)])
        await live.heartbeat(["kept"])
        base = ("forget", "--coordinator", PG_DSN, "--cluster", cluster)
        code, out, err = await _command(*base, "gone", cwd=tmp_path)
        assert (code, err) == (0, "")
        assert "forgot task 'gone'" in out
        code, _, err = await _command(*base, "kept", cwd=tmp_path)
        assert code == 1
        assert "declared by live replica(s)" in err
        code, _, err = await _command(*base, "nosuch", cwd=tmp_path)
        assert code == 1
        assert "no task 'nosuch'" in err
        assert [t.name for t in (await live.cluster_view()).tasks] == ["kept"]
    finally:
        await live.forget("kept")
        await live.close()


async def test_command_line_coordinator_wins_over_the_apps(start_service: StartService) -> None:
    """An app that supplies a coordinator under --coordinator: the command line's is used."""
    service = await start_service(
        APP_SUPPLIES, "--coordinator", "postgresql://postgres@127.0.0.1:1/test"
    )
    code, _ = await service.stop()
    assert code == 0
    assert any("application gave is not used" in line for line in service.lines), service.output


async def test_a_second_service_on_one_sqlite_store_waits_then_takes_over(
    start_service: StartService, tmp_path: Path
) -> None:
    """Two services on one SQLite store: the second warns once, is not ready, then takes over."""
    url = f"sqlite:///{tmp_path / 'schedule.sqlite3'}"
    first = await start_service(APP, "--coordinator", url, "--lease-ttl", "2")
    second = await start_service(APP, "--coordinator", url, "--lease-ttl", "2")
    async with httpx.AsyncClient(timeout=10) as client:

        async def ready(service: object) -> bool:
            code, _ = await get_json(client, service.url("/ready"))  # type: ignore[attr-defined]
            return code == 200

        await poll(lambda: ready(first))
        await second.wait_for_line("in use by another process", timeout=10)
        assert not await ready(second)
        code, _ = await first.stop()
        assert code == 0
        await poll(lambda: ready(second), timeout=20)
    code, _ = await second.stop()
    assert code == 0
    assert sum("in use by another process" in line for line in second.lines) == 1
