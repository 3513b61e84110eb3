"""The simulated TMDB v3 API over real loopback HTTP: auth, shapes, pagination, 404s, changes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest

from miauflix.simulator import MOVIE_GENRES, TV_GENRES, Simulator

pytestmark = pytest.mark.slow

MOVIE_FIELDS = {
    "adult", "backdrop_path", "genre_ids", "id", "original_language", "original_title",
    "overview", "popularity", "poster_path", "release_date", "title", "video", "vote_average",
    "vote_count",
}  # fmt: skip
TMDB_NOT_FOUND = {
    "status_code": 34,
    "status_message": "The resource you requested could not be found.",
    "success": False,
}


async def test_requests_without_the_token_get_tmdb_401(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    """No token or a wrong one gives 401 with TMDB's status_code 7 error body."""
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": sim.tmdb_token}):
        response = await client.get(f"{sim.tmdb_url}/configuration", headers=headers)
        assert response.status_code == 401
        body = response.json()
        assert body["status_code"] == 7
        assert body["success"] is False
        assert body["status_message"]


async def test_api_key_query_parameter_is_accepted(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    """The token also works as TMDB's `api_key` query parameter."""
    response = await client.get(
        f"{sim.tmdb_url}/genre/movie/list", params={"api_key": sim.tmdb_token}
    )
    assert response.status_code == 200


async def test_configuration_and_genre_lists(tmdb: httpx.AsyncClient) -> None:
    """`/configuration` has image settings; the genre lists are TMDB's ids and names."""
    configuration = (await tmdb.get("/configuration")).json()
    assert configuration["images"]["secure_base_url"].endswith("/")
    assert "original" in configuration["images"]["poster_sizes"]
    movie = (await tmdb.get("/genre/movie/list")).json()["genres"]
    tv = (await tmdb.get("/genre/tv/list")).json()["genres"]
    assert {g["id"]: g["name"] for g in movie} == MOVIE_GENRES
    assert {g["id"]: g["name"] for g in tv} == TV_GENRES


async def _all_pages(tmdb: httpx.AsyncClient, path: str, **params: Any) -> list[dict[str, Any]]:
    first = (await tmdb.get(path, params={**params, "page": 1})).json()
    results = list(first["results"])
    for page in range(2, first["total_pages"] + 1):
        body = (await tmdb.get(path, params={**params, "page": page})).json()
        assert body["page"] == page
        assert len(body["results"]) == 20 or page == first["total_pages"]
        results += body["results"]
    assert len(results) == first["total_results"]
    return results


async def test_discover_movie_paginates_by_popularity(
    sim: Simulator, tmdb: httpx.AsyncClient
) -> None:
    """`/discover/movie` gives 20 per page, filtered by vote_count.gte, most popular first."""
    results = await _all_pages(
        tmdb, "/discover/movie", sort_by="popularity.desc", **{"vote_count.gte": 10}
    )
    expected = {m.tmdb_id for m in sim.catalogue.movies if m.vote_count >= 10}
    assert {r["id"] for r in results} == expected
    assert len(results) == len(expected)
    popularity = [r["popularity"] for r in results]
    assert popularity == sorted(popularity, reverse=True)
    assert set(results[0]) == MOVIE_FIELDS


async def test_pages_past_the_end_are_empty_and_bad_pages_rejected(tmdb: httpx.AsyncClient) -> None:
    """A page after the last has no results; page 0 or 501 is TMDB's 400 error (code 22)."""
    body = (await tmdb.get("/discover/movie", params={"page": 400})).json()
    assert body["results"] == []
    assert body["page"] == 400
    for page in ("0", "501", "x"):
        response = await tmdb.get("/discover/movie", params={"page": page})
        assert response.status_code == 400
        assert response.json()["status_code"] == 22


async def test_top_rated_is_sorted_by_rating(tmdb: httpx.AsyncClient) -> None:
    """`/movie/top_rated` lists well-voted movies, best rated first."""
    results = await _all_pages(tmdb, "/movie/top_rated")
    ratings = [r["vote_average"] for r in results]
    assert results
    assert ratings == sorted(ratings, reverse=True)
    assert all(r["vote_count"] >= 100 for r in results)


async def test_discover_tv_lists_every_show(sim: Simulator, tmdb: httpx.AsyncClient) -> None:
    """`/discover/tv` lists the shows with TMDB's TV summary fields."""
    results = await _all_pages(tmdb, "/discover/tv")
    assert {r["id"] for r in results} == {s.tmdb_id for s in sim.catalogue.shows}
    assert {"name", "first_air_date", "origin_country", "popularity"} <= set(results[0])


async def test_movie_details_with_appended_parts(sim: Simulator, tmdb: httpx.AsyncClient) -> None:
    """`/movie/{id}` has the details, and each `append_to_response` part in TMDB's shape."""
    movie = next(m for m in sim.catalogue.movies if m.imdb_id)
    params = {"append_to_response": "translations,images,videos,external_ids"}
    body = (await tmdb.get(f"/movie/{movie.tmdb_id}", params=params)).json()
    assert body["id"] == movie.tmdb_id
    assert body["imdb_id"] == movie.imdb_id
    assert body["title"] == movie.title
    assert body["runtime"] == movie.runtime
    assert body["release_date"] == movie.release_date.isoformat()
    assert [g["id"] for g in body["genres"]] == list(movie.genre_ids)
    assert body["translations"]["translations"][0]["data"]["overview"] == movie.overview
    assert body["images"]["posters"][0]["file_path"] == movie.poster_path
    assert body["images"]["backdrops"][0]["file_path"] == movie.backdrop_path
    video = body["videos"]["results"][0]
    assert (video["site"], video["type"], video["key"]) == ("YouTube", "Trailer", movie.trailer_key)
    assert body["external_ids"]["imdb_id"] == movie.imdb_id
    plain = (await tmdb.get(f"/movie/{movie.tmdb_id}")).json()
    assert not {"translations", "images", "videos", "external_ids"} & set(plain)


async def test_movie_without_imdb_id_has_null(sim: Simulator, tmdb: httpx.AsyncClient) -> None:
    """A movie without an IMDb id answers `imdb_id: null`, as TMDB does."""
    movie = next(m for m in sim.catalogue.movies if m.imdb_id is None)
    body = (await tmdb.get(f"/movie/{movie.tmdb_id}")).json()
    assert body["imdb_id"] is None


@pytest.mark.parametrize(
    "path", ["/movie/1", "/movie/abc", "/tv/1", "/tv/1/season/1", "/no/such/route"]
)
async def test_unknown_resources_get_tmdb_404(tmdb: httpx.AsyncClient, path: str) -> None:
    """Unknown ids and routes answer 404 with TMDB's status_code 34 body."""
    response = await tmdb.get(path)
    assert response.status_code == 404
    assert response.json() == TMDB_NOT_FOUND


async def test_show_details_and_seasons(sim: Simulator, tmdb: httpx.AsyncClient) -> None:
    """`/tv/{id}` lists seasons and external ids; `/tv/{id}/season/{n}` has the episodes."""
    show = sim.catalogue.shows[0]
    body = (
        await tmdb.get(f"/tv/{show.tmdb_id}", params={"append_to_response": "external_ids"})
    ).json()
    assert body["name"] == show.name
    assert body["external_ids"]["imdb_id"] == show.imdb_id
    assert body["number_of_seasons"] == len(show.seasons)
    assert [s["season_number"] for s in body["seasons"]] == [s.season_number for s in show.seasons]
    season = show.seasons[-1]
    detail = (await tmdb.get(f"/tv/{show.tmdb_id}/season/{season.season_number}")).json()
    assert detail["id"] == season.id
    assert len(detail["episodes"]) == season.episode_count
    episode = detail["episodes"][0]
    assert episode["episode_number"] == 1
    assert episode["season_number"] == season.season_number
    assert episode["show_id"] == show.tmdb_id
    assert {"air_date", "name", "overview", "still_path", "runtime"} <= set(episode)
    missing = await tmdb.get(f"/tv/{show.tmdb_id}/season/{len(show.seasons) + 1}")
    assert missing.status_code == 404


async def test_changes_follow_the_requested_days(
    sim: Simulator, tmdb: httpx.AsyncClient, now: float
) -> None:
    """`/movie/changes` lists the catalogue's changes for the range, 100 ids a page."""
    today = dt.datetime.fromtimestamp(now, dt.UTC).date()
    start = today - dt.timedelta(days=6)
    params = {"start_date": start.isoformat(), "end_date": today.isoformat()}
    first = (await tmdb.get("/movie/changes", params=params)).json()
    expected = sim.catalogue.changes(start, today, now)
    assert first["total_results"] == len(expected) > 0
    ids = []
    for page in range(1, first["total_pages"] + 1):
        body = (await tmdb.get("/movie/changes", params={**params, "page": page})).json()
        assert len(body["results"]) <= 100
        assert all(item["adult"] is False for item in body["results"])
        ids += [item["id"] for item in body["results"]]
    assert ids == expected
    other_day = {"start_date": "2026-01-02", "end_date": "2026-01-03"}
    other = [
        r["id"] for r in (await tmdb.get("/movie/changes", params=other_day)).json()["results"]
    ]
    assert other
    assert other != ids[: len(other)]


async def test_changes_default_to_yesterday_and_today(
    sim: Simulator, tmdb: httpx.AsyncClient, now: float
) -> None:
    """Without dates the feed covers yesterday and today so far."""
    today = dt.datetime.fromtimestamp(now, dt.UTC).date()
    body = (await tmdb.get("/movie/changes")).json()
    expected = sim.catalogue.changes(
        today - dt.timedelta(days=1), today + dt.timedelta(days=1), now
    )
    assert [r["id"] for r in body["results"]] == expected[:100]


@pytest.mark.parametrize(
    ("start", "end"), [("2026-01-20", "2026-01-01"), ("2026-01-01", "2026-02-01"), ("x", "")]
)
async def test_bad_change_ranges_are_rejected(
    tmdb: httpx.AsyncClient, start: str, end: str
) -> None:
    """A reversed range, one over 14 days or a malformed date is a 422 naming the bad value."""
    response = await tmdb.get("/movie/changes", params={"start_date": start, "end_date": end})
    assert response.status_code == 422
    assert response.json()["success"] is False
    assert start in response.json()["status_message"]
