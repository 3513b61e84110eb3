"""Words and small random pieces the synthetic catalogue is made of."""

from __future__ import annotations

import datetime as dt
import random
import string


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


ADJECTIVES = _words(
    "Silent Crimson Hidden Broken Last Golden Frozen Distant Hollow Electric Midnight Wild "
    "Burning Forgotten Iron Velvet Paper Glass Restless Northern Lonely Savage Secret Endless"
)
NOUNS = _words(
    "Harbor Empire Garden Signal Horizon River Kingdom Machine Orchard Frontier Mirror Storm "
    "Lantern Circuit Voyage Summer Fortress Island Echo Witness Comet Tide Canyon Letter"
)
PEOPLE = ("detective", "pilot", "teacher", "widow", "hacker", "farmer", "diplomat", "medic")
PLACES = ("a drowned city", "a mountain village", "a space station", "the desert", "a port")
GOALS = (
    "uncover a conspiracy",
    "find a missing sister",
    "win one last race",
    "escape the past",
    "save a failing farm",
    "solve an impossible murder",
    "cross the border",
)
BASE62 = string.ascii_letters + string.digits
YOUTUBE = string.ascii_letters + string.digits + "-_"


def image_path(rng: random.Random) -> str:
    """A TMDB-like image path: `/` + 27 base-62 characters + `.jpg`."""
    return "/" + "".join(rng.choices(BASE62, k=27)) + ".jpg"


def sentence(rng: random.Random) -> str:
    """A one-sentence plot summary."""
    return (
        f"A {rng.choice(PEOPLE)} in {rng.choice(PLACES)} must {rng.choice(GOALS)} "
        f"before the {rng.choice(NOUNS).lower()} is lost forever."
    )


def date_between(rng: random.Random, first: dt.date, last: dt.date) -> dt.date:
    """A date from `first` to `last`, both included."""
    return first + dt.timedelta(days=rng.randrange((last - first).days + 1))
