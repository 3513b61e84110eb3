"""Fixtures for the provider simulator's tests: a running simulator on a fixed clock, a client."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import httpx
import pytest

from miauflix.simulator import Simulator

# A fixed "now" for the time-dependent answers (changes feed, swarm counts): noon UTC.
NOW = dt.datetime(2026, 3, 15, 12, 0, tzinfo=dt.UTC).timestamp()


@pytest.fixture
def now() -> float:
    """The simulator fixture's clock reading (epoch seconds, noon UTC on 2026-03-15)."""
    return NOW


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    """A running simulator (seed 7, 120 movies, 6 shows) whose clock is stuck at `NOW`."""
    async with Simulator(seed=7, movies=120, shows=6, clock=lambda: NOW) as simulator:
        yield simulator


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """A plain httpx client with a 5-second timeout."""
    async with httpx.AsyncClient(timeout=5.0) as http:
        yield http


@pytest.fixture
async def tmdb(sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client for the simulated TMDB, sending the bearer token."""
    headers = {"Authorization": f"Bearer {sim.tmdb_token}"}
    async with httpx.AsyncClient(base_url=sim.tmdb_url, headers=headers, timeout=5.0) as http:
        yield http
