"""Configuration from environment variables: every variable the application reads, in one place.

`Settings.from_env()` reads them once at startup; nothing else in `miauflix` reads `os.environ`.
A bad value raises `SettingsError` naming the variable and showing the value.

Provider limits are rates: `N/s`, `N/min` or `N/h` (a bare number is per second). Their
defaults are the original backend's, polite enough for the real providers; in demo mode (no
`TMDB_API_TOKEN`) a variable left unset takes the simulator's higher `DEMO_RATES` instead.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "DEFAULT_TRACKERS",
    "DEMO_RATES",
    "RATE_DEFAULTS",
    "Settings",
    "SettingsError",
    "format_rate",
]

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})

DEFAULT_TMDB_API_URL = "https://api.themoviedb.org/3"
DEFAULT_YTS_API_URL = "https://yts.mx"
DEFAULT_TORRENT_CACHE_URL = "https://itorrents.org"
DEFAULT_TRACKERS: tuple[str, ...] = (
    "udp://tracker.opentrackr.org:1337/announce",
    "udp://tracker.openbittorrent.com:80/announce",
    "udp://tracker.openbittorrent.com:6969/announce",
)
"""The original backend's trackers: scraped, and written into magnets, when `TRACKERS` is
not set (outside demo mode)."""


RATE_DEFAULTS: dict[str, str] = {
    "MIAUFLIX_TMDB_RATE": "40/s",
    "MIAUFLIX_YTS_RATE": "20/min",
    "MIAUFLIX_DOWNLOAD_RATE": "0.5/s",
}
"""Each provider-limit variable's default for the real providers (the original backend's)."""

DEMO_RATES: dict[str, str] = {
    "MIAUFLIX_TMDB_RATE": "50/s",
    "MIAUFLIX_YTS_RATE": "10/s",
    "MIAUFLIX_DOWNLOAD_RATE": "10/s",
}
"""The same variables' defaults in demo mode: the local simulator can take more."""

_PER = {"s": 1.0, "sec": 1.0, "min": 60.0, "h": 3600.0}


class SettingsError(ValueError):
    """An environment variable holds a value the application cannot use."""


@dataclass(frozen=True, slots=True)
class Settings:
    """The application's configuration.

    Attributes:
        data_dir: Where the embedded database and other state live (`MIAUFLIX_DATA_DIR`,
            default `./data`).
        database_url: SQLAlchemy async URL (`DATABASE_URL`); default: SQLite file
            `miauflix.sqlite3` in `data_dir`.
        tmdb_api_url: TMDB v3 base URL (`TMDB_API_URL`).
        tmdb_api_token: TMDB v4 read access token used as a bearer token (`TMDB_API_TOKEN`).
            Empty means demo mode: the provider simulator is started in-process.
        yts_api_url: YTS base URL (`YTS_API_URL`); the client appends `/api/v2/...`.
        torrent_cache_url: Torrent cache base URL (`TORRENT_CACHE_URL`); the client appends
            `/torrent/<INFO_HASH>.torrent`.
        trackers: Tracker announce URLs for scrapes and magnets (`TRACKERS`, comma-separated,
            `http(s)://` or `udp://`). None (not set): the original backend's three public UDP
            trackers (`DEFAULT_TRACKERS`), or the simulator's in demo mode. Empty (`TRACKERS=`):
            no scraping, magnets without trackers. See `tracker_urls`.
        disable_background_tasks: Start with no scheduled tasks (`DISABLE_BACKGROUND_TASKS`).
        languages: ISO 639-1 codes whose genre names `refreshLists` keeps besides English
            (`MIAUFLIX_LANGUAGES`, comma-separated, default `es,fr`; empty: none). Movie
            translations are kept in every language TMDB has.
        http_timeout: Seconds for one provider request (`MIAUFLIX_HTTP_TIMEOUT`, default 10).
        tmdb_rate: TMDB requests per second (`MIAUFLIX_TMDB_RATE`, default `40/s`).
        yts_rate: YTS requests per second (`MIAUFLIX_YTS_RATE`, default `20/min`).
        download_rate: Direct `.torrent` downloads per second from each host a content
            directory links to (`MIAUFLIX_DOWNLOAD_RATE`, default `0.5/s`). The torrent cache
            has no fixed rate: it is paced by its own answers (`Retry-After`, backoff on
            429/503).
        coordinate: On PostgreSQL, coordinate with the other replicas on the same database
            (`MIAUFLIX_COORDINATE`, default true): the singleton tasks run once per interval
            cluster-wide under a `PostgresCoordinator`, the draining tasks claim their items,
            and provider budgets are divided by the live replicas. False: this process
            assumes it is alone (as on SQLite). The command line's `--coordinator` wins.
        claim_ttl: Seconds a draining task's claim on an item holds (`MIAUFLIX_CLAIM_TTL`);
            0 (the default): twice the longest draining task's timeout. A replica that dies
            mid-item leaves it to the others after this long.
        simulator_faults: Fault knobs of the in-process simulator, read in demo mode only
            (`MIAUFLIX_SIMULATOR_FAULTS`, e.g. `error_rate=0.3,hang_rate=0.02`): pairs of a
            `miauflix.simulator.Faults` field (`latency`, `error_rate`, `rate_limit_rate`,
            `retry_after`, `hang_rate`, `html_rate`, `truncate_rate`, `wrong_hash_rate`,
            `udp_drop_rate`) and a number. Empty: a well-behaved simulator.
    """

    data_dir: Path = Path("data")
    database_url: str = ""
    tmdb_api_url: str = DEFAULT_TMDB_API_URL
    tmdb_api_token: str = field(default="", repr=False)
    yts_api_url: str = DEFAULT_YTS_API_URL
    torrent_cache_url: str = DEFAULT_TORRENT_CACHE_URL
    trackers: tuple[str, ...] | None = None
    disable_background_tasks: bool = False
    languages: tuple[str, ...] = ("es", "fr")
    http_timeout: float = 10.0
    tmdb_rate: float = 40.0
    yts_rate: float = 20 / 60
    download_rate: float = 0.5
    coordinate: bool = True
    claim_ttl: float = 0.0
    simulator_faults: tuple[tuple[str, float], ...] = ()

    @property
    def demo_mode(self) -> bool:
        """True when no TMDB token is configured: the simulator stands in for the providers."""
        return not self.tmdb_api_token

    @property
    def tracker_urls(self) -> tuple[str, ...]:
        """`trackers`, or `DEFAULT_TRACKERS` when it is not set."""
        return DEFAULT_TRACKERS if self.trackers is None else self.trackers

    @property
    def resolved_database_url(self) -> str:
        """`database_url`, or the embedded SQLite file in `data_dir` when it is empty."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'miauflix.sqlite3').resolve()}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from `environ` (default: `os.environ`).

        Raises:
            SettingsError: A variable holds an unusable value; the message names it.
        """
        env = os.environ if environ is None else environ
        token = env.get("TMDB_API_TOKEN", "").strip()
        rates = DEMO_RATES if not token else RATE_DEFAULTS
        return cls(
            data_dir=Path(env.get("MIAUFLIX_DATA_DIR", "data")),
            database_url=_database_url(env.get("DATABASE_URL", "")),
            tmdb_api_url=_url(env, "TMDB_API_URL", DEFAULT_TMDB_API_URL),
            tmdb_api_token=token,
            yts_api_url=_url(env, "YTS_API_URL", DEFAULT_YTS_API_URL),
            torrent_cache_url=_url(env, "TORRENT_CACHE_URL", DEFAULT_TORRENT_CACHE_URL),
            trackers=None if "TRACKERS" not in env else _trackers(env["TRACKERS"]),
            disable_background_tasks=_bool(env, "DISABLE_BACKGROUND_TASKS"),
            languages=_languages(env.get("MIAUFLIX_LANGUAGES", "es,fr")),
            http_timeout=_positive_float(env, "MIAUFLIX_HTTP_TIMEOUT", 10.0),
            tmdb_rate=_rate(env, "MIAUFLIX_TMDB_RATE", rates),
            yts_rate=_rate(env, "MIAUFLIX_YTS_RATE", rates),
            download_rate=_rate(env, "MIAUFLIX_DOWNLOAD_RATE", rates),
            coordinate=not env.get("MIAUFLIX_COORDINATE", "").strip()
            or _bool(env, "MIAUFLIX_COORDINATE"),
            claim_ttl=_positive_float(env, "MIAUFLIX_CLAIM_TTL", 0.0),
            simulator_faults=_faults(env.get("MIAUFLIX_SIMULATOR_FAULTS", "")),
        )


def _url(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip() or default
    if not value.startswith(("http://", "https://")):
        raise SettingsError(f"{name} must be an http:// or https:// URL, got {value!r}")
    return value.rstrip("/")


def _database_url(value: str) -> str:
    value = value.strip()
    if not value:
        return ""
    # Users paste the URLs their other tools use; map them to the async drivers.
    for plain, driver in (
        ("postgres://", "postgresql+asyncpg://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("sqlite:///", "sqlite+aiosqlite:///"),
    ):
        if value.startswith(plain):
            return driver + value[len(plain) :]
    if value.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
        return value
    raise SettingsError(
        f"DATABASE_URL must be a postgresql:// or sqlite:/// URL, got {value.split('@')[-1]!r}"
    )


def _languages(value: str) -> tuple[str, ...]:
    languages = tuple(
        dict.fromkeys(part.strip().lower() for part in value.split(",") if part.strip())
    )
    for language in languages:
        if not (len(language) == 2 and language.isascii() and language.isalpha()):
            raise SettingsError(
                f"MIAUFLIX_LANGUAGES entries must be ISO 639-1 codes such as 'es', got {language!r}"
            )
    return languages


def _trackers(value: str) -> tuple[str, ...]:
    trackers = tuple(part.strip() for part in value.split(",") if part.strip())
    for tracker in trackers:
        if not tracker.startswith(("http://", "https://", "udp://")):
            raise SettingsError(
                f"TRACKERS entries must be http://, https:// or udp:// URLs, got {tracker!r}"
            )
    return trackers


# The numeric fields of `miauflix.simulator.Faults` (not imported: settings stay dependency-free).
_FAULT_KNOBS = frozenset(
    {
        "latency",
        "error_rate",
        "rate_limit_rate",
        "retry_after",
        "hang_rate",
        "html_rate",
        "truncate_rate",
        "wrong_hash_rate",
        "udp_drop_rate",
    }
)


def _faults(value: str) -> tuple[tuple[str, float], ...]:
    knobs: dict[str, float] = {}
    for part in value.split(","):
        if not part.strip():
            continue
        name, sep, raw = (piece.strip() for piece in part.partition("="))
        if not sep or name not in _FAULT_KNOBS:
            raise SettingsError(
                "MIAUFLIX_SIMULATOR_FAULTS entries must be NAME=NUMBER with NAME one of "
                f"{', '.join(sorted(_FAULT_KNOBS))}, got {part.strip()!r}"
            )
        try:
            number = float(raw)
        except ValueError:
            raise SettingsError(
                f"MIAUFLIX_SIMULATOR_FAULTS: {name} must be a number, got {raw!r}"
            ) from None
        if not math.isfinite(number) or number < 0:
            raise SettingsError(
                f"MIAUFLIX_SIMULATOR_FAULTS: {name} must be a finite number >= 0, got {raw!r}"
            )
        knobs[name] = number
    return tuple(knobs.items())


def _bool(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingsError(f"{name} must be true or false, got {value!r}")


def _positive_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise SettingsError(f"{name} must be a positive number of seconds, got {raw!r}")
    return value


def _rate(env: Mapping[str, str], name: str, defaults: Mapping[str, str]) -> float:
    raw = env.get(name, "").strip() or defaults[name]
    count, _, unit = (piece.strip() for piece in raw.partition("/"))
    per = _PER.get(unit.lower() or "s")
    try:
        number = float(count)
    except ValueError:
        number = math.nan
    if per is None or not math.isfinite(number) or number <= 0:
        raise SettingsError(
            f"{name} must be a rate like 20/min, 0.5/s or 40 (per second) with a positive "
            f"count, got {raw!r}"
        )
    return number / per


def format_rate(rate: float) -> str:
    """A requests-per-second rate as people write it: `40/s`, `0.5/s`, `20/min`."""
    for per, unit in ((1.0, "s"), (10.0, "s"), (60.0, "min"), (3600.0, "h")):
        if abs(rate * per - round(rate * per)) < 1e-9:
            return f"{rate * _PER[unit]:g}/{unit}"
    return f"{rate:.4g}/s"
