"""BEP 15 UDP tracker protocol: connect, then scrape, over one socket per tracker.

Each request is retransmitted after `base_timeout * 2**n` seconds (n = 0, 1, ... 8; the spec's
base is 15 s), and the whole exchange is bounded by the caller's overall timeout, so a silent
tracker costs at most that. Answers whose transaction id is not the current request's are
discarded (stale answers to earlier retransmissions, or spoofing); a connection id is reused
for `connection_ttl` seconds (the spec: one minute). An optional rate limiter spaces the scrape
requests (one token per request of up to `MAX_HASHES` hashes; retransmissions and the connect
that precedes a scrape take none, being already spaced by the backoff and the TTL).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import struct
import urllib.parse
from collections.abc import Callable, Sequence

from aiolimiter import AsyncLimiter

from miauflix.providers.errors import (
    BadResponse,
    ProviderTimeout,
    ProviderUnavailable,
)

logger = logging.getLogger("miauflix.providers")

PROTOCOL_ID = 0x41727101980
ACTION_CONNECT = 0
ACTION_SCRAPE = 2
ACTION_ERROR = 3
#: At most this many info hashes fit one scrape request (BEP 15).
MAX_HASHES = 74
_MAX_RETRIES = 8


class TrackerRefused(BadResponse):
    """The tracker answered with an error message (BEP 15 action 3)."""


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        # Bounded: a tracker flooding us fills the queue and the rest is dropped.
        self.queue: asyncio.Queue[bytes | OSError] = asyncio.Queue(maxsize=64)

    def _put(self, item: bytes | OSError) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(item)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self._put(data)

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, OSError):
            self._put(exc)


class UdpTrackerClient:
    """One UDP tracker: its socket, its cached connection id, one exchange at a time.

    `rate_limit` is scrape requests per second (None: no limit); the wait for the limiter is
    part of the caller's overall timeout.
    """

    def __init__(
        self,
        url: str,
        provider: str,
        *,
        base_timeout: float,
        connection_ttl: float,
        rate_limit: float | None = None,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "udp" or not parts.hostname or parts.port is None:
            raise ValueError(
                f"UDP tracker URL must look like udp://host:port/announce, got {url!r}"
            )
        self.host = parts.hostname
        self.port = parts.port
        self.path = parts.path or "/"
        self.provider = provider
        self.base_timeout = base_timeout
        self.connection_ttl = connection_ttl
        self._lock = asyncio.Lock()
        self._transport: asyncio.DatagramTransport | None = None
        self._protocol: _Datagrams | None = None
        self._connection: tuple[int, float] | None = None
        # As in `_HttpEndpoint`: `rate_limit` tokens per second, bursts up to the rate.
        self._limiter = None if rate_limit is None else AsyncLimiter(rate_limit, 1.0)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    async def scrape(self, info_hashes: Sequence[str]) -> list[tuple[int, int, int]]:
        """(seeders, completed, leechers) per hash, in order; the caller bounds the time."""
        async with self._lock:
            results: list[tuple[int, int, int]] = []
            for start in range(0, len(info_hashes), MAX_HASHES):
                chunk = info_hashes[start : start + MAX_HASHES]
                if self._limiter is not None:
                    await self._limiter.acquire()
                results.extend(await self._scrape_chunk(chunk))
            return results

    async def _scrape_chunk(self, info_hashes: Sequence[str]) -> list[tuple[int, int, int]]:
        payload = b"".join(bytes.fromhex(h) for h in info_hashes)
        fresh = self._connection is None
        try:
            return await self._scrape_once(payload, len(info_hashes))
        except TrackerRefused:
            if fresh:
                raise
            # The tracker may have forgotten our connection id before the minute was up.
            self._connection = None
            return await self._scrape_once(payload, len(info_hashes))

    async def _scrape_once(self, payload: bytes, count: int) -> list[tuple[int, int, int]]:
        connection_id = await self._connection_id()
        body = await self._exchange(
            lambda tid: struct.pack(">QII", connection_id, ACTION_SCRAPE, tid) + payload,
            ACTION_SCRAPE,
        )
        if len(body) < 12 * count:
            raise BadResponse(
                self.provider,
                self.path,
                f"scrape answer holds {len(body)} bytes, {12 * count} expected",
            )
        return [struct.unpack_from(">III", body, 12 * i) for i in range(count)]

    async def _connection_id(self) -> int:
        loop = asyncio.get_running_loop()
        if self._connection is not None and loop.time() < self._connection[1]:
            return self._connection[0]
        body = await self._exchange(
            lambda tid: struct.pack(">QII", PROTOCOL_ID, ACTION_CONNECT, tid), ACTION_CONNECT
        )
        if len(body) < 8:
            raise BadResponse(self.provider, self.path, "connect answer shorter than 16 bytes")
        (connection_id,) = struct.unpack_from(">Q", body)
        self._connection = (connection_id, loop.time() + self.connection_ttl)
        return int(connection_id)

    async def _socket(self) -> _Datagrams:
        if self._transport is None or self._protocol is None:
            loop = asyncio.get_running_loop()
            try:
                transport, protocol = await loop.create_datagram_endpoint(
                    _Datagrams, remote_addr=(self.host, self.port)
                )
            except OSError as exc:
                raise ProviderUnavailable(
                    self.provider, self.path, f"cannot open a UDP socket: {exc}"
                ) from None
            self._transport, self._protocol = transport, protocol
        return self._protocol

    async def _exchange(self, build: Callable[[int], bytes], action: int) -> bytes:
        """Send a request, retransmitting, until an answer with its transaction id arrives."""
        protocol = await self._socket()
        assert self._transport is not None
        loop = asyncio.get_running_loop()
        for attempt in range(_MAX_RETRIES + 1):
            transaction_id = random.getrandbits(32)
            self._transport.sendto(build(transaction_id))
            deadline = loop.time() + self.base_timeout * 2**attempt
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        item = await protocol.queue.get()
                except TimeoutError:
                    break
                if isinstance(item, OSError):
                    raise ProviderUnavailable(
                        self.provider, self.path, f"tracker unreachable: {item}"
                    )
                answer = self._match(item, transaction_id, action)
                if answer is not None:
                    return answer
        waited = self.base_timeout * (2 ** (_MAX_RETRIES + 1) - 1)
        raise ProviderTimeout(self.provider, self.path, waited)

    def _match(self, packet: bytes, transaction_id: int, action: int) -> bytes | None:
        if len(packet) < 8:
            logger.debug("%s: ignoring a %d-byte datagram", self.provider, len(packet))
            return None
        got_action, got_tid = struct.unpack_from(">II", packet)
        if got_tid != transaction_id:
            logger.debug("%s: ignoring an answer to transaction %d", self.provider, got_tid)
            return None
        if got_action == ACTION_ERROR:
            message = packet[8:].decode("utf-8", "replace")[:200]
            raise TrackerRefused(self.provider, self.path, f"tracker error: {message!r}")
        if got_action != action:
            raise BadResponse(
                self.provider, self.path, f"answer has action {got_action}, {action} expected"
            )
        return packet[8:]
