"""`python -m miauflix.simulator` as a real subprocess: printed URLs, signals, bad flags."""

from __future__ import annotations

import asyncio
import signal
import sys

import httpx
import pytest

from miauflix.settings import DEMO_RATES

pytestmark = pytest.mark.slow

NAMES = [
    "TMDB_API_URL",
    "TMDB_API_TOKEN",
    "YTS_API_URL",
    "TORRENT_CACHE_URL",
    "TRACKERS",
    *DEMO_RATES,
]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_cli_prints_urls_and_exits_zero_on_signal(signum: signal.Signals) -> None:
    """The CLI prints NAME=value lines that work, and exits 0 on SIGTERM or SIGINT."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "miauflix.simulator", "--movies", "20", "--shows", "2", "--seed", "3",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        async with asyncio.timeout(30):
            lines = [(await process.stdout.readline()).decode().strip() for _ in NAMES]
        env = dict(line.split("=", 1) for line in lines)
        assert list(env) == NAMES
        http, udp = env["TRACKERS"].split(",")
        assert http.startswith("http://127.0.0.1:")
        assert udp.startswith("udp://127.0.0.1:")
        headers = {"Authorization": f"Bearer {env['TMDB_API_TOKEN']}"}
        async with httpx.AsyncClient(timeout=5.0, headers=headers) as client:
            response = await client.get(f"{env['TMDB_API_URL']}/discover/movie")
        assert response.json()["total_results"] == 20
        process.send_signal(signum)
        async with asyncio.timeout(15):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["--port", "70000"], "--port: must be in [0, 65535], got '70000'"),
        (["--movies", "0"], "--movies: must be >= 1, got '0'"),
        (["--seed", "x"], "--seed: must be an integer, got 'x'"),
    ],
)
async def test_cli_bad_flags_give_one_line_and_exit_2(args: list[str], message: str) -> None:
    """A bad flag prints one error line on stderr and exits with code 2."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "miauflix.simulator", *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(30):
        stdout, stderr = await process.communicate()
    assert process.returncode == 2
    assert stdout == b""
    lines = stderr.decode().splitlines()
    assert len(lines) == 1
    assert message in lines[0]
