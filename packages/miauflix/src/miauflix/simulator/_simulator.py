"""`Simulator`: the HTTP server (uvicorn, in-process) and the UDP tracker on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import socket
import time
from collections.abc import Callable, Generator
from types import TracebackType
from typing import Self

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route

from miauflix.settings import DEMO_RATES
from miauflix.simulator._catalogue import Catalogue
from miauflix.simulator._context import Context
from miauflix.simulator._faults import Faults
from miauflix.simulator._middleware import FaultMiddleware
from miauflix.simulator._requests import RequestLog, RequestLogMiddleware
from miauflix.simulator._tmdb import tmdb_routes
from miauflix.simulator._tracker import UdpTracker, tracker_routes
from miauflix.simulator._yts import cache_routes, yts_routes

logger = logging.getLogger("miauflix.simulator")

# How long uvicorn may wait for requests still running at shutdown; hangs and latency end at
# once when `closing` is set, so only a route stuck in real work could reach it.
_GRACEFUL_SHUTDOWN = 3


class _Server(uvicorn.Server):
    """uvicorn without signal handling: the process that embeds the simulator owns signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _check_port(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise ValueError(f"{name} must be an integer in [0, 65535], got {value!r}")
    return value


class Simulator:
    """Local stand-ins for TMDB, YTS, a torrent cache and BitTorrent trackers, on loopback.

    One HTTP server (a Starlette app served by uvicorn as an asyncio task) answers for TMDB v3
    (`/tmdb/3`), YTS API v2 (`/yts`), an itorrents-style torrent cache (`/cache`) and an HTTP
    tracker (`/tracker`); a UDP socket speaks the BEP 15 tracker protocol. Both bind port 0 by
    default; the URL properties give the bound ports once started.

    Use it as `async with Simulator(seed=42) as sim:` or call `start()` and `aclose()`.

    Args:
        seed: The catalogue's seed; also seeds fault draws and UDP connection ids.
        movies: Number of movies in the catalogue (>= 1).
        shows: Number of TV shows (>= 0).
        faults: The fault knobs (default: none); kept by reference, so the caller may mutate it.
        host: The address both servers bind.
        port: The HTTP port (0: any free port).
        udp_port: The UDP tracker port (0: any free port).
        token: The TMDB bearer token to accept (default: derived from `seed`).
        clock: Epoch seconds for the time-dependent data (changes feed, swarm counts).

    Raises:
        ValueError: A bad `seed`, `movies`, `shows`, `port` or `udp_port`; the message shows
            the value.
    """

    def __init__(
        self,
        *,
        seed: int = 42,
        movies: int = 300,
        shows: int = 40,
        faults: Faults | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        udp_port: int = 0,
        token: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.host = host
        self._port = _check_port("port", port)
        self._udp_port = _check_port("udp_port", udp_port)
        self.catalogue = Catalogue(seed=seed, movies=movies, shows=shows)
        default_token = "sim-" + hashlib.sha256(f"miauflix:{seed}".encode()).hexdigest()[:32]
        self._context = Context(
            catalogue=self.catalogue,
            faults=faults if faults is not None else Faults(),
            rng=random.Random(f"{seed}:faults"),
            clock=clock,
            token=token or default_token,
        )
        self._server: _Server | None = None
        self._serve_task: asyncio.Task[None] | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._running = False
        self.requests = RequestLog()
        """Every HTTP request so far, per item and per provider per second (see
        `miauflix.simulator._requests`); also served at `GET /_simulator/requests`."""

    def __repr__(self) -> str:
        state = f"http={self._port} udp={self._udp_port}" if self._running else "stopped"
        return f"<Simulator {self.host} {state} seed={self.catalogue.seed!r}>"

    @property
    def faults(self) -> Faults:
        """The live fault knobs: assign a new `Faults` or change its fields at any time."""
        return self._context.faults

    @faults.setter
    def faults(self, value: Faults) -> None:
        if not isinstance(value, Faults):
            raise TypeError(f"faults must be a Faults, got {value!r}")
        self._context.faults = value

    @property
    def tmdb_token(self) -> str:
        """The bearer token the TMDB routes accept (also accepted as `?api_key=`)."""
        return self._context.token

    @property
    def port(self) -> int:
        """The bound HTTP port."""
        self._require_running()
        return self._port

    @property
    def udp_port(self) -> int:
        """The bound UDP tracker port."""
        self._require_running()
        return self._udp_port

    @property
    def base_url(self) -> str:
        """`http://HOST:PORT`, the HTTP server's root."""
        self._require_running()
        return self._context.base_url

    @property
    def tmdb_url(self) -> str:
        """The TMDB v3 base URL (`.../tmdb/3`)."""
        return f"{self.base_url}/tmdb/3"

    @property
    def yts_url(self) -> str:
        """The YTS base URL; the API is under `/api/v2/`."""
        return f"{self.base_url}/yts"

    @property
    def torrent_cache_url(self) -> str:
        """The torrent cache base URL; files are at `/torrent/<HASH>.torrent`."""
        return f"{self.base_url}/cache"

    @property
    def http_tracker_url(self) -> str:
        """The HTTP tracker's announce URL; its scrape URL ends in `/scrape` instead."""
        return f"{self.base_url}/tracker/announce"

    @property
    def udp_tracker_url(self) -> str:
        """The UDP tracker's URL, `udp://HOST:PORT/announce`."""
        self._require_running()
        return self._context.udp_url

    def environment(self) -> dict[str, str]:
        """The environment variables that point `miauflix` at this simulator.

        They include demo mode's provider limits (`miauflix.settings.DEMO_RATES`): the
        simulator takes more than the real providers' polite defaults.
        """
        return {
            "TMDB_API_URL": self.tmdb_url,
            "TMDB_API_TOKEN": self.tmdb_token,
            "YTS_API_URL": self.yts_url,
            "TORRENT_CACHE_URL": self.torrent_cache_url,
            "TRACKERS": f"{self.http_tracker_url},{self.udp_tracker_url}",
            **DEMO_RATES,
        }

    def _require_running(self) -> None:
        if not self._running:
            raise RuntimeError(f"{self!r} is not running: call start() first")

    def _app(self) -> Starlette:
        async def root(request: Request) -> Response:
            return PlainTextResponse("miauflix provider simulator\n")

        async def requests(request: Request) -> Response:
            return JSONResponse(self.requests.to_dict())

        app = Starlette(
            routes=[
                Route("/", root),
                Route("/_simulator/requests", requests),
                Mount("/tmdb/3", routes=tmdb_routes(self._context)),
                Mount("/yts", routes=yts_routes(self._context)),
                Mount("/cache", routes=cache_routes(self._context)),
                Mount("/tracker", routes=tracker_routes(self._context)),
            ]
        )
        app.add_middleware(FaultMiddleware, context=self._context)
        # Added last, so outermost: a request a fault answers is counted too.
        app.add_middleware(RequestLogMiddleware, log=self.requests)
        return app

    async def start(self) -> None:
        """Bind both sockets and start serving; returns once both accept requests.

        Raises:
            RuntimeError: Already running.
            OSError: A port cannot be bound.
        """
        if self._running or self._serve_task is not None:
            raise RuntimeError(f"{self!r} is already running")
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so, and
        # without it every answer waits ~40 ms for a delayed ACK (headers and body are two writes).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self._port))
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        http_port: int = sock.getsockname()[1]
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: UdpTracker(self._context), local_addr=(self.host, self._udp_port)
            )
        except BaseException:
            sock.close()
            raise
        self._udp = transport
        udp_port: int = transport.get_extra_info("sockname")[1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        self._context.closing.clear()
        self._context.base_url = f"http://{host}:{http_port}"
        self._context.udp_url = f"udp://{host}:{udp_port}/announce"
        config = uvicorn.Config(
            self._app(),
            log_config=None,
            access_log=False,
            lifespan="off",
            http="h11",
            timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN,
        )
        server = _Server(config)
        self._server = server
        self._serve_task = asyncio.create_task(
            server.serve(sockets=[sock]), name="miauflix.simulator"
        )
        try:
            while not server.started:
                if self._serve_task.done():
                    self._serve_task.result()
                    raise RuntimeError("the simulator's HTTP server stopped while starting")
                await asyncio.sleep(0.01)
        except BaseException:
            # Before uvicorn took it over (it closes it on shutdown), the socket is ours.
            sock.close()
            await self.aclose()
            raise
        self._port, self._udp_port = http_port, udp_port
        self._running = True
        logger.info("simulator serving on %s and %s", self._context.base_url, self._context.udp_url)

    async def aclose(self) -> None:
        """Stop both servers: hanging requests end at once, then uvicorn shuts down.

        Safe to call more than once, and on a simulator that never started.
        """
        self._running = False
        self._context.closing.set()
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        server, task = self._server, self._serve_task
        self._server = self._serve_task = None
        if server is not None and task is not None:
            server.should_exit = True
            await task
            logger.info("simulator stopped")

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
