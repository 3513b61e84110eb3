"""The simulated trackers: HTTP scrape/announce (BEP 48, BEP 3) and UDP (BEP 15) round trips."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from urllib.parse import quote_from_bytes, urlsplit

import httpx
import pytest
from bencode2 import bdecode

from miauflix.simulator import Simulator

pytestmark = pytest.mark.slow

PROTOCOL_ID = 0x41727101980


def _query(*hashes: bytes) -> str:
    return "&".join(f"info_hash={quote_from_bytes(h, safe='')}" for h in hashes)


def _scrape_url(sim: Simulator) -> str:
    return sim.http_tracker_url.replace("/announce", "/scrape")


async def test_http_scrape_reports_each_known_hash(
    sim: Simulator, client: httpx.AsyncClient, now: float
) -> None:
    """A repeated `info_hash` scrape lists known hashes in `files`, keyed by the raw bytes."""
    sources = sim.catalogue.sources[:3]
    unknown = b"\x01" * 20
    url = f"{_scrape_url(sim)}?{_query(*(s.info_hash for s in sources), unknown)}"
    response = await client.get(url)
    assert response.status_code == 200
    files = bdecode(response.content)[b"files"]
    assert set(files) == {s.info_hash for s in sources}
    for source in sources:
        swarm = source.swarm(now)
        assert files[source.info_hash] == {
            b"complete": swarm.complete,
            b"incomplete": swarm.incomplete,
            b"downloaded": swarm.downloaded,
        }


async def test_http_scrape_rejects_a_malformed_hash(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    """An info_hash that is not 20 bytes gets a bencoded `failure reason`."""
    response = await client.get(f"{_scrape_url(sim)}?info_hash=abc")
    assert b"20 bytes" in bdecode(response.content)[b"failure reason"]


async def test_http_announce_is_a_minimal_valid_answer(
    sim: Simulator, client: httpx.AsyncClient, now: float
) -> None:
    """Announce answers interval, counts and an empty compact peer list; no hash is a failure."""
    source = sim.catalogue.sources[0]
    params = "&peer_id=-MF0001-abcdefghijkl&port=6881&uploaded=0&downloaded=0&left=0&compact=1"
    response = await client.get(f"{sim.http_tracker_url}?{_query(source.info_hash)}{params}")
    body = bdecode(response.content)
    assert body[b"interval"] > 0
    assert body[b"peers"] == b""
    assert body[b"complete"] == source.swarm(now).complete
    missing = bdecode((await client.get(f"{sim.http_tracker_url}?port=6881")).content)
    assert b"failure reason" in missing


class _UdpClient(asyncio.DatagramProtocol):
    """Collects datagrams from the tracker into a queue."""

    def __init__(self) -> None:
        self.replies: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self.replies.put_nowait(data)


class Udp:
    """A test-side UDP tracker client: send one packet, wait (bounded) for one reply."""

    def __init__(self, transport: asyncio.DatagramTransport, protocol: _UdpClient) -> None:
        self.transport = transport
        self.protocol = protocol

    async def ask(self, packet: bytes, timeout: float = 5.0) -> bytes:
        self.transport.sendto(packet)
        async with asyncio.timeout(timeout):
            return await self.protocol.replies.get()

    async def connect(self, transaction: int = 7) -> int:
        reply = await self.ask(struct.pack(">QII", PROTOCOL_ID, 0, transaction))
        action, echoed, connection_id = struct.unpack(">IIQ", reply)
        assert (action, echoed) == (0, transaction)
        return int(connection_id)


@pytest.fixture
async def udp(sim: Simulator) -> AsyncIterator[Udp]:
    """A UDP socket connected to the simulator's tracker."""
    address = urlsplit(sim.udp_tracker_url)
    assert address.hostname is not None
    assert address.port is not None
    transport, protocol = await asyncio.get_running_loop().create_datagram_endpoint(
        _UdpClient, remote_addr=(address.hostname, address.port)
    )
    try:
        yield Udp(transport, protocol)
    finally:
        transport.close()


async def test_udp_connect_then_scrape(sim: Simulator, udp: Udp, now: float) -> None:
    """BEP 15: connect gives a connection id; scrape echoes the transaction and gives counts."""
    connection_id = await udp.connect()
    sources = sim.catalogue.sources[:2]
    unknown = b"\x02" * 20
    packet = struct.pack(">QII", connection_id, 2, 0xDEADBEEF) + b"".join(
        [*(s.info_hash for s in sources), unknown]
    )
    reply = await udp.ask(packet)
    assert struct.unpack_from(">II", reply) == (2, 0xDEADBEEF)
    assert len(reply) == 8 + 12 * 3
    counts = [struct.unpack_from(">III", reply, 8 + 12 * i) for i in range(3)]
    for (seeders, completed, leechers), source in zip(counts, sources, strict=False):
        swarm = source.swarm(now)
        assert (seeders, completed, leechers) == (
            swarm.complete,
            swarm.downloaded,
            swarm.incomplete,
        )
    assert counts[2] == (0, 0, 0)


async def test_udp_announce_gives_counts(sim: Simulator, udp: Udp, now: float) -> None:
    """A BEP 15 announce answers interval, leechers and seeders (and no peers)."""
    connection_id = await udp.connect()
    source = sim.catalogue.sources[0]
    packet = (
        struct.pack(">QII", connection_id, 1, 99)
        + source.info_hash
        + b"-MF0001-abcdefghijkl"
        + struct.pack(">QQQIIIiH", 0, 0, 0, 0, 0, 1, -1, 6881)
    )
    reply = await udp.ask(packet)
    action, transaction, interval, leechers, seeders = struct.unpack(">IIIII", reply)
    assert (action, transaction) == (1, 99)
    assert interval > 0
    assert (seeders, leechers) == (source.swarm(now).complete, source.swarm(now).incomplete)


@pytest.mark.parametrize(
    ("packet", "message"),
    [
        (struct.pack(">QII", 12345, 2, 5) + b"\x00" * 20, b"connection id"),
        (struct.pack(">QII", 0x1234, 0, 5), b"protocol id"),
    ],
)
async def test_udp_errors_echo_the_transaction(udp: Udp, packet: bytes, message: bytes) -> None:
    """An unknown connection id or a bad protocol id gets action 3 with a message."""
    reply = await udp.ask(packet)
    assert struct.unpack_from(">II", reply) == (3, 5)
    assert message in reply[8:]


async def test_udp_scrape_needs_whole_hashes(udp: Udp) -> None:
    """A scrape whose hash list is not a multiple of 20 bytes gets an error."""
    connection_id = await udp.connect()
    reply = await udp.ask(struct.pack(">QII", connection_id, 2, 8) + b"\x00" * 19)
    assert struct.unpack_from(">II", reply) == (3, 8)
