"""Loopback stand-ins for the provider tests: raw HTTP answers, UDP tracker state, torrents."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import bencode2

#: A fixed wall clock for the simulator: its changes feed and swarm counts move with time.
SIM_NOW = 1_790_000_000.0


# --- raw HTTP ---------------------------------------------------------------------------------


def http_response(
    status: int = 200,
    body: bytes = b"",
    *,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
    content_length: int | None = None,
) -> bytes:
    """A complete HTTP/1.1 response (status line, headers, body) as bytes."""
    lines = [
        f"HTTP/1.1 {status} X",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body) if content_length is None else content_length}",
        "Connection: close",
        *(f"{k}: {v}" for k, v in (headers or {}).items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def json_response(document: object, status: int = 200) -> bytes:
    """An HTTP response carrying `document` as JSON."""
    return http_response(status, json.dumps(document).encode())


@dataclass
class RawHttpServer:
    """A loopback HTTP server whose answers are written by a test's handler."""

    url: str
    requests: list[str] = field(default_factory=list)
    closing: asyncio.Event = field(default_factory=asyncio.Event)


Handler = Callable[[str, asyncio.StreamWriter, RawHttpServer], Awaitable[None]]


def replying(*responses: bytes) -> Handler:
    """A handler answering the n-th request with `responses[n]` (the last one repeats)."""
    answers = list(responses)

    async def handler(head: str, writer: asyncio.StreamWriter, server: RawHttpServer) -> None:
        index = min(len(server.requests), len(answers)) - 1
        writer.write(answers[index])
        await writer.drain()
        writer.close()

    return handler


async def hanging(head: str, writer: asyncio.StreamWriter, server: RawHttpServer) -> None:
    """A handler that never answers (until the test ends)."""
    await server.closing.wait()


# --- UDP trackers -----------------------------------------------------------------------------


@dataclass
class UdpServer:
    """A loopback UDP server; `packets` are the datagrams it received."""

    url: str
    packets: list[bytes] = field(default_factory=list)


UdpHandler = Callable[[bytes, UdpServer], list[bytes]]


# --- torrents ---------------------------------------------------------------------------------


def make_torrent(name: str = "movie.mkv", length: int = 40_000) -> tuple[bytes, str]:
    """A valid single-file `.torrent` and its info hash (lowercase hex)."""
    piece_length = 16_384
    pieces = -(-length // piece_length)
    info = {
        b"length": length,
        b"name": name.encode(),
        b"piece length": piece_length,
        b"pieces": hashlib.sha1(name.encode()).digest() * pieces,
    }
    data = bencode2.bencode({b"announce": b"http://127.0.0.1:1/announce", b"info": info})
    return data, hashlib.sha1(bencode2.bencode(info)).hexdigest()
