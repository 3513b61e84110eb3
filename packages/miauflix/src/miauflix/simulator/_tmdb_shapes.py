"""TMDB v3 JSON bodies for the catalogue's movies, shows and seasons (TMDB's published shapes)."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from typing import Any

from miauflix.simulator._models import MOVIE_GENRES, TV_GENRES, Movie, Season, Show


def _object_id(seed: str) -> str:
    return hashlib.sha1(seed.encode()).hexdigest()[:24]


def _date(value: dt.date | None) -> str:
    return value.isoformat() if value else ""


def movie_summary(movie: Movie) -> dict[str, Any]:
    """A movie as list endpoints (`/discover/movie`, `/movie/top_rated`) show it."""
    return {
        "adult": False,
        "backdrop_path": movie.backdrop_path,
        "genre_ids": list(movie.genre_ids),
        "id": movie.tmdb_id,
        "original_language": movie.original_language,
        "original_title": movie.title,
        "overview": movie.overview,
        "popularity": movie.popularity,
        "poster_path": movie.poster_path,
        "release_date": _date(movie.release_date),
        "title": movie.title,
        "video": False,
        "vote_average": movie.vote_average,
        "vote_count": movie.vote_count,
    }


def show_summary(show: Show) -> dict[str, Any]:
    """A show as `/discover/tv` shows it."""
    return {
        "adult": False,
        "backdrop_path": show.backdrop_path,
        "genre_ids": list(show.genre_ids),
        "id": show.tmdb_id,
        "origin_country": list(show.origin_country),
        "original_language": show.original_language,
        "original_name": show.name,
        "overview": show.overview,
        "popularity": show.popularity,
        "poster_path": show.poster_path,
        "first_air_date": _date(show.first_air_date),
        "name": show.name,
        "vote_average": show.vote_average,
        "vote_count": show.vote_count,
    }


def genres(ids: Sequence[int], names: dict[int, str]) -> list[dict[str, Any]]:
    """TMDB genre objects (`{"id", "name"}`) for `ids`, named from `names`."""
    return [{"id": genre, "name": names[genre]} for genre in ids]


def translated_genres(names: dict[int, str], language: str | None) -> dict[int, str]:
    """Genre names in `language` ("es" or "es-ES"): marked as the movie texts are; English
    for a language the simulator does not translate (as TMDB falls back)."""
    code = (language or "en").split("-")[0]
    if code not in TRANSLATED:
        return names
    marker = TRANSLATED[code][2]
    return {genre: f"{name} [{marker}]" for genre, name in names.items()}


def _translation(
    language: tuple[str, str, str], title: str, overview: str, tagline: str, runtime: int
) -> dict[str, Any]:
    code, country, name = language
    return {
        "iso_3166_1": country,
        "iso_639_1": code,
        "name": name,
        "english_name": name,
        "data": {
            "homepage": "",
            "overview": overview,
            "runtime": runtime,
            "tagline": tagline,
            "title": title,
        },
    }


_ENGLISH = ("en", "US", "English")
# The catalogue's texts marked per language: derived, not drawn, so adding them leaves the
# seeded catalogue (and every test that reads it) unchanged.
TRANSLATED: dict[str, tuple[str, str, str]] = {
    "es": ("ES", "Español", "es"),
    "fr": ("FR", "Français", "fr"),
}
"""The languages the simulator translates movies into besides English: code to (country,
name, marker); a translated text is the English one followed by ` [marker]`."""


def _translations(movie: Movie) -> list[dict[str, Any]]:
    texts = (movie.title, movie.overview, movie.tagline)
    result = [_translation(_ENGLISH, *texts, movie.runtime)]
    for code, (country, name, marker) in TRANSLATED.items():
        title, overview, tagline = (f"{text} [{marker}]" if text else "" for text in texts)
        result.append(_translation((code, country, name), title, overview, tagline, movie.runtime))
    return result


def logo_path(tmdb_id: int) -> str:
    """The TMDB image path of a movie's (English) logo."""
    return f"/{_object_id(f'logo:{tmdb_id}')[:27]}.png"


def _images(poster: str, backdrop: str, logo: str | None = None) -> dict[str, Any]:
    def image(path: str, width: int, height: int, language: str | None = None) -> dict[str, Any]:
        return {
            "aspect_ratio": round(width / height, 3),
            "height": height,
            "iso_639_1": language,
            "file_path": path,
            "vote_average": 5.3,
            "vote_count": 4,
            "width": width,
        }

    return {
        "backdrops": [image(backdrop, 1920, 1080)],
        "logos": [] if logo is None else [image(logo, 1000, 400, "en")],
        "posters": [image(poster, 2000, 3000)],
    }


def movie_details(movie: Movie, append: set[str]) -> dict[str, Any]:
    """`/movie/{id}`, with the `append_to_response` parts named in `append`."""
    body: dict[str, Any] = {
        **movie_summary(movie),
        "belongs_to_collection": None,
        "budget": 0,
        "genres": genres(movie.genre_ids, MOVIE_GENRES),
        "homepage": "",
        "imdb_id": movie.imdb_id,
        "origin_country": ["US"],
        "production_companies": [],
        "production_countries": [],
        "revenue": 0,
        "runtime": movie.runtime,
        "spoken_languages": [],
        "status": "Released",
        "tagline": movie.tagline,
    }
    del body["genre_ids"]
    if "translations" in append:
        body["translations"] = {"translations": _translations(movie)}
    if "images" in append:
        body["images"] = _images(movie.poster_path, movie.backdrop_path, logo_path(movie.tmdb_id))
    if "videos" in append:
        published = dt.datetime.combine(
            movie.release_date - dt.timedelta(days=60), dt.time(16), tzinfo=dt.UTC
        )
        body["videos"] = {
            "results": [
                {
                    "iso_639_1": "en",
                    "iso_3166_1": "US",
                    "name": "Official Trailer",
                    "key": movie.trailer_key,
                    "site": "YouTube",
                    "size": 1080,
                    "type": "Trailer",
                    "official": True,
                    "published_at": published.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                    "id": _object_id(f"video:{movie.tmdb_id}"),
                }
            ]
        }
    if "external_ids" in append:
        body["external_ids"] = {
            "id": movie.tmdb_id,
            "imdb_id": movie.imdb_id,
            "wikidata_id": None,
            "facebook_id": None,
            "instagram_id": None,
            "twitter_id": None,
        }
    return body


def _season_summary(season: Season) -> dict[str, Any]:
    return {
        "air_date": _date(season.air_date),
        "episode_count": season.episode_count,
        "id": season.id,
        "name": season.name,
        "overview": season.overview,
        "poster_path": season.poster_path,
        "season_number": season.season_number,
        "vote_average": season.vote_average,
    }


def show_details(show: Show, append: set[str]) -> dict[str, Any]:
    """`/tv/{id}`, with `external_ids` and `translations` when appended."""
    last = show.seasons[-1] if show.seasons else None
    first_episodes = show.seasons[0].episodes() if show.seasons else []
    body: dict[str, Any] = {
        **show_summary(show),
        "created_by": [],
        "episode_run_time": [first_episodes[0].runtime] if first_episodes else [],
        "genres": genres(show.genre_ids, TV_GENRES),
        "homepage": "",
        "in_production": show.status == "Returning Series",
        "languages": [show.original_language],
        "last_air_date": _date(
            last.air_date + dt.timedelta(weeks=last.episode_count - 1) if last else None
        ),
        "name": show.name,
        "networks": [],
        "next_episode_to_air": None,
        "number_of_episodes": sum(season.episode_count for season in show.seasons),
        "number_of_seasons": len(show.seasons),
        "production_companies": [],
        "production_countries": [],
        "seasons": [_season_summary(season) for season in show.seasons],
        "spoken_languages": [],
        "status": show.status,
        "tagline": show_tagline(show),
        "type": "Miniseries" if len(show.seasons) == 1 else "Scripted",
    }
    del body["genre_ids"]
    if "external_ids" in append:
        body["external_ids"] = {
            "id": show.tmdb_id,
            "imdb_id": show.imdb_id,
            "freebase_mid": None,
            "freebase_id": None,
            "tvdb_id": show.tvdb_id,
            "tvrage_id": None,
            "wikidata_id": None,
            "facebook_id": None,
            "instagram_id": None,
            "twitter_id": None,
        }
    if "translations" in append:
        body["translations"] = {
            "translations": [_translation(_ENGLISH, show.name, show.overview, "", 0)]
        }
    if "images" in append:
        body["images"] = _images(show.poster_path, show.backdrop_path)
    return body


def show_tagline(show: Show) -> str:
    """The tagline `/tv/{id}` gives a show (derived from its name)."""
    return f"Every season of {show.name} has a secret."


def season_details(show: Show, season: Season) -> dict[str, Any]:
    """`/tv/{id}/season/{n}`: the season with its episodes."""
    return {
        "_id": _object_id(f"season:{season.id}"),
        "air_date": _date(season.air_date),
        "episodes": [
            {
                "air_date": _date(episode.air_date),
                "episode_number": episode.episode_number,
                "episode_type": "standard",
                "id": episode.id,
                "name": episode.name,
                "overview": episode.overview,
                "production_code": "",
                "runtime": episode.runtime,
                "season_number": episode.season_number,
                "show_id": show.tmdb_id,
                "still_path": episode.still_path,
                "vote_average": episode.vote_average,
                "vote_count": episode.vote_count,
                "crew": [],
                "guest_stars": [],
            }
            for episode in season.episodes()
        ],
        "name": season.name,
        "overview": season.overview,
        "id": season.id,
        "poster_path": season.poster_path,
        "season_number": season.season_number,
        "vote_average": season.vote_average,
    }
