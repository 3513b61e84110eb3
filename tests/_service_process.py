"""A real ``tickwork run`` process for tests: start it, read its stderr, wait for lines, stop it.

Used by the service tests (``tests/service/conftest.py``) and the miauflix end-to-end test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path

import pytest

TICKWORK = str(Path(sys.executable).parent / "tickwork")
SERVING = re.compile(r"on http://127\.0\.0\.1:(\d+)")


class ServiceProcess:
    """A ``tickwork run`` subprocess whose stderr lines are collected as they arrive."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.port: int | None = None
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        async for raw in self.proc.stderr:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))
            self._changed.set()
        self._changed.set()

    @property
    def output(self) -> str:
        """Every stderr line so far."""
        return "\n".join(self.lines)

    async def wait_for_line(self, pattern: str, timeout: float = 15.0) -> re.Match[str]:
        """Wait until a stderr line matches ``pattern``; fail with the output on timeout."""
        regex = re.compile(pattern)
        try:
            async with asyncio.timeout(timeout):
                while True:
                    for line in self.lines:
                        match = regex.search(line)
                        if match:
                            return match
                    if self._reader.done():
                        pytest.fail(f"process ended before {pattern!r}:\n{self.output}")
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            pytest.fail(f"no line matched {pattern!r} within {timeout} s:\n{self.output}")

    async def wait_started(self, timeout: float = 15.0, serving: re.Pattern[str] = SERVING) -> int:
        """Wait for the "Serving ... on http://127.0.0.1:PORT" line and return the port.

        Args:
            timeout: Seconds to wait for the line.
            serving: The line to wait for; its first group is the port.
        """
        match = await self.wait_for_line(serving.pattern, timeout)
        self.port = int(match.group(1))
        return self.port

    def url(self, path: str) -> str:
        """Return the URL of ``path`` on the service."""
        assert self.port is not None, "call wait_started() first"
        return f"http://127.0.0.1:{self.port}{path}"

    async def wait_exit(self, timeout: float = 15.0) -> int:
        """Wait for the process to end (and its stderr to be read); return its exit code."""
        try:
            async with asyncio.timeout(timeout):
                code = await self.proc.wait()
                await self._reader
        except TimeoutError:
            pytest.fail(f"process still running after {timeout} s:\n{self.output}")
        return code

    async def stop(self, signum: int = signal.SIGTERM, timeout: float = 15.0) -> tuple[int, float]:
        """Send ``signum`` and wait for the exit; return (exit code, seconds it took)."""
        started = time.monotonic()
        self.proc.send_signal(signum)
        code = await self.wait_exit(timeout)
        return code, time.monotonic() - started

    def kill(self) -> None:
        """Kill the process if it is still running."""
        if self.proc.returncode is None:
            self.proc.kill()


Spawn = Callable[..., Awaitable[ServiceProcess]]


def environment(drop: str | tuple[str, ...], extra: Mapping[str, str]) -> dict[str, str]:
    """``os.environ`` without the variables whose names start with ``drop``, plus ``extra``.

    Dropping keeps variables of the developer's shell from changing what the service does.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(extra)
    return env


@contextlib.asynccontextmanager
async def spawner(cwd: Path) -> AsyncIterator[Spawn]:
    """Yield ``spawn(*args, env=..., command=(TICKWORK,))``, which starts ``command run *args``.

    Every process runs in ``cwd`` with stdin and stdout closed and stderr collected; the ones
    still running on exit are killed and awaited.
    """
    started: list[ServiceProcess] = []

    async def spawn(
        *args: str, env: Mapping[str, str], command: tuple[str, ...] = (TICKWORK,)
    ) -> ServiceProcess:
        proc = await asyncio.create_subprocess_exec(
            *command,
            "run",
            *args,
            cwd=cwd,
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        service = ServiceProcess(proc)
        started.append(service)
        return service

    try:
        yield spawn
    finally:
        for service in started:
            service.kill()
            await service.wait_exit()
