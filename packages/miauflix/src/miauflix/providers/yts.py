"""YTS API v2 as a content directory: `/api/v2/list_movies.json?query_term=<imdb id>`."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

import httpx

from miauflix.providers import _shape as s
from miauflix.providers._client import _EndpointClient
from miauflix.providers.directories import (
    Quality,
    SourceCandidate,
    SourceType,
    check_imdb_id,
    magnet_link,
)

__all__ = ["YtsDirectory"]

logger = logging.getLogger("miauflix.providers")

_QUALITIES: dict[str, Quality] = {"720p": "720p", "1080p": "1080p", "2160p": "2160p", "3D": "3D"}
_TYPES: dict[str, SourceType] = {"web": "web", "bluray": "bluray"}


class YtsDirectory(_EndpointClient):
    """The YTS content directory.

    Args:
        base_url: YTS base URL (`YTS_API_URL`); the client appends `/api/v2/...`.
        trackers: Announce URLs written into the magnet links (`TRACKERS`).
        timeout: Seconds for one whole request, body included.
        max_bytes: Largest body accepted; a bigger one raises `BadResponse`.
        rate_limit: Requests per second (default 20 a minute, YTS's documented limit), None
            for no limit.
        transport: An httpx transport to use instead of the network (tests).

    Raises:
        ValueError: `timeout`, `max_bytes` or `rate_limit` is not a positive number.
    """

    name = "yts"

    def __init__(
        self,
        base_url: str,
        *,
        trackers: Sequence[str] = (),
        timeout: float = 10.0,
        max_bytes: int = 2 * 1024 * 1024,
        rate_limit: float | None = 20 / 60,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            base_url,
            timeout=timeout,
            max_bytes=max_bytes,
            rate_limit=rate_limit,
            headers={"Accept": "application/json"},
            transport=transport,
        )
        self.trackers = tuple(trackers)

    async def search(self, imdb_id: str) -> list[SourceCandidate]:
        """The YTS torrents of the movie with this IMDb id; empty when YTS has none.

        Only movies whose `imdb_code` equals `imdb_id` count (`query_term` also matches
        titles). Torrents of another quality than 720p/1080p/2160p/3D are left out.

        Raises:
            ValueError: `imdb_id` is malformed.
            ProviderError: YTS could not answer (see `miauflix.providers.errors`).
        """
        check_imdb_id(imdb_id)
        return await self._http.get_json(
            "/api/v2/list_movies.json",
            lambda doc: self._parse(doc, imdb_id),
            {"query_term": imdb_id},
        )

    def _parse(self, doc: Any, imdb_id: str) -> list[SourceCandidate]:
        doc = s.obj(doc, "the answer")
        if doc.get("status") != "ok":
            raise s.ShapeError(f"status {doc.get('status')!r}: {doc.get('status_message')!r}")
        data = s.req_obj(doc, "data")
        sources: list[SourceCandidate] = []
        seen: set[str] = set()
        for movie in s.opt_arr(data, "movies"):
            movie = s.obj(movie, "a movie")
            if movie.get("imdb_code") != imdb_id:
                continue
            title = s.opt_str(movie, "title_long") or s.opt_str(movie, "title")
            for torrent in s.opt_arr(movie, "torrents"):
                source = self._source(s.obj(torrent, "a torrent"), title)
                if source is not None and source.info_hash not in seen:
                    seen.add(source.info_hash)
                    sources.append(source)
        return sources

    def _source(self, t: dict[str, Any], title: str | None) -> SourceCandidate | None:
        raw_quality = s.req_str(t, "quality")
        quality = _QUALITIES.get(raw_quality)
        if quality is None:
            logger.debug("yts: skipping a torrent of quality %r", raw_quality)
            return None
        try:
            info_hash = s.req_str(t, "hash").lower()
            magnet = magnet_link(info_hash, title, self.trackers)
        except ValueError as exc:
            raise s.ShapeError(str(exc)) from None
        uploaded = s.opt_int(t, "date_uploaded_unix")
        try:
            uploaded_at = None if uploaded is None else dt.datetime.fromtimestamp(uploaded, dt.UTC)
        except (OverflowError, OSError, ValueError):
            raise s.ShapeError(f"'date_uploaded_unix' out of range: {uploaded!r}") from None
        return SourceCandidate(
            info_hash=info_hash,
            magnet_link=magnet,
            download_url=s.opt_str(t, "url"),
            quality=quality,
            video_codec=s.opt_str(t, "video_codec"),
            size_bytes=s.opt_int(t, "size_bytes"),
            seeders=s.opt_int(t, "seeds") or 0,
            leechers=s.opt_int(t, "peers") or 0,
            uploaded_at=uploaded_at,
            source_type=_TYPES.get(s.opt_str(t, "type") or ""),
            directory=self.name,
        )
