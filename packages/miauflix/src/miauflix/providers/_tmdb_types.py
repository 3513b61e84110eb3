"""The frozen dataclasses the TMDB client returns (re-exported by `miauflix.providers.tmdb`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TmdbConfiguration:
    """The part of `/configuration` the client uses to build image URLs.

    Attributes:
        image_base_url: `images.secure_base_url` (falls back to `images.base_url`), ending in `/`.
        poster_size: The poster size used in URLs (`w500` when offered, else `original`).
        backdrop_size: The backdrop size used in URLs (`w1280` when offered, else `original`).
    """

    image_base_url: str
    poster_size: str
    backdrop_size: str

    def image_url(self, file_path: str | None, size: str) -> str | None:
        """The full URL of an image `file_path` (as TMDB gives it, `/abc.jpg`), or None."""
        if not file_path:
            return None
        return f"{self.image_base_url}{size}{file_path}"


@dataclass(frozen=True, slots=True)
class TmdbGenre:
    """A genre: TMDB id and English name."""

    id: int
    name: str


@dataclass(frozen=True, slots=True)
class TmdbPage(Generic[T]):
    """One page of a paged TMDB answer.

    Attributes:
        page: 1-based page number.
        total_pages: How many pages the query has (TMDB serves at most 500).
        total_results: How many items the query has.
        results: The items of this page, in TMDB's order.
    """

    page: int
    total_pages: int
    total_results: int
    results: tuple[T, ...]


@dataclass(frozen=True, slots=True)
class TmdbMovieSummary:
    """A movie as list endpoints (`/discover/movie`, `/movie/top_rated`) give it.

    Attributes:
        tmdb_id: TMDB id.
        title: Localized title.
        original_title: Title in the original language.
        overview: Synopsis ("" when TMDB has none).
        release_date: First release date, or None.
        popularity: TMDB popularity score.
        vote_average: Mean rating 0-10.
        vote_count: Number of votes.
        genre_ids: TMDB genre ids.
        poster_url: Full poster URL, or None.
        backdrop_url: Full backdrop URL, or None.
    """

    tmdb_id: int
    title: str
    original_title: str
    overview: str
    release_date: dt.date | None
    popularity: float
    vote_average: float
    vote_count: int
    genre_ids: tuple[int, ...]
    poster_url: str | None
    backdrop_url: str | None


@dataclass(frozen=True, slots=True)
class TmdbShowSummary:
    """A TV show as `/discover/tv` gives it (fields as in `TmdbMovieSummary`, `name` for title)."""

    tmdb_id: int
    name: str
    original_name: str
    overview: str
    first_air_date: dt.date | None
    popularity: float
    vote_average: float
    vote_count: int
    genre_ids: tuple[int, ...]
    poster_url: str | None
    backdrop_url: str | None


@dataclass(frozen=True, slots=True)
class TmdbTranslation:
    """One translation of a movie's texts (from `append_to_response=translations`).

    Attributes:
        language: ISO 639-1 code (`"es"`).
        country: ISO 3166-1 code (`"MX"`).
        title: Translated title, or None.
        overview: Translated overview, or None.
        tagline: Translated tagline, or None.
    """

    language: str
    country: str
    title: str | None
    overview: str | None
    tagline: str | None


@dataclass(frozen=True, slots=True)
class TmdbMovie:
    """A movie's details (`/movie/{id}?append_to_response=translations,images,videos`).

    Attributes:
        tmdb_id: TMDB id.
        imdb_id: IMDb id (`tt0137523`), or None when TMDB has none.
        title: Title.
        original_title: Title in the original language.
        overview: Synopsis ("" when none).
        tagline: Tagline, or None.
        release_date: Release date, or None.
        runtime: Minutes, or None.
        popularity: TMDB popularity score.
        vote_average: Mean rating 0-10.
        vote_count: Number of votes.
        poster_url: Full poster URL (the movie's poster, else the first of `images.posters`).
        backdrop_url: Full backdrop URL (likewise from `images.backdrops`).
        trailer_key: YouTube video key of the trailer (official trailers first), or None.
        genres: The movie's genres.
        translations: Its translations, in TMDB's order.
        status: TMDB release status (`"Released"`...), or None.
        logo_url: Full URL of the movie's logo (an English or language-free one first), or
            None.
    """

    tmdb_id: int
    imdb_id: str | None
    title: str
    original_title: str
    overview: str
    tagline: str | None
    release_date: dt.date | None
    runtime: int | None
    popularity: float
    vote_average: float
    vote_count: int
    poster_url: str | None
    backdrop_url: str | None
    trailer_key: str | None
    genres: tuple[TmdbGenre, ...]
    translations: tuple[TmdbTranslation, ...]
    status: str | None
    logo_url: str | None = None


@dataclass(frozen=True, slots=True)
class TmdbSeasonSummary:
    """A season as listed in a show's details.

    Attributes:
        season_number: 0 for specials, then 1, 2...
        name: Season name.
        air_date: First air date, or None.
        episode_count: Number of episodes TMDB lists.
    """

    season_number: int
    name: str
    air_date: dt.date | None
    episode_count: int


@dataclass(frozen=True, slots=True)
class TmdbShow:
    """A TV show's details (`/tv/{id}?append_to_response=external_ids`).

    Attributes:
        tmdb_id: TMDB id.
        imdb_id: IMDb id from `external_ids`, or None.
        name: Show name.
        original_name: Name in the original language.
        overview: Synopsis ("" when none).
        first_air_date: First air date, or None.
        last_air_date: Last air date, or None.
        status: TMDB status (`"Returning Series"`, `"Ended"`...), or None.
        popularity: TMDB popularity score.
        vote_average: Mean rating 0-10.
        vote_count: Number of votes.
        poster_url: Full poster URL, or None.
        backdrop_url: Full backdrop URL, or None.
        genres: The show's genres.
        seasons: Its seasons, in TMDB's order.
        tagline: Tagline, or None.
        type: TMDB's show type (`"Scripted"`, `"Miniseries"`...), or None.
        in_production: Whether TMDB says the show is still in production, or None.
        episode_run_time: Typical episode length in minutes (the first of TMDB's
            `episode_run_time`), or None.
    """

    tmdb_id: int
    imdb_id: str | None
    name: str
    original_name: str
    overview: str
    first_air_date: dt.date | None
    last_air_date: dt.date | None
    status: str | None
    popularity: float
    vote_average: float
    vote_count: int
    poster_url: str | None
    backdrop_url: str | None
    genres: tuple[TmdbGenre, ...]
    seasons: tuple[TmdbSeasonSummary, ...]
    tagline: str | None = None
    type: str | None = None
    in_production: bool | None = None
    episode_run_time: int | None = None


@dataclass(frozen=True, slots=True)
class TmdbEpisode:
    """One episode of a season.

    Attributes:
        tmdb_id: TMDB id of the episode.
        episode_number: 1-based number within the season.
        name: Episode title.
        overview: Synopsis ("" when none).
        air_date: Air date, or None.
        runtime: Minutes, or None.
        still_url: Full URL of the episode's still image, or None.
    """

    tmdb_id: int
    episode_number: int
    name: str
    overview: str
    air_date: dt.date | None
    runtime: int | None
    still_url: str | None = None


@dataclass(frozen=True, slots=True)
class TmdbSeason:
    """A season with its episodes (`/tv/{id}/season/{n}`).

    Attributes:
        tmdb_id: TMDB id of the season.
        show_id: TMDB id of the show (as asked).
        season_number: As asked.
        name: Season name.
        overview: Synopsis ("" when none).
        air_date: First air date, or None.
        episodes: The episodes, in TMDB's order.
        poster_url: Full URL of the season's poster, or None.
    """

    tmdb_id: int
    show_id: int
    season_number: int
    name: str
    overview: str
    air_date: dt.date | None
    episodes: tuple[TmdbEpisode, ...]
    poster_url: str | None = None


@dataclass(frozen=True, slots=True)
class TmdbChange:
    """One entry of `/movie/changes`: a movie whose data changed in the window.

    Attributes:
        tmdb_id: TMDB id of the movie.
        adult: TMDB's adult flag (None when TMDB leaves it out).
    """

    tmdb_id: int
    adult: bool | None
