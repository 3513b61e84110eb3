"""Fixtures for the provider client tests: the simulator, and tiny loopback servers that speak
the real protocols (raw HTTP/1.1 over asyncio streams, BEP 15 over UDP) for the answers the
simulator cannot produce."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import cast

import pytest

from miauflix.providers import Providers, build_providers
from miauflix.settings import Settings
from miauflix.simulator import Simulator

from .fakes import SIM_NOW, Handler, RawHttpServer, UdpHandler, UdpServer


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    """A running simulator with a small catalogue and a frozen clock."""
    async with Simulator(seed=7, movies=40, shows=4, clock=lambda: SIM_NOW) as simulator:
        yield simulator


@pytest.fixture
def sim_settings(sim: Simulator) -> Settings:
    """Settings pointing every provider at the simulator, with a short timeout."""
    return Settings.from_env({**sim.environment(), "MIAUFLIX_HTTP_TIMEOUT": "1"})


@pytest.fixture
async def providers(sim_settings: Settings) -> AsyncIterator[Providers]:
    """Every provider client, built from the simulator's settings."""
    async with build_providers(sim_settings, udp_base_timeout=0.1) as bundle:
        yield bundle


@pytest.fixture
async def raw_http() -> AsyncIterator[Callable[[Handler], Awaitable[RawHttpServer]]]:
    """Start raw HTTP servers: `await raw_http(handler)`; handler(head, writer, server)."""
    servers: list[tuple[asyncio.Server, RawHttpServer]] = []
    writers: list[asyncio.StreamWriter] = []

    async def start(handler: Handler) -> RawHttpServer:
        state: RawHttpServer

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writers.append(writer)
            with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
                while True:
                    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                    state.requests.append(head)
                    await handler(head, writer, state)
                    await writer.drain()
                    if writer.is_closing():
                        return

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        state = RawHttpServer(url=f"http://127.0.0.1:{port}")
        servers.append((server, state))
        return state

    yield start
    for server, state in servers:
        state.closing.set()
        server.close()
    for writer in writers:
        writer.close()
    for server, _ in servers:
        async with asyncio.timeout(5):
            await server.wait_closed()


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, handler: UdpHandler, state: UdpServer) -> None:
        self.handler = handler
        self.state = state
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.state.packets.append(data)
        assert self.transport is not None
        for answer in self.handler(data, self.state):
            self.transport.sendto(answer, addr)


@pytest.fixture
async def udp_server() -> AsyncIterator[Callable[[UdpHandler], Awaitable[UdpServer]]]:
    """Start UDP servers: `await udp_server(handler)`; handler(packet, server) -> answers."""
    transports: list[asyncio.DatagramTransport] = []

    async def start(handler: UdpHandler) -> UdpServer:
        state = UdpServer(url="")
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(handler, state), local_addr=("127.0.0.1", 0)
        )
        transports.append(transport)
        port = transport.get_extra_info("sockname")[1]
        state.url = f"udp://127.0.0.1:{port}/announce"
        return state

    yield start
    for transport in transports:
        transport.close()
