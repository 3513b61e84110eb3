"""`build_providers` wires every client from `Settings`, and errors keep their contract."""

from __future__ import annotations

from typing import Any

import pytest

import miauflix.providers as providers_module
from miauflix.providers import (
    BadResponse,
    HashMismatch,
    NotConfigured,
    NotFound,
    ProviderError,
    Providers,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    Unauthorized,
    build_providers,
)
from miauflix.providers.errors import ProviderErrorCode
from miauflix.settings import Settings
from miauflix.simulator import Simulator


async def test_built_from_the_simulators_environment(providers: Providers, sim: Simulator) -> None:
    """Settings from the simulator's environment give clients that all work and report ready."""
    assert providers.directories == (providers.yts,)
    assert providers.trackers.trackers == (sim.http_tracker_url, sim.udp_tracker_url)
    await providers.tmdb.movie_genres()
    statuses = providers.statuses()
    assert set(statuses) == {"tmdb", "yts", "torrent_files", "trackers"}
    assert {s.status for s in statuses.values()} == {"ready"}
    assert statuses["tmdb"].to_dict()["details"]["requests"] == 1


async def test_empty_settings_need_configuration() -> None:
    """Without a token or trackers, TMDB and trackers report the missing variable."""
    async with build_providers(Settings.from_env({"TRACKERS": ""})) as bundle:
        statuses = bundle.statuses()
    assert statuses["tmdb"].status == "needs_configuration"
    assert statuses["tmdb"].reason == "TMDB_API_TOKEN is not set"
    assert statuses["trackers"].status == "needs_configuration"
    assert statuses["trackers"].reason == "TRACKERS is empty: scraping is off"
    assert statuses["yts"].status == "ready"


ERRORS: list[tuple[ProviderError, ProviderErrorCode]] = [
    (ProviderUnavailable("p", "/a", "down", status_code=503), "unavailable"),
    (ProviderTimeout("p", "/a", 2.5), "timeout"),
    (RateLimited("p", "/a", 3.0), "rate_limited"),
    (BadResponse("p", "/a", "garbage"), "bad_response"),
    (NotFound("p", "/a", "gone"), "not_found"),
    (NotConfigured("p", "/a", "TMDB_API_TOKEN"), "not_configured"),
    (Unauthorized("p", "/a", "rejected", status_code=401), "unauthorized"),
    (HashMismatch("p", "/a", expected="a" * 40, actual="b" * 40), "hash_mismatch"),
]


@pytest.mark.parametrize(("error", "code"), ERRORS, ids=[c for _, c in ERRORS])
def test_errors_have_stable_codes_and_name_provider_and_path(
    error: ProviderError, code: str
) -> None:
    """Each error is a ProviderError with its code; the message starts with provider and path."""
    assert isinstance(error, ProviderError)
    assert error.code == code
    assert str(error).startswith("p: /a: ")
    assert (error.provider, error.path) == ("p", "/a")


def test_public_names_are_exported() -> None:
    """`miauflix.providers.__all__` is sorted and every name in it exists."""
    names = providers_module.__all__
    assert names == sorted(names)
    assert all(hasattr(providers_module, name) for name in names)


async def test_aclose_closes_every_client_when_one_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """A client that fails to close does not keep the others open; its error still surfaces."""
    bundle = build_providers(Settings.from_env({"TRACKERS": ""}))
    closed: list[str] = []

    async def broken() -> None:
        closed.append("tmdb")
        raise OSError("tmdb close failed")

    for name in ("yts", "torrent_files", "trackers"):
        client = getattr(bundle, name)
        close = client.aclose

        async def tracked(name: str = name, close: Any = close) -> None:
            closed.append(name)
            await close()

        monkeypatch.setattr(client, "aclose", tracked)
    monkeypatch.setattr(bundle.tmdb, "aclose", broken)
    with pytest.raises(OSError, match="tmdb close failed"):
        await bundle.aclose()
    assert closed == ["tmdb", "yts", "torrent_files", "trackers"]
