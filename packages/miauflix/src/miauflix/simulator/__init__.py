"""Local stand-ins for Miauflix's providers, speaking their real protocols on loopback.

`Simulator` serves TMDB v3, YTS API v2, an itorrents-style torrent cache and an HTTP tracker from
one HTTP server, plus a BEP 15 UDP tracker, all answering from a synthetic `Catalogue` that is
deterministic from a seed. `Faults` makes it misbehave on purpose, for tests::

    async with Simulator(seed=42, movies=300, shows=40) as sim:
        sim.faults.error_rate = 0.3
        ...

Run it as a process with `python -m miauflix.simulator` (prints the environment variables that
point the application at it).
"""

from miauflix.simulator._catalogue import Catalogue
from miauflix.simulator._faults import Faults
from miauflix.simulator._models import (
    MOVIE_GENRES,
    TV_GENRES,
    Episode,
    FreshGap,
    Movie,
    Season,
    Show,
    Source,
    Swarm,
)
from miauflix.simulator._simulator import Simulator
from miauflix.simulator._torrents import TorrentSpec

__all__ = [
    "MOVIE_GENRES",
    "TV_GENRES",
    "Catalogue",
    "Episode",
    "Faults",
    "FreshGap",
    "Movie",
    "Season",
    "Show",
    "Simulator",
    "Source",
    "Swarm",
    "TorrentSpec",
]
