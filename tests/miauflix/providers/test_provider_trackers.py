"""Tracker scrapes over HTTP (BEP 48) and UDP (BEP 15), against the simulator and fakes."""

from __future__ import annotations

import asyncio
import struct
import time
import urllib.parse
from collections.abc import Awaitable, Callable

import bencode2
import pytest

from miauflix.providers import (
    BadResponse,
    NotConfigured,
    Providers,
    ProviderTimeout,
    ProviderUnavailable,
    ScrapeResult,
    TrackerScraper,
)
from miauflix.providers.trackers import scrape_url
from miauflix.simulator import Simulator

from .fakes import (
    SIM_NOW,
    Handler,
    RawHttpServer,
    UdpHandler,
    UdpServer,
    http_response,
    replying,
)

pytestmark = pytest.mark.slow

StartHttp = Callable[[Handler], Awaitable[RawHttpServer]]
StartUdp = Callable[[UdpHandler], Awaitable[UdpServer]]
H1, H2 = "1" * 40, "2" * 40
PROTOCOL_ID = 0x41727101980


def udp_tracker(
    counts: dict[str, tuple[int, int, int]],
    *,
    silent_for: int = 0,
    wrong_tid: bool = False,
    connection_id: int = 0x1234,
) -> UdpHandler:
    """A BEP 15 tracker: ignores the first `silent_for` packets; `wrong_tid` answers off by one."""

    def handle(packet: bytes, server: UdpServer) -> list[bytes]:
        if len(server.packets) <= silent_for:
            return []
        head, action, tid = struct.unpack_from(">QII", packet)
        tid = (tid + 1) % 2**32 if wrong_tid else tid
        if action == 0:
            assert head == PROTOCOL_ID
            return [struct.pack(">IIQ", 0, tid, connection_id)]
        if head != connection_id:
            return [struct.pack(">II", 3, tid) + b"bad connection id"]
        answer = struct.pack(">II", 2, tid)
        for i in range(16, len(packet), 20):
            seeders, completed, leechers = counts.get(packet[i : i + 20].hex(), (0, 0, 0))
            answer += struct.pack(">III", seeders, completed, leechers)
        return [answer]

    return handle


def connects(server: UdpServer) -> int:
    return sum(1 for p in server.packets if struct.unpack_from(">QI", p)[1] == 0)


@pytest.mark.parametrize(
    ("announce", "scrape"),
    [
        ("http://t.test/announce", "http://t.test/scrape"),
        ("http://t.test/x/announce.php?passkey=1", "http://t.test/x/scrape.php?passkey=1"),
        ("http://t.test/announce/x", None),
        ("http://t.test/a", None),
    ],
)
def test_scrape_url_follows_bep_48(announce: str, scrape: str | None) -> None:
    """The last path segment `announce...` becomes `scrape...`; other URLs have no scrape."""
    assert scrape_url(announce) == scrape


@pytest.mark.parametrize("kind", ["http", "udp"])
async def test_scrape_matches_the_swarm(providers: Providers, sim: Simulator, kind: str) -> None:
    """Both simulator trackers report each source's swarm counts exactly."""
    sources = [s for m in sim.catalogue.movies for s in m.sources][:5]
    tracker = sim.http_tracker_url if kind == "http" else sim.udp_tracker_url
    results = await providers.trackers.scrape_tracker(tracker, [s.hex_hash for s in sources])
    for source in sources:
        swarm = source.swarm(SIM_NOW)
        expected = ScrapeResult(swarm.complete, swarm.incomplete, swarm.downloaded, tracker)
        assert results[source.hex_hash.lower()] == expected


async def test_scrape_merges_trackers_keeping_the_most_seeders(
    raw_http: StartHttp, udp_server: StartUdp
) -> None:
    """Per hash the answer with the most seeders wins; a hash nobody knows is absent."""
    http_answer = {
        b"files": {bytes.fromhex(H1): {b"complete": 5, b"incomplete": 1, b"downloaded": 9}}
    }
    http = await raw_http(replying(http_response(200, bencode2.bencode(http_answer))))
    udp = await udp_server(udp_tracker({H1: (3, 7, 2), H2: (8, 1, 4)}))
    trackers = [f"{http.url}/announce", udp.url]
    async with TrackerScraper(trackers, timeout=2, udp_base_timeout=0.1) as scraper:
        results = await scraper.scrape([H1, H2, H2.upper()])
    assert results == {
        H1: ScrapeResult(5, 1, 9, trackers[0]),
        H2: ScrapeResult(8, 4, 1, trackers[1]),
    }
    query = urllib.parse.parse_qs(http.requests[0].split(" ")[1].split("?")[1], encoding="latin-1")
    assert [q.encode("latin-1") for q in query["info_hash"]] == [
        bytes.fromhex(H1),
        bytes.fromhex(H2),
    ]


async def test_silent_udp_tracker_times_out_in_bounded_time(udp_server: StartUdp) -> None:
    """A UDP tracker that never answers gives ProviderTimeout after the overall timeout,
    having retransmitted with fresh transaction ids."""
    udp = await udp_server(lambda packet, server: [])
    async with TrackerScraper([udp.url], timeout=0.5, udp_base_timeout=0.05) as scraper:
        started = time.monotonic()
        with pytest.raises(ProviderTimeout, match=r"within 0\.5 s"):
            await scraper.scrape([H1])
        elapsed = time.monotonic() - started
        status = scraper.status()
    assert 0.4 < elapsed < 1.5
    assert len(udp.packets) >= 3
    assert len({p[12:16] for p in udp.packets}) == len(udp.packets)
    assert status.status == "degraded"


async def test_wrong_transaction_id_is_ignored(udp_server: StartUdp) -> None:
    """Answers with another transaction id are discarded, so the scrape times out."""
    udp = await udp_server(udp_tracker({H1: (1, 1, 1)}, wrong_tid=True))
    async with TrackerScraper([udp.url], timeout=0.4, udp_base_timeout=0.05) as scraper:
        with pytest.raises(ProviderTimeout):
            await scraper.scrape_tracker(udp.url, [H1])


async def test_lost_packets_are_retransmitted(udp_server: StartUdp) -> None:
    """After two lost packets the retransmission gets through and the scrape succeeds."""
    udp = await udp_server(udp_tracker({H1: (4, 6, 5)}, silent_for=2))
    async with TrackerScraper([udp.url], timeout=3, udp_base_timeout=0.05) as scraper:
        results = await scraper.scrape_tracker(udp.url, [H1])
    assert results[H1] == ScrapeResult(4, 5, 6, udp.url)
    assert connects(udp) == 3


async def test_connection_id_is_reused_then_renewed(udp_server: StartUdp) -> None:
    """Two scrapes within the TTL share one connect; after it expires a new connect is made."""
    udp = await udp_server(udp_tracker({H1: (1, 2, 3)}))
    async with TrackerScraper([udp.url], timeout=2, udp_base_timeout=0.1) as scraper:
        await scraper.scrape([H1])
        await scraper.scrape([H1])
        assert connects(udp) == 1
    async with TrackerScraper(
        [udp.url], timeout=2, udp_base_timeout=0.1, udp_connection_ttl=1e-9
    ) as scraper:
        await scraper.scrape([H1])
        await scraper.scrape([H1])
    assert connects(udp) == 3


async def test_udp_error_action_is_a_bad_response(udp_server: StartUdp) -> None:
    """A tracker error message (action 3) raises BadResponse quoting it."""

    def refuse(packet: bytes, server: UdpServer) -> list[bytes]:
        return [struct.pack(">II", 3, struct.unpack_from(">QII", packet)[2]) + b"go away"]

    udp = await udp_server(refuse)
    async with TrackerScraper([udp.url], timeout=1, udp_base_timeout=0.1) as scraper:
        with pytest.raises(BadResponse, match="go away"):
            await scraper.scrape([H1])


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"d14:failure reason6:bannede", "tracker refused: 'banned'"),
        (b"<html>", "not a bencoded dictionary"),
        (b"d5:filesd20:" + bytes.fromhex(H1) + b"d8:completei-1eeee", "must be integers >= 0"),
    ],
    ids=["failure-reason", "html", "negative"],
)
async def test_bad_http_scrapes_are_bad_responses(
    raw_http: StartHttp, body: bytes, match: str
) -> None:
    """A failure reason, a non-bencoded body or negative counts raise BadResponse."""
    http = await raw_http(replying(http_response(200, body, content_type="text/plain")))
    async with TrackerScraper([f"{http.url}/announce"], timeout=1) as scraper:
        with pytest.raises(BadResponse, match=match):
            await scraper.scrape([H1])


async def test_one_tracker_failing_does_not_hide_another(
    raw_http: StartHttp, udp_server: StartUdp
) -> None:
    """One broken tracker: the other's counts are returned and the status is degraded."""
    http = await raw_http(replying(http_response(503, b"")))
    udp = await udp_server(udp_tracker({H1: (2, 0, 1)}))
    async with TrackerScraper(
        [f"{http.url}/announce", udp.url], timeout=1, udp_base_timeout=0.1
    ) as scraper:
        results = await scraper.scrape([H1])
        status = scraper.status()
    assert results[H1].seeders == 2
    assert status.status == "degraded"
    assert status.reason is not None
    assert status.reason.startswith("1 of 2 trackers failing")


async def test_every_tracker_failing_raises_and_becomes_an_error(raw_http: StartHttp) -> None:
    """When every tracker fails the first error is raised; three in a row make it an error."""
    http = await raw_http(replying(http_response(500, b"")))
    async with TrackerScraper([f"{http.url}/announce"], timeout=1) as scraper:
        for _ in range(3):
            with pytest.raises(ProviderUnavailable):
                await scraper.scrape([H1])
        assert scraper.status().status == "error"


async def test_no_trackers_needs_configuration() -> None:
    """Without TRACKERS, scrape raises NotConfigured and the status names the setting."""
    async with TrackerScraper([]) as scraper:
        with pytest.raises(NotConfigured, match="TRACKERS"):
            await scraper.scrape([H1])
        status = scraper.status()
    assert status.status == "needs_configuration"
    assert status.reason == "TRACKERS is empty: scraping is off"


@pytest.mark.parametrize("kind", ["http", "udp"])
async def test_rate_limiter_spaces_scrapes_per_tracker(
    raw_http: StartHttp, udp_server: StartUdp, kind: str
) -> None:
    """With rate_limit=5, ten scrapes of one tracker take at least about one second."""
    if kind == "http":
        answer = {b"files": {bytes.fromhex(H1): {b"complete": 1}}}
        http = await raw_http(replying(http_response(200, bencode2.bencode(answer))))
        tracker = f"{http.url}/announce"
    else:
        udp = await udp_server(udp_tracker({H1: (1, 0, 0)}))
        tracker = udp.url
    async with TrackerScraper([tracker], timeout=5, udp_base_timeout=1, rate_limit=5) as scraper:
        started = time.monotonic()
        async with asyncio.timeout(10):
            answers = await asyncio.gather(
                *(scraper.scrape_tracker(tracker, [H1]) for _ in range(10))
            )
        elapsed = time.monotonic() - started
    assert elapsed >= 0.8
    assert all(a[H1].seeders == 1 for a in answers)
    if kind == "http":
        assert len(http.requests) == 10
    else:
        assert len(udp.packets) - connects(udp) == 10


def test_bad_rate_limit_raises_value_error() -> None:
    """A non-positive rate_limit raises ValueError naming it."""
    with pytest.raises(ValueError, match="rate_limit must be a finite number > 0, got 0"):
        TrackerScraper(["udp://t.test:1/announce"], rate_limit=0)


@pytest.mark.parametrize(
    "tracker", ["ftp://t.test/announce", "udp://t.test/announce", "wss://t.test"]
)
def test_unusable_tracker_urls_raise_value_error(tracker: str) -> None:
    """Another scheme or a UDP URL without port raises ValueError showing the URL."""
    with pytest.raises(ValueError, match=repr(tracker)):
        TrackerScraper([tracker])
