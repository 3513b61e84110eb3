"""`setup`'s storage: setup errors that name the setting to fix, and the demo simulator's ports."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from miauflix._storage import SIMULATOR_STATE, start_demo_simulator
from miauflix.app import setup
from miauflix.settings import Settings, SettingsError
from miauflix.simulator import Faults
from tickwork import Scheduler


def _settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env(
        {"MIAUFLIX_DATA_DIR": str(tmp_path / "data"), "DISABLE_BACKGROUND_TASKS": "1", **env}
    )


async def test_a_data_dir_that_is_a_file_names_the_variable(tmp_path: Path) -> None:
    """`MIAUFLIX_DATA_DIR` pointing at a file fails setup with the variable and the path."""
    (tmp_path / "data").write_text("not a directory")
    async with Scheduler() as scheduler:
        with pytest.raises(SettingsError, match="MIAUFLIX_DATA_DIR") as error:
            await setup(scheduler, settings=_settings(tmp_path))
    assert str(tmp_path / "data") in str(error.value)
    assert "it is a file" in str(error.value)


async def test_a_missing_data_dir_is_created(tmp_path: Path) -> None:
    """A fresh clone has no data directory: setup creates it, nested folders included."""
    settings = _settings(tmp_path, MIAUFLIX_DATA_DIR=str(tmp_path / "a" / "b"))
    async with Scheduler() as scheduler, await setup(scheduler, settings=settings):
        assert (tmp_path / "a" / "b" / "miauflix.sqlite3").is_file()


async def test_a_sqlite_url_in_a_missing_folder_is_an_error_not_a_new_tree(
    tmp_path: Path,
) -> None:
    """A `DATABASE_URL` SQLite file whose folder is missing names the variable; nothing is made."""
    url = f"sqlite:///{tmp_path / 'typo' / 'db.sqlite3'}"
    async with Scheduler() as scheduler:
        with pytest.raises(SettingsError, match="DATABASE_URL names a SQLite file") as error:
            await setup(scheduler, settings=_settings(tmp_path, DATABASE_URL=url))
    assert str(tmp_path / "typo") in str(error.value)
    assert not (tmp_path / "typo").exists()


async def test_an_unreachable_database_names_the_variable_not_the_password(
    tmp_path: Path,
) -> None:
    """A refused PostgreSQL connection fails setup naming `DATABASE_URL`, password hidden."""
    url = "postgresql://miauflix:s3cret@127.0.0.1:1/miauflix"
    async with Scheduler() as scheduler:
        with pytest.raises(SettingsError, match="DATABASE_URL: cannot open the database") as error:
            await setup(scheduler, settings=_settings(tmp_path, DATABASE_URL=url))
    message = str(error.value)
    assert "127.0.0.1:1" in message
    assert "ConnectionRefusedError" in message
    assert "s3cret" not in message


async def test_migrations_log_no_routine_info_lines(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Alembic's INFO lines (plugins, each migration step) stay out of the default log."""
    with caplog.at_level(logging.INFO):
        async with Scheduler() as scheduler, await setup(scheduler, settings=_settings(tmp_path)):
            pass
    assert "upgrading the database schema to head" in caplog.text
    assert [r.getMessage() for r in caplog.records if r.name.startswith("alembic")] == []


async def test_demo_simulator_reuses_its_ports_after_a_restart(tmp_path: Path) -> None:
    """The ports kept in the data directory are bound again at the next start."""
    first = await start_demo_simulator(tmp_path, Faults())
    ports = (first.port, first.udp_port)
    await first.aclose()
    assert json.loads((tmp_path / SIMULATOR_STATE).read_text()) == {
        "port": ports[0],
        "udp_port": ports[1],
    }
    second = await start_demo_simulator(tmp_path, Faults())
    try:
        assert (second.port, second.udp_port) == ports
    finally:
        await second.aclose()


async def test_two_demo_simulators_on_one_host_both_start(tmp_path: Path) -> None:
    """When the kept ports are taken, the simulator takes free ones and remembers those."""
    first = await start_demo_simulator(tmp_path, Faults())
    try:
        second = await start_demo_simulator(tmp_path, Faults())
        try:
            assert second.port != first.port
            state = json.loads((tmp_path / SIMULATOR_STATE).read_text())
            assert state == {"port": second.port, "udp_port": second.udp_port}
        finally:
            await second.aclose()
    finally:
        await first.aclose()


@pytest.mark.parametrize("content", ["{", '{"port": "x", "udp_port": 1}', '{"port": 0}'])
async def test_an_unusable_port_file_is_ignored(tmp_path: Path, content: str) -> None:
    """A damaged `simulator.json` (a kill mid-write by another tool) means free ports."""
    (tmp_path / SIMULATOR_STATE).write_text(content)
    simulator = await start_demo_simulator(tmp_path, Faults())
    try:
        assert simulator.port > 0
    finally:
        await simulator.aclose()
