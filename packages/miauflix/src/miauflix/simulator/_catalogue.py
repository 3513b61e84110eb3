"""The synthetic catalogue behind every simulated answer, deterministic from a seed.

Everything that does not depend on time is fixed by `(seed, movies, shows)`: ids, titles, dates,
YTS sources and the info hashes of their torrents. Two things move with the clock, both as pure
functions of `(seed, now)` so that they are reproducible too: the movie changes feed (each UTC day
has its own set of changed movies, revealed as the day goes by) and each torrent's swarm counts.

Every random draw comes from a `random.Random` seeded with a string naming the seed and the item,
so one item's data does not depend on how many other items were generated before it.

The catalogue also fixes which movies are "fresh" on YTS (`first_listing_gaps`): for about a
sixth of the movies with sources, the first listing a simulator serves lacks the upload date
and/or type of some torrents, as real YTS does for entries it has just added; the draws use
their own stream, so the rest of the catalogue is the same as without them.
"""

from __future__ import annotations

import datetime as dt
import math
import random

from miauflix.simulator._models import (
    MOVIE_GENRES,
    TV_GENRES,
    FreshGap,
    Movie,
    Season,
    Show,
    Source,
)
from miauflix.simulator._text import ADJECTIVES, NOUNS, YOUTUBE, date_between, image_path, sentence
from miauflix.simulator._torrents import TorrentSpec

__all__ = ["FRESH_SHARE", "Catalogue"]

_EPOCH_2026 = int(dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp())

FRESH_SHARE = 0.175
"""Share of the movies with sources whose first YTS listing lacks some torrents' data."""

_FRESH_GAPS: tuple[frozenset[FreshGap], ...] = (
    frozenset({"uploaded_at"}),
    frozenset({"type"}),
    frozenset({"uploaded_at", "type"}),
)


class Catalogue:
    """The synthetic movies and shows, deterministic from `seed`.

    Building 300 movies (with about 700 torrents and their info hashes) takes under a tenth
    of a second; episodes and torrent files are generated only when asked for.

    Args:
        seed: Any integer; the same seed gives the same catalogue.
        movies: Number of movies (>= 1).
        shows: Number of shows (>= 0).

    Raises:
        ValueError: `seed` is not an integer, `movies` < 1 or `shows` < 0.
    """

    def __init__(self, seed: int = 42, movies: int = 300, shows: int = 40) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        if isinstance(movies, bool) or not isinstance(movies, int) or movies < 1:
            raise ValueError(f"movies must be an integer >= 1, got {movies!r}")
        if isinstance(shows, bool) or not isinstance(shows, int) or shows < 0:
            raise ValueError(f"shows must be an integer >= 0, got {shows!r}")
        self.seed = seed
        rng = random.Random(f"{seed}:catalogue")
        movie_ids = rng.sample(range(2, 1_400_000), movies)
        imdb_numbers = rng.sample(range(100_000, 40_000_000), movies + shows)
        self.movies: tuple[Movie, ...] = tuple(
            self._movie(tmdb_id, index, imdb_numbers[index])
            for index, tmdb_id in enumerate(movie_ids)
        )
        show_ids = rng.sample(range(1_000, 300_000), shows)
        self.shows: tuple[Show, ...] = tuple(
            self._show(tmdb_id, imdb_numbers[movies + index])
            for index, tmdb_id in enumerate(show_ids)
        )
        self._movies = {movie.tmdb_id: movie for movie in self.movies}
        self._by_imdb = {movie.imdb_id: movie for movie in self.movies if movie.imdb_id}
        self._shows = {show.tmdb_id: show for show in self.shows}
        self._sources = {
            source.info_hash: (source, movie) for movie in self.movies for source in movie.sources
        }
        self._fresh = self._fresh_movies()

    def __repr__(self) -> str:
        return (
            f"Catalogue(seed={self.seed!r}, movies={len(self.movies)}, shows={len(self.shows)}, "
            f"sources={len(self._sources)})"
        )

    def movie(self, tmdb_id: int) -> Movie | None:
        """The movie with TMDB id `tmdb_id`, or None."""
        return self._movies.get(tmdb_id)

    def movie_by_imdb(self, imdb_id: str) -> Movie | None:
        """The movie with IMDb id `imdb_id` (`tt...`), or None."""
        return self._by_imdb.get(imdb_id)

    def show(self, tmdb_id: int) -> Show | None:
        """The show with TMDB id `tmdb_id`, or None."""
        return self._shows.get(tmdb_id)

    def source(self, info_hash: bytes) -> tuple[Source, Movie] | None:
        """The source with this 20-byte info hash and its movie, or None."""
        return self._sources.get(info_hash)

    def first_listing_gaps(self, tmdb_id: int) -> dict[bytes, frozenset[FreshGap]]:
        """What the first YTS listing of a movie leaves out, by torrent info hash.

        A fixed share of the movies with sources (`FRESH_SHARE`, rounded, chosen by the
        seed) are "fresh": at least one of their torrents lacks its upload date
        (`uploaded_at`), its type (`type`) or both in the first answer about them; later
        answers are complete. Empty for every other movie (and unknown ids).
        """
        return dict(self._fresh.get(tmdb_id, {}))

    @property
    def sources(self) -> list[Source]:
        """Every YTS source of every movie."""
        return [source for source, _ in self._sources.values()]

    def changes(self, start: dt.date, end: dt.date, now: float) -> list[int]:
        """TMDB ids of the movies changed on the UTC days from `start` to `end`, as of `now`.

        Each day has its own deterministic set of changed movies (about 3-10% of the catalogue),
        each change at its own time of day; changes after `now` are not visible yet, so the
        feed of today grows as the day goes by and days in the future are empty. The range is
        half-open (`start` <= day < `end`) unless `start == end`, which means that one day.
        Ids appear once, in the order of their first change.
        """
        last = start if end <= start else end - dt.timedelta(days=1)
        seen: dict[int, None] = {}
        day = start
        while day <= last:
            for tmdb_id in self._changes_of_day(day, now):
                seen.setdefault(tmdb_id, None)
            day += dt.timedelta(days=1)
        return list(seen)

    def _changes_of_day(self, day: dt.date, now: float) -> list[int]:
        midnight = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()
        if midnight > now:
            return []
        rng = random.Random(f"{self.seed}:changes:{day.isoformat()}")
        count = len(self.movies)
        size = rng.randint(max(1, count // 30), max(1, count // 10))
        chosen = rng.sample(self.movies, size)
        stamped = sorted((rng.randrange(86_400), movie.tmdb_id) for movie in chosen)
        return [tmdb_id for offset, tmdb_id in stamped if midnight + offset <= now]

    def _fresh_movies(self) -> dict[int, dict[bytes, frozenset[FreshGap]]]:
        listed = [movie for movie in self.movies if movie.sources]
        chosen = random.Random(f"{self.seed}:fresh").sample(
            listed, round(len(listed) * FRESH_SHARE)
        )
        fresh: dict[int, dict[bytes, frozenset[FreshGap]]] = {}
        for movie in chosen:
            rng = random.Random(f"{self.seed}:fresh:{movie.tmdb_id}")
            torrents = rng.sample(movie.sources, rng.randint(1, len(movie.sources)))
            fresh[movie.tmdb_id] = {
                source.info_hash: rng.choice(_FRESH_GAPS) for source in torrents
            }
        return fresh

    def _movie(self, tmdb_id: int, index: int, imdb_number: int) -> Movie:
        rng = random.Random(f"{self.seed}:movie:{tmdb_id}")
        # Every 40th movie has no IMDb id (so no source can be searched for it).
        imdb_id = None if index % 40 == 39 else f"tt{imdb_number:07d}"
        title = f"The {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}"
        if rng.random() < 0.3:
            title += f" {rng.randint(2, 4)}"
        release = date_between(rng, dt.date(1970, 1, 1), dt.date(2025, 12, 31))
        popularity = round(10 ** rng.uniform(0.0, 3.2), 3)
        vote_count = 0 if rng.random() < 0.05 else int(popularity * rng.uniform(2, 40))
        yts_id = 10_000 + index
        has_sources = imdb_id is not None and rng.random() < 0.85
        sources = self._sources_of(rng, title, release) if has_sources else ()
        return Movie(
            tmdb_id=tmdb_id,
            imdb_id=imdb_id,
            title=title,
            overview=sentence(rng),
            tagline=rng.choice(("", f"Every {rng.choice(NOUNS).lower()} has a price.")),
            release_date=release,
            runtime=rng.randint(78, 185),
            popularity=popularity,
            vote_average=round(rng.uniform(3.8, 8.9), 3) if vote_count else 0.0,
            vote_count=vote_count,
            genre_ids=tuple(rng.sample(sorted(MOVIE_GENRES), rng.randint(1, 3))),
            original_language=rng.choice(("en", "en", "en", "fr", "es", "ja", "ko", "de")),
            poster_path=image_path(rng),
            backdrop_path=image_path(rng),
            trailer_key="".join(rng.choices(YOUTUBE, k=11)),
            yts_id=yts_id,
            sources=sources,
        )

    def _sources_of(self, rng: random.Random, title: str, release: dt.date) -> tuple[Source, ...]:
        variants: list[tuple[str, str, str, float, float]] = [
            ("720p", "x264", "bluray", 0.6e9, 1.3e9),
            ("1080p", "x264", "bluray", 1.4e9, 3.0e9),
        ]
        if rng.random() < 0.35:
            variants.append(("1080p", "x265", "web", 1.0e9, 2.2e9))
        if rng.random() < 0.3:
            variants.append(("2160p", "x265", "bluray", 4.0e9, 14.0e9))
        if rng.random() < 0.05:
            variants.append(("3D", "x264", "bluray", 1.5e9, 3.0e9))
        if rng.random() < 0.5:
            variants = [(q, c, "web", lo, hi) for q, c, _, lo, hi in variants]
        first_upload = max(
            int(dt.datetime(release.year, release.month, release.day, tzinfo=dt.UTC).timestamp()),
            int(dt.datetime(2011, 6, 1, tzinfo=dt.UTC).timestamp()),
        )
        sources = []
        for quality, codec, kind, low, high in variants:
            size = int(rng.uniform(low, high))
            uploaded = rng.randint(first_upload, max(first_upload, _EPOCH_2026))
            dotted = title.replace(" ", ".")
            spec = TorrentSpec(
                key=f"{self.seed}:{title}:{quality}:{codec}:{kind}:{rng.random()}".encode(),
                name=f"{dotted}.{release.year}.{quality}.{kind.upper()}.{codec}.mp4",
                length=size,
                created_at=uploaded,
            )
            sources.append(
                Source(
                    info_hash=spec.info_hash(),
                    quality=quality,
                    video_codec=codec,
                    type=kind,
                    size_bytes=size,
                    uploaded_at=uploaded,
                    cached=rng.random() < 0.9,
                    torrent=spec,
                    _seeds=int(10 ** rng.uniform(0.3, 3.4)),
                    _peer_ratio=rng.uniform(0.05, 0.8),
                    _period=rng.uniform(2 * 3600, 8 * 3600),
                    _phase=rng.uniform(0, 2 * math.pi),
                )
            )
        return tuple(sources)

    def _show(self, tmdb_id: int, imdb_number: int) -> Show:
        rng = random.Random(f"{self.seed}:show:{tmdb_id}")
        first_air = date_between(rng, dt.date(1995, 1, 1), dt.date(2024, 6, 30))
        seasons = []
        air = first_air
        for number in range(1, rng.randint(1, 7) + 1):
            episode_count = rng.randint(6, 22)
            season_id = tmdb_id * 100 + number
            seasons.append(
                Season(
                    id=season_id,
                    show_id=tmdb_id,
                    season_number=number,
                    name=f"Season {number}",
                    overview=sentence(rng),
                    air_date=air,
                    episode_count=episode_count,
                    poster_path=image_path(rng),
                    vote_average=round(rng.uniform(5.5, 9.0), 1),
                    _seed=f"{self.seed}:season:{season_id}",
                )
            )
            air += dt.timedelta(days=rng.randint(300, 500))
        popularity = round(10 ** rng.uniform(0.5, 3.0), 3)
        return Show(
            tmdb_id=tmdb_id,
            imdb_id=f"tt{imdb_number:07d}",
            tvdb_id=rng.randint(70_000, 450_000),
            name=f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}",
            overview=sentence(rng),
            first_air_date=first_air,
            popularity=popularity,
            vote_average=round(rng.uniform(5.0, 9.0), 3),
            vote_count=int(popularity * rng.uniform(2, 30)),
            genre_ids=tuple(rng.sample(sorted(TV_GENRES), rng.randint(1, 3))),
            origin_country=(rng.choice(("US", "GB", "CA", "KR", "FR")),),
            original_language="en",
            status=rng.choice(("Returning Series", "Ended")),
            poster_path=image_path(rng),
            backdrop_path=image_path(rng),
            seasons=tuple(seasons),
        )
