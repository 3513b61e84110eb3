"""YTS as a content directory, and the in-order search across directories."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from miauflix.providers import (
    BadResponse,
    ProviderError,
    Providers,
    ProviderUnavailable,
    SourceCandidate,
    YtsDirectory,
    search_directories,
)
from miauflix.providers.directories import ContentDirectory, magnet_link
from miauflix.simulator import Simulator

from .fakes import Handler, RawHttpServer, json_response, replying

pytestmark = pytest.mark.slow

Start = Callable[[Handler], Awaitable[RawHttpServer]]
HASH = "a" * 40


def yts_answer(*movies: dict[str, object]) -> dict[str, object]:
    data: dict[str, object] = {"movie_count": len(movies), "limit": 20, "page_number": 1}
    if movies:
        data["movies"] = list(movies)
    return {"status": "ok", "status_message": "Query was successful", "data": data}


def yts_torrent(info_hash: str, quality: str, kind: str = "web") -> dict[str, object]:
    return {
        "url": f"https://yts.test/torrent/download/{info_hash.upper()}",
        "hash": info_hash.upper(),
        "quality": quality,
        "type": kind,
        "video_codec": "x264",
        "seeds": 12,
        "peers": 3,
        "size": "1.2 GB",
        "size_bytes": 1288490189,
        "date_uploaded": "2020-01-02 03:04:05",
        "date_uploaded_unix": 1577934245,
    }


async def test_yts_sources_match_the_catalogue(providers: Providers, sim: Simulator) -> None:
    """A movie's YTS torrents become candidates with hash, quality, type, size and upload time."""
    movie = next(
        m
        for m in sim.catalogue.movies
        if m.imdb_id and m.sources and not sim.catalogue.first_listing_gaps(m.tmdb_id)
    )
    assert movie.imdb_id is not None
    sources = await providers.yts.search(movie.imdb_id)
    assert sorted(s.info_hash for s in sources) == sorted(s.hex_hash.lower() for s in movie.sources)
    by_hash = {s.hex_hash.lower(): s for s in movie.sources}
    for candidate in sources:
        expected = by_hash[candidate.info_hash]
        assert candidate.quality == expected.quality
        assert candidate.source_type == expected.type
        assert candidate.size_bytes == expected.size_bytes
        assert candidate.uploaded_at == dt.datetime.fromtimestamp(expected.uploaded_at, dt.UTC)
        assert candidate.directory == "yts"
        assert candidate.download_url is not None
        for tracker in providers.yts.trackers:
            assert (
                magnet_link(candidate.info_hash, None, [tracker]).split("&")[-1]
                in candidate.magnet_link
            )


async def test_yts_movie_without_sources_is_empty(providers: Providers, sim: Simulator) -> None:
    """A movie YTS does not list gives an empty list, not an error."""
    assert await providers.yts.search("tt0000001") == []
    assert providers.yts.status().status == "ready"


async def test_yts_published_shape(raw_http: Start) -> None:
    """Other IMDb ids are ignored, unknown qualities skipped, unknown types become None."""
    answer = yts_answer(
        {
            "imdb_code": "tt0137523",
            "title_long": "Fight Club (1999)",
            "torrents": [
                yts_torrent(HASH, "1080p", "bluray"),
                yts_torrent("b" * 40, "480p"),
                yts_torrent("c" * 40, "2160p", "hdtv"),
            ],
        },
        {"imdb_code": "tt9999999", "title": "Other", "torrents": [yts_torrent("d" * 40, "720p")]},
    )
    server = await raw_http(replying(json_response(answer)))
    async with YtsDirectory(
        server.url, trackers=["udp://t.test:1/announce"], rate_limit=None
    ) as yts:
        sources = await yts.search("tt0137523")
    assert [(s.info_hash, s.quality, s.source_type) for s in sources] == [
        (HASH, "1080p", "bluray"),
        ("c" * 40, "2160p", None),
    ]
    assert sources[0].magnet_link == (
        f"magnet:?xt=urn:btih:{HASH}&dn=Fight%20Club%20%281999%29&tr=udp%3A%2F%2Ft.test%3A1%2Fannounce"
    )
    assert sources[0].uploaded_at == dt.datetime(2020, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert "query_term=tt0137523" in server.requests[0].split("\r\n")[0]


async def test_yts_torrent_without_upload_date_or_type_has_none(raw_http: Start) -> None:
    """A torrent YTS lists without `date_uploaded*` or `type` (just added) parses with None."""
    bare = {k: v for k, v in yts_torrent(HASH, "1080p").items() if not k.startswith("date")}
    untyped = {k: v for k, v in yts_torrent("b" * 40, "720p").items() if k != "type"}
    answer = yts_answer({"imdb_code": "tt0137523", "torrents": [bare, untyped]})
    server = await raw_http(replying(json_response(answer)))
    async with YtsDirectory(server.url, rate_limit=None) as yts:
        sources = await yts.search("tt0137523")
    assert [(s.uploaded_at, s.source_type) for s in sources] == [
        (None, "web"),
        (dt.datetime(2020, 1, 2, 3, 4, 5, tzinfo=dt.UTC), None),
    ]


@pytest.mark.parametrize(
    "answer",
    [
        {"status": "error", "status_message": "Invalid"},
        {"status": "ok", "data": []},
        yts_answer(
            {"imdb_code": "tt0137523", "torrents": [{**yts_torrent(HASH, "720p"), "hash": "xyz"}]}
        ),
    ],
    ids=["status-error", "data-not-object", "bad-hash"],
)
async def test_yts_bad_answers_are_bad_responses(
    raw_http: Start, answer: dict[str, object]
) -> None:
    """A YTS error status, a wrong shape or a malformed hash raises BadResponse."""
    server = await raw_http(replying(json_response(answer)))
    async with YtsDirectory(server.url, rate_limit=None) as yts:
        with pytest.raises(BadResponse, match=r"yts: /api/v2/list_movies.json"):
            await yts.search("tt0137523")


async def test_malformed_imdb_id_raises_at_once() -> None:
    """An IMDb id that does not look like tt1234567 raises ValueError naming it, asking nobody."""
    async with YtsDirectory("http://127.0.0.1:1") as yts:
        with pytest.raises(ValueError, match="'550'"):
            await yts.search("550")
    with pytest.raises(ValueError, match="imdb_id"):
        await search_directories([yts], "tt12")


@dataclass
class FakeDirectory:
    """A content directory answering from a fixed list or failing."""

    name: str
    sources: list[SourceCandidate] = field(default_factory=list)
    error: ProviderError | None = None
    asked: list[str] = field(default_factory=list)

    async def search(self, imdb_id: str) -> list[SourceCandidate]:
        self.asked.append(imdb_id)
        if self.error is not None:
            raise self.error
        return self.sources


def candidate(directory: str) -> SourceCandidate:
    return SourceCandidate(
        HASH, magnet_link(HASH, None, []), None, "720p", None, None, 0, 0, None, None, directory
    )


async def test_first_directory_with_sources_wins() -> None:
    """Directories are asked in order; the first non-empty answer wins, later ones are not asked."""
    empty, full, never = (
        FakeDirectory("a"),
        FakeDirectory("b", [candidate("b")]),
        FakeDirectory("c", [candidate("c")]),
    )
    result = await search_directories([empty, full, never], "tt0137523")
    assert isinstance(empty, ContentDirectory)
    assert result.directory == "b"
    assert [s.directory for s in result.sources] == ["b"]
    assert result.searched == ("a", "b")
    assert never.asked == []
    assert result.complete


async def test_a_failing_directory_does_not_hide_the_next(caplog: pytest.LogCaptureFixture) -> None:
    """A directory that errors is recorded and logged; the next directory's sources are returned."""
    broken = FakeDirectory("a", error=ProviderUnavailable("a", "/x", "down"))
    result = await search_directories([broken, FakeDirectory("b", [candidate("b")])], "tt0137523")
    assert result.directory == "b"
    assert list(result.errors) == ["a"]
    assert not result.complete
    assert "directory a failed for tt0137523" in caplog.text


async def test_no_sources_anywhere_is_an_empty_complete_result() -> None:
    """When every directory answers empty the result is empty and complete."""
    result = await search_directories([FakeDirectory("a"), FakeDirectory("b")], "tt0137523")
    assert result.sources == []
    assert result.directory is None
    assert result.complete
