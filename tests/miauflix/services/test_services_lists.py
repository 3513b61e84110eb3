"""`ListSynchronizer.synchronize()`: the `refreshLists` task against the simulator."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from miauflix.db import (
    Database,
    Movie,
    Season,
    TvShow,
    catalog_counts,
    media_list_movie_ids,
    media_list_show_ids,
)
from miauflix.providers import Providers
from miauflix.providers.tmdb import TmdbMovieSummary, TmdbPage
from miauflix.services import ListSynchronizer
from miauflix.simulator import Simulator

SLUGS = ("popular-movies", "top-rated-movies", "popular-shows")


async def _list_contents(database: Database) -> dict[str, list[int]]:
    async with database.session() as session:
        return {
            "popular-movies": await media_list_movie_ids(session, "popular-movies"),
            "top-rated-movies": await media_list_movie_ids(session, "top-rated-movies"),
            "popular-shows": await media_list_show_ids(session, "popular-shows"),
        }


def _fail_popular_page(
    monkeypatch: pytest.MonkeyPatch, providers: Providers, sim: Simulator, failing_page: int
) -> None:
    """Make the simulator fail every `/discover/movie` request from page `failing_page` on."""
    real = providers.tmdb.popular_movies

    async def popular_movies(page: int = 1) -> TmdbPage[TmdbMovieSummary]:
        if page >= failing_page:
            sim.faults.only = ("/tmdb/3/discover/movie",)
            sim.faults.error_rate = 1.0
        return await real(page)

    monkeypatch.setattr(providers.tmdb, "popular_movies", popular_movies)


async def test_synchronize_builds_the_three_lists_with_details(
    lists: ListSynchronizer, database: Database, sim: Simulator
) -> None:
    """One run fills the three lists in TMDB's order, with IMDb ids and the shows' seasons."""
    report = await lists.synchronize()

    assert report.refreshed == SLUGS
    assert report.failed == {}
    contents = await _list_contents(database)
    async with database.session() as session:
        by_id = {m.id: m for m in (await session.scalars(select(Movie))).all()}
        shows = {s.id: s for s in (await session.scalars(select(TvShow))).all()}
        seasons = await session.scalar(select(func.count()).select_from(Season))
    popular = [by_id[i].tmdb_id for i in contents["popular-movies"]]
    expected = sorted(
        (m for m in sim.catalogue.movies if m.vote_count >= 10),
        key=lambda m: (m.popularity, m.tmdb_id),
        reverse=True,
    )
    assert popular == [m.tmdb_id for m in expected][: len(popular)]
    assert len(popular) == min(len(expected), 6 * 20)
    imdb = {m.tmdb_id: m.imdb_id for m in sim.catalogue.movies}
    assert all(by_id[i].imdb_id == imdb[by_id[i].tmdb_id] for i in contents["popular-movies"])
    assert {shows[i].tmdb_id for i in contents["popular-shows"]} == {
        s.tmdb_id for s in sim.catalogue.shows
    }
    assert seasons == sum(len(s.seasons) for s in sim.catalogue.shows)


async def test_synchronize_twice_creates_no_duplicates(
    lists: ListSynchronizer, database: Database
) -> None:
    """A second run updates in place: same rows, same list contents."""
    await lists.synchronize()
    before = await _list_contents(database)
    async with database.session() as session:
        counts = await catalog_counts(session)

    await lists.synchronize()

    assert await _list_contents(database) == before
    async with database.session() as session:
        assert await catalog_counts(session) == counts


async def test_a_page_failing_mid_way_leaves_the_list_as_it_was(
    lists: ListSynchronizer,
    database: Database,
    providers: Providers,
    sim: Simulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When page 2 fails after page 1 succeeded, the list keeps its previous content intact."""
    await lists.synchronize()
    before = await _list_contents(database)
    assert len(before["popular-movies"]) > 20  # the list spans more than one page
    _fail_popular_page(monkeypatch, providers, sim, failing_page=2)

    report = await lists.synchronize()

    assert "popular-movies" in report.failed
    assert report.refreshed == ("top-rated-movies", "popular-shows")
    assert await _list_contents(database) == before
    # Some lists refreshed: a success, not an outage.
    assert report.outage is None


@pytest.mark.parametrize(
    ("fault", "reason", "retry_after"),
    [
        ("error_rate", r"tmdb unavailable \(HTTP 50[023]\): no list refreshed", None),
        ("rate_limit_rate", r"tmdb rate limited \(retry after 60 s\): no list refreshed", 60.0),
    ],
    ids=["5xx", "429"],
)
async def test_tmdb_down_refreshes_no_list_and_reports_the_outage(
    lists: ListSynchronizer,
    database: Database,
    sim: Simulator,
    fault: str,
    reason: str,
    retry_after: float | None,
) -> None:
    """With every TMDB request failing, no list changes and the report's outage names TMDB,
    the cause and that no list was refreshed (with a 429's Retry-After)."""
    await lists.synchronize()
    before = await _list_contents(database)
    sim.faults.only = ("/tmdb",)
    sim.faults.retry_after = 60
    setattr(sim.faults, fault, 1.0)

    report = await lists.synchronize()

    assert report.refreshed == ()
    assert set(report.failed) == set(SLUGS)
    assert report.outage is not None
    assert report.outage.error is report.failed["popular-shows"]
    assert re.fullmatch(reason, report.outage.reason)
    assert report.outage.retry_after == retry_after
    assert await _list_contents(database) == before


async def test_a_failed_first_run_creates_no_empty_list(
    lists: ListSynchronizer,
    database: Database,
    providers: Providers,
    sim: Simulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A list whose page 2 fails on the very first run is not created half-filled or empty."""
    _fail_popular_page(monkeypatch, providers, sim, failing_page=2)

    report = await lists.synchronize()

    assert set(report.failed) == {"popular-movies"}
    async with database.session() as session:
        counts = await catalog_counts(session)
    assert counts.lists == 2
    assert (await _list_contents(database))["popular-movies"] == []


async def test_movie_details_failing_lists_the_movie_from_the_page(
    lists: ListSynchronizer, database: Database, sim: Simulator
) -> None:
    """Details that keep failing leave the movie listed from the list page, without an IMDb id."""
    top = max(
        (m for m in sim.catalogue.movies if m.vote_count >= 10),
        key=lambda m: (m.popularity, m.tmdb_id),
    )
    sim.faults.only = (f"/tmdb/3/movie/{top.tmdb_id}",)
    sim.faults.error_rate = 1.0

    report = await lists.synchronize()

    assert report.details_failed >= 1
    async with database.session() as session:
        movie = await session.scalar(select(Movie).where(Movie.tmdb_id == top.tmdb_id))
    assert movie is not None
    assert movie.imdb_id is None
    assert movie.title == top.title
    assert (await _list_contents(database))["popular-movies"][0] == movie.id
