"""Fixtures of the service tests: a simulator on a frozen clock, its providers, a fake clock."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from miauflix.db import Database
from miauflix.providers import Providers, build_providers
from miauflix.services import ListSynchronizer, MediaService, SourceService
from miauflix.settings import Settings
from miauflix.simulator import Simulator

from ..._fakes import FakeUtcClock as FakeClock

__all__ = ["SIM_NOW", "FakeClock", "no_sleep"]

# Noon UTC, 2026-03-15: the simulator's changes feed and swarm counts are frozen at this time.
SIM_NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC).timestamp()


async def no_sleep(seconds: float) -> None:
    """Stand-in for `asyncio.sleep` between in-run retries: returns at once."""


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    """A simulator (seed 11: 60 movies, 4 shows) whose clock is frozen at `SIM_NOW`."""
    async with Simulator(seed=11, movies=60, shows=4, clock=lambda: SIM_NOW) as simulator:
        yield simulator


@pytest.fixture
async def providers(sim: Simulator) -> AsyncIterator[Providers]:
    """Every provider client pointed at the simulator, with a 1 s request timeout."""
    settings = Settings.from_env({**sim.environment(), "MIAUFLIX_HTTP_TIMEOUT": "1"})
    async with build_providers(settings, udp_base_timeout=0.1) as bundle:
        yield bundle


@pytest.fixture
def clock() -> FakeClock:
    """The services' clock, starting at the simulator's frozen time."""
    return FakeClock(datetime.fromtimestamp(SIM_NOW, UTC))


@pytest.fixture
def lists(database: Database, providers: Providers, clock: FakeClock) -> ListSynchronizer:
    """A list synchronizer with no waits between in-run retries."""
    return ListSynchronizer(database, providers.tmdb, clock=clock, sleep=no_sleep)


@pytest.fixture
def media(database: Database, providers: Providers, clock: FakeClock) -> MediaService:
    """A media service on the fake clock, with a seeded random generator and no retry waits."""
    return MediaService(
        database, providers.tmdb, clock=clock, rng=random.Random(1), retry_delays=()
    )


@pytest.fixture
def sources(database: Database, providers: Providers, clock: FakeClock) -> SourceService:
    """A source service on the fake clock, with a seeded random generator."""
    return SourceService(
        database,
        directories=providers.directories,
        torrent_files=providers.torrent_files,
        trackers=providers.trackers,
        clock=clock,
        rng=random.Random(1),
    )
