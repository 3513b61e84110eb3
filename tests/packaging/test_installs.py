"""The built wheels install offline into fresh venvs and work there, each with what it needs."""

from __future__ import annotations

import asyncio
import re
import signal
import textwrap
from pathlib import Path

import httpx
import pytest

from .._service_process import environment, spawner
from .conftest import REPO, Venv

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

HINT = "pip install 'tickwork[service]'"


def test_tickwork_alone_installs_nothing_else(core_venv: Venv) -> None:
    """Installing the tickwork wheel into an empty venv installs tickwork and nothing else."""
    assert core_venv.distributions() == ["tickwork"]


def test_readme_library_example_runs_without_extras(core_venv: Venv, tmp_path: Path) -> None:
    """The README's library example runs with tickwork alone and prints each task's status."""
    block = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), re.S)[0]
    (tmp_path / "example.py").write_text(block)
    result = core_venv.run("python", "example.py", cwd=tmp_path, timeout=30)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "refreshing 6 pages"
    assert any(line.startswith("refresh scheduled ") for line in lines)
    assert any(line.startswith("vacuum scheduled ") for line in lines)


def test_virtual_time_helpers_work_without_extras(core_venv: Venv, tmp_path: Path) -> None:
    """tickwork.testing runs the README's virtual-time example with tickwork alone."""
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    (block,) = [b for b in blocks if "wait_for_runs" in b]
    (tmp_path / "virtual.py").write_text(block + "\nprint(starts)\n")
    result = core_venv.run("python", "virtual.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[0.0, 3600.0, 7200.0]"


def test_service_is_not_importable_without_its_extra(core_venv: Venv, tmp_path: Path) -> None:
    """Importing tickwork.service without the extra raises one error that names the extra."""
    result = core_venv.run("python", "-c", "import tickwork.service", cwd=tmp_path)
    assert result.returncode == 1
    last = result.stderr.splitlines()[-1]
    assert last.startswith(
        "tickwork._extras.MissingExtraError: tickwork.service needs the [service]"
    )
    assert HINT in last


@pytest.mark.parametrize(
    "command", [("tickwork", "run", "x:setup"), ("python", "-m", "tickwork", "status")]
)
def test_command_without_the_service_extra_prints_one_line(
    core_venv: Venv, tmp_path: Path, command: tuple[str, ...]
) -> None:
    """`tickwork` and `python -m tickwork` without the extra say what to install, exit 2."""
    result = core_venv.run(*command, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tickwork: error: ")
    assert HINT in lines[0]


APP = """
    import asyncio

    async def tick() -> None:
        await asyncio.sleep(0)

    def setup(scheduler):
        scheduler.schedule_task("tick", 0.5, tick)
"""


async def test_service_extra_serves_health_and_stops_on_sigterm(
    service_venv: Venv, tmp_path: Path
) -> None:
    """With tickwork[service] alone, `tickwork run` serves /health and exits 0 on SIGTERM."""
    assert "miauflix" not in service_venv.distributions()
    (tmp_path / "tinyapp.py").write_text(textwrap.dedent(APP))
    async with spawner(tmp_path) as spawn:
        service = await spawn(
            "tinyapp:setup",
            "--port",
            "0",
            env=environment("TICKWORK_", {}),
            command=(str(service_venv.bin / "tickwork"),),
        )
        await service.wait_started(timeout=30)
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(service.url("/health"))
        assert response.status_code == 200
        code, _ = await service.stop(signal.SIGTERM)
        assert code == 0, service.output


SEVEN = {
    "refreshLists",
    "syncMovies",
    "syncIncompleteSeasons",
    "movieSourceSearch",
    "dataFileSearch",
    "updateSourcesStats",
    "resyncMovieSources",
}


async def test_miauflix_wheel_runs_the_demo_service(miauflix_venv: Venv, tmp_path: Path) -> None:
    """The miauflix wheel, with tickwork from the local build, runs its seven tasks in demo mode."""
    assert {"tickwork", "miauflix"} <= set(miauflix_venv.distributions())
    drop = ("TICKWORK_", "MIAUFLIX_", "DATABASE_URL", "TMDB_", "YTS_", "TORRENT_CACHE_URL")
    env = environment((*drop, "TRACKERS", "DISABLE_BACKGROUND_TASKS"), {})
    env["MIAUFLIX_DATA_DIR"] = str(tmp_path / "data")
    async with spawner(tmp_path) as spawn:
        service = await spawn(
            "miauflix.app:setup",
            "--port",
            "0",
            env=env,
            command=(str(miauflix_venv.bin / "tickwork"),),
        )
        # The simulator logs its own "on http://127.0.0.1:PORT" first.
        await service.wait_started(timeout=60, serving=re.compile(r"Serving \S+ on \S+:(\d+)"))
        async with httpx.AsyncClient(timeout=10) as client:
            names: set[str] = set()
            async with asyncio.timeout(30):
                while names != SEVEN:
                    response = await client.get(service.url("/status"))
                    names = {task["name"] for task in response.json()["tasks"]}
                    await asyncio.sleep(0.2)
        code, _ = await service.stop(signal.SIGTERM, timeout=30)
        assert code == 0, service.output


@pytest.mark.parametrize(
    ("url", "extra"), [("postgresql://db/app", "postgres"), ("redis://cache:6379/0", "redis")]
)
def test_coordinator_without_its_extra_is_one_line_and_exit_2(
    service_venv: Venv, tmp_path: Path, url: str, extra: str
) -> None:
    """`--coordinator` naming a backend whose extra is missing: one line naming it, exit 2."""
    result = service_venv.run("tickwork", "run", "app:setup", "--coordinator", url, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"pip install 'tickwork[{extra}]'" in lines[0]
