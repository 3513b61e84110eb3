"""What `setup` checks and keeps on disk: the data directory, the database, the demo ports.

Every failure here is a setup error that names the setting to fix (`SettingsError`):

- `MIAUFLIX_DATA_DIR` is created when missing (a fresh clone has none); a path that is a
  file, or a directory that cannot be created or written, is an error.
- A `DATABASE_URL` SQLite file whose folder does not exist is an error, not a silently
  created tree (a typo would hide the data somewhere else).
- A database that cannot be reached is an error naming `DATABASE_URL` (or
  `MIAUFLIX_DATA_DIR` for the embedded one), with the URL shown without its password.

On SQLite one process serves a data directory: `lock_data_dir` takes an exclusive `flock`
on `miauflix.lock` in it before anything else (the simulator's ports included), and a second
process fails at once with one line naming the holder's pid. The kernel drops the lock when
the holder exits, `kill -9` included, so a stale file never blocks a restart.

Demo mode keeps the simulator's ports in `simulator.json` in the data directory and asks for
them again at the next start, so the direct download URLs stored from the simulator's
directory stay valid across restarts; when a port is taken (another demo service on this
host), the simulator takes free ones and the file is updated.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
from pathlib import Path

from sqlalchemy.engine import make_url

from miauflix.db import Database, open_database
from miauflix.settings import Settings, SettingsError
from miauflix.simulator import Faults, Simulator

__all__ = [
    "DataDirLock",
    "lock_data_dir",
    "open_configured_database",
    "prepare_data_dir",
    "start_demo_simulator",
]

logger = logging.getLogger("miauflix.app")

SIMULATOR_STATE = "simulator.json"
"""The file in the data directory that keeps the demo simulator's ports."""


LOCK_FILE = "miauflix.lock"
"""The file in the data directory that the serving process holds locked (SQLite only)."""


class DataDirLock:
    """The exclusive lock of one data directory; `release()` (or the process's exit) ends it."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        """Unlock and close the lock file (idempotent); the file stays, with the last pid."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor drops the flock


def lock_data_dir(path: Path) -> DataDirLock:
    """Take the data directory's exclusive lock, or fail naming the process that holds it.

    Args:
        path: The prepared data directory.

    Returns:
        The lock, held until `release()` or the process exits.

    Raises:
        SettingsError: Another process holds it: the message names its pid and says to use
            PostgreSQL to run several replicas.
    """
    lock_path = path / LOCK_FILE
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise SettingsError(
            f"MIAUFLIX_DATA_DIR {str(path)!r} is in use by another miauflix process (pid "
            f"{holder}, lock {str(lock_path)!r}); SQLite serves one replica: stop that "
            "process, use another MIAUFLIX_DATA_DIR, or set DATABASE_URL=postgresql://... to "
            "run several"
        ) from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    return DataDirLock(lock_path, fd)


def prepare_data_dir(path: Path) -> Path:
    """Create the data directory when missing and check that it is a writable directory.

    Args:
        path: `Settings.data_dir`.

    Returns:
        `path`.

    Raises:
        SettingsError: The path is a file, or cannot be created or written; the message
            names `MIAUFLIX_DATA_DIR` and shows the path.
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = "it is a file" if path.is_file() else (exc.strerror or str(exc))
        raise SettingsError(
            f"MIAUFLIX_DATA_DIR must be a directory miauflix can create and write, got "
            f"{str(path)!r}: {reason}"
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise SettingsError(
            f"MIAUFLIX_DATA_DIR must be a directory miauflix can write, got {str(path)!r}: "
            "permission denied"
        )
    return path


async def open_configured_database(settings: Settings) -> Database:
    """Open `settings.resolved_database_url`, with errors that name the setting to fix.

    The embedded database's folder is the data directory (the caller prepares it); a
    `DATABASE_URL` SQLite file's folder must exist.

    Raises:
        SettingsError: The SQLite folder is missing, or the database cannot be reached or
            opened; the message names `DATABASE_URL` (or `MIAUFLIX_DATA_DIR`), shows the URL
            without its password and the underlying error.
    """
    url = settings.resolved_database_url
    variable = "DATABASE_URL" if settings.database_url else "MIAUFLIX_DATA_DIR"
    shown = make_url(url).render_as_string(hide_password=True)
    try:
        return await open_database(url, create_directory=False)
    except FileNotFoundError as exc:
        raise SettingsError(
            f"{variable} names a SQLite file in a folder that does not exist, got {shown!r}: "
            f"{exc}; create the folder or fix the path"
        ) from None
    except Exception as exc:
        # Refused or timed-out connections (OSError, TimeoutError) and the drivers' own errors
        # (a rejected password, an unknown database) share no narrower base.
        raise SettingsError(
            f"{variable}: cannot open the database {shown!r}: {type(exc).__name__}: {exc}"
        ) from exc


async def start_demo_simulator(data_dir: Path, faults: Faults) -> Simulator:
    """Start the demo simulator on the ports it had last time when they are free.

    Args:
        data_dir: The prepared data directory (holds `simulator.json`).
        faults: The simulator's fault knobs.

    Returns:
        The running simulator; its ports are written back to `simulator.json`.

    Raises:
        OSError: Not even free ports could be bound.
    """
    state = data_dir / SIMULATOR_STATE
    port, udp_port = await asyncio.to_thread(_read_ports, state)
    simulator = Simulator(faults=faults, port=port, udp_port=udp_port)
    try:
        await simulator.start()
    except OSError as exc:
        if (port, udp_port) == (0, 0):
            raise
        logger.info(
            "demo mode: the simulator's previous ports %d/%d are taken (%s); using free ones",
            port,
            udp_port,
            exc.strerror or exc,
        )
        simulator = Simulator(faults=faults)
        await simulator.start()
    try:
        await asyncio.to_thread(_write_ports, state, simulator.port, simulator.udp_port)
    except OSError as exc:
        logger.warning("demo mode: cannot keep the simulator's ports in %s: %s", state, exc)
    return simulator


def _read_ports(state: Path) -> tuple[int, int]:
    try:
        document = json.loads(state.read_text(encoding="utf-8"))
        port, udp_port = document["port"], document["udp_port"]
    except FileNotFoundError:
        return 0, 0
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.info("demo mode: ignoring %s (%s)", state, exc)
        return 0, 0
    if all(
        isinstance(p, int) and not isinstance(p, bool) and 0 < p < 65536 for p in (port, udp_port)
    ):
        return port, udp_port
    logger.info("demo mode: ignoring %s (ports out of range: %r)", state, document)
    return 0, 0


def _write_ports(state: Path, port: int, udp_port: int) -> None:
    partial = state.with_name(state.name + ".tmp")
    partial.write_text(json.dumps({"port": port, "udp_port": udp_port}) + "\n", encoding="utf-8")
    # Atomic: a kill mid-write leaves the previous file or the new one, never half of one.
    os.replace(partial, state)
