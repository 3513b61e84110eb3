"""Plain values the repositories take and return, so callers never hand over provider objects."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

__all__ = [
    "CatalogCounts",
    "EpisodeData",
    "GenreData",
    "MediaListData",
    "MovieData",
    "SeasonData",
    "ShowData",
    "SourceData",
    "TranslationData",
    "normalize_info_hash",
]

_INFO_HASH = re.compile(r"[0-9a-fA-F]{40}")


def normalize_info_hash(value: str) -> str:
    """Return a BitTorrent v1 info hash as 40 lowercase hex digits.

    Args:
        value: 40 hex digits in any case.

    Returns:
        The lowercase form, the only one the database stores.

    Raises:
        ValueError: `value` is not 40 hex digits.
    """
    if not _INFO_HASH.fullmatch(value):
        raise ValueError(f"info_hash must be 40 hex digits, got {value!r}")
    return value.lower()


@dataclass(frozen=True, slots=True)
class GenreData:
    """A TMDB genre.

    Attributes:
        tmdb_id: TMDB's genre id.
        name: The display name.
    """

    tmdb_id: int
    name: str


@dataclass(frozen=True, slots=True)
class MovieData:
    """A movie as a provider describes it; `upsert_movie` stores it by `tmdb_id`.

    Attributes:
        tmdb_id: TMDB's movie id (the key).
        title: Display title.
        imdb_id: IMDb id (`tt...`); None or "" keeps the stored one (list results carry none).
        original_title: Title in the original language.
        overview: Synopsis.
        tagline: Tagline.
        release_date: First release date.
        runtime: Minutes.
        popularity: TMDB popularity (higher is more popular).
        rating: TMDB vote average, 0-10.
        vote_count: Number of TMDB votes.
        poster_url: Full poster URL.
        backdrop_url: Full backdrop URL.
        trailer_code: YouTube key of the trailer.
        genre_ids: TMDB genre ids; None keeps the stored genres. Ids not stored with
            `upsert_genres` first are ignored.
        logo_url: Full URL of the movie's logo; None keeps the stored one (lists carry none).
        translations: The movie's texts in other languages, one per language; None keeps
            the stored ones, a tuple replaces them.
    """

    tmdb_id: int
    title: str
    imdb_id: str | None = None
    original_title: str = ""
    overview: str = ""
    tagline: str = ""
    release_date: date | None = None
    runtime: int | None = None
    popularity: float = 0.0
    rating: float = 0.0
    vote_count: int = 0
    poster_url: str | None = None
    backdrop_url: str | None = None
    trailer_code: str | None = None
    genre_ids: tuple[int, ...] | None = None
    logo_url: str | None = None
    translations: tuple[TranslationData, ...] | None = None


@dataclass(frozen=True, slots=True)
class TranslationData:
    """A movie's texts in one language (TMDB's translations).

    Attributes:
        language: ISO 639-1 code (`"es"`).
        title: Translated title ("" when TMDB has none: the API falls back to the original).
        overview: Translated overview.
        tagline: Translated tagline.
    """

    language: str
    title: str = ""
    overview: str = ""
    tagline: str = ""


@dataclass(frozen=True, slots=True)
class ShowData:
    """A TV show as a provider describes it; `upsert_show` stores it by `tmdb_id`.

    Attributes:
        tmdb_id: TMDB's show id (the key).
        name: Display name.
        imdb_id: IMDb id; None keeps the stored one.
        original_name: Name in the original language.
        overview: Synopsis.
        first_air_date: First air date.
        popularity: TMDB popularity.
        rating: TMDB vote average, 0-10.
        vote_count: Number of TMDB votes.
        status: TMDB status ("Returning Series", "Ended", ...).
        poster_url: Full poster URL.
        backdrop_url: Full backdrop URL.
        genre_ids: TMDB genre ids; None keeps the stored genres.
        tagline: Tagline; None keeps the stored one (lists carry none), as for the three below.
        type: TMDB's show type (`"Scripted"`, `"Miniseries"`...).
        in_production: Whether the show is still in production.
        episode_run_time: Typical episode length in minutes.
    """

    tmdb_id: int
    name: str
    imdb_id: str | None = None
    original_name: str = ""
    overview: str = ""
    first_air_date: date | None = None
    popularity: float = 0.0
    rating: float = 0.0
    vote_count: int = 0
    status: str = ""
    poster_url: str | None = None
    backdrop_url: str | None = None
    genre_ids: tuple[int, ...] | None = None
    tagline: str | None = None
    type: str | None = None
    in_production: bool | None = None
    episode_run_time: int | None = None


@dataclass(frozen=True, slots=True)
class SeasonData:
    """A season as listed in a show's details; `upsert_season` stores it by number.

    Attributes:
        season_number: The number (0 is TMDB's "Specials").
        tmdb_id: TMDB's season id.
        name: Display name.
        overview: Synopsis.
        air_date: First air date.
        episode_count: Episodes announced; a change re-queues a synced season.
        poster_url: Full poster URL.
    """

    season_number: int
    tmdb_id: int | None = None
    name: str = ""
    overview: str = ""
    air_date: date | None = None
    episode_count: int | None = None
    poster_url: str | None = None


@dataclass(frozen=True, slots=True)
class EpisodeData:
    """An episode of a season; `upsert_episodes` stores it by number.

    Attributes:
        episode_number: The number within its season.
        tmdb_id: TMDB's episode id.
        name: Display name.
        overview: Synopsis.
        air_date: Air date.
        runtime: Minutes.
        still_url: Full URL of a still image.
    """

    episode_number: int
    tmdb_id: int | None = None
    name: str = ""
    overview: str = ""
    air_date: date | None = None
    runtime: int | None = None
    still_url: str | None = None


@dataclass(frozen=True, slots=True)
class SourceData:
    """A torrent a content directory offers for a movie; stored by (movie, `info_hash`).

    Attributes:
        info_hash: 40 hex digits, any case (stored lowercase).
        magnet_link: The magnet URI.
        quality: "720p", "1080p", "2160p", "3D", ...
        source_directory: The directory that listed it, e.g. "yts".
        download_url: Direct `.torrent` URL given by the directory, if any.
        video_codec: "x264", "x265", ...
        size_bytes: Total size of the content.
        seeders: Seeders as reported by the directory.
        leechers: Leechers as reported by the directory.
        source_type: "web", "bluray", ...; None when the directory did not say.
        uploaded_at: When the directory got it (aware); None when it did not say.
    """

    info_hash: str
    magnet_link: str
    quality: str
    source_directory: str
    download_url: str | None = None
    video_codec: str | None = None
    size_bytes: int | None = None
    seeders: int | None = None
    leechers: int | None = None
    source_type: str | None = None
    uploaded_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class MediaListData:
    """A list's identity and labels.

    Attributes:
        slug: Unique key, e.g. "popular-movies".
        name: Display name.
        description: Longer text.
    """

    slug: str
    name: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class CatalogCounts:
    """What the scheduled tasks have built so far (the `catalog` status component's details).

    Attributes:
        lists: Media lists.
        movies: Movies.
        shows: TV shows.
        seasons: Seasons.
        synced_seasons: Seasons whose episodes were synced.
        sources: Movie sources.
        sources_with_file: Sources whose `.torrent` file is stored.
        sources_with_stats: Sources checked against a tracker at least once.
    """

    lists: int
    movies: int
    shows: int
    seasons: int
    synced_seasons: int
    sources: int
    sources_with_file: int
    sources_with_stats: int

    def to_dict(self) -> dict[str, int]:
        """Return the counts as a JSON-safe mapping, keys as in the attributes."""
        return {
            "lists": self.lists,
            "movies": self.movies,
            "shows": self.shows,
            "seasons": self.seasons,
            "synced_seasons": self.synced_seasons,
            "sources": self.sources,
            "sources_with_file": self.sources_with_file,
            "sources_with_stats": self.sources_with_stats,
        }
