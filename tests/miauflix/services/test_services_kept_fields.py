"""What the original backend keeps and we now keep too: translations, logos, stills, show fields."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from miauflix.db import (
    Database,
    Episode,
    GenreTranslation,
    Movie,
    MovieData,
    Season,
    SeasonData,
    ShowData,
    TranslationData,
    TvShow,
    upsert_movie,
    upsert_season,
    upsert_show,
)
from miauflix.providers import Providers
from miauflix.services import ListSynchronizer, MediaService
from miauflix.simulator import Simulator

from .conftest import SIM_NOW, FakeClock, no_sleep

NOW = dt.datetime.fromtimestamp(SIM_NOW, dt.UTC)


def _one_page(database: Database, providers: Providers, clock: FakeClock) -> ListSynchronizer:
    """refreshLists on one page per list: enough items, a third of the requests."""
    return ListSynchronizer(database, providers.tmdb, clock=clock, sleep=no_sleep, pages=1)


async def test_listed_movies_keep_their_translations_and_logo(
    database: Database, providers: Providers, clock: FakeClock, sim: Simulator
) -> None:
    """After refreshLists each listed movie has its Spanish and French texts and its logo."""
    await _one_page(database, providers, clock).synchronize()

    async with database.session() as session:
        movies = (
            await session.scalars(select(Movie).options(selectinload(Movie.translations)))
        ).all()
    assert movies
    for movie in movies:
        expected = sim.catalogue.movie(movie.tmdb_id)
        assert expected is not None
        assert movie.logo_url is not None
        assert movie.logo_url.endswith(".png")
        languages = {t.language: t for t in movie.translations}
        assert sorted(languages) == ["es", "fr"]
        assert languages["es"].title == f"{expected.title} [es]"
        assert languages["fr"].overview == f"{expected.overview} [fr]"


async def test_listed_shows_keep_tagline_type_production_and_run_time(
    database: Database, providers: Providers, clock: FakeClock, sim: Simulator
) -> None:
    """After refreshLists each listed show has its tagline, type, in-production flag, run time."""
    await _one_page(database, providers, clock).synchronize()

    async with database.session() as session:
        shows = (await session.scalars(select(TvShow))).all()
    assert shows
    for show in shows:
        expected = sim.catalogue.show(show.tmdb_id)
        assert expected is not None
        assert show.tagline == f"Every season of {expected.name} has a secret."
        assert show.type in {"Scripted", "Miniseries"}
        assert show.in_production is (expected.status == "Returning Series")
        assert show.episode_run_time == expected.seasons[0].episodes()[0].runtime


async def test_a_synced_season_keeps_its_poster_and_each_episodes_still(
    media: MediaService, database: Database, sim: Simulator
) -> None:
    """syncIncompleteSeasons stores the season's poster and every episode's still image."""
    show = sim.catalogue.shows[0]
    async with database.session() as session:
        show_id = await upsert_show(session, ShowData(show.tmdb_id, show.name), now=NOW)
        await upsert_season(session, show_id, SeasonData(1), now=NOW)

    assert await media.sync_incomplete_seasons() == 1

    async with database.session() as session:
        season = (await session.scalars(select(Season))).one()
        stills = (
            await session.scalars(select(Episode.still_url).order_by(Episode.episode_number))
        ).all()
    assert season.poster_url is not None
    assert season.poster_url.endswith(show.seasons[0].poster_path)
    expected = [episode.still_path for episode in show.seasons[0].episodes()]
    assert len(stills) == len(expected) > 0
    for still, path in zip(stills, expected, strict=True):
        assert still is not None
        assert still.endswith(f"/original{path}")


async def test_a_list_summary_keeps_what_only_the_details_carry(database: Database) -> None:
    """Upserting a list's summary after the details keeps the logo, translations, show fields."""
    spanish = (TranslationData("es", title="Hola"),)
    async with database.session() as session:
        await upsert_movie(
            session,
            MovieData(1, "Hello", logo_url="https://l/x.png", translations=spanish),
            now=NOW,
        )
        await upsert_movie(session, MovieData(1, "Hello again"), now=NOW)
        details = ShowData(
            2, "Show", tagline="Tag", type="Scripted", in_production=True, episode_run_time=42
        )
        await upsert_show(session, details, now=NOW)
        await upsert_show(session, ShowData(2, "Show"), now=NOW)
    async with database.session() as session:
        movie = (
            await session.scalars(select(Movie).options(selectinload(Movie.translations)))
        ).one()
        show = (await session.scalars(select(TvShow))).one()
    assert (movie.title, movie.logo_url) == ("Hello again", "https://l/x.png")
    assert [(t.language, t.title) for t in movie.translations] == [("es", "Hola")]
    assert (show.tagline, show.type, show.in_production, show.episode_run_time) == (
        "Tag",
        "Scripted",
        True,
        42,
    )


async def test_genre_names_are_kept_in_each_configured_language(
    database: Database, providers: Providers, clock: FakeClock
) -> None:
    """refreshLists with languages es and fr keeps each genre's name in both."""
    # No list: the genres are refreshed first, whatever the lists.
    lists = ListSynchronizer(
        database, providers.tmdb, clock=clock, sleep=no_sleep, specs=(), languages=("es", "fr")
    )

    await lists.synchronize()

    async with database.session() as session:
        names = {
            (t.genre_id, t.language): t.name
            for t in (await session.scalars(select(GenreTranslation))).all()
        }
    assert names[(18, "es")] == "Drama [es]"
    assert names[(10765, "fr")] == "Sci-Fi & Fantasy [fr]"
    assert {language for _, language in names} == {"es", "fr"}
