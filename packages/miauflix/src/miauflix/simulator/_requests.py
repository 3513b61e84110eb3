"""What the simulator was asked: requests per item and per provider per second.

The multi-replica test and benchmark read it (`Simulator.requests()`, or
`GET /_simulator/requests` on a standalone simulator) to prove that no item was fetched twice
and that the cluster kept within each provider's rate. Items are keyed so that the two ways
to fetch one thing count together: `torrent:<hash>` (a directory's direct download and the
cache), `scrape:<hash>` (each info hash of an HTTP scrape), `season:<show>/<number>`,
`movie:<id>`, `yts:<imdb id>`; other requests count under their path. UDP scrapes are not
counted.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["RequestLog", "RequestLogMiddleware"]

_TORRENT = re.compile(r"^/(?:yts/torrent/download/|cache/torrent/)([0-9A-Fa-f]{40})")
_SEASON = re.compile(r"^/tmdb/3/tv/(\d+)/season/(\d+)$")
_MOVIE = re.compile(r"^/tmdb/3/movie/(\d+)$")
_IMDB = re.compile(r"(?:^|&)query_term=(tt\d+)")


class RequestLog:
    """Counters of one simulator's HTTP requests (since its start or the last `clear()`)."""

    def __init__(self) -> None:
        self.items: Counter[str] = Counter()
        self.per_second: dict[str, Counter[int]] = {}

    def clear(self) -> None:
        """Forget every count."""
        self.items.clear()
        self.per_second.clear()

    def record(self, path: str, query: bytes, now: float) -> None:
        """Count one request for `path` with raw query string `query` at epoch `now`."""
        provider = path.strip("/").split("/", 1)[0] or "root"
        if path.startswith("/yts/torrent/"):
            provider = "downloads"  # a directory's direct links, limited per host, not as YTS
        self.per_second.setdefault(provider, Counter())[int(now)] += 1
        for key in _keys(path, query):
            self.items[key] += 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: `items` (key -> count) and `per_second` (provider -> epoch second -> n)."""
        return {
            "items": dict(self.items),
            "per_second": {
                provider: {str(second): n for second, n in sorted(counts.items())}
                for provider, counts in self.per_second.items()
            },
        }


def _keys(path: str, query: bytes) -> list[str]:
    if match := _TORRENT.match(path):
        return [f"torrent:{match.group(1).lower()}"]
    if match := _SEASON.match(path):
        return [f"season:{match.group(1)}/{match.group(2)}"]
    if match := _MOVIE.match(path):
        return [f"movie:{match.group(1)}"]
    if path == "/tracker/scrape":
        return [
            f"scrape:{unquote_to_bytes(value).hex()}"
            for key, _, value in (part.partition(b"=") for part in query.split(b"&"))
            if key == b"info_hash"
        ]
    if path == "/yts/api/v2/list_movies.json" and (
        match := _IMDB.search(query.decode("ascii", "replace"))
    ):
        return [f"yts:{match.group(1)}"]
    return [path]


class RequestLogMiddleware:
    """Records every HTTP request in a `RequestLog` before anything else (faults included)."""

    def __init__(self, app: ASGIApp, log: RequestLog) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] != "/_simulator/requests":
            self.log.record(scope["path"], scope.get("query_string", b""), time.time())
        await self.app(scope, receive, send)
