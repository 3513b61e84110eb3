"""Tracker statistics: BitTorrent scrape of seeders, leechers and completed downloads.

HTTP trackers are scraped per BEP 48 (the announce URL's last path segment `announce...`
becomes `scrape...`, one `info_hash` parameter per hash, a bencoded answer decoded with
bencode2); UDP trackers per BEP 15 (see `miauflix.providers._udp`). `TrackerScraper.scrape`
asks every tracker at once and keeps, per hash, the answer with the most seeders. Each tracker
has its own rate limiter (`rate_limit` scrape requests per second), so a slow or large scrape of
one tracker never holds back another.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import bencode2
import httpx

from miauflix.providers._client import _ProviderClient
from miauflix.providers._http import _Body, _check_positive, _HttpEndpoint
from miauflix.providers._shape import ShapeError
from miauflix.providers._status import ProviderStatus, _Health
from miauflix.providers._udp import UdpTrackerClient
from miauflix.providers.directories import check_info_hash
from miauflix.providers.errors import (
    BadResponse,
    NotConfigured,
    ProviderError,
    ProviderTimeout,
)

__all__ = ["ScrapeResult", "TrackerScraper", "scrape_url"]

logger = logging.getLogger("miauflix.providers")

# Hashes per HTTP scrape request: keeps the URL well under common 8 KiB limits.
_HTTP_CHUNK = 50


@dataclass(frozen=True, slots=True)
class ScrapeResult:
    """A tracker's counts for one info hash.

    Attributes:
        seeders: Peers with the complete content (`complete`).
        leechers: Peers still downloading (`incomplete`).
        completed: Downloads completed so far (`downloaded`).
        tracker: The announce URL of the tracker that gave these counts.
    """

    seeders: int
    leechers: int
    completed: int
    tracker: str


def scrape_url(announce_url: str) -> str | None:
    """The BEP 48 scrape URL of an HTTP(S) announce URL, or None when it has no scrape.

    `http://t.example/announce` -> `http://t.example/scrape`; `.../x/announce.php?k=1` ->
    `.../x/scrape.php?k=1`; a last path segment not starting with `announce` has no scrape.
    """
    parts = urllib.parse.urlsplit(announce_url)
    head, _, last = parts.path.rpartition("/")
    if not last.startswith("announce"):
        return None
    path = f"{head}/scrape{last[len('announce') :]}"
    return urllib.parse.urlunsplit(parts._replace(path=path))


class TrackerScraper(_ProviderClient):
    """Scrapes HTTP and UDP trackers.

    Args:
        trackers: Announce URLs (`TRACKERS`): `http://`, `https://` or `udp://`.
        timeout: Overall seconds for one tracker's scrape (all UDP retransmissions included).
        udp_base_timeout: First UDP retransmission timeout; attempt n waits
            `udp_base_timeout * 2**n` (BEP 15 says 15 s; lower it in tests).
        udp_connection_ttl: Seconds a UDP connection id is reused (BEP 15: 60).
        max_bytes: Largest HTTP scrape answer accepted.
        rate_limit: Scrape requests per second to each tracker (every tracker has its own
            limiter; bursts up to the rate), None for no limit. One request carries up to 50
            hashes over HTTP, 74 over UDP. Over HTTP the wait does not count against
            `timeout`; over UDP it does, `timeout` bounding the whole exchange.
        transport: An httpx transport to use instead of the network (tests).

    Raises:
        ValueError: A tracker URL has another scheme, a UDP URL has no port, or a number is
            not positive.
    """

    name = "trackers"

    def __init__(
        self,
        trackers: Sequence[str],
        *,
        timeout: float = 10.0,
        udp_base_timeout: float = 15.0,
        udp_connection_ttl: float = 60.0,
        max_bytes: int = 1024 * 1024,
        rate_limit: float | None = 2.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        for name, value in (
            ("timeout", timeout),
            ("udp_base_timeout", udp_base_timeout),
            ("udp_connection_ttl", udp_connection_ttl),
        ):
            if not isinstance(value, int | float) or not 0 < value < float("inf"):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if rate_limit is not None:
            _check_positive("rate_limit", rate_limit)
        self.trackers = tuple(trackers)
        self.timeout = float(timeout)
        self.udp_base_timeout = float(udp_base_timeout)
        self.udp_connection_ttl = float(udp_connection_ttl)
        self.max_bytes = max_bytes
        self.rate_limit = rate_limit
        self._transport = transport
        self._health: dict[str, _Health] = {}
        self._http: dict[str, _HttpEndpoint] = {}
        self._udp: dict[str, UdpTrackerClient] = {}
        for tracker in self.trackers:
            self._client_for(tracker)

    def _describe(self) -> str:
        return f"{len(self.trackers)} trackers"

    async def aclose(self) -> None:
        """Close every connection pool and UDP socket."""
        for udp in self._udp.values():
            udp.close()
        for endpoint in self._http.values():
            await endpoint.aclose()

    def _client_for(self, tracker: str) -> _HttpEndpoint | UdpTrackerClient:
        if tracker in self._http:
            return self._http[tracker]
        if tracker in self._udp:
            return self._udp[tracker]
        parts = urllib.parse.urlsplit(tracker)
        provider = f"tracker {parts.scheme}://{parts.netloc}"
        health = self._health.setdefault(tracker, _Health(provider))
        if parts.scheme == "udp":
            udp = UdpTrackerClient(
                tracker,
                provider,
                base_timeout=self.udp_base_timeout,
                connection_ttl=self.udp_connection_ttl,
                rate_limit=self.rate_limit,
            )
            self._udp[tracker] = udp
            return udp
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"tracker URL must be http://, https:// or udp://, got {tracker!r}")
        endpoint = _HttpEndpoint(
            provider,
            f"{parts.scheme}://{parts.netloc}",
            timeout=self.timeout,
            max_bytes=self.max_bytes,
            rate_limit=self.rate_limit,
            health=health,
            transport=self._transport,
        )
        self._http[tracker] = endpoint
        return endpoint

    def status(self) -> ProviderStatus:
        """`ready` when every tracker answers, `degraded` when some fail, `error` when all do.

        `needs_configuration` (naming `TRACKERS`) when no tracker is configured (`TRACKERS=`).
        `details` has one entry per tracker under `trackers`.
        """
        per_tracker = {t: self._health[t].status() for t in self.trackers}
        details: dict[str, Any] = {"trackers": {t: s.to_dict() for t, s in per_tracker.items()}}
        if not per_tracker:
            return ProviderStatus(
                "needs_configuration", "TRACKERS is empty: scraping is off", details
            )
        failing = {t: s for t, s in per_tracker.items() if s.status != "ready"}
        if not failing:
            return ProviderStatus("ready", None, details)
        first = next(iter(failing.values()))
        reason = f"{len(failing)} of {len(per_tracker)} trackers failing: {first.reason}"
        if len(failing) == len(per_tracker) and all(s.status == "error" for s in failing.values()):
            return ProviderStatus("error", reason, details)
        return ProviderStatus("degraded", reason, details)

    async def scrape(
        self, info_hashes: Iterable[str], trackers: Sequence[str] | None = None
    ) -> dict[str, ScrapeResult]:
        """Scrape every tracker at once; per hash, keep the answer with the most seeders.

        Args:
            info_hashes: Info hashes, 40 hex digits (any case).
            trackers: Announce URLs to ask instead of the configured ones.

        Returns:
            Lowercase info hash -> counts; a hash no tracker knows is absent.

        Raises:
            ValueError: A hash or tracker URL is malformed.
            NotConfigured: No tracker to ask (`TRACKERS`).
            ProviderError: Every tracker failed; the first tracker's error is raised.
        """
        hashes = list(dict.fromkeys(check_info_hash(h) for h in info_hashes))
        trackers = self.trackers if trackers is None else tuple(trackers)
        if not trackers:
            raise NotConfigured(self.name, "/scrape", "TRACKERS")
        for tracker in trackers:
            self._client_for(tracker)
        if not hashes:
            return {}
        answers = await asyncio.gather(*(self._scrape_or_error(t, hashes) for t in trackers))
        merged: dict[str, ScrapeResult] = {}
        errors = [a for a in answers if isinstance(a, ProviderError)]
        if len(errors) == len(answers):
            raise errors[0]
        for answer in answers:
            if isinstance(answer, ProviderError):
                continue
            for info_hash, result in answer.items():
                best = merged.get(info_hash)
                if best is None or (result.seeders, result.leechers) > (
                    best.seeders,
                    best.leechers,
                ):
                    merged[info_hash] = result
        return merged

    async def _scrape_or_error(
        self, tracker: str, hashes: list[str]
    ) -> dict[str, ScrapeResult] | ProviderError:
        try:
            return await self.scrape_tracker(tracker, hashes)
        except ProviderError as error:
            logger.warning("scrape of %s failed: %s", tracker, error)
            return error

    async def scrape_tracker(
        self, tracker: str, info_hashes: Iterable[str]
    ) -> dict[str, ScrapeResult]:
        """Scrape one tracker.

        Returns:
            Lowercase info hash -> counts, for the hashes the tracker knows.

        Raises:
            ValueError: A hash or the tracker URL is malformed.
            ProviderTimeout: The tracker did not answer within `timeout` seconds.
            ProviderError: Any other failure (see `miauflix.providers.errors`).
        """
        hashes = list(dict.fromkeys(check_info_hash(h) for h in info_hashes))
        client = self._client_for(tracker)
        if isinstance(client, UdpTrackerClient):
            return await self._scrape_udp(tracker, client, hashes)
        return await self._scrape_http(tracker, client, hashes)

    async def _scrape_udp(
        self, tracker: str, client: UdpTrackerClient, hashes: list[str]
    ) -> dict[str, ScrapeResult]:
        health = self._health[tracker]
        try:
            try:
                async with asyncio.timeout(self.timeout):
                    counts = await client.scrape(hashes)
            except TimeoutError:
                raise ProviderTimeout(client.provider, client.path, self.timeout) from None
        except ProviderError as error:
            health.failure(error)
            raise
        health.success()
        return {
            h: ScrapeResult(
                seeders=seeders, leechers=leechers, completed=completed, tracker=tracker
            )
            for h, (seeders, completed, leechers) in zip(hashes, counts, strict=True)
        }

    async def _scrape_http(
        self, tracker: str, endpoint: _HttpEndpoint, hashes: list[str]
    ) -> dict[str, ScrapeResult]:
        url = scrape_url(tracker)
        if url is None:
            error = BadResponse(
                endpoint.provider,
                urllib.parse.urlsplit(tracker).path,
                "the announce URL has no scrape URL (BEP 48: last segment must be 'announce')",
            )
            endpoint.health.failure(error)
            raise error
        results: dict[str, ScrapeResult] = {}
        for start in range(0, len(hashes), _HTTP_CHUNK):
            chunk = hashes[start : start + _HTTP_CHUNK]
            wanted = set(chunk)
            query = "&".join(
                "info_hash=" + urllib.parse.quote_from_bytes(bytes.fromhex(h)) for h in chunk
            )
            separator = "&" if "?" in url else "?"
            results.update(
                await endpoint.get(
                    f"{url}{separator}{query}",
                    functools.partial(_parse_http_scrape, tracker=tracker, wanted=wanted),
                )
            )
        return results


def _parse_http_scrape(body: _Body, *, tracker: str, wanted: set[str]) -> dict[str, ScrapeResult]:
    try:
        document = bencode2.bdecode(body.content)
    except ValueError as exc:
        raise ShapeError(f"not a bencoded dictionary: {exc}") from None
    if not isinstance(document, dict):
        raise ShapeError("not a bencoded dictionary")
    reason = document.get(b"failure reason")
    if reason is not None:
        raise ShapeError(f"tracker refused: {bytes(reason).decode('utf-8', 'replace')[:200]!r}")
    files = document.get(b"files", {})
    if not isinstance(files, dict):
        raise ShapeError("'files' is not a dictionary")
    results: dict[str, ScrapeResult] = {}
    for key, stats in files.items():
        if not isinstance(key, bytes) or len(key) != 20 or not isinstance(stats, dict):
            raise ShapeError("'files' must map 20-byte info hashes to dictionaries")
        info_hash = key.hex()
        if info_hash not in wanted:
            continue
        counts = [stats.get(k, 0) for k in (b"complete", b"incomplete", b"downloaded")]
        if not all(isinstance(c, int) and c >= 0 for c in counts):
            raise ShapeError(f"counts of {info_hash} must be integers >= 0, got {counts!r}")
        results[info_hash] = ScrapeResult(counts[0], counts[1], counts[2], tracker)
    return results
