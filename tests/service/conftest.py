"""Fixtures for the service tests: a real ``tickwork run`` process on a free loopback port."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from .._service_process import TICKWORK, ServiceProcess, environment, spawner

StartService = Callable[..., Awaitable[ServiceProcess]]


@pytest.fixture
async def start_service(tmp_path: Path) -> AsyncIterator[StartService]:
    """Start ``tickwork run`` on an app module written into a temporary directory."""
    async with spawner(tmp_path) as spawn:

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
            service = await spawn(
                target,
                "--port",
                "0",
                *args,
                env=environment("TICKWORK_", env or {}),
                command=command,
            )
            if wait:
                await service.wait_started()
            return service

        yield start


def free_port(host: str = "127.0.0.1") -> int:
    """Return a port of ``host`` that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


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


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan and yield a client talking to it in process (ASGI transport)."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client
