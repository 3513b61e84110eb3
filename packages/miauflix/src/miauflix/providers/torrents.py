"""Torrent data files: download a `.torrent` and accept it only when its info hash matches.

Two places can have a file: the direct URL a directory gave, and a torrent cache addressed by
info hash (itorrents-style `GET <TORRENT_CACHE_URL>/torrent/<HASH>.torrent`, uppercase hex).
A file is accepted only if torf parses it as a valid torrent and the SHA-1 of its bencoded
`info` dictionary equals the expected hash.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

import httpx
import torf

from miauflix.providers._client import _EndpointClient
from miauflix.providers._http import _Body
from miauflix.providers.directories import check_info_hash
from miauflix.providers.errors import (
    BadResponse,
    HashMismatch,
    NotConfigured,
    NotFound,
    ProviderError,
)

__all__ = ["TorrentFile", "TorrentFileFetcher"]

logger = logging.getLogger("miauflix.providers")


@dataclass(frozen=True, slots=True)
class TorrentFile:
    """A verified torrent file.

    Attributes:
        info_hash: Its info hash, 40 lowercase hex digits (equal to the one asked for).
        data: The file's bytes, exactly as downloaded.
        source_url: Where it came from.
        name: The torrent's name (`info.name`), or None.
        size_bytes: Total size of the content it describes, or None.
    """

    info_hash: str
    data: bytes
    source_url: str
    name: str | None
    size_bytes: int | None

    def __repr__(self) -> str:
        return (
            f"TorrentFile(info_hash={self.info_hash!r}, {len(self.data)} bytes, "
            f"source_url={self.source_url!r})"
        )


class TorrentFileFetcher(_EndpointClient):
    """Downloads and verifies `.torrent` files.

    Args:
        cache_url: Torrent cache base URL (`TORRENT_CACHE_URL`), or "" for none.
        timeout: Seconds for one whole download.
        max_bytes: Largest file accepted (default 4 MiB); a bigger one raises `BadResponse`.
        rate_limit: Direct downloads per second from each host a directory's links point to
            (default 0.5: one every 2 s), None for no limit. The cache is not limited by a
            count: it is paced by its answers. After a 429 or 503 from a host (the cache or
            another), no request goes to it before its `Retry-After`, or a backoff of 1 s
            doubling up to 5 min when it gave none; such calls raise `RateLimited` at once.
        transport: An httpx transport to use instead of the network (tests).

    Raises:
        ValueError: `timeout`, `max_bytes` or `rate_limit` is not a positive number.
    """

    name = "torrent_files"

    def __init__(
        self,
        cache_url: str,
        *,
        timeout: float = 10.0,
        max_bytes: int = 4 * 1024 * 1024,
        rate_limit: float | None = 0.5,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.cache_url = cache_url.rstrip("/")
        super().__init__(
            self.cache_url or "http://invalid",
            timeout=timeout,
            max_bytes=max_bytes,
            rate_limit=None,
            host_rate_limit=rate_limit,
            hold_on_busy=True,
            headers={"Accept": "application/x-bittorrent, */*"},
            transport=transport,
        )

    def _describe(self) -> str:
        return repr(self.cache_url)

    def cache_url_for(self, info_hash: str) -> str:
        """The torrent cache URL of `info_hash` (uppercase hex, as itorrents names files)."""
        return f"{self.cache_url}/torrent/{check_info_hash(info_hash).upper()}.torrent"

    async def fetch(self, info_hash: str, download_url: str | None = None) -> TorrentFile:
        """The verified torrent file of `info_hash`: from `download_url` first, then the cache.

        Args:
            info_hash: Expected info hash, 40 hex digits (any case).
            download_url: The direct URL a directory gave, or None.

        Raises:
            ValueError: `info_hash` is malformed.
            NotConfigured: No `download_url` and no cache URL.
            ProviderError: No source gave a valid file. When several were tried, the most
                telling error is raised: a `HashMismatch` or `BadResponse` before a
                transport error, a `NotFound` only when every source said "not found".
        """
        info_hash = check_info_hash(info_hash)
        urls = [u for u in (download_url, self.cache_url and self.cache_url_for(info_hash)) if u]
        if not urls:
            raise NotConfigured(
                self.name, f"/torrent/{info_hash.upper()}.torrent", "TORRENT_CACHE_URL"
            )
        errors: list[ProviderError] = []
        for url in urls:
            try:
                return await self.fetch_url(url, info_hash)
            except ProviderError as error:
                logger.debug("torrent file %s not taken from %s: %s", info_hash, url, error)
                errors.append(error)
        raise _most_telling(errors)

    async def fetch_url(self, url: str, info_hash: str) -> TorrentFile:
        """Download `url` and verify it is the torrent of `info_hash`.

        Raises:
            ValueError: `info_hash` is malformed.
            HashMismatch: The file is a torrent, of another info hash.
            BadResponse: The file is not a valid torrent (or too big, or truncated).
            ProviderError: The download failed (see `miauflix.providers.errors`).
        """
        info_hash = check_info_hash(info_hash)
        return await self._http.get(url, lambda body: self._verify(body, url, info_hash))

    def _verify(self, body: _Body, url: str, info_hash: str) -> TorrentFile:
        try:
            torrent = torf.Torrent.read_stream(io.BytesIO(body.content), validate=True)
            actual = str(torrent.infohash).lower()
            name = torrent.name
            size = torrent.size
        except torf.TorfError as exc:
            raise BadResponse(self.name, body.path, f"not a valid torrent file: {exc}") from None
        if actual != info_hash:
            raise HashMismatch(self.name, body.path, expected=info_hash, actual=actual)
        return TorrentFile(
            info_hash=actual,
            data=body.content,
            source_url=url,
            name=None if name is None else str(name),
            size_bytes=None if size is None else int(size),
        )


def _most_telling(errors: list[ProviderError]) -> ProviderError:
    # A wrong or broken file says more about a source than "could not connect", and a
    # NotFound means "absent" only when every source agrees.
    for kind in (HashMismatch, BadResponse):
        for error in errors:
            if isinstance(error, kind):
                return error
    for error in errors:
        if not isinstance(error, NotFound):
            return error
    return errors[-1]
