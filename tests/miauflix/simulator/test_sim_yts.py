"""The simulated YTS API and torrent cache: shapes, and torrents whose info hashes match."""

from __future__ import annotations

import io
import re
from typing import Any

import httpx
import pytest
import torf

from miauflix.simulator import Movie, Simulator

pytestmark = pytest.mark.slow

TORRENT_FIELDS = {
    "url", "hash", "quality", "type", "video_codec", "seeds", "peers", "size", "size_bytes",
    "date_uploaded", "date_uploaded_unix",
}  # fmt: skip


def _with_sources(sim: Simulator) -> Movie:
    """The first movie with sources whose first listing is complete (not a fresh one)."""
    return next(
        m
        for m in sim.catalogue.movies
        if m.sources and not sim.catalogue.first_listing_gaps(m.tmdb_id)
    )


def _missing(body: dict[str, Any]) -> dict[str, set[str]]:
    """The torrent fields each torrent of a one-movie answer lacks, by hash (complete: absent)."""
    [movie] = body["data"]["movies"]
    return {
        t["hash"]: TORRENT_FIELDS - set(t) for t in movie["torrents"] if TORRENT_FIELDS - set(t)
    }


async def _yts(client: httpx.AsyncClient, sim: Simulator, **params: str) -> httpx.Response:
    return await client.get(f"{sim.yts_url}/api/v2/list_movies.json", params=params)


async def test_list_movies_by_imdb_id_has_the_yts_shape(
    sim: Simulator, client: httpx.AsyncClient, now: float
) -> None:
    """`query_term=<imdb id>` finds the one movie with its torrents in YTS's JSON shape."""
    movie = _with_sources(sim)
    assert movie.imdb_id is not None
    body = (await _yts(client, sim, query_term=movie.imdb_id)).json()
    assert body["status"] == "ok"
    assert body["status_message"] == "Query was successful"
    data = body["data"]
    assert (data["movie_count"], data["limit"], data["page_number"]) == (1, 20, 1)
    [found] = data["movies"]
    assert found["imdb_code"] == movie.imdb_id
    assert found["title"] == movie.title
    assert found["year"] == movie.release_date.year
    assert len(found["torrents"]) == len(movie.sources)
    for torrent, source in zip(found["torrents"], movie.sources, strict=True):
        assert set(torrent) >= TORRENT_FIELDS
        assert re.fullmatch(r"[0-9A-F]{40}", torrent["hash"])
        assert torrent["hash"] == source.info_hash.hex().upper()
        assert torrent["quality"] in {"720p", "1080p", "2160p", "3D"}
        assert torrent["type"] in {"web", "bluray"}
        assert torrent["video_codec"] in {"x264", "x265"}
        assert torrent["size_bytes"] == source.size_bytes
        assert torrent["size"].endswith(("GB", "MB"))
        assert torrent["date_uploaded_unix"] == source.uploaded_at
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", torrent["date_uploaded"])
        swarm = source.swarm(now)
        assert (torrent["seeds"], torrent["peers"]) == (swarm.complete, swarm.incomplete)
        assert torrent["url"].startswith(sim.yts_url)


async def test_movie_without_sources_is_not_found(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    """A movie YTS lacks gives movie_count 0 and, like YTS, no `movies` key at all."""
    movie = next(m for m in sim.catalogue.movies if m.imdb_id and not m.sources)
    assert movie.imdb_id is not None
    body = (await _yts(client, sim, query_term=movie.imdb_id)).json()
    assert body["status"] == "ok"
    assert body["data"]["movie_count"] == 0
    assert "movies" not in body["data"]


async def test_list_movies_paginates_everything(sim: Simulator, client: httpx.AsyncClient) -> None:
    """Without a query, every movie with sources is listed, `limit` per page."""
    expected = {m.imdb_id for m in sim.catalogue.movies if m.sources and m.imdb_id}
    seen: list[str] = []
    page = 1
    while True:
        data = (await _yts(client, sim, limit="50", page=str(page))).json()["data"]
        assert data["movie_count"] == len(expected)
        if "movies" not in data:
            break
        seen += [movie["imdb_code"] for movie in data["movies"]]
        page += 1
    assert sorted(seen) == sorted(expected)
    assert (await _yts(client, sim, limit="99")).status_code == 400


async def test_served_torrent_hash_matches_the_advertised_hash(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    """The torrent at the advertised URL parses (torf) and its info hash is the YTS hash."""
    movie = _with_sources(sim)
    assert movie.imdb_id is not None
    torrents = (await _yts(client, sim, query_term=movie.imdb_id)).json()["data"]["movies"][0][
        "torrents"
    ]
    for advertised in torrents:
        response = await client.get(advertised["url"])
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-bittorrent"
        torrent = torf.Torrent.read_stream(io.BytesIO(response.content))
        assert torrent.infohash.upper() == advertised["hash"]
        assert torrent.size == advertised["size_bytes"]
        assert [url for tier in torrent.trackers for url in tier] == [
            sim.http_tracker_url,
            sim.udp_tracker_url,
        ]


async def test_cache_serves_by_hash_in_either_case(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    """`/cache/torrent/<HASH>.torrent` accepts upper and lower case hex and serves the same file."""
    source = next(s for s in sim.catalogue.sources if s.cached)
    upper = await client.get(f"{sim.torrent_cache_url}/torrent/{source.hex_hash}.torrent")
    lower = await client.get(f"{sim.torrent_cache_url}/torrent/{source.hex_hash.lower()}.torrent")
    assert upper.status_code == lower.status_code == 200
    assert upper.content == lower.content
    assert torf.Torrent.read_stream(io.BytesIO(upper.content)).infohash == source.info_hash.hex()


@pytest.mark.parametrize(
    "name", ["00" * 20 + ".torrent", "abc.torrent", "ZZ" * 20 + ".torrent", "00" * 20]
)
async def test_cache_misses_are_404(sim: Simulator, client: httpx.AsyncClient, name: str) -> None:
    """Unknown or malformed hashes are 404 in the cache and at the direct download URL."""
    assert (await client.get(f"{sim.torrent_cache_url}/torrent/{name}")).status_code == 404
    stem = name.removesuffix(".torrent")
    assert (await client.get(f"{sim.yts_url}/torrent/download/{stem}")).status_code == 404


async def test_some_torrents_are_only_at_the_direct_url(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    """A source the cache lacks is a cache 404, yet its YTS download URL serves it."""
    source = next(s for s in sim.catalogue.sources if not s.cached)
    cached = await client.get(f"{sim.torrent_cache_url}/torrent/{source.hex_hash}.torrent")
    direct = await client.get(f"{sim.yts_url}/torrent/download/{source.hex_hash}")
    assert cached.status_code == 404
    assert direct.status_code == 200
    assert torf.Torrent.read_stream(io.BytesIO(direct.content)).infohash == source.info_hash.hex()


async def test_first_listing_of_a_fresh_movie_lacks_upload_date_or_type(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    """A fresh movie's first answer lacks its gaps' keys, its second has them; others have all."""
    catalogue = sim.catalogue
    fresh = next(m for m in catalogue.movies if catalogue.first_listing_gaps(m.tmdb_id))
    complete = _with_sources(sim)
    keys = {"uploaded_at": {"date_uploaded", "date_uploaded_unix"}, "type": {"type"}}
    expected = {
        info_hash.hex().upper(): set().union(*(keys[gap] for gap in gaps))
        for info_hash, gaps in catalogue.first_listing_gaps(fresh.tmdb_id).items()
    }
    assert fresh.imdb_id is not None
    assert complete.imdb_id is not None

    first = (await _yts(client, sim, query_term=fresh.imdb_id)).json()
    second = (await _yts(client, sim, query_term=fresh.imdb_id)).json()
    assert (first["status"], len(first["data"]["movies"][0]["torrents"])) == (
        "ok",
        len(fresh.sources),
    )
    assert _missing(first) == expected
    assert _missing(second) == {}
    assert _missing((await _yts(client, sim, query_term=complete.imdb_id)).json()) == {}

    size = {"movies": len(catalogue.movies), "shows": len(catalogue.shows)}
    async with Simulator(seed=catalogue.seed, **size) as again:
        # Same seed, new simulator: the same movie's first answer lacks the same keys.
        assert _missing((await _yts(client, again, query_term=fresh.imdb_id)).json()) == expected
