"""Bad answers from a provider become typed errors, recorded in the client's status."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import socket
import time
from collections.abc import Awaitable, Callable

import pytest

from miauflix.providers import (
    BadResponse,
    NotFound,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    TmdbClient,
    Unauthorized,
)

from .fakes import (
    Handler,
    RawHttpServer,
    hanging,
    http_response,
    json_response,
    replying,
)

pytestmark = pytest.mark.slow

TOKEN = "secret-token-4f9a"
GENRES = {"genres": [{"id": 28, "name": "Action"}]}
Start = Callable[[Handler], Awaitable[RawHttpServer]]


def client(server: RawHttpServer, **options: float | int | None) -> TmdbClient:
    settings: dict[str, float | int | None] = {"timeout": 0.5, "rate_limit": None, **options}
    return TmdbClient(server.url, TOKEN, **settings)  # type: ignore[arg-type]


async def test_html_instead_of_json_is_a_bad_response(raw_http: Start) -> None:
    """An HTML page where JSON was expected raises BadResponse naming provider, path and HTML."""
    server = await raw_http(
        replying(http_response(200, b"<html>oops</html>", content_type="text/html"))
    )
    async with client(server) as tmdb:
        with pytest.raises(BadResponse, match=r"tmdb: /genre/movie/list: HTML") as caught:
            await tmdb.movie_genres()
    assert caught.value.code == "bad_response"
    assert TOKEN not in str(caught.value)


async def test_truncated_json_is_a_bad_response(raw_http: Start) -> None:
    """A complete HTTP answer whose JSON is cut short raises BadResponse."""
    server = await raw_http(replying(http_response(200, b'{"genres": [{"id": 2')))
    async with client(server) as tmdb:
        with pytest.raises(BadResponse, match="invalid or truncated JSON"):
            await tmdb.movie_genres()


async def test_body_cut_off_by_the_server_is_a_bad_response(raw_http: Start) -> None:
    """A body shorter than its Content-Length (the server closed early) raises BadResponse."""
    server = await raw_http(replying(http_response(200, b'{"genres": [', content_length=500)))
    async with client(server) as tmdb:
        with pytest.raises(BadResponse, match="incomplete answer"):
            await tmdb.movie_genres()


async def test_wrong_shape_is_a_bad_response(raw_http: Start) -> None:
    """Valid JSON of the wrong shape raises BadResponse naming the offending field."""
    server = await raw_http(replying(json_response({"genres": [{"id": "x", "name": "A"}]})))
    async with client(server) as tmdb:
        with pytest.raises(BadResponse, match="'id' must be an integer"):
            await tmdb.movie_genres()
        assert tmdb.status().status == "degraded"


@pytest.mark.parametrize(("header", "expected"), [("7", 7.0), (None, None), ("soon", None)])
async def test_429_is_rate_limited_with_retry_after(
    raw_http: Start, header: str | None, expected: float | None
) -> None:
    """HTTP 429 raises RateLimited carrying Retry-After seconds (None when absent or unreadable)."""
    headers = {} if header is None else {"Retry-After": header}
    server = await raw_http(replying(http_response(429, b"{}", headers=headers)))
    async with client(server) as tmdb:
        with pytest.raises(RateLimited) as caught:
            await tmdb.movie_genres()
        status = tmdb.status()
    assert caught.value.retry_after == expected
    assert caught.value.code == "rate_limited"
    assert status.status == "degraded"
    assert status.details["rate_limited_until"] is not None


async def test_429_retry_after_as_http_date(raw_http: Start) -> None:
    """A Retry-After given as an HTTP date becomes the seconds until that date."""
    when = email.utils.formatdate(time.time() + 60, usegmt=True)
    server = await raw_http(replying(http_response(429, b"{}", headers={"Retry-After": when})))
    async with client(server) as tmdb:
        with pytest.raises(RateLimited) as caught:
            await tmdb.movie_genres()
    assert caught.value.retry_after is not None
    assert 55 <= caught.value.retry_after <= 61


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_is_unavailable(raw_http: Start, status: int) -> None:
    """A 5xx answer raises ProviderUnavailable with the status code."""
    server = await raw_http(replying(http_response(status, b"down")))
    async with client(server) as tmdb:
        with pytest.raises(ProviderUnavailable, match=f"HTTP {status}") as caught:
            await tmdb.movie_genres()
    assert caught.value.status_code == status


async def test_connection_refused_is_unavailable() -> None:
    """A port nobody listens on raises ProviderUnavailable without a status code."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with TmdbClient(f"http://127.0.0.1:{port}", TOKEN, timeout=2) as tmdb:
        with pytest.raises(ProviderUnavailable, match="cannot reach") as caught:
            await tmdb.movie_genres()
    assert caught.value.status_code is None


async def test_a_hang_past_the_timeout_is_a_provider_timeout(raw_http: Start) -> None:
    """A server that never answers raises ProviderTimeout after about the timeout."""
    server = await raw_http(hanging)
    async with client(server, timeout=0.3) as tmdb:
        started = time.monotonic()
        with pytest.raises(ProviderTimeout, match=r"within 0.3 s"):
            await tmdb.movie_genres()
    assert time.monotonic() - started < 2.0


async def test_a_dripping_body_is_cut_by_the_overall_deadline(raw_http: Start) -> None:
    """A body sent one byte at a time, each within httpx's read timeout, still times out."""

    async def drip(head: str, writer: asyncio.StreamWriter, server: RawHttpServer) -> None:
        writer.write(http_response(200, b"", content_length=1000))
        while not server.closing.is_set():
            writer.write(b" ")
            await writer.drain()
            await asyncio.sleep(0.05)

    server = await raw_http(drip)
    async with client(server, timeout=0.4) as tmdb:
        started = time.monotonic()
        with pytest.raises(ProviderTimeout):
            await tmdb.movie_genres()
    assert time.monotonic() - started < 2.0


async def test_declared_oversized_body_is_refused_before_reading(raw_http: Start) -> None:
    """A Content-Length above the limit raises BadResponse without reading the body."""
    server = await raw_http(replying(http_response(200, b"{}", content_length=10_000)))
    async with client(server, max_bytes=1000) as tmdb:
        with pytest.raises(BadResponse, match="10000 bytes exceeds the limit of 1000"):
            await tmdb.movie_genres()


async def test_undeclared_oversized_body_stops_past_the_limit(raw_http: Start) -> None:
    """A chunked body growing past the limit raises BadResponse once the limit is passed."""

    async def endless(head: str, writer: asyncio.StreamWriter, server: RawHttpServer) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
        writer.write(b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b"[" + b"1," * 500
        while not server.closing.is_set():
            writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            await writer.drain()
            await asyncio.sleep(0.001)

    server = await raw_http(endless)
    async with client(server, max_bytes=50_000, timeout=5) as tmdb:
        with pytest.raises(BadResponse, match="exceeds the limit of 50000 bytes"):
            await tmdb.movie_genres()


@pytest.mark.parametrize("status", [401, 403])
async def test_rejected_token_is_unauthorized_and_an_error(raw_http: Start, status: int) -> None:
    """HTTP 401/403 raises Unauthorized and puts the status in error at once."""
    server = await raw_http(replying(http_response(status, b'{"status_code": 7}')))
    async with client(server) as tmdb:
        with pytest.raises(Unauthorized):
            await tmdb.movie_genres()
        assert tmdb.status().status == "error"


async def test_404_is_not_found_and_not_a_failure(raw_http: Start) -> None:
    """HTTP 404 raises NotFound but leaves the provider ready (it is an answer)."""
    server = await raw_http(replying(http_response(404, b'{"status_code": 34}')))
    async with client(server) as tmdb:
        with pytest.raises(NotFound, match="HTTP 404"):
            await tmdb.movie_genres()
        assert tmdb.status().status == "ready"


async def test_status_degrades_then_errors_then_recovers(raw_http: Start) -> None:
    """One failure degrades the status, three make it an error, a success makes it ready."""
    bad = http_response(503, b"")
    server = await raw_http(replying(bad, bad, bad, json_response(GENRES)))
    async with client(server) as tmdb:
        seen = []
        for _ in range(3):
            with pytest.raises(ProviderUnavailable):
                await tmdb.movie_genres()
            seen.append(tmdb.status().status)
        await tmdb.movie_genres()
        final = tmdb.status()
    assert seen == ["degraded", "degraded", "error"]
    assert final.status == "ready"
    assert final.details["failures"] == 3
    assert final.details["consecutive_failures"] == 0


async def test_bearer_token_is_sent_and_never_logged(
    raw_http: Start, caplog: pytest.LogCaptureFixture
) -> None:
    """The token goes in the Authorization header only: not in errors, logs or the status."""
    server = await raw_http(replying(json_response(GENRES), http_response(500, b"")))
    caplog.set_level(logging.DEBUG)
    async with client(server) as tmdb:
        await tmdb.movie_genres()
        with pytest.raises(ProviderUnavailable) as caught:
            await tmdb.movie_genres()
        status = tmdb.status()
    headers = dict(
        line.split(": ", 1) for line in server.requests[0].split("\r\n")[1:] if ": " in line
    )
    assert {k.lower(): v for k, v in headers.items()}["authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in str(caught.value)
    assert TOKEN not in caplog.text
    assert TOKEN not in repr(status)
    assert TOKEN not in repr(tmdb)


async def test_rate_limiter_spaces_requests(raw_http: Start) -> None:
    """With rate_limit=5, ten requests take at least about one second."""
    server = await raw_http(replying(json_response(GENRES)))
    async with client(server, rate_limit=5) as tmdb:
        started = time.monotonic()
        async with asyncio.timeout(10):
            await asyncio.gather(*(tmdb.movie_genres() for _ in range(10)))
        elapsed = time.monotonic() - started
    assert elapsed >= 0.8
    assert len(server.requests) == 10


@pytest.mark.parametrize(
    ("option", "value"),
    [("timeout", 0), ("timeout", float("nan")), ("max_bytes", -1), ("rate_limit", 0)],
)
def test_bad_options_raise_value_error_naming_them(option: str, value: float) -> None:
    """A non-positive timeout, size limit or rate raises ValueError naming the option."""
    with pytest.raises(ValueError, match=option):
        TmdbClient("http://127.0.0.1:1", TOKEN, **{option: value})  # type: ignore[arg-type]
