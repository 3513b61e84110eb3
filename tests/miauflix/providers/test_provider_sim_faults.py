"""Every client turns each of the simulator's fault knobs into the matching typed error."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import pytest

from miauflix.providers import (
    BadResponse,
    HashMismatch,
    ProviderError,
    Providers,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)
from miauflix.simulator import Simulator

pytestmark = pytest.mark.slow

Call = Callable[[Providers, Simulator], Awaitable[object]]


def _sourced(sim: Simulator) -> tuple[str, str]:
    movie = next(m for m in sim.catalogue.movies if m.imdb_id and m.sources)
    assert movie.imdb_id is not None
    return movie.imdb_id, movie.sources[0].hex_hash


async def _tmdb(p: Providers, sim: Simulator) -> object:
    return await p.tmdb.movie_genres()


async def _yts(p: Providers, sim: Simulator) -> object:
    return await p.yts.search(_sourced(sim)[0])


async def _cache(p: Providers, sim: Simulator) -> object:
    return await p.torrent_files.fetch(_sourced(sim)[1])


async def _http_tracker(p: Providers, sim: Simulator) -> object:
    return await p.trackers.scrape_tracker(sim.http_tracker_url, [_sourced(sim)[1]])


CLIENTS = {"tmdb": _tmdb, "yts": _yts, "torrent_cache": _cache, "http_tracker": _http_tracker}

FAULTS: list[tuple[str, type[ProviderError]]] = [
    ("error_rate", ProviderUnavailable),
    ("rate_limit_rate", RateLimited),
    ("html_rate", BadResponse),
    ("truncate_rate", BadResponse),
    ("hang_rate", ProviderTimeout),
]


@pytest.mark.parametrize(("knob", "error"), FAULTS, ids=[k for k, _ in FAULTS])
@pytest.mark.parametrize("client", list(CLIENTS))
async def test_fault_gives_typed_error(
    providers: Providers, sim: Simulator, client: str, knob: str, error: type[ProviderError]
) -> None:
    """With a fault at rate 1 the call raises its typed error within the timeout."""
    setattr(sim.faults, knob, 1.0)
    # A 429 holds the host back for its Retry-After: 0 lets the recovery call below through.
    sim.faults.retry_after = 0
    started = time.monotonic()
    with pytest.raises(error):
        await CLIENTS[client](providers, sim)
    assert time.monotonic() - started < 3.0
    sim.faults.reset()
    await CLIENTS[client](providers, sim)


async def test_rate_limit_carries_the_simulators_retry_after(
    providers: Providers, sim: Simulator
) -> None:
    """The simulator's Retry-After reaches the caller as `retry_after` seconds."""
    sim.faults.rate_limit_rate = 1.0
    sim.faults.retry_after = 9
    with pytest.raises(RateLimited) as caught:
        await providers.tmdb.movie_genres()
    assert caught.value.retry_after == 9.0


async def test_wrong_hash_from_every_source_is_a_hash_mismatch(
    providers: Providers, sim: Simulator
) -> None:
    """A torrent of another info hash from both the direct URL and the cache: HashMismatch."""
    movie = next(m for m in sim.catalogue.movies if m.imdb_id and m.sources)
    assert movie.imdb_id is not None
    source = (await providers.yts.search(movie.imdb_id))[0]
    sim.faults.wrong_hash_rate = 1.0
    with pytest.raises(HashMismatch) as caught:
        await providers.torrent_files.fetch(source.info_hash, source.download_url)
    assert caught.value.expected == source.info_hash
    assert caught.value.actual != source.info_hash
    assert providers.torrent_files.status().status == "degraded"


async def test_faults_limited_to_one_provider_leave_the_others_ready(
    providers: Providers, sim: Simulator
) -> None:
    """Errors on the YTS routes only: YTS degrades while TMDB stays ready."""
    sim.faults.only = ("/yts",)
    sim.faults.error_rate = 1.0
    await providers.tmdb.movie_genres()
    with pytest.raises(ProviderUnavailable):
        await _yts(providers, sim)
    statuses = providers.statuses()
    assert statuses["tmdb"].status == "ready"
    assert statuses["yts"].status == "degraded"


async def test_udp_drops_become_a_bounded_timeout(providers: Providers, sim: Simulator) -> None:
    """A UDP tracker dropping every packet gives ProviderTimeout after the overall timeout."""
    sim.faults.udp_drop_rate = 1.0
    started = time.monotonic()
    with pytest.raises(ProviderTimeout):
        await providers.trackers.scrape_tracker(sim.udp_tracker_url, [_sourced(sim)[1]])
    assert time.monotonic() - started < 2.5
