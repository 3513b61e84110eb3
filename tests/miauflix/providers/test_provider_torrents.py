"""Torrent files are accepted only when they parse and their info hash is the expected one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from miauflix.providers import (
    BadResponse,
    HashMismatch,
    NotConfigured,
    NotFound,
    Providers,
    ProviderUnavailable,
    RateLimited,
    TorrentFileFetcher,
)
from miauflix.simulator import Simulator

from .fakes import Handler, RawHttpServer, http_response, make_torrent, replying

pytestmark = pytest.mark.slow

Start = Callable[[Handler], Awaitable[RawHttpServer]]


def torrent_response(data: bytes) -> bytes:
    return http_response(200, data, content_type="application/x-bittorrent")


async def test_direct_url_and_cache_give_the_verified_file(
    providers: Providers, sim: Simulator
) -> None:
    """The simulator's file is accepted from the direct URL, and from the cache by hash alone."""
    movie = next(m for m in sim.catalogue.movies if m.imdb_id and m.sources)
    assert movie.imdb_id is not None
    source = (await providers.yts.search(movie.imdb_id))[0]
    direct = await providers.torrent_files.fetch(source.info_hash, source.download_url)
    cached = await providers.torrent_files.fetch(source.info_hash.upper())
    assert direct.source_url == source.download_url
    assert cached.source_url == providers.torrent_files.cache_url_for(source.info_hash)
    assert cached.source_url.endswith(f"/torrent/{source.info_hash.upper()}.torrent")
    assert direct.info_hash == cached.info_hash == source.info_hash
    assert direct.data == cached.data
    assert direct.data.startswith(b"d")


async def test_wrong_hash_is_a_hash_mismatch(raw_http: Start) -> None:
    """A valid torrent of another info hash raises HashMismatch naming both hashes."""
    data, actual = make_torrent("other.mkv")
    _, expected = make_torrent("wanted.mkv")
    server = await raw_http(replying(torrent_response(data)))
    async with TorrentFileFetcher(server.url, rate_limit=None) as fetcher:
        with pytest.raises(HashMismatch, match=actual) as caught:
            await fetcher.fetch(expected)
    assert (caught.value.expected, caught.value.actual) == (expected, actual)
    assert caught.value.code == "hash_mismatch"


@pytest.mark.parametrize(
    "body",
    [b"<html>Cloudflare</html>", b"d8:announce3:abce", b"d4:infod4:name"],
    ids=["html", "no-info", "truncated"],
)
async def test_not_a_torrent_is_a_bad_response(raw_http: Start, body: bytes) -> None:
    """HTML, a bencoded dict without `info`, or a cut file raises BadResponse."""
    server = await raw_http(replying(torrent_response(body)))
    async with TorrentFileFetcher(server.url, rate_limit=None) as fetcher:
        with pytest.raises(BadResponse, match="not a valid torrent file"):
            await fetcher.fetch("a" * 40)


async def test_direct_url_failure_falls_back_to_the_cache(raw_http: Start) -> None:
    """A 404 from the direct URL is followed by the cache, whose valid file is returned."""
    data, info_hash = make_torrent()
    direct = await raw_http(replying(http_response(404, b"gone")))
    cache = await raw_http(replying(torrent_response(data)))
    async with TorrentFileFetcher(cache.url, rate_limit=None) as fetcher:
        result = await fetcher.fetch(info_hash, f"{direct.url}/torrent/download/x")
    assert result.data == data
    assert result.source_url.startswith(cache.url)
    assert f"GET /torrent/{info_hash.upper()}.torrent " in cache.requests[0]


async def test_the_most_telling_error_wins(raw_http: Start) -> None:
    """A wrong file from the direct URL and a 404 from the cache raise HashMismatch."""
    other, _ = make_torrent("other.mkv")
    _, info_hash = make_torrent()
    direct = await raw_http(replying(torrent_response(other)))
    cache = await raw_http(replying(http_response(404, b"")))
    async with TorrentFileFetcher(cache.url, rate_limit=None) as fetcher:
        with pytest.raises(HashMismatch):
            await fetcher.fetch(info_hash, direct.url + "/f.torrent")


async def test_absent_everywhere_is_not_found(raw_http: Start) -> None:
    """When every source answers 404 the error is NotFound and the status stays ready."""
    cache = await raw_http(replying(http_response(404, b"")))
    async with TorrentFileFetcher(cache.url, rate_limit=None) as fetcher:
        with pytest.raises(NotFound):
            await fetcher.fetch("b" * 40, cache.url + "/direct.torrent")
        assert fetcher.status().status == "ready"


async def test_oversized_torrent_is_refused(raw_http: Start) -> None:
    """A file bigger than max_bytes raises BadResponse."""
    data, info_hash = make_torrent(length=10_000_000)
    server = await raw_http(replying(torrent_response(data)))
    async with TorrentFileFetcher(server.url, max_bytes=len(data) - 1, rate_limit=None) as fetcher:
        with pytest.raises(BadResponse, match="exceeds the limit"):
            await fetcher.fetch(info_hash)


async def test_no_cache_and_no_url_is_not_configured() -> None:
    """Without a cache URL and a direct URL there is nowhere to ask: NotConfigured."""
    async with TorrentFileFetcher("") as fetcher:
        with pytest.raises(NotConfigured, match="TORRENT_CACHE_URL"):
            await fetcher.fetch("c" * 40)


@pytest.mark.parametrize("bad", ["abc", "g" * 40, "a" * 41])
async def test_malformed_hash_raises_value_error(bad: str) -> None:
    """An info hash that is not 40 hex digits raises ValueError showing it."""
    async with TorrentFileFetcher("http://127.0.0.1:1") as fetcher:
        with pytest.raises(ValueError, match=repr(bad)):
            await fetcher.fetch(bad)


@pytest.mark.parametrize("direct", ["ftp://files.test/x.torrent", "http://[bad"])
async def test_unusable_direct_url_falls_back_to_the_cache(raw_http: Start, direct: str) -> None:
    """A direct URL httpx cannot fetch is a provider error, and the cache is asked next."""
    data, info_hash = make_torrent()
    cache = await raw_http(replying(torrent_response(data)))
    async with TorrentFileFetcher(cache.url, rate_limit=None) as fetcher:
        result = await fetcher.fetch(info_hash, direct)
    assert result.source_url.startswith(cache.url)


async def test_redirects_are_followed(raw_http: Start) -> None:
    """A direct URL that redirects (as download links do) yields the file it points to."""
    data, info_hash = make_torrent()
    target = await raw_http(replying(torrent_response(data)))
    moved = http_response(302, b"", headers={"Location": f"{target.url}/file.torrent"})
    direct = await raw_http(replying(moved))
    async with TorrentFileFetcher("", rate_limit=None) as fetcher:
        result = await fetcher.fetch(info_hash, f"{direct.url}/download")
    assert result.data == data
    assert result.source_url == f"{direct.url}/download"


async def test_a_429_holds_the_host_back_until_its_retry_after(raw_http: Start) -> None:
    """After a 429 with `Retry-After: 30`, the next call fails at once without a request."""
    _, info_hash = make_torrent()
    server = await raw_http(replying(http_response(429, headers={"Retry-After": "30"})))
    async with TorrentFileFetcher(server.url, rate_limit=None) as fetcher:
        with pytest.raises(RateLimited) as first:
            await fetcher.fetch(info_hash)
        with pytest.raises(RateLimited, match="held back") as second:
            await fetcher.fetch(info_hash)
    assert first.value.retry_after == 30
    assert second.value.retry_after is not None
    assert 29 <= second.value.retry_after <= 30
    assert len(server.requests) == 1


async def test_a_503_without_retry_after_backs_off_then_recovers(raw_http: Start) -> None:
    """A 503 without `Retry-After` holds the host 1 s; after that the next call is sent."""
    data, info_hash = make_torrent()
    server = await raw_http(replying(http_response(503), torrent_response(data)))
    async with TorrentFileFetcher(server.url, rate_limit=None) as fetcher:
        with pytest.raises(ProviderUnavailable):
            await fetcher.fetch(info_hash)
        with pytest.raises(RateLimited) as held:
            await fetcher.fetch(info_hash)
        assert held.value.retry_after is not None
        assert 0 < held.value.retry_after <= 1
        async with asyncio.timeout(5):
            while True:
                try:
                    found = await fetcher.fetch(info_hash)
                    break
                except RateLimited as error:
                    await asyncio.sleep(error.retry_after or 0.1)
    assert found.info_hash == info_hash
    assert len(server.requests) == 2


async def test_direct_downloads_are_paced_per_host_and_the_cache_is_not(raw_http: Start) -> None:
    """At 2/s, four direct downloads from one host take >= 1 s; four cache ones do not wait."""
    data, info_hash = make_torrent()
    server = await raw_http(replying(torrent_response(data)))
    async with TorrentFileFetcher(f"{server.url}/cache", rate_limit=2) as fetcher:
        started = time.monotonic()
        for _ in range(4):
            await fetcher.fetch(info_hash)
        cache_time = time.monotonic() - started
        started = time.monotonic()
        for _ in range(4):
            await fetcher.fetch_url(f"{server.url}/direct/file.torrent", info_hash)
        direct_time = time.monotonic() - started
    assert cache_time < 0.5
    assert direct_time >= 0.9
