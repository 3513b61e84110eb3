"""Fault knobs of the simulator and the draw that applies them to one request."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, fields
from typing import Literal

__all__ = ["Faults"]

Outcome = Literal["hang", "error", "rate_limit", "html", "truncate", "normal"]

_RATES = (
    "error_rate",
    "rate_limit_rate",
    "hang_rate",
    "html_rate",
    "truncate_rate",
    "wrong_hash_rate",
    "udp_drop_rate",
)


@dataclass
class Faults:
    """What the simulator does wrong, changeable while it runs (the next request sees it).

    Rates are fractions in [0, 1]. One request draws one number and compares it with the
    cumulative rates in this order: `hang_rate`, `error_rate`, `rate_limit_rate`, `html_rate`,
    `truncate_rate`; so with rates summing past 1 the later ones are crowded out. Draws come
    from the simulator's `random.Random(seed)`, so a run with the same requests is reproducible.

    Attributes:
        latency: Seconds added before every HTTP answer (cut short when the simulator stops).
        error_rate: Fraction answered 500, 502 or 503.
        rate_limit_rate: Fraction answered 429 with a `Retry-After` of `retry_after` seconds.
        retry_after: The `Retry-After` value of those 429s (whole seconds >= 0).
        hang_rate: Fraction never answered until the client disconnects or the simulator stops.
        html_rate: Fraction answered 200 with an HTML page instead of the real body.
        truncate_rate: Fraction answered 200 with the real body cut in half.
        wrong_hash_rate: Fraction of `.torrent` downloads serving a valid torrent of another
            info hash.
        udp_drop_rate: Fraction of UDP tracker packets left unanswered.
        only: Path prefixes the HTTP faults (and `latency`) apply to, e.g. `("/yts",)` or
            `("/tmdb/3/movie",)`, matched on whole path segments; empty means every route.
            `udp_drop_rate` ignores it.

    Raises:
        ValueError: A rate outside [0, 1], a negative or non-finite `latency`/`retry_after`,
            or an `only` entry that does not start with `/`; on construction and on assignment.
    """

    latency: float = 0.0
    error_rate: float = 0.0
    rate_limit_rate: float = 0.0
    retry_after: int = 1
    hang_rate: float = 0.0
    html_rate: float = 0.0
    truncate_rate: float = 0.0
    wrong_hash_rate: float = 0.0
    udp_drop_rate: float = 0.0
    only: tuple[str, ...] = ()

    def __setattr__(self, name: str, value: object) -> None:
        super().__setattr__(name, _checked(name, value))

    def reset(self) -> None:
        """Turn every fault off (back to the defaults)."""
        for spec in fields(self):
            setattr(self, spec.name, spec.default)

    def applies_to(self, path: str) -> bool:
        """Whether HTTP faults apply to a request for `path` (see `only`)."""
        if not self.only:
            return True
        return any(
            path == prefix or path.startswith(prefix.rstrip("/") + "/") for prefix in self.only
        )

    def draw(self, rng: random.Random) -> Outcome:
        """What happens to one HTTP request, drawn from `rng`."""
        roll = rng.random()
        threshold = 0.0
        ordered: tuple[tuple[Outcome, float], ...] = (
            ("hang", self.hang_rate),
            ("error", self.error_rate),
            ("rate_limit", self.rate_limit_rate),
            ("html", self.html_rate),
            ("truncate", self.truncate_rate),
        )
        for outcome, rate in ordered:
            threshold += rate
            if roll < threshold:
                return outcome
        return "normal"


def _checked(name: str, value: object) -> object:
    if name in _RATES:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
        return float(value)
    if name == "latency":
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value < 0
        ):
            raise ValueError(f"latency must be a finite number of seconds >= 0, got {value!r}")
        return float(value)
    if name == "retry_after":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"retry_after must be an integer >= 0, got {value!r}")
        return value
    if name == "only":
        if isinstance(value, str) or not isinstance(value, tuple | list):
            raise ValueError(f"only must be a tuple of path prefixes, got {value!r}")
        for prefix in value:
            if not isinstance(prefix, str) or not prefix.startswith("/"):
                raise ValueError(f"only entries must be paths starting with '/', got {prefix!r}")
        return tuple(value)
    return value
