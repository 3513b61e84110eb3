"""Content directories: where a movie's sources (torrents) are found, by IMDb id.

A directory is anything with a `name` and `async search(imdb_id)`; `YtsDirectory` is the one
shipped. `search_directories()` asks several in order and keeps the first non-empty answer.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from miauflix.providers.errors import ProviderError

__all__ = [
    "ContentDirectory",
    "DirectorySearchResult",
    "Quality",
    "SourceCandidate",
    "SourceType",
    "check_imdb_id",
    "check_info_hash",
    "magnet_link",
    "search_directories",
]

logger = logging.getLogger("miauflix.providers")

Quality = Literal["720p", "1080p", "2160p", "3D"]
SourceType = Literal["web", "bluray"]

_INFO_HASH = re.compile(r"[0-9a-f]{40}")
_IMDB_ID = re.compile(r"tt\d{7,10}")


def check_info_hash(info_hash: str) -> str:
    """Return `info_hash` in lowercase hex; raise `ValueError` unless it is 40 hex digits."""
    if not isinstance(info_hash, str) or not _INFO_HASH.fullmatch(info_hash.lower()):
        raise ValueError(f"info_hash must be 40 hexadecimal digits, got {info_hash!r}")
    return info_hash.lower()


def check_imdb_id(imdb_id: str) -> str:
    """Return `imdb_id`; raise `ValueError` unless it looks like `tt0137523`."""
    if not isinstance(imdb_id, str) or not _IMDB_ID.fullmatch(imdb_id):
        raise ValueError(f"imdb_id must look like 'tt0137523', got {imdb_id!r}")
    return imdb_id


def magnet_link(info_hash: str, name: str | None, trackers: Iterable[str]) -> str:
    """A BEP 9 magnet URI: `xt=urn:btih:<hash>`, the display name and one `tr=` per tracker."""
    parts = [f"xt=urn:btih:{check_info_hash(info_hash)}"]
    if name:
        parts.append("dn=" + urllib.parse.quote(name, safe=""))
    parts.extend("tr=" + urllib.parse.quote(tracker, safe="") for tracker in trackers)
    return "magnet:?" + "&".join(parts)


@dataclass(frozen=True, slots=True)
class SourceCandidate:
    """One source (torrent) of a movie, as a directory lists it.

    Attributes:
        info_hash: 40 lowercase hex digits.
        magnet_link: Magnet URI with the directory's trackers.
        download_url: Direct URL of the `.torrent` file, or None.
        quality: `"720p"`, `"1080p"`, `"2160p"` or `"3D"`.
        video_codec: `"x264"`, `"x265"`..., or None.
        size_bytes: Total size of the content, or None.
        seeders: Seeders as the directory last saw them.
        leechers: Leechers as the directory last saw them.
        uploaded_at: Upload time (aware, UTC), or None when the directory does not say.
        source_type: `"web"`, `"bluray"`, or None when unknown.
        directory: Name of the directory that listed it (`"yts"`).
    """

    info_hash: str
    magnet_link: str
    download_url: str | None
    quality: Quality
    video_codec: str | None
    size_bytes: int | None
    seeders: int
    leechers: int
    uploaded_at: dt.datetime | None
    source_type: SourceType | None
    directory: str


@runtime_checkable
class ContentDirectory(Protocol):
    """A searchable list of movie sources.

    Attributes:
        name: Short stable name, stored with each source (`"yts"`).
    """

    name: str

    async def search(self, imdb_id: str) -> list[SourceCandidate]:
        """The sources of the movie with this IMDb id; empty when the directory has none.

        Raises:
            ProviderError: The directory could not answer.
        """
        ...


@dataclass(frozen=True, slots=True)
class DirectorySearchResult:
    """The outcome of `search_directories()`.

    Attributes:
        sources: The first non-empty answer, or empty.
        directory: Name of the directory whose answer `sources` is, or None when empty.
        searched: Names of the directories that answered (with or without sources), in order.
        errors: Directory name -> the error it raised; a caller should retry those later.
    """

    sources: list[SourceCandidate]
    directory: str | None
    searched: tuple[str, ...]
    errors: dict[str, ProviderError] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """True when every directory asked answered: an empty `sources` then means "none"."""
        return not self.errors


async def search_directories(
    directories: Sequence[ContentDirectory], imdb_id: str
) -> DirectorySearchResult:
    """Ask each directory in order; the first with sources wins and the rest are not asked.

    A directory that fails is recorded in `errors` and logged at WARNING, and the next one is
    asked: one broken directory never hides another's sources.

    Args:
        directories: The directories, best first.
        imdb_id: The movie's IMDb id (`tt0137523`).

    Raises:
        ValueError: `imdb_id` is malformed.
    """
    check_imdb_id(imdb_id)
    searched: list[str] = []
    errors: dict[str, ProviderError] = {}
    for directory in directories:
        try:
            sources = await directory.search(imdb_id)
        except ProviderError as error:
            logger.warning("directory %s failed for %s: %s", directory.name, imdb_id, error)
            errors[directory.name] = error
            continue
        searched.append(directory.name)
        if sources:
            return DirectorySearchResult(sources, directory.name, tuple(searched), errors)
    return DirectorySearchResult([], None, tuple(searched), errors)
