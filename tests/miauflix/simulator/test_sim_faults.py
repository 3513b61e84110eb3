"""Each fault knob, changed on a running simulator, takes effect on the next request."""

from __future__ import annotations

import asyncio
import io
import json
import re
import struct
import time
from urllib.parse import urlsplit

import httpx
import pytest
import torf

from miauflix.simulator import Faults, Simulator

pytestmark = pytest.mark.slow


def _source_url(sim: Simulator) -> tuple[str, str]:
    source = next(s for s in sim.catalogue.sources if s.cached)
    return f"{sim.torrent_cache_url}/torrent/{source.hex_hash}.torrent", source.info_hash.hex()


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("error_rate", 1.5, "1.5"),
        ("hang_rate", -0.1, "-0.1"),
        ("udp_drop_rate", "half", "'half'"),
        ("latency", float("inf"), "inf"),
        ("latency", -1, "-1"),
        ("retry_after", 1.5, "1.5"),
        ("only", "/yts", "'/yts'"),
        ("only", ("yts",), "'yts'"),
    ],
)
def test_bad_fault_values_are_rejected(field: str, value: object, shown: str) -> None:
    """Bad knobs raise ValueError naming the field and the value, on construction and assignment."""
    with pytest.raises(ValueError, match=field) as caught:
        Faults(**{field: value})  # type: ignore[arg-type]
    assert shown in str(caught.value)
    faults = Faults()
    with pytest.raises(ValueError, match=re.escape(shown)):
        setattr(faults, field, value)
    assert faults == Faults()


def test_faults_reset_turns_everything_off() -> None:
    """`reset()` restores every default."""
    faults = Faults(error_rate=0.5, latency=2, only=("/yts",))
    faults.reset()
    assert faults == Faults()


async def test_latency_delays_answers(sim: Simulator, tmdb: httpx.AsyncClient) -> None:
    """With `latency` set, an answer takes at least that long."""
    sim.faults.latency = 0.3
    started = time.perf_counter()
    response = await tmdb.get("/configuration")
    assert response.status_code == 200
    assert time.perf_counter() - started >= 0.3


async def test_error_rate_gives_5xx(sim: Simulator, tmdb: httpx.AsyncClient) -> None:
    """`error_rate=1` answers every request with 500, 502 or 503; back to 0 answers normally."""
    sim.faults.error_rate = 1.0
    statuses = {(await tmdb.get("/configuration")).status_code for _ in range(20)}
    assert statuses <= {500, 502, 503}
    assert len(statuses) > 1
    sim.faults.error_rate = 0.0
    assert (await tmdb.get("/configuration")).status_code == 200


async def test_rate_limit_gives_429_with_retry_after(
    sim: Simulator, tmdb: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """`rate_limit_rate=1` answers 429 with the configured `Retry-After` (TMDB's body on TMDB)."""
    sim.faults.rate_limit_rate = 1.0
    sim.faults.retry_after = 7
    response = await tmdb.get("/configuration")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert response.json()["status_code"] == 25
    yts = await client.get(f"{sim.yts_url}/api/v2/list_movies.json")
    assert yts.status_code == 429
    assert yts.headers["retry-after"] == "7"


async def test_html_rate_gives_an_html_page(sim: Simulator, client: httpx.AsyncClient) -> None:
    """`html_rate=1` answers 200 with an HTML page where JSON was expected."""
    sim.faults.html_rate = 1.0
    response = await client.get(f"{sim.yts_url}/api/v2/list_movies.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    with pytest.raises(json.JSONDecodeError):
        response.json()


async def test_truncate_rate_cuts_the_json(sim: Simulator, tmdb: httpx.AsyncClient) -> None:
    """`truncate_rate=1` answers 200 with a prefix of the real body that does not parse."""
    whole = (await tmdb.get("/genre/movie/list")).content
    sim.faults.truncate_rate = 1.0
    response = await tmdb.get("/genre/movie/list")
    assert response.status_code == 200
    assert 0 < len(response.content) < len(whole)
    assert whole.startswith(response.content)
    with pytest.raises(json.JSONDecodeError):
        response.json()


async def test_wrong_hash_rate_serves_another_valid_torrent(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    """`wrong_hash_rate=1` serves a torrent that parses but has a different info hash."""
    url, expected = _source_url(sim)
    sim.faults.wrong_hash_rate = 1.0
    response = await client.get(url)
    assert response.status_code == 200
    torrent = torf.Torrent.read_stream(io.BytesIO(response.content))
    assert torrent.infohash != expected
    sim.faults.wrong_hash_rate = 0.0
    fixed = torf.Torrent.read_stream(io.BytesIO((await client.get(url)).content))
    assert fixed.infohash == expected


async def test_hang_rate_never_answers(sim: Simulator, tmdb: httpx.AsyncClient) -> None:
    """`hang_rate=1` leaves the request unanswered until the client gives up."""
    sim.faults.hang_rate = 1.0
    with pytest.raises(httpx.ReadTimeout):
        await tmdb.get("/configuration", timeout=0.3)
    sim.faults.hang_rate = 0.0
    assert (await tmdb.get("/configuration")).status_code == 200


async def test_only_targets_one_route_prefix(sim: Simulator, tmdb: httpx.AsyncClient) -> None:
    """With `only=("/yts",)` faults hit YTS and spare TMDB (and `/ytsx` is not `/yts`)."""
    sim.faults.error_rate = 1.0
    sim.faults.only = ("/yts",)
    assert (await tmdb.get("/configuration")).status_code == 200
    async with httpx.AsyncClient(timeout=5.0) as client:
        response = await client.get(f"{sim.yts_url}/api/v2/list_movies.json")
    assert response.status_code in {500, 502, 503}
    assert sim.faults.applies_to("/yts/api/v2/list_movies.json")
    assert not sim.faults.applies_to("/ytsx")


async def test_a_new_faults_object_replaces_the_old(
    sim: Simulator, tmdb: httpx.AsyncClient
) -> None:
    """Assigning `sim.faults` swaps every knob at once."""
    sim.faults = Faults(rate_limit_rate=1.0)
    assert (await tmdb.get("/configuration")).status_code == 429
    with pytest.raises(TypeError, match="faults must be a Faults"):
        sim.faults = {"error_rate": 1}  # type: ignore[assignment]


async def test_fault_draws_are_reproducible_and_proportional(now: float) -> None:
    """Two simulators with one seed fail the same requests; about half fail at rate 0.5."""
    runs = []
    for _ in range(2):
        faults = Faults(error_rate=0.5)
        async with (
            Simulator(seed=11, movies=5, shows=0, faults=faults, clock=lambda: now) as sim,
            httpx.AsyncClient(timeout=5.0) as client,
        ):
            url = f"{sim.yts_url}/api/v2/list_movies.json"
            runs.append([(await client.get(url)).status_code for _ in range(60)])
    assert runs[0] == runs[1]
    failures = sum(status != 200 for status in runs[0])
    assert 15 <= failures <= 45


async def test_udp_drop_rate_leaves_packets_unanswered(sim: Simulator) -> None:
    """`udp_drop_rate=1` answers nothing; set back to 0 the next packet is answered."""
    address = urlsplit(sim.udp_tracker_url)
    assert address.hostname is not None
    assert address.port is not None
    replies: asyncio.Queue[bytes] = asyncio.Queue()

    class Client(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
            replies.put_nowait(data)

    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        Client, remote_addr=(address.hostname, address.port)
    )
    try:
        connect = struct.pack(">QII", 0x41727101980, 0, 1)
        sim.faults.udp_drop_rate = 1.0
        transport.sendto(connect)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                await replies.get()
        sim.faults.udp_drop_rate = 0.0
        transport.sendto(connect)
        async with asyncio.timeout(5):
            reply = await replies.get()
        assert struct.unpack_from(">II", reply) == (0, 1)
    finally:
        transport.close()
