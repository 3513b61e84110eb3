"""Read-only queries behind the read API: JSON-safe documents of what the tasks wrote.

Each function takes a session (a read session is enough) and returns plain dicts and lists,
or None for an unknown id or slug. Dates are ISO strings; `*_at` times ISO strings in UTC.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from miauflix.db._models import (
    Genre,
    GenreTranslation,
    MediaList,
    MediaListMovie,
    MediaListShow,
    Movie,
    MovieSource,
    MovieSourceFile,
    MovieTranslation,
    Season,
    TvShow,
)
from miauflix.db._sources import list_movie_sources

__all__ = ["list_page", "media_lists", "movie_document", "season_document", "show_document"]

Document = dict[str, Any]


def _iso(value: dt.date | dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


async def media_lists(session: AsyncSession) -> list[Document]:
    """Every list, by slug: `{slug, name, description, item_count}`."""
    movies = (
        select(MediaListMovie.list_id, func.count().label("n"))
        .group_by(MediaListMovie.list_id)
        .subquery()
    )
    shows = (
        select(MediaListShow.list_id, func.count().label("n"))
        .group_by(MediaListShow.list_id)
        .subquery()
    )
    rows = await session.execute(
        select(
            MediaList.slug,
            MediaList.name,
            MediaList.description,
            func.coalesce(movies.c.n, 0) + func.coalesce(shows.c.n, 0),
        )
        .outerjoin(movies, movies.c.list_id == MediaList.id)
        .outerjoin(shows, shows.c.list_id == MediaList.id)
        .order_by(MediaList.slug)
    )
    return [
        {"slug": slug, "name": name, "description": description, "item_count": int(count)}
        for slug, name, description, count in rows.all()
    ]


async def list_page(
    session: AsyncSession, slug: str, *, page: int, per_page: int
) -> Document | None:
    """One page of a list, in list order: `{items: [{tmdb_id, kind, title}], page, per_page,
    total}`, or None for an unknown slug. A list's movies come before its shows."""
    list_id = (
        await session.scalars(select(MediaList.id).where(MediaList.slug == slug))
    ).one_or_none()
    if list_id is None:
        return None
    entries = union_all(
        select(
            literal(0).label("kind_order"),
            MediaListMovie.position.label("position"),
            literal("movie").label("kind"),
            Movie.tmdb_id.label("tmdb_id"),
            Movie.title.label("title"),
        )
        .join(Movie, Movie.id == MediaListMovie.movie_id)
        .where(MediaListMovie.list_id == list_id),
        select(
            literal(1),
            MediaListShow.position,
            literal("show"),
            TvShow.tmdb_id,
            TvShow.name,
        )
        .join(TvShow, TvShow.id == MediaListShow.show_id)
        .where(MediaListShow.list_id == list_id),
    ).subquery()
    total = (await session.execute(select(func.count()).select_from(entries))).scalar_one()
    rows = await session.execute(
        select(entries.c.kind, entries.c.tmdb_id, entries.c.title)
        .order_by(entries.c.kind_order, entries.c.position)
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    items = [{"tmdb_id": tmdb_id, "kind": kind, "title": title} for kind, tmdb_id, title in rows]
    return {"items": items, "page": page, "per_page": per_page, "total": int(total)}


async def _genres(session: AsyncSession, genres: list[Genre], lang: str | None) -> list[Document]:
    """Genres named in `lang` where a name is stored, in English otherwise."""
    names: dict[int, str] = {}
    if lang is not None and genres:
        rows = await session.execute(
            select(GenreTranslation.genre_id, GenreTranslation.name).where(
                GenreTranslation.language == lang,
                GenreTranslation.genre_id.in_([genre.id for genre in genres]),
            )
        )
        names = {row.genre_id: row.name for row in rows}
    return [{"id": genre.id, "name": names.get(genre.id, genre.name)} for genre in genres]


async def movie_document(
    session: AsyncSession, tmdb_id: int, *, lang: str | None = None
) -> Document | None:
    """A movie with its genres and its sources best first, or None for an unknown id.

    With `lang` (ISO 639-1), genres are named in that language where a name is stored; with
    a stored translation in that language, `title`, `overview` and `tagline` are translated
    (each falling back to the original when the translation leaves it empty); `language`
    says which language the texts are in ("en" otherwise), `languages` lists those stored.
    """
    movie = (
        await session.scalars(
            select(Movie)
            .options(selectinload(Movie.genres), selectinload(Movie.translations))
            .where(Movie.tmdb_id == tmdb_id)
        )
    ).one_or_none()
    if movie is None:
        return None
    translation: MovieTranslation | None = next(
        (t for t in movie.translations if t.language == lang), None
    )
    sources = await list_movie_sources(session, movie.id)
    stored = set(
        (
            await session.scalars(
                select(MovieSourceFile.source_id).where(
                    MovieSourceFile.source_id.in_([source.id for source in sources])
                )
            )
        ).all()
    )
    return {
        "tmdb_id": movie.tmdb_id,
        "imdb_id": movie.imdb_id,
        "language": "en" if translation is None else translation.language,
        "languages": ["en", *(t.language for t in movie.translations)],
        "title": (translation and translation.title) or movie.title,
        "original_title": movie.original_title,
        "overview": (translation and translation.overview) or movie.overview,
        "tagline": (translation and translation.tagline) or movie.tagline,
        "release_date": _iso(movie.release_date),
        "runtime": movie.runtime,
        "popularity": movie.popularity,
        "rating": movie.rating,
        "vote_count": movie.vote_count,
        "poster_url": movie.poster_url,
        "backdrop_url": movie.backdrop_url,
        "logo_url": movie.logo_url,
        "trailer_code": movie.trailer_code,
        "genres": await _genres(session, movie.genres, lang),
        "sources": [_source(source, source.id in stored) for source in sources],
    }


def _source(source: MovieSource, file_stored: bool) -> Document:
    return {
        "info_hash": source.info_hash,
        "magnet": source.magnet_link,
        "quality": source.quality,
        "video_codec": source.video_codec,
        "source_type": source.source_type,
        "size_bytes": source.size_bytes,
        "seeders": source.seeders,
        "leechers": source.leechers,
        "uploaded_at": _iso(source.uploaded_at),
        "directory": source.source_directory,
        "file_stored": file_stored,
    }


async def show_document(
    session: AsyncSession, tmdb_id: int, *, lang: str | None = None
) -> Document | None:
    """A show with its genres (named in `lang` where stored) and seasons (without episodes),
    or None for an unknown id."""
    show = (
        await session.scalars(
            select(TvShow)
            .options(selectinload(TvShow.genres), selectinload(TvShow.seasons))
            .where(TvShow.tmdb_id == tmdb_id)
        )
    ).one_or_none()
    if show is None:
        return None
    return {
        "tmdb_id": show.tmdb_id,
        "imdb_id": show.imdb_id,
        "name": show.name,
        "original_name": show.original_name,
        "overview": show.overview,
        "tagline": show.tagline,
        "first_air_date": _iso(show.first_air_date),
        "status": show.status,
        "type": show.type,
        "in_production": show.in_production,
        "episode_run_time": show.episode_run_time,
        "popularity": show.popularity,
        "rating": show.rating,
        "vote_count": show.vote_count,
        "poster_url": show.poster_url,
        "backdrop_url": show.backdrop_url,
        "genres": await _genres(session, show.genres, lang),
        "seasons": [_season(season) for season in show.seasons],
    }


def _season(season: Season) -> Document:
    return {
        "season_number": season.season_number,
        "name": season.name,
        "overview": season.overview,
        "air_date": _iso(season.air_date),
        "episode_count": season.episode_count,
        "poster_url": season.poster_url,
        "synced": season.synced,
        "synced_at": _iso(season.synced_at),
    }


async def season_document(session: AsyncSession, tmdb_id: int, number: int) -> Document | None:
    """A show's season with its episodes, or None for an unknown show or season."""
    season = (
        await session.scalars(
            select(Season)
            .join(TvShow, TvShow.id == Season.show_id)
            .options(selectinload(Season.episodes))
            .where(TvShow.tmdb_id == tmdb_id, Season.season_number == number)
        )
    ).one_or_none()
    if season is None:
        return None
    return {
        "show_tmdb_id": tmdb_id,
        **_season(season),
        "episodes": [
            {
                "episode_number": episode.episode_number,
                "name": episode.name,
                "overview": episode.overview,
                "air_date": _iso(episode.air_date),
                "runtime": episode.runtime,
                "still_url": episode.still_url,
            }
            for episode in season.episodes
        ],
    }
