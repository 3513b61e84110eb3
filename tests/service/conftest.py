"""Fixtures for the service tests: a real ``tickwork run`` process on a free loopback port."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest

VENV_BIN = Path(sys.executable).parent
TICKWORK = str(VENV_BIN / "tickwork")
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

    async def wait_started(self) -> int:
        """Wait for the "Serving ... on http://127.0.0.1:PORT" line and return the port."""
        match = await self.wait_for_line(SERVING.pattern)
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


StartService = Callable[..., Awaitable[ServiceProcess]]


@pytest.fixture
async def start_service(tmp_path: Path) -> AsyncIterator[StartService]:
    """Start ``tickwork run`` on an app module written into a temporary directory."""
    started: list[ServiceProcess] = []

    async def start(
        app_source: str | None,
        *args: str,
        target: str = "testapp:setup",
        env: dict[str, str] | None = None,
        command: tuple[str, ...] = (TICKWORK,),
        wait: bool = True,
    ) -> ServiceProcess:
        if app_source is not None:
            (tmp_path / "testapp.py").write_text(textwrap.dedent(app_source))
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("TICKWORK_")}
        full_env.update(env or {})
        proc = await asyncio.create_subprocess_exec(
            *command,
            "run",
            target,
            "--port",
            "0",
            *args,
            cwd=tmp_path,
            env=full_env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        service = ServiceProcess(proc)
        started.append(service)
        if wait:
            await service.wait_started()
        return service

    yield start
    for service in started:
        service.kill()
        await service.wait_exit()


async def get_json(
    client: httpx.AsyncClient, url: str, **kwargs: object
) -> tuple[int, dict[str, object]]:
    """GET ``url`` and return the status code and JSON body."""
    response = await client.get(url, **kwargs)  # type: ignore[arg-type]
    return response.status_code, response.json()


async def poll(
    check: Callable[[], Awaitable[object]], timeout: float = 10.0, every: float = 0.15
) -> object:
    """Call ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                result = await check()
                if result:
                    return result
                await asyncio.sleep(every)
    except TimeoutError:
        pytest.fail(f"condition not met within {timeout} s")
