"""`python -m miauflix.simulator`: run the simulator until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from miauflix.simulator._faults import Faults
from miauflix.simulator._simulator import Simulator

logger = logging.getLogger("miauflix.simulator")

PROG = "python -m miauflix.simulator"


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line in one line on stderr (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be in [0, 65535], got {text!r}")
    return value


def _count(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {text!r}")
        return value

    return parse


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Serve simulated TMDB, YTS, torrent cache and trackers on loopback; print "
        "the environment variables that point Miauflix at them; run until SIGINT or SIGTERM.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=0, help="HTTP port (default 0: any free)")
    parser.add_argument("--udp-port", type=_port, default=0, help="UDP tracker port (default 0)")
    parser.add_argument("--seed", type=_count(-(2**63)), default=42, help="catalogue seed")
    parser.add_argument("--movies", type=_count(1), default=300, help="number of movies (>= 1)")
    parser.add_argument("--shows", type=_count(0), default=40, help="number of shows (>= 0)")
    parser.add_argument(
        "--latency",
        type=_seconds,
        default=0.0,
        help="seconds added to every HTTP answer (default 0); GET /_simulator/requests "
        "counts the requests per item and per provider per second",
    )
    return parser


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not 0 <= value < 60:
        raise argparse.ArgumentTypeError(f"must be in [0, 60), got {text!r}")
    return value


async def _serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with Simulator(
            seed=args.seed,
            movies=args.movies,
            shows=args.shows,
            host=args.host,
            port=args.port,
            udp_port=args.udp_port,
            faults=Faults(latency=args.latency),
        ) as sim:
            for name, value in sim.environment().items():
                print(f"{name}={value}")
            sys.stdout.flush()
            await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulator from the command line.

    Args:
        argv: The arguments (default: `sys.argv[1:]`).

    Returns:
        The exit code: 0 after SIGINT/SIGTERM, 1 when a port cannot be bound. A bad command line
        exits with code 2 and one line on stderr.
    """
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        asyncio.run(_serve(args))
    except OSError as error:
        print(f"{PROG}: error: cannot bind {args.host}: {error}", file=sys.stderr)
        return 1
    return 0
