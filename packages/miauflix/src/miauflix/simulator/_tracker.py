"""BitTorrent trackers: HTTP announce and scrape (BEP 3, BEP 48) and the UDP protocol (BEP 15).

Both answer from `Catalogue`: a source's swarm counts at the current time. The UDP tracker hands
out 64-bit connection ids that it accepts for two minutes after sending them (BEP 15: clients use
one for one minute, trackers accept it for two).
"""

from __future__ import annotations

import asyncio
import logging
import random
import struct
import time
from collections.abc import Callable
from typing import cast
from urllib.parse import unquote_to_bytes

from bencode2 import bencode
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from miauflix.simulator._context import Context
from miauflix.simulator._models import Swarm

logger = logging.getLogger("miauflix.simulator")

PROTOCOL_ID = 0x41727101980
ACTION_CONNECT = 0
ACTION_ANNOUNCE = 1
ACTION_SCRAPE = 2
ACTION_ERROR = 3
CONNECTION_TTL = 120.0
MAX_SCRAPE_HASHES = 74
ANNOUNCE_INTERVAL = 1800
_BENCODE = "text/plain"


def raw_query(query_string: bytes) -> list[tuple[str, bytes]]:
    """Parse a query string keeping values as raw bytes (`info_hash` is binary)."""
    pairs = []
    for part in query_string.split(b"&"):
        if not part:
            continue
        name, _, value = part.partition(b"=")
        key = unquote_to_bytes(name.replace(b"+", b" ")).decode("latin-1")
        pairs.append((key, unquote_to_bytes(value.replace(b"+", b" "))))
    return pairs


def _bencoded(value: dict[bytes, object]) -> Response:
    return Response(bytes(bencode(value)), media_type=_BENCODE)


def _failure(reason: str) -> Response:
    return _bencoded({b"failure reason": reason.encode()})


def _stats(swarm: Swarm) -> dict[bytes, object]:
    return {
        b"complete": swarm.complete,
        b"downloaded": swarm.downloaded,
        b"incomplete": swarm.incomplete,
    }


def _swarm(context: Context, info_hash: bytes, now: float) -> Swarm | None:
    found = context.catalogue.source(info_hash)
    return found[0].swarm(now) if found else None


def tracker_routes(context: Context) -> list[Route]:
    """`/announce` (minimal: counts, no peers) and `/scrape` (BEP 48)."""

    async def announce(request: Request) -> Response:
        hashes = [
            value for key, value in raw_query(request.scope["query_string"]) if key == "info_hash"
        ]
        if len(hashes) != 1 or len(hashes[0]) != 20:
            return _failure(f"announce needs one 20-byte info_hash, got {hashes!r}")
        swarm = _swarm(context, hashes[0], context.clock()) or Swarm(0, 0, 0)
        compact = request.query_params.get("compact", "1") != "0"
        return _bencoded(
            {
                b"interval": ANNOUNCE_INTERVAL,
                b"min interval": ANNOUNCE_INTERVAL // 2,
                b"complete": swarm.complete,
                b"incomplete": swarm.incomplete,
                b"peers": b"" if compact else [],
            }
        )

    async def scrape(request: Request) -> Response:
        now = context.clock()
        hashes = [
            value for key, value in raw_query(request.scope["query_string"]) if key == "info_hash"
        ]
        bad = [value for value in hashes if len(value) != 20]
        if bad:
            return _failure(f"info_hash must be 20 bytes, got {bad[0]!r}")
        files: dict[bytes, object] = {}
        if hashes:
            # BEP 48: one entry per torrent the tracker has stats for; unknown ones are left out.
            for info_hash in hashes:
                swarm = _swarm(context, info_hash, now)
                if swarm is not None:
                    files[info_hash] = _stats(swarm)
        else:
            for source in context.catalogue.sources:
                files[source.info_hash] = _stats(source.swarm(now))
        return _bencoded({b"files": files})

    return [Route("/announce", announce), Route("/scrape", scrape)]


class UdpTracker(asyncio.DatagramProtocol):
    """A BEP 15 tracker: connect, announce (counts only) and scrape, with error replies.

    Args:
        context: The simulator's shared state (catalogue, faults, randomness).
        monotonic: The clock connection ids expire by.
    """

    def __init__(self, context: Context, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.context = context
        self.monotonic = monotonic
        self.transport: asyncio.DatagramTransport | None = None
        self._ids: dict[int, float] = {}
        self._id_rng = random.Random(f"{context.catalogue.seed}:udp")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport to answer on."""
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        """Answer one request packet (or drop it, per `Faults.udp_drop_rate`)."""
        faults = self.context.faults
        if faults.udp_drop_rate > 0 and self.context.rng.random() < faults.udp_drop_rate:
            return
        if len(data) < 16:
            # Too short to carry a transaction id: nothing to answer to.
            return
        connection_id, action, transaction = struct.unpack_from(">QII", data)
        reply = self._reply(data, connection_id, action, transaction)
        if self.transport is not None:
            self.transport.sendto(reply, addr)

    def _reply(self, data: bytes, connection_id: int, action: int, transaction: int) -> bytes:
        now = self.monotonic()
        if action == ACTION_CONNECT:
            if connection_id != PROTOCOL_ID:
                return _error(transaction, f"bad protocol id {connection_id:#x}")
            self._ids = {
                cid: sent for cid, sent in self._ids.items() if now - sent < CONNECTION_TTL
            }
            new_id = self._id_rng.getrandbits(64)
            self._ids[new_id] = now
            return struct.pack(">IIQ", ACTION_CONNECT, transaction, new_id)
        sent = self._ids.get(connection_id)
        if sent is None or now - sent >= CONNECTION_TTL:
            return _error(transaction, f"unknown or expired connection id {connection_id:#x}")
        clock = self.context.clock()
        if action == ACTION_SCRAPE:
            hashes = data[16:]
            count = len(hashes) // 20
            if len(hashes) % 20 or not 1 <= count <= MAX_SCRAPE_HASHES:
                return _error(
                    transaction, f"scrape needs 1-74 info hashes, got {len(hashes)} bytes"
                )
            reply = [struct.pack(">II", ACTION_SCRAPE, transaction)]
            for index in range(count):
                swarm = _swarm(self.context, hashes[index * 20 : index * 20 + 20], clock)
                swarm = swarm or Swarm(0, 0, 0)
                reply.append(
                    struct.pack(">III", swarm.complete, swarm.downloaded, swarm.incomplete)
                )
            return b"".join(reply)
        if action == ACTION_ANNOUNCE:
            if len(data) < 98:
                return _error(transaction, f"announce needs 98 bytes, got {len(data)}")
            swarm = _swarm(self.context, data[16:36], clock) or Swarm(0, 0, 0)
            return struct.pack(
                ">IIIII",
                ACTION_ANNOUNCE,
                transaction,
                ANNOUNCE_INTERVAL,
                swarm.incomplete,
                swarm.complete,
            )
        return _error(transaction, f"unknown action {action}")


def _error(transaction: int, message: str) -> bytes:
    return struct.pack(">II", ACTION_ERROR, transaction) + message.encode()
