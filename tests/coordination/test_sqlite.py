"""The durable single-replica store: due times, failure counts and pauses survive a restart."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from tickwork import Scheduler
from tickwork.coordination import Busy, CoordinatorError, Grant, TaskDecl, from_url
from tickwork.coordination.sqlite import SQLiteCoordinator
from tickwork.testing import run, wait_until


def _store(path: Path) -> SQLiteCoordinator:
    loop = asyncio.get_running_loop()
    # The store's clock follows the virtual loop, as the wall clock would follow real time.
    return SQLiteCoordinator(path, cluster="app", ttl=5.0, clock=lambda: 1e9 + loop.time())


def test_an_hourly_task_that_just_ran_does_not_run_again_after_a_restart(tmp_path: Path) -> None:
    """Ran at 0, restarted at 600 s: the next run is at 3600 s, not at the restart."""
    starts: list[float] = []

    async def job() -> None:
        starts.append(asyncio.get_running_loop().time())

    async def scenario() -> None:
        first = Scheduler(coordinator=_store(tmp_path / "s.sqlite3"))
        first.schedule_task("hourly", 3600.0, job)
        await wait_until(lambda: starts, timeout=5)
        await asyncio.sleep(600)
        await first.shutdown()
        second = Scheduler(coordinator=_store(tmp_path / "s.sqlite3"))
        second.schedule_task("hourly", 3600.0, job)  # run_immediately=True: the row wins
        await asyncio.sleep(2000)
        assert len(starts) == 1
        await wait_until(lambda: len(starts) == 2, timeout=2000)
        await second.shutdown()

    run(scenario())
    assert starts[0] == 0.0
    assert 3600.0 <= starts[1] <= 3600.1


def test_a_failure_count_survives_a_restart(tmp_path: Path) -> None:
    """Three failures before a restart: the first failure after it is the fourth in a row."""

    async def job() -> None:
        raise RuntimeError("down")

    async def scenario() -> int:
        first = Scheduler(coordinator=_store(tmp_path / "s.sqlite3"))
        first.schedule_task("t", 1.0, job, max_backoff=600)
        await wait_until(lambda: first.task_status("t").consecutive_failures >= 3, timeout=100)
        await first.shutdown()
        second = Scheduler(coordinator=_store(tmp_path / "s.sqlite3"))
        second.schedule_task("t", 1.0, job, max_backoff=600)
        await wait_until(lambda: second.task_status("t").runs >= 1, timeout=100)
        failures = second.task_status("t").consecutive_failures
        await second.shutdown()
        return failures

    assert run(scenario()) == 4


async def test_a_second_process_on_the_file_is_refused_with_one_line(tmp_path: Path) -> None:
    """While one coordinator holds the file, another's start fails naming the holder's pid."""
    import os

    path = tmp_path / "s.sqlite3"
    holder = SQLiteCoordinator(path)
    await holder.start()
    other = SQLiteCoordinator(path)
    with pytest.raises(CoordinatorError, match=rf"in use by another process \(pid {os.getpid()}\)"):
        await other.start()
    await holder.close()
    await other.start()  # free again
    await other.declare([TaskDecl("t", 1.0)])
    assert isinstance(await other.acquire("t"), Grant)
    await other.close()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///data/s.sqlite3", Path("data/s.sqlite3")),
        ("sqlite:////var/lib/app/s.sqlite3", Path("/var/lib/app/s.sqlite3")),
    ],
)
def test_sqlite_urls_name_relative_and_absolute_files(url: str, expected: Path) -> None:
    """sqlite:///relative and sqlite:////absolute, as SQLAlchemy spells them."""
    coordinator = from_url(url, cluster="c")
    assert isinstance(coordinator, SQLiteCoordinator)
    assert coordinator.path == expected


async def test_a_pause_survives_a_restart(tmp_path: Path) -> None:
    """Paused, closed and reopened: the task is still paused, by the same author."""
    first = SQLiteCoordinator(tmp_path / "s.sqlite3")
    await first.start()
    await first.declare([TaskDecl("t", 1.0)])
    await first.set_paused("t", True, by="alice")
    await first.close()
    second = SQLiteCoordinator(tmp_path / "s.sqlite3")
    await second.start()
    busy = await second.acquire("t")
    assert isinstance(busy, Busy)
    assert busy.paused
    assert busy.paused_by == "alice"
    await second.close()


async def test_a_version_1_file_is_migrated_keeping_its_rows(tmp_path: Path) -> None:
    """A file written before pauses had an author gains the columns; its due times stay."""
    from tickwork.coordination.sqlite import _SCHEMA

    path = tmp_path / "s.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(_SCHEMA)  # version 1, as tickwork wrote it before the migration
    old.execute(
        "INSERT INTO task (cluster, task, interval_s, next_due) VALUES ('default', 't', 60, 1e12)"
    )
    old.commit()
    old.close()
    coordinator = SQLiteCoordinator(path)
    await coordinator.start()
    busy = await coordinator.acquire("t")
    assert isinstance(busy, Busy)
    assert busy.wait > 3600  # the row's far due time, kept
    control = await coordinator.set_paused("t", True, by="alice")
    assert control is not None
    assert control.paused_by == "alice"
    await coordinator.close()
    check = sqlite3.connect(path)
    assert check.execute("SELECT value FROM meta WHERE key = 'version'").fetchone() == ("2",)
    check.close()


async def test_a_file_from_a_newer_tickwork_is_refused(tmp_path: Path) -> None:
    """A schema version above this tickwork's: start() fails naming both versions."""
    path = tmp_path / "s.sqlite3"
    first = SQLiteCoordinator(path)
    await first.start()
    await first.close()
    newer = sqlite3.connect(path)
    newer.execute("UPDATE meta SET value = '99' WHERE key = 'version'")
    newer.commit()
    newer.close()
    with pytest.raises(CoordinatorError, match=r"version 99, newer than this tickwork's 2"):
        await SQLiteCoordinator(path).start()
    again = SQLiteCoordinator(path)  # the refused start released the file's lock
    with pytest.raises(CoordinatorError, match="version 99"):
        await again.start()
