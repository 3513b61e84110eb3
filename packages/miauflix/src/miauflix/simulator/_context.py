"""What the simulator's handlers share: the catalogue, the fault knobs and their randomness."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from miauflix.simulator._catalogue import Catalogue
from miauflix.simulator._faults import Faults


@dataclass
class Context:
    """Shared state of one running simulator (one per `Simulator`)."""

    catalogue: Catalogue
    faults: Faults
    rng: random.Random
    clock: Callable[[], float]
    token: str
    base_url: str = ""
    udp_url: str = ""
    # Set when the simulator stops: hanging requests and latency sleeps end at once.
    closing: asyncio.Event = field(default_factory=asyncio.Event)
    # TMDB ids of the movies YTS has been asked about by IMDb id: their next listings are
    # complete (`Catalogue.first_listing_gaps` applies to the first one only).
    yts_listed: set[int] = field(default_factory=set)

    @property
    def trackers(self) -> tuple[str, ...]:
        """The tracker announce URLs written into served torrents."""
        urls = [f"{self.base_url}/tracker/announce"] if self.base_url else []
        if self.udp_url:
            urls.append(self.udp_url)
        return tuple(urls)

    def roll(self, rate: float, path: str) -> bool:
        """Draw whether a fault of `rate` hits this request for `path`."""
        if rate <= 0 or not self.faults.applies_to(path):
            return False
        return self.rng.random() < rate
