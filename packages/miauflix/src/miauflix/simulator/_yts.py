"""YTS API v2 routes (mounted at `/yts`) and the torrent cache (mounted at `/cache`).

The first `list_movies.json?query_term=<imdb id>` answer about a "fresh" movie (see
`Catalogue.first_listing_gaps`) leaves `date_uploaded`/`date_uploaded_unix` and/or `type` out
of some torrents, as YTS does for entries it has just added; every later answer about it is
complete. "First" is per simulator and counts every answer the route produced, including one
a `truncate` fault then cut (the client saw no usable data, and the next answer is complete).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from miauflix.simulator._context import Context
from miauflix.simulator._models import MOVIE_GENRES, FreshGap, Movie, Source
from miauflix.simulator._torrents import TorrentSpec

_IMDB = re.compile(r"tt\d{7,8}")
_HEX_HASH = re.compile(r"[0-9a-fA-F]{40}")
TORRENT_TYPE = "application/x-bittorrent"


def _size_text(size: int) -> str:
    if size >= 1024**3:
        return f"{size / 1024**3:.2f} GB"
    return f"{size / 1024**2:.2f} MB"


def _uploaded(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


_GAP_KEYS: dict[FreshGap, tuple[str, ...]] = {
    "uploaded_at": ("date_uploaded", "date_uploaded_unix"),
    "type": ("type",),
}


def yts_torrent(
    source: Source, base_url: str, now: float, gaps: frozenset[FreshGap] = frozenset()
) -> dict[str, Any]:
    """One entry of a YTS movie's `torrents` list, without the keys of `gaps`."""
    swarm = source.swarm(now)
    torrent = {
        "url": f"{base_url}/yts/torrent/download/{source.hex_hash}",
        "hash": source.hex_hash,
        "quality": source.quality,
        "type": source.type,
        "is_repack": "0",
        "video_codec": source.video_codec,
        "bit_depth": "10" if source.video_codec == "x265" else "8",
        "audio_channels": "5.1" if source.quality != "720p" else "2.0",
        "seeds": swarm.complete,
        "peers": swarm.incomplete,
        "size": _size_text(source.size_bytes),
        "size_bytes": source.size_bytes,
        "date_uploaded": _uploaded(source.uploaded_at),
        "date_uploaded_unix": source.uploaded_at,
    }
    for gap in gaps:
        for key in _GAP_KEYS[gap]:
            del torrent[key]
    return torrent


def yts_movie(
    movie: Movie,
    base_url: str,
    now: float,
    gaps: Mapping[bytes, frozenset[FreshGap]] | None = None,
) -> dict[str, Any]:
    """A movie as YTS's `list_movies.json` shows it; `gaps` leaves torrents' keys out."""
    gaps = gaps or {}
    slug = re.sub(r"[^a-z0-9]+", "-", f"{movie.title} {movie.release_date.year}".lower())
    images = f"{base_url}/yts/assets/images/movies/{slug}"
    added = min(source.uploaded_at for source in movie.sources)
    return {
        "id": movie.yts_id,
        "url": f"{base_url}/yts/movies/{slug}",
        "imdb_code": movie.imdb_id,
        "title": movie.title,
        "title_english": movie.title,
        "title_long": f"{movie.title} ({movie.release_date.year})",
        "slug": slug,
        "year": movie.release_date.year,
        "rating": round(movie.vote_average, 1),
        "runtime": movie.runtime,
        "genres": [MOVIE_GENRES[genre] for genre in movie.genre_ids],
        "summary": movie.overview,
        "description_full": movie.overview,
        "synopsis": movie.overview,
        "yt_trailer_code": movie.trailer_key,
        "language": movie.original_language,
        "mpa_rating": "",
        "background_image": f"{images}/background.jpg",
        "background_image_original": f"{images}/background.jpg",
        "small_cover_image": f"{images}/small-cover.jpg",
        "medium_cover_image": f"{images}/medium-cover.jpg",
        "large_cover_image": f"{images}/large-cover.jpg",
        "state": "ok",
        "torrents": [
            yts_torrent(source, base_url, now, gaps.get(source.info_hash, frozenset()))
            for source in movie.sources
        ],
        "date_uploaded": _uploaded(added),
        "date_uploaded_unix": added,
    }


def _int(request: Request, name: str, default: int, low: int, high: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if low <= value <= high else None


def _wrong(spec: TorrentSpec) -> TorrentSpec:
    """A valid torrent like `spec` but with other pieces, hence another info hash."""
    return TorrentSpec(
        key=spec.key + b":wrong", name=spec.name, length=spec.length, created_at=spec.created_at
    )


def torrent_response(context: Context, source: Source, path: str) -> Response:
    """The `.torrent` file of `source`, or of another hash when `wrong_hash_rate` hits."""
    spec = source.torrent
    if context.roll(context.faults.wrong_hash_rate, path):
        spec = _wrong(spec)
    return Response(
        spec.metainfo(context.trackers),
        media_type=TORRENT_TYPE,
        headers={"content-disposition": f'attachment; filename="{source.hex_hash}.torrent"'},
    )


def _source(context: Context, text: str) -> Source | None:
    if not _HEX_HASH.fullmatch(text):
        return None
    found = context.catalogue.source(bytes.fromhex(text))
    return found[0] if found else None


def yts_routes(context: Context) -> list[Route]:
    """`/api/v2/list_movies.json` and the torrent download URL it advertises."""
    catalogue = context.catalogue

    def first_gaps(movie: Movie) -> dict[bytes, frozenset[FreshGap]]:
        # Only answers by IMDb id count (what the source search and resync ask), so a browse
        # of the whole list does not use up a fresh movie's incomplete first listing.
        if movie.tmdb_id in context.yts_listed:
            return {}
        context.yts_listed.add(movie.tmdb_id)
        return catalogue.first_listing_gaps(movie.tmdb_id)

    async def list_movies(request: Request) -> Response:
        limit = _int(request, "limit", 20, 1, 50)
        page = _int(request, "page", 1, 1, 1_000_000)
        if limit is None or page is None:
            return JSONResponse(
                {"status": "error", "status_message": "Invalid limit or page parameter."},
                status_code=400,
            )
        term = request.query_params.get("query_term", "").strip()
        listed = [movie for movie in catalogue.movies if movie.sources]
        by_imdb = _IMDB.fullmatch(term) is not None
        if by_imdb:
            listed = [movie for movie in listed if movie.imdb_id == term]
        elif term and term != "0":
            listed = [movie for movie in listed if term.lower() in movie.title.lower()]
        else:
            listed.sort(key=lambda m: (max(s.uploaded_at for s in m.sources), m.yts_id))
            listed.reverse()
        now = context.clock()
        data: dict[str, Any] = {"movie_count": len(listed), "limit": limit, "page_number": page}
        chosen = listed[(page - 1) * limit : page * limit]
        # Real YTS leaves `movies` out entirely when nothing matches.
        if chosen:
            data["movies"] = [
                yts_movie(movie, context.base_url, now, first_gaps(movie) if by_imdb else None)
                for movie in chosen
            ]
        return JSONResponse(
            {
                "status": "ok",
                "status_message": "Query was successful",
                "data": data,
                "@meta": {
                    "server_time": int(now),
                    "server_timezone": "UTC",
                    "api_version": 2,
                    "execution_time": "0 ms",
                },
            }
        )

    async def download(request: Request) -> Response:
        source = _source(context, request.path_params["info_hash"])
        if source is None:
            return Response("Torrent not found", status_code=404, media_type="text/plain")
        return torrent_response(context, source, request.url.path)

    return [
        Route("/api/v2/list_movies.json", list_movies),
        Route("/torrent/download/{info_hash}", download),
    ]


def cache_routes(context: Context) -> list[Route]:
    """The itorrents-style cache: `/torrent/<HASH>.torrent`, hex in either case."""

    async def cached(request: Request) -> Response:
        name: str = request.path_params["name"]
        source = (
            _source(context, name.removesuffix(".torrent")) if name.endswith(".torrent") else None
        )
        if source is None or not source.cached:
            return Response("Not Found", status_code=404, media_type="text/plain")
        return torrent_response(context, source, request.url.path)

    return [Route("/torrent/{name}", cached)]
