"""The catalogue's items: movies with their YTS sources, shows, seasons, episodes, swarms."""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass, field
from typing import Literal

from miauflix.simulator._text import ADJECTIVES, NOUNS, image_path, sentence
from miauflix.simulator._torrents import TorrentSpec

__all__ = [
    "MOVIE_GENRES",
    "TV_GENRES",
    "Episode",
    "FreshGap",
    "Movie",
    "Season",
    "Show",
    "Source",
    "Swarm",
]

MOVIE_GENRES: dict[int, str] = {
    28: "Action",
    12: "Adventure",
    16: "Animation",
    35: "Comedy",
    80: "Crime",
    99: "Documentary",
    18: "Drama",
    10751: "Family",
    14: "Fantasy",
    36: "History",
    27: "Horror",
    10402: "Music",
    9648: "Mystery",
    10749: "Romance",
    878: "Science Fiction",
    10770: "TV Movie",
    53: "Thriller",
    10752: "War",
    37: "Western",
}
"""TMDB's movie genres (`/genre/movie/list`), id to name."""

TV_GENRES: dict[int, str] = {
    10759: "Action & Adventure",
    16: "Animation",
    35: "Comedy",
    80: "Crime",
    99: "Documentary",
    18: "Drama",
    10751: "Family",
    10762: "Kids",
    9648: "Mystery",
    10763: "News",
    10764: "Reality",
    10765: "Sci-Fi & Fantasy",
    10766: "Soap",
    10767: "Talk",
    10768: "War & Politics",
    37: "Western",
}
"""TMDB's TV genres (`/genre/tv/list`), id to name."""


FreshGap = Literal["uploaded_at", "type"]
"""A `Source` attribute YTS leaves out of a torrent it has just added."""

_SWARM_BUCKET = 300.0  # seconds during which a swarm's counts stay put


@dataclass(frozen=True, slots=True)
class Swarm:
    """A torrent's tracker statistics at one moment (the BEP 48 scrape fields).

    Attributes:
        complete: Seeders.
        incomplete: Leechers.
        downloaded: Completed downloads so far.
    """

    complete: int
    incomplete: int
    downloaded: int


@dataclass(frozen=True, slots=True)
class Source:
    """One YTS torrent of a movie.

    Attributes:
        info_hash: The torrent's info hash (20 raw bytes).
        quality: `720p`, `1080p`, `2160p` or `3D`.
        video_codec: `x264` or `x265`.
        type: `web` or `bluray`.
        size_bytes: The file size.
        uploaded_at: Epoch seconds of the YTS upload.
        cached: Whether the torrent cache (`/cache`) has the file; the direct URL always does.
        torrent: What the served `.torrent` is built from.
    """

    info_hash: bytes
    quality: str
    video_codec: str
    type: str
    size_bytes: int
    uploaded_at: int
    cached: bool
    torrent: TorrentSpec = field(repr=False)
    _seeds: int = field(repr=False)
    _peer_ratio: float = field(repr=False)
    _period: float = field(repr=False)
    _phase: float = field(repr=False)

    @property
    def hex_hash(self) -> str:
        """The info hash as 40 uppercase hexadecimal digits (YTS's spelling)."""
        return self.info_hash.hex().upper()

    def swarm(self, now: float) -> Swarm:
        """The swarm counts at epoch `now`: a slow wave per torrent plus noise every 5 minutes."""
        bucket = math.floor(now / _SWARM_BUCKET)
        noise = random.Random(f"{self.info_hash.hex()}:{bucket}").uniform(0.93, 1.07)
        wave = 1.0 + 0.45 * math.sin(2 * math.pi * now / self._period + self._phase)
        seeds = max(0, round(self._seeds * wave * noise))
        peers = max(0, round(self._seeds * self._peer_ratio * (2.0 - wave) * noise))
        age_hours = max(0.0, (now - self.uploaded_at) / 3600)
        downloaded = self._seeds * 3 + int(age_hours * self._seeds / 500)
        return Swarm(complete=seeds, incomplete=peers, downloaded=downloaded)


@dataclass(frozen=True, slots=True)
class Movie:
    """A movie as TMDB and YTS describe it.

    Attributes:
        tmdb_id: TMDB id.
        imdb_id: `tt` + 7-8 digits, or None for the few movies without one (and no sources).
        title: Title.
        overview: Plot summary.
        tagline: Tagline (may be empty).
        release_date: Release date.
        runtime: Minutes.
        popularity: TMDB popularity.
        vote_average: 0-10.
        vote_count: Number of votes.
        genre_ids: TMDB movie genre ids.
        original_language: ISO 639-1 code.
        poster_path: TMDB image path.
        backdrop_path: TMDB image path.
        trailer_key: YouTube key of the trailer.
        yts_id: The movie's YTS id.
        sources: YTS torrents; empty for movies YTS does not have.
    """

    tmdb_id: int
    imdb_id: str | None
    title: str
    overview: str
    tagline: str
    release_date: dt.date
    runtime: int
    popularity: float
    vote_average: float
    vote_count: int
    genre_ids: tuple[int, ...]
    original_language: str
    poster_path: str
    backdrop_path: str
    trailer_key: str
    yts_id: int
    sources: tuple[Source, ...]


@dataclass(frozen=True, slots=True)
class Episode:
    """One episode of a season.

    Attributes:
        id: TMDB episode id.
        episode_number: 1-based number in its season.
        season_number: The season's number.
        name: Title.
        overview: Summary.
        air_date: First air date.
        runtime: Minutes.
        still_path: TMDB image path.
        vote_average: 0-10.
        vote_count: Number of votes.
    """

    id: int
    episode_number: int
    season_number: int
    name: str
    overview: str
    air_date: dt.date
    runtime: int
    still_path: str
    vote_average: float
    vote_count: int


@dataclass(frozen=True, slots=True)
class Season:
    """One season of a show; its episodes are generated on demand.

    Attributes:
        id: TMDB season id.
        show_id: The show's TMDB id.
        season_number: 1-based number.
        name: `Season N`.
        overview: Summary.
        air_date: First episode's air date.
        episode_count: Number of episodes.
        poster_path: TMDB image path.
        vote_average: 0-10.
    """

    id: int
    show_id: int
    season_number: int
    name: str
    overview: str
    air_date: dt.date
    episode_count: int
    poster_path: str
    vote_average: float
    _seed: str = field(repr=False)

    def episodes(self) -> list[Episode]:
        """The season's episodes, one a week from `air_date` (same answer on every call)."""
        rng = random.Random(self._seed)
        return [
            Episode(
                # TMDB ids fit in 32 bits (the catalogue stores them in INTEGER columns);
                # seasons have at most 22 episodes, so `* 32` keeps them unique and small.
                id=self.id * 32 + number,
                episode_number=number,
                season_number=self.season_number,
                name=f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}",
                overview=sentence(rng),
                air_date=self.air_date + dt.timedelta(weeks=number - 1),
                runtime=rng.randint(22, 62),
                still_path=image_path(rng),
                vote_average=round(rng.uniform(5.5, 9.3), 1),
                vote_count=rng.randint(0, 400),
            )
            for number in range(1, self.episode_count + 1)
        ]


@dataclass(frozen=True, slots=True)
class Show:
    """A TV show.

    Attributes:
        tmdb_id: TMDB id.
        imdb_id: `tt` + 7-8 digits.
        tvdb_id: TheTVDB id.
        name: Title.
        overview: Summary.
        first_air_date: First episode's air date.
        popularity: TMDB popularity.
        vote_average: 0-10.
        vote_count: Number of votes.
        genre_ids: TMDB TV genre ids.
        origin_country: ISO 3166-1 codes.
        original_language: ISO 639-1 code.
        status: `Returning Series` or `Ended`.
        poster_path: TMDB image path.
        backdrop_path: TMDB image path.
        seasons: Its seasons, numbered from 1.
    """

    tmdb_id: int
    imdb_id: str
    tvdb_id: int
    name: str
    overview: str
    first_air_date: dt.date
    popularity: float
    vote_average: float
    vote_count: int
    genre_ids: tuple[int, ...]
    origin_country: tuple[str, ...]
    original_language: str
    status: str
    poster_path: str
    backdrop_path: str
    seasons: tuple[Season, ...]

    def season(self, number: int) -> Season | None:
        """The season numbered `number`, or None."""
        if 1 <= number <= len(self.seasons):
            return self.seasons[number - 1]
        return None
