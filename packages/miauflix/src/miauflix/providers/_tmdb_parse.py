"""TMDB's published response shapes -> the client's dataclasses; wrong shapes raise
`ShapeError`, which the HTTP layer reports as `BadResponse`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from miauflix.providers import _shape as s
from miauflix.providers._tmdb_types import (
    TmdbChange,
    TmdbConfiguration,
    TmdbEpisode,
    TmdbGenre,
    TmdbMovie,
    TmdbMovieSummary,
    TmdbPage,
    TmdbSeason,
    TmdbSeasonSummary,
    TmdbShow,
    TmdbShowSummary,
    TmdbTranslation,
)

T = TypeVar("T")


def parse_configuration(doc: dict[str, Any]) -> TmdbConfiguration:
    images = s.req_obj(doc, "images")
    base = s.opt_str(images, "secure_base_url") or s.req_str(images, "base_url")
    poster_sizes = [str(x) for x in s.opt_arr(images, "poster_sizes")]
    backdrop_sizes = [str(x) for x in s.opt_arr(images, "backdrop_sizes")]
    return TmdbConfiguration(
        image_base_url=base if base.endswith("/") else base + "/",
        poster_size="w500" if "w500" in poster_sizes else "original",
        backdrop_size="w1280" if "w1280" in backdrop_sizes else "original",
    )


def parse_genres(doc: dict[str, Any]) -> list[TmdbGenre]:
    return [parse_genre(s.obj(g, "a genre")) for g in s.opt_arr(doc, "genres")]


def parse_genre(g: dict[str, Any]) -> TmdbGenre:
    return TmdbGenre(s.req_int(g, "id"), s.opt_str(g, "name") or "")


def parse_page(doc: dict[str, Any], item: Callable[[dict[str, Any]], T]) -> TmdbPage[T]:
    results = tuple(item(s.obj(r, "a result")) for r in s.opt_arr(doc, "results"))
    return TmdbPage(
        page=s.req_int(doc, "page"),
        total_pages=s.opt_int(doc, "total_pages") or 0,
        total_results=s.opt_int(doc, "total_results") or 0,
        results=results,
    )


def _genre_ids(d: dict[str, Any]) -> tuple[int, ...]:
    ids = s.opt_arr(d, "genre_ids")
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise s.ShapeError(f"'genre_ids' must hold integers, got {ids!r}")
    return tuple(ids)


def parse_movie_summary(d: dict[str, Any], images: TmdbConfiguration) -> TmdbMovieSummary:
    title = s.opt_str(d, "title") or ""
    return TmdbMovieSummary(
        tmdb_id=s.req_int(d, "id"),
        title=title,
        original_title=s.opt_str(d, "original_title") or title,
        overview=s.opt_str(d, "overview") or "",
        release_date=s.opt_date(d, "release_date"),
        popularity=s.num(d, "popularity"),
        vote_average=s.num(d, "vote_average"),
        vote_count=s.opt_int(d, "vote_count") or 0,
        genre_ids=_genre_ids(d),
        poster_url=images.image_url(s.opt_str(d, "poster_path"), images.poster_size),
        backdrop_url=images.image_url(s.opt_str(d, "backdrop_path"), images.backdrop_size),
    )


def parse_show_summary(d: dict[str, Any], images: TmdbConfiguration) -> TmdbShowSummary:
    name = s.opt_str(d, "name") or ""
    return TmdbShowSummary(
        tmdb_id=s.req_int(d, "id"),
        name=name,
        original_name=s.opt_str(d, "original_name") or name,
        overview=s.opt_str(d, "overview") or "",
        first_air_date=s.opt_date(d, "first_air_date"),
        popularity=s.num(d, "popularity"),
        vote_average=s.num(d, "vote_average"),
        vote_count=s.opt_int(d, "vote_count") or 0,
        genre_ids=_genre_ids(d),
        poster_url=images.image_url(s.opt_str(d, "poster_path"), images.poster_size),
        backdrop_url=images.image_url(s.opt_str(d, "backdrop_path"), images.backdrop_size),
    )


def _first_image(appended: dict[str, Any], key: str) -> str | None:
    for image in s.opt_arr(appended, key):
        path = s.opt_str(s.obj(image, f"an item of {key!r}"), "file_path")
        if path:
            return path
    return None


# Logos and stills are linked at their original size: TMDB's logo and still size lists differ
# from the poster and backdrop ones the configuration answer gives us.
_ORIGINAL = "original"


def _logo_path(appended: dict[str, Any]) -> str | None:
    """The first English or language-free logo, else the first logo."""
    logos = [s.obj(logo, "an item of 'logos'") for logo in s.opt_arr(appended, "logos")]
    logos = [logo for logo in logos if s.opt_str(logo, "file_path")]
    # `sorted` is stable: TMDB's order (best voted first) decides among equals.
    logos.sort(key=lambda logo: logo.get("iso_639_1") not in ("en", None))
    return s.opt_str(logos[0], "file_path") if logos else None


def _trailer_key(d: dict[str, Any]) -> str | None:
    videos = [s.obj(v, "a video") for v in s.opt_arr(s.opt_obj(d, "videos"), "results")]
    youtube = [v for v in videos if v.get("site") == "YouTube" and s.opt_str(v, "key")]
    for kind in ("Trailer", "Teaser"):
        matching = [v for v in youtube if v.get("type") == kind]
        # Official videos first; `sorted` is stable, so TMDB's order decides the rest.
        matching.sort(key=lambda v: v.get("official") is not True)
        if matching:
            return s.opt_str(matching[0], "key")
    return None


def parse_translations(d: dict[str, Any]) -> tuple[TmdbTranslation, ...]:
    result = []
    for t in s.opt_arr(s.opt_obj(d, "translations"), "translations"):
        t = s.obj(t, "a translation")
        data = s.opt_obj(t, "data")
        result.append(
            TmdbTranslation(
                language=s.opt_str(t, "iso_639_1") or "",
                country=s.opt_str(t, "iso_3166_1") or "",
                title=s.opt_str(data, "title"),
                overview=s.opt_str(data, "overview"),
                tagline=s.opt_str(data, "tagline"),
            )
        )
    return tuple(result)


def parse_movie(d: dict[str, Any], images: TmdbConfiguration) -> TmdbMovie:
    appended = s.opt_obj(d, "images")
    poster = s.opt_str(d, "poster_path") or _first_image(appended, "posters")
    backdrop = s.opt_str(d, "backdrop_path") or _first_image(appended, "backdrops")
    title = s.opt_str(d, "title") or ""
    runtime = s.opt_int(d, "runtime")
    return TmdbMovie(
        tmdb_id=s.req_int(d, "id"),
        imdb_id=s.opt_str(d, "imdb_id"),
        title=title,
        original_title=s.opt_str(d, "original_title") or title,
        overview=s.opt_str(d, "overview") or "",
        tagline=s.opt_str(d, "tagline"),
        release_date=s.opt_date(d, "release_date"),
        # TMDB sends 0 for an unknown runtime.
        runtime=runtime or None,
        popularity=s.num(d, "popularity"),
        vote_average=s.num(d, "vote_average"),
        vote_count=s.opt_int(d, "vote_count") or 0,
        poster_url=images.image_url(poster, images.poster_size),
        backdrop_url=images.image_url(backdrop, images.backdrop_size),
        trailer_key=_trailer_key(d),
        genres=tuple(parse_genres(d)),
        translations=parse_translations(d),
        status=s.opt_str(d, "status"),
        logo_url=images.image_url(_logo_path(appended), _ORIGINAL),
    )


def parse_show(d: dict[str, Any], images: TmdbConfiguration) -> TmdbShow:
    name = s.opt_str(d, "name") or ""
    in_production = d.get("in_production")
    run_times = s.opt_arr(d, "episode_run_time")
    seasons = []
    for season in s.opt_arr(d, "seasons"):
        season = s.obj(season, "a season")
        seasons.append(
            TmdbSeasonSummary(
                season_number=s.req_int(season, "season_number"),
                name=s.opt_str(season, "name") or "",
                air_date=s.opt_date(season, "air_date"),
                episode_count=s.opt_int(season, "episode_count") or 0,
            )
        )
    return TmdbShow(
        tmdb_id=s.req_int(d, "id"),
        imdb_id=s.opt_str(s.opt_obj(d, "external_ids"), "imdb_id"),
        name=name,
        original_name=s.opt_str(d, "original_name") or name,
        overview=s.opt_str(d, "overview") or "",
        first_air_date=s.opt_date(d, "first_air_date"),
        last_air_date=s.opt_date(d, "last_air_date"),
        status=s.opt_str(d, "status"),
        popularity=s.num(d, "popularity"),
        vote_average=s.num(d, "vote_average"),
        vote_count=s.opt_int(d, "vote_count") or 0,
        poster_url=images.image_url(s.opt_str(d, "poster_path"), images.poster_size),
        backdrop_url=images.image_url(s.opt_str(d, "backdrop_path"), images.backdrop_size),
        genres=tuple(parse_genres(d)),
        seasons=tuple(seasons),
        tagline=s.opt_str(d, "tagline") or None,
        type=s.opt_str(d, "type") or None,
        in_production=in_production if isinstance(in_production, bool) else None,
        episode_run_time=next(
            (int(m) for m in run_times if isinstance(m, int) and not isinstance(m, bool) and m > 0),
            None,
        ),
    )


def parse_season(
    d: dict[str, Any], show_id: int, season_number: int, images: TmdbConfiguration
) -> TmdbSeason:
    episodes = []
    for e in s.opt_arr(d, "episodes"):
        e = s.obj(e, "an episode")
        episodes.append(
            TmdbEpisode(
                tmdb_id=s.req_int(e, "id"),
                episode_number=s.req_int(e, "episode_number"),
                name=s.opt_str(e, "name") or "",
                overview=s.opt_str(e, "overview") or "",
                air_date=s.opt_date(e, "air_date"),
                runtime=s.opt_int(e, "runtime"),
                still_url=images.image_url(s.opt_str(e, "still_path"), _ORIGINAL),
            )
        )
    return TmdbSeason(
        tmdb_id=s.req_int(d, "id"),
        show_id=show_id,
        season_number=season_number,
        name=s.opt_str(d, "name") or "",
        overview=s.opt_str(d, "overview") or "",
        air_date=s.opt_date(d, "air_date"),
        episodes=tuple(episodes),
        poster_url=images.image_url(s.opt_str(d, "poster_path"), images.poster_size),
    )


def parse_change(d: dict[str, Any]) -> TmdbChange:
    adult = d.get("adult")
    return TmdbChange(s.req_int(d, "id"), adult if isinstance(adult, bool) else None)
