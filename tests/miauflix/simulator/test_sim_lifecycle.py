"""Starting and stopping the simulator: URLs, idempotent close, clean shutdown under a hang."""

from __future__ import annotations

import asyncio
import logging
import re
import socket

import httpx
import pytest

from miauflix.simulator import Faults, Simulator

pytestmark = pytest.mark.slow


async def test_urls_follow_the_architecture_contract() -> None:
    """Every URL points at the bound loopback ports, with the documented paths."""
    async with Simulator(seed=1, movies=5, shows=1) as sim:
        base = f"http://127.0.0.1:{sim.port}"
        assert sim.tmdb_url == f"{base}/tmdb/3"
        assert sim.yts_url == f"{base}/yts"
        assert sim.torrent_cache_url == f"{base}/cache"
        assert sim.http_tracker_url == f"{base}/tracker/announce"
        assert sim.udp_tracker_url == f"udp://127.0.0.1:{sim.udp_port}/announce"
        assert sim.port > 0
        assert sim.udp_port > 0
        assert sim.environment()["TRACKERS"] == f"{sim.http_tracker_url},{sim.udp_tracker_url}"
        assert re.fullmatch(r"sim-[0-9a-f]{32}", sim.tmdb_token)


async def test_urls_need_a_running_simulator() -> None:
    """Before start and after close the URL properties raise; a second start raises too."""
    sim = Simulator(seed=1, movies=5, shows=1)
    with pytest.raises(RuntimeError, match="not running"):
        _ = sim.tmdb_url
    await sim.start()
    try:
        with pytest.raises(RuntimeError, match="already running"):
            await sim.start()
    finally:
        await sim.aclose()
    await sim.aclose()
    with pytest.raises(RuntimeError, match="not running"):
        _ = sim.udp_tracker_url


async def test_no_task_is_left_after_exit() -> None:
    """Leaving the context leaves no asyncio task behind and closes both ports."""
    before = asyncio.all_tasks()
    async with Simulator(seed=1, movies=5, shows=1) as sim, httpx.AsyncClient() as client:
        assert (await client.get(f"{sim.yts_url}/api/v2/list_movies.json")).status_code == 200
        port = sim.port
    assert asyncio.all_tasks() == before
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))


async def test_a_taken_port_raises_oserror() -> None:
    """Binding a port already in use raises OSError from start() and leaves nothing running."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        sim = Simulator(seed=1, movies=5, shows=1, port=taken.getsockname()[1])
        with pytest.raises(OSError, match="in use"):
            await sim.start()
    with pytest.raises(ValueError, match="70000"):
        Simulator(port=70000)


class _HangSeen(logging.Handler):
    """Sets an event when the simulator logs that it is holding a request (a hang fault)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.event = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("fault hang"):
            self.event.set()


async def test_shutdown_with_a_hanging_request_in_flight() -> None:
    """A request hanging on purpose does not hold up aclose(); the client gets a 503 promptly."""
    logger = logging.getLogger("miauflix.simulator")
    seen = _HangSeen()
    logger.addHandler(seen)
    level = logger.level
    logger.setLevel(logging.DEBUG)
    sim = Simulator(seed=1, movies=5, shows=1, faults=Faults(hang_rate=1.0))
    try:
        await sim.start()
        async with httpx.AsyncClient(timeout=30.0) as client:
            request = asyncio.create_task(client.get(f"{sim.yts_url}/api/v2/list_movies.json"))
            async with asyncio.timeout(5):
                await seen.event.wait()
            async with asyncio.timeout(5):
                await sim.aclose()
                response = await request
        assert response.status_code == 503
    finally:
        await sim.aclose()
        logger.removeHandler(seen)
        logger.setLevel(level)


async def test_a_closed_simulator_can_start_again() -> None:
    """After aclose(), start() serves again with the same catalogue and token."""
    sim = Simulator(seed=2, movies=5, shows=0)
    async with httpx.AsyncClient(timeout=5.0) as client:
        for _ in range(2):
            await sim.start()
            try:
                url = f"{sim.tmdb_url}/genre/tv/list"
                response = await client.get(url, params={"api_key": sim.tmdb_token})
                assert response.status_code == 200
            finally:
                await sim.aclose()
