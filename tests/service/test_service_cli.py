"""The command line: bad input gives one clear line, ``tickwork status`` prints the table."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import sys
from pathlib import Path

import httpx
import pytest

from tickwork.service.cli import main as cli_main

from .._service_process import TICKWORK, environment, spawner
from .conftest import StartService, free_port

pytestmark = pytest.mark.slow

SETUP_RAISES = """
def setup(scheduler):
    raise RuntimeError("database URL is missing")
"""

IMPORT_FAILS = """
import not_a_module_anywhere_42

def setup(scheduler):
    pass
"""

NOT_CALLABLE = """
setup = 42
"""


async def _run(
    args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TICKWORK_")}
    full_env.update(env or {})
    proc = await asyncio.create_subprocess_exec(
        TICKWORK,
        *args,
        cwd=cwd,
        env=full_env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


BAD_INPUT = {
    "unknown-module": (["run", "nosuchmodule_xyz:setup"], {}, None, "nosuchmodule_xyz"),
    "unknown-attribute": (["run", "testapp:nosuch"], {}, SETUP_RAISES, "'nosuch'"),
    "malformed-target": (["run", "testapp"], {}, SETUP_RAISES, "MODULE:CALLABLE"),
    "not-callable": (["run", "testapp:setup"], {}, NOT_CALLABLE, "not callable"),
    "import-error-inside": (["run", "testapp:setup"], {}, IMPORT_FAILS, "not_a_module_anywhere_42"),
    "setup-raises": (
        ["run", "testapp:setup", "--port", "0"],
        {},
        SETUP_RAISES,
        "RuntimeError: database URL is missing",
    ),
    "bad-port-flag": (["run", "testapp:setup", "--port", "abc"], {}, SETUP_RAISES, "--port"),
    "port-out-of-range": (["run", "testapp:setup", "--port", "70000"], {}, SETUP_RAISES, "70000"),
    "bad-port-env": (["run", "testapp:setup"], {"TICKWORK_PORT": "x1"}, SETUP_RAISES, "x1"),
    "negative-grace": (["run", "testapp:setup", "--grace", "-1"], {}, SETUP_RAISES, "-1"),
    "nan-grace": (["run", "testapp:setup", "--grace", "nan"], {}, SETUP_RAISES, "nan"),
    "bad-log-format": (["run", "testapp:setup", "--log-format", "xml"], {}, SETUP_RAISES, "xml"),
    "bad-log-level-env": (["run", "x:y"], {"TICKWORK_LOG_LEVEL": "loud"}, None, "loud"),
    "unknown-flag": (["run", "testapp:setup", "--colour"], {}, SETUP_RAISES, "--colour"),
    "allowed-host-with-port": (
        ["run", "testapp:setup", "--allowed-host", "ops.example:8080"],
        {},
        SETUP_RAISES,
        "'ops.example:8080' is not a host name or IP address",
    ),
}


@pytest.mark.parametrize(
    ("args", "env", "app", "expected"), BAD_INPUT.values(), ids=BAD_INPUT.keys()
)
async def test_bad_input_prints_one_line(
    tmp_path: Path, args: list[str], env: dict[str, str], app: str | None, expected: str
) -> None:
    """Each kind of bad input exits non-zero with one stderr line naming it, no traceback."""
    if app is not None:
        (tmp_path / "testapp.py").write_text(app)
    code, out, err = await _run(args, tmp_path, env)
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("tickwork: error: ")
    assert expected in lines[0]
    assert "Traceback" not in err + out


async def test_port_in_use_prints_one_line(tmp_path: Path) -> None:
    """A port already in use is named in one stderr line and a non-zero exit."""
    (tmp_path / "testapp.py").write_text(SETUP_RAISES)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _, err = await _run(["run", "testapp:setup", "--port", str(port)], tmp_path)
    assert code == 1
    assert (
        err.strip() == f"tickwork: error: cannot listen on 127.0.0.1:{port}: address already in use"
    )


HUNG_APP = """
import asyncio
import sys

async def hung():
    print("hung started", flush=True, file=sys.stderr)
    await asyncio.Event().wait()

def setup(scheduler):
    scheduler.schedule_task("hung", 60, hung)
"""


async def test_env_vars_configure_run_and_status(tmp_path: Path) -> None:
    """Without flags, ``run`` and ``status`` take every option from its TICKWORK_* variable."""
    (tmp_path / "testapp.py").write_text(HUNG_APP)
    port = free_port("127.0.0.2")
    url = f"http://127.0.0.2:{port}"
    env = {
        "TICKWORK_HOST": "127.0.0.2",
        "TICKWORK_PORT": str(port),
        "TICKWORK_GRACE": "0.3",
        "TICKWORK_TOKEN": "env-token",
        "TICKWORK_LOG_FORMAT": "json",
        "TICKWORK_LOG_LEVEL": "DEBUG",
    }
    async with spawner(tmp_path) as spawn:
        service = await spawn("testapp:setup", env=environment("TICKWORK_", env))
        assert (
            await service.wait_started(serving=re.compile(r"on http://127\.0\.0\.2:(\d+)")) == port
        )
        await service.wait_for_line("hung started")
        code, out, err = await _run(
            ["status"], tmp_path, {"TICKWORK_URL": url, "TICKWORK_TOKEN": "env-token"}
        )
        assert code == 0, err
        assert out.splitlines()[2].split()[:2] == ["hung", "running"]
        code, _, err = await _run(["status"], tmp_path, {"TICKWORK_URL": url})
        assert code == 1
        assert "answered 401 Unauthorized" in err
        code, elapsed = await service.stop()
    assert code == 0, service.output
    # TICKWORK_GRACE=0.3 rather than the default 5 s cut the hung task short.
    assert elapsed < 2.0, service.output
    records = [json.loads(line) for line in service.lines if line != "hung started"]
    assert any(r["level"] == "DEBUG" for r in records)
    assert "Shutdown complete: finished: none; cancelled: hung" in service.output


async def test_env_var_fallback_and_flag_wins(start_service: StartService, tmp_path: Path) -> None:
    """Options read TICKWORK_* variables, and a flag overrides its variable."""
    env_port = free_port()
    service = await start_service(
        HUNG_APP,
        "--host",
        "127.0.0.1",
        "--grace",
        "0.3",
        "--token",
        "flag-token",
        "--log-format",
        "json",
        env={
            "TICKWORK_HOST": "127.0.0.2",
            "TICKWORK_PORT": str(env_port),
            "TICKWORK_GRACE": "30",
            "TICKWORK_TOKEN": "env-token",
            "TICKWORK_LOG_FORMAT": "text",
            "TICKWORK_LOG_LEVEL": "DEBUG",
        },
    )
    # The fixture passes --port 0 and waits for "on http://127.0.0.1:PORT".
    assert service.port != env_port
    await service.wait_for_line("hung started")
    async with httpx.AsyncClient(timeout=5) as client:
        for token, expected in (("env-token", 401), ("flag-token", 200)):
            response = await client.get(
                service.url("/status"), headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == expected, token
    code, out, err = await _run(
        ["status", "--url", service.url(""), "--token", "flag-token"],
        tmp_path,
        {"TICKWORK_URL": f"http://127.0.0.1:{free_port()}", "TICKWORK_TOKEN": "env-token"},
    )
    assert code == 0, err
    assert out.splitlines()[2].split()[0] == "hung"
    code, elapsed = await service.stop()
    assert code == 0, service.output
    # --grace 0.3 rather than TICKWORK_GRACE=30 cut the hung task short.
    assert elapsed < 2.0, service.output
    records = [json.loads(line) for line in service.lines if line != "hung started"]
    assert any(r["level"] == "DEBUG" for r in records)


STATUS_APP = """
import asyncio

async def fine():
    await asyncio.sleep(0)

def broken():
    raise KeyError("missing row")

def setup(scheduler):
    scheduler.schedule_task("fine", 0.2, fine)
    scheduler.schedule_task("broken", 0.2, broken)
"""


COLUMNS = ("NAME", "STATE", "RUNS", "FAILURES", "LAST DURATION", "NEXT RUN", "LAST ERROR")


def table_rows(lines: list[str]) -> dict[str, dict[str, str]]:
    """Split the task rows of a ``tickwork status`` table (header on ``lines[1]``) into cells."""
    starts = [lines[1].index(column) for column in COLUMNS]
    rows: dict[str, dict[str, str]] = {}
    for line in lines[2:]:
        if not line.strip():
            break
        cells = [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
        rows[cells[0]] = dict(zip(COLUMNS, cells, strict=True))
    return rows


async def test_status_command_prints_table(start_service: StartService, tmp_path: Path) -> None:
    """``tickwork status`` prints a row per task with state, runs, failures, timings and error."""
    service = await start_service(STATUS_APP, env={"TICKWORK_TOKEN": "tok"})
    await service.wait_for_line(r"Serving")
    url = service.url("")
    async with asyncio.timeout(15):
        while True:
            code, out, err = await _run(
                ["status", "--url", url], tmp_path, {"TICKWORK_TOKEN": "tok"}
            )
            assert code == 0, err
            rows = table_rows(out.splitlines())
            # A snapshot taken while a task runs has no next run: wait for both to be idle.
            idle = all(row["STATE"] == "scheduled" for row in rows.values())
            if rows["broken"]["FAILURES"] != "0" and idle:
                break
            await asyncio.sleep(0.2)
    lines = out.splitlines()
    assert lines[0].startswith("tickwork running, up ")
    assert re.split(r"\s{2,}", lines[1]) == list(COLUMNS)
    assert set(rows) == {"fine", "broken"}
    for row in rows.values():
        # Sub-second durations and waits (interval 0.2 s) are shown in milliseconds.
        assert re.fullmatch(r"\d+ms", row["LAST DURATION"]), row
        assert re.fullmatch(r"in \d+ms", row["NEXT RUN"]), row
        assert int(row["NEXT RUN"].removeprefix("in ").removesuffix("ms")) <= 200, row
    assert rows["fine"]["LAST ERROR"] == "-"
    assert rows["broken"]["LAST ERROR"] == "KeyError: 'missing row'"
    assert re.fullmatch(r"(\d+) \(\1 in a row\)", rows["broken"]["FAILURES"]), rows["broken"]
    code, out, _ = await _run(["status", "--url", url, "--json", "--token", "tok"], tmp_path)
    assert code == 0
    assert [t["name"] for t in json.loads(out)["tasks"]] == ["fine", "broken"]
    code, _, err = await _run(["status", "--url", url], tmp_path)
    assert code == 1
    assert err.strip().endswith("answered 401 Unauthorized: pass --token or set TICKWORK_TOKEN")
    await service.stop()


async def test_status_command_unreachable(tmp_path: Path) -> None:
    """``tickwork status`` against nothing prints one line naming the URL and exits 1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, _, err = await _run(["status", "--url", f"http://127.0.0.1:{port}"], tmp_path)
    assert code == 1
    assert err.startswith(f"tickwork: error: cannot reach http://127.0.0.1:{port}/status")
    assert len(err.strip().splitlines()) == 1


def test_python_m_tickwork_help() -> None:
    """``python -m tickwork --help`` runs the same command line."""
    import subprocess

    result = subprocess.run(
        [sys.executable, "-m", "tickwork", "run", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0
    assert "MODULE:CALLABLE" in result.stdout
    assert "--grace" in result.stdout


# A bad value for each option that reads a TICKWORK_* variable (TICKWORK_TOKEN takes any text).
BAD_VARIABLES = {
    "TICKWORK_HOST": ("run", "no-such-host.invalid"),
    "TICKWORK_PORT": ("run", "abc"),
    "TICKWORK_GRACE": ("run", "-1"),
    "TICKWORK_LOG_LEVEL": ("run", "loud"),
    "TICKWORK_LOG_FORMAT": ("run", "xml"),
    "TICKWORK_FORWARDED_ALLOW_IPS": ("run", "proxy.example"),
    "TICKWORK_MAX_CONNECTIONS": ("run", "0"),
    "TICKWORK_HEADER_TIMEOUT": ("run", "0"),
    "TICKWORK_URL": ("status", "ftp://host"),
    "TICKWORK_ALLOWED_HOSTS": ("run", "ops.example,http://evil.example"),
}


@pytest.mark.parametrize(
    ("variable", "command", "value"),
    [(name, *case) for name, case in BAD_VARIABLES.items()],
    ids=BAD_VARIABLES.keys(),
)
def test_bad_variable_is_named_with_its_value(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    command: str,
    value: str,
) -> None:
    """A bad value read from a TICKWORK_* variable exits 2 with one line naming both."""
    for name in [n for n in os.environ if n.startswith("TICKWORK_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv(variable, value)
    with pytest.raises(SystemExit) as exited:
        cli_main([command, "testapp:setup"] if command == "run" else [command])
    assert exited.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"tickwork: error: invalid value in environment variable {variable}")
    assert f"{variable}={value!r}" in lines[0]


async def test_cron_preview_prints_the_next_fire_times_in_the_zone_and_utc(tmp_path: Path) -> None:
    """``tickwork cron-preview EXPR --tz ZONE -n 3`` prints three local times with UTC."""
    code, out, err = await _run(
        ["cron-preview", "30 2 * * *", "--tz", "Europe/Rome", "-n", "3"], tmp_path
    )
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 3
    for line in lines:
        assert re.fullmatch(r"\d{4}-\d\d-\d\d 0[23]:[03]0 CES?T \(0[01]:[03]0 UTC\)", line), line


async def test_cron_preview_names_the_bad_field_in_one_line(tmp_path: Path) -> None:
    """An invalid expression is one line naming the field and value, exit 2."""
    code, _, err = await _run(["cron-preview", "61 * * * *"], tmp_path)
    assert code == 2
    assert err.strip() == (
        "tickwork: error: Invalid value for EXPRESSION/--tz: minute: 61 is out of range 0-59"
    )


def test_status_table_lists_calendar_tasks_with_local_and_utc_next_run() -> None:
    """``tickwork status`` adds a line per calendar task: expression, zone, next run."""
    from tickwork.service.cli import _render_table

    tasks = [
        {
            "name": "nightly",
            "state": "scheduled",
            "runs": 0,
            "interval": None,
            "schedule": {"kind": "cron", "expression": "0 3 * * *", "tz": "Europe/Rome"},
            "skipped": 1,
            "next_run_at": 1_767_232_800.0,  # 2026-01-01 02:00 UTC
        }
    ]
    text = _render_table({"state": "running", "now": 1_767_225_600.0, "uptime": 1.0}, tasks)
    assert text.splitlines()[-1] == (
        "cron nightly: 0 3 * * * (Europe/Rome), next 2026-01-01 03:00 CET (02:00 UTC), skipped 1"
    )


def test_status_table_says_who_paused_a_task_and_why_one_is_snoozed() -> None:
    from tickwork.service.cli import _render_table

    base = {"runs": 1, "interval": 60.0, "next_run_at": None}
    tasks = [
        {**base, "name": "a", "state": "paused", "paused_at": 1000.0, "paused_by": "alice"},
        {**base, "name": "b", "state": "snoozed", "last_outcome_reason": "tmdb unavailable"},
    ]
    text = _render_table({"state": "running", "now": 1090.0, "uptime": 1.0}, tasks)
    assert text.splitlines()[-2:] == [
        "paused a: by alice, 90.0s ago",
        "snoozed b: tmdb unavailable",
    ]


ACTION_APP = """
import asyncio

async def nightly():
    await asyncio.sleep(0)

def setup(scheduler):
    scheduler.schedule_task("nightly", 3600, nightly)
"""


async def test_pause_resume_trigger_commands(start_service: StartService, tmp_path: Path) -> None:
    """``tickwork pause|trigger|resume NAME`` print one line naming the task and its state."""
    service = await start_service(ACTION_APP, env={"TICKWORK_TOKEN": "tok"})
    env = {"TICKWORK_URL": service.url(""), "TICKWORK_TOKEN": "tok"}
    code, out, err = await _run(["pause", "nightly", "--by", "alice@laptop"], tmp_path, env)
    assert (code, out, err) == (0, "paused task 'nightly': now paused\n", "")
    code, out, _ = await _run(["status", "--json"], tmp_path, env)
    (task,) = json.loads(out)["tasks"]
    assert task["paused_by"] == "alice@laptop (127.0.0.1)"
    code, out, err = await _run(["trigger", "nightly"], tmp_path, env)
    assert code == 0, err
    # Right after the request the run may be about to start, under way, or already done.
    assert re.fullmatch(
        r"triggered task 'nightly': now (scheduled, a run is requested|running|paused)\n", out
    ), out
    await service.wait_for_line(r"Task nightly triggered by \S+@\S+ \(127\.0\.0\.1\)")
    code, out, err = await _run(["resume", "nightly"], tmp_path, env)
    assert code == 0, err
    assert out == "resumed task 'nightly': now scheduled\n"
    await service.wait_for_line(r"INFO .*tickwork\.audit: action=resume task='nightly'")
    await service.stop()


async def test_action_commands_fail_in_one_line(
    start_service: StartService, tmp_path: Path
) -> None:
    """An unknown task, a missing token, and actions disabled: one line each, exit 1."""
    service = await start_service(ACTION_APP, env={"TICKWORK_TOKEN": "tok"})
    url = service.url("")
    cases = [
        (["pause", "no such task", "--token", "tok"], f"no task 'no such task' at {url}"),
        (["pause", "nightly"], "pause 'nightly' refused (401 Unauthorized): pass --token or set"),
    ]
    for args, expected in cases:
        code, out, err = await _run([*args, "--url", url], tmp_path)
        assert code == 1, err
        assert out == ""
        (line,) = err.splitlines()
        assert line.startswith("tickwork: error: " + expected), line
    await service.stop()
    open_service = await start_service(ACTION_APP, "--host", "0.0.0.0", wait=False)
    port = await open_service.wait_started(serving=re.compile(r"on http://127\.0\.0\.1:(\d+) "))
    code, _, err = await _run(["trigger", "nightly", "--url", f"http://127.0.0.1:{port}"], tmp_path)
    assert code == 1
    assert err == (
        "tickwork: error: trigger 'nightly' refused (403 actions_disabled): "
        "actions are disabled: no token and bound to 0.0.0.0\n"
    )
