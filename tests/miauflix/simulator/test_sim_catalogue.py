"""The synthetic catalogue: deterministic from its seed, cheap, and moving with time."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import time

import pytest
from bencode2 import bencode

from miauflix.simulator import MOVIE_GENRES, Catalogue

NOW = dt.datetime(2026, 3, 15, 12, 0, tzinfo=dt.UTC).timestamp()
TODAY = dt.datetime.fromtimestamp(NOW, dt.UTC).date()


def test_same_seed_gives_the_same_catalogue() -> None:
    """Two catalogues built from one seed are equal item by item, info hashes included."""
    first, second = Catalogue(seed=3, movies=80, shows=5), Catalogue(seed=3, movies=80, shows=5)
    assert first.movies == second.movies
    assert first.shows == second.shows
    assert [s.episodes() for s in first.shows[0].seasons] == [
        s.episodes() for s in second.shows[0].seasons
    ]


def test_other_seed_gives_other_data() -> None:
    """A different seed changes ids, titles and hashes."""
    first, second = Catalogue(seed=3, movies=50, shows=2), Catalogue(seed=4, movies=50, shows=2)
    assert {m.tmdb_id for m in first.movies} != {m.tmdb_id for m in second.movies}
    assert {s.info_hash for s in first.sources}.isdisjoint(s.info_hash for s in second.sources)


def test_three_hundred_movies_build_well_under_a_second() -> None:
    """The default catalogue (300 movies, 40 shows) builds in less than a second."""
    started = time.perf_counter()
    catalogue = Catalogue(seed=42, movies=300, shows=40)
    assert time.perf_counter() - started < 1.0
    assert len(catalogue.movies) == 300
    assert len(catalogue.shows) == 40


def test_movies_have_the_fields_clients_need() -> None:
    """IMDb ids are tt + 7-8 digits and unique, a few are missing; genres are TMDB's."""
    catalogue = Catalogue(seed=42, movies=300, shows=0)
    imdb_ids = [m.imdb_id for m in catalogue.movies if m.imdb_id is not None]
    assert 0 < 300 - len(imdb_ids) < 30
    assert len(set(imdb_ids)) == len(imdb_ids)
    assert all(re.fullmatch(r"tt\d{7,8}", imdb) for imdb in imdb_ids)
    assert len({m.tmdb_id for m in catalogue.movies}) == 300
    for movie in catalogue.movies:
        assert movie.title
        assert movie.overview
        assert movie.runtime > 0
        assert movie.poster_path.startswith("/")
        assert movie.backdrop_path.endswith(".jpg")
        assert set(movie.genre_ids) <= set(MOVIE_GENRES)
        assert len(movie.trailer_key) == 11


def test_most_movies_have_sources_but_not_all() -> None:
    """Between 70% and 95% of movies have YTS sources; none without an IMDb id does."""
    catalogue = Catalogue(seed=42, movies=300, shows=0)
    with_sources = [m for m in catalogue.movies if m.sources]
    assert 0.7 * 300 < len(with_sources) < 0.95 * 300
    assert all(m.imdb_id for m in with_sources)
    qualities = {s.quality for s in catalogue.sources}
    assert {"720p", "1080p", "2160p"} <= qualities <= {"720p", "1080p", "2160p", "3D"}
    assert {s.video_codec for s in catalogue.sources} == {"x264", "x265"}
    assert {s.type for s in catalogue.sources} == {"web", "bluray"}


def test_fresh_movies_are_a_seed_chosen_share_with_gaps_in_their_own_torrents() -> None:
    """About a sixth of the movies with sources are fresh, the same ones for the same seed."""
    catalogue = Catalogue(seed=42, movies=300, shows=0)
    with_sources = [m for m in catalogue.movies if m.sources]
    fresh = {m.tmdb_id: catalogue.first_listing_gaps(m.tmdb_id) for m in with_sources}
    fresh = {tmdb_id: gaps for tmdb_id, gaps in fresh.items() if gaps}
    assert 0.15 <= len(fresh) / len(with_sources) <= 0.2
    for movie in with_sources:
        gaps = fresh.get(movie.tmdb_id, {})
        assert set(gaps) <= {s.info_hash for s in movie.sources}
        assert all(gap and gap <= {"uploaded_at", "type"} for gap in gaps.values())
    assert {gap for gaps in fresh.values() for gap in gaps.values()} == {
        frozenset({"uploaded_at"}),
        frozenset({"type"}),
        frozenset({"uploaded_at", "type"}),
    }
    assert all(
        not catalogue.first_listing_gaps(m.tmdb_id) for m in catalogue.movies if not m.sources
    )
    again = Catalogue(seed=42, movies=300, shows=0)
    assert {m.tmdb_id: again.first_listing_gaps(m.tmdb_id) for m in again.movies if m.sources} == {
        m.tmdb_id: catalogue.first_listing_gaps(m.tmdb_id) for m in with_sources
    }


def test_info_hash_is_sha1_of_the_bencoded_info_dict() -> None:
    """Each source's info hash is the SHA-1 of its torrent's bencoded `info` dictionary."""
    catalogue = Catalogue(seed=5, movies=20, shows=0)
    for source in catalogue.sources:
        info = source.torrent.info()
        assert hashlib.sha1(bencode(info)).digest() == source.info_hash
        assert info[b"length"] == source.size_bytes
        assert catalogue.source(source.info_hash) is not None


def test_shows_have_seasons_with_episodes() -> None:
    """Shows have numbered seasons whose episode lists match their episode counts."""
    catalogue = Catalogue(seed=42, movies=1, shows=10)
    for show in catalogue.shows:
        assert re.fullmatch(r"tt\d{7,8}", show.imdb_id)
        assert [s.season_number for s in show.seasons] == list(range(1, len(show.seasons) + 1))
        for season in show.seasons:
            episodes = season.episodes()
            assert [e.episode_number for e in episodes] == list(range(1, season.episode_count + 1))
        assert show.season(0) is None
        assert show.season(len(show.seasons) + 1) is None


def test_changes_feed_grows_during_the_day_and_is_empty_in_the_future() -> None:
    """Today's changes appear as the day goes by; tomorrow has none; past days are fixed."""
    catalogue = Catalogue(seed=42, movies=300, shows=0)
    tomorrow = TODAY + dt.timedelta(days=1)
    midnight = NOW - 12 * 3600
    morning = catalogue.changes(TODAY, tomorrow, midnight + 6 * 3600)
    evening = catalogue.changes(TODAY, tomorrow, midnight + 23 * 3600)
    assert set(morning) < set(evening)
    assert catalogue.changes(tomorrow, tomorrow + dt.timedelta(days=1), NOW) == []
    yesterday = TODAY - dt.timedelta(days=1)
    assert catalogue.changes(yesterday, TODAY, NOW) == catalogue.changes(
        yesterday, TODAY, NOW + 9e5
    )
    assert set(catalogue.changes(yesterday, TODAY, NOW)) <= {m.tmdb_id for m in catalogue.movies}


def test_changes_range_is_half_open_and_days_differ() -> None:
    """A two-day range is the union of its two days; different days change different movies."""
    catalogue = Catalogue(seed=42, movies=300, shows=0)
    day1, day2, day3 = (TODAY - dt.timedelta(days=n) for n in (3, 2, 1))
    first = catalogue.changes(day1, day2, NOW)
    second = catalogue.changes(day2, day3, NOW)
    assert first
    assert second
    assert first != second
    assert set(catalogue.changes(day1, day3, NOW)) == set(first) | set(second)
    assert catalogue.changes(day1, day1, NOW) == first


def test_swarm_counts_drift_with_time() -> None:
    """Seeders/leechers are stable at one instant and differ hours later."""
    catalogue = Catalogue(seed=42, movies=60, shows=0)
    sources = catalogue.sources
    assert all(s.swarm(NOW) == s.swarm(NOW) for s in sources)
    moved = [s for s in sources if s.swarm(NOW) != s.swarm(NOW + 3 * 3600)]
    assert len(moved) > 0.8 * len(sources)
    assert all(s.swarm(NOW + 3600).downloaded >= s.swarm(NOW).downloaded for s in sources)


@pytest.mark.parametrize(("movies", "shows"), [(0, 1), (-3, 1), (1, -1), (True, 1), (1.5, 1)])
def test_bad_sizes_are_rejected(movies: int, shows: int) -> None:
    """Zero movies or a negative show count is refused; the message shows the value."""
    with pytest.raises(ValueError, match="must be an integer") as caught:
        Catalogue(seed=1, movies=movies, shows=shows)
    assert repr(movies if "movies" in str(caught.value) else shows) in str(caught.value)


def test_seed_must_be_an_integer() -> None:
    """A non-integer seed is refused with its value in the message."""
    with pytest.raises(ValueError, match="seed must be an integer, got '42'"):
        Catalogue(seed="42", movies=1, shows=0)  # type: ignore[arg-type]


def test_episode_ids_are_unique_and_fit_in_32_bits() -> None:
    """Every episode id is distinct and below 2**31, like TMDB's (stored in INTEGER columns)."""
    catalogue = Catalogue(seed=11, movies=1, shows=40)
    ids = [e.id for show in catalogue.shows for season in show.seasons for e in season.episodes()]
    assert len(set(ids)) == len(ids)
    assert max(ids) < 2**31
