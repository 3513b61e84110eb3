"""A provider outage ends the task's run snoozed, with the provider and the cause as its reason."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from miauflix.app import TASKS, snoozing, snoozing_on_outage
from miauflix.providers import (
    BadResponse,
    NotConfigured,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    Unauthorized,
)
from miauflix.services import ListSyncReport, MovieSyncReport, ProviderPause
from miauflix.services._retry import outage_reason
from tickwork import Scheduler
from tickwork.testing import wait_for_runs

from .._fakes import FakeUtcClock

START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            ProviderUnavailable(
                "tmdb",
                "/tv/1/season/1",
                "cannot reach the provider: ConnectError: [Errno 111] Connection refused",
            ),
            "tmdb unreachable (connect error)",
        ),
        (
            ProviderUnavailable("yts", "/list", "no answer", status_code=None),
            "yts unreachable (no answer)",
        ),
        (
            ProviderUnavailable("yts", "/list", "server error (HTTP 503)", status_code=503),
            "yts unavailable (HTTP 503)",
        ),
        (ProviderTimeout("yts", "/list", 3.0), "yts not answering (no complete answer within 3 s)"),
        (RateLimited("yts", "/list", 42.0), "yts rate limited (retry after 42 s)"),
        (RateLimited("yts", "/list", None), "yts rate limited"),
        (
            NotConfigured("trackers", "/scrape", "TRACKERS"),
            "trackers not configured (TRACKERS is not set)",
        ),
        (
            Unauthorized("tmdb", "/tv", "credential rejected (HTTP 401)", status_code=401),
            "tmdb refused the credential (HTTP 401)",
        ),
        (BadResponse("yts", "/list", "HTML, not JSON"), "yts: HTML, not JSON"),
    ],
    ids=["connect", "other-transport", "5xx", "timeout", "429", "429-bare", "config", "401", "bad"],
)
def test_outage_reason_names_the_provider_and_the_cause(error: ProviderError, reason: str) -> None:
    """Each provider-wide error reads as the provider and what is wrong, without the URL path."""
    assert outage_reason(error) == reason


def test_a_pause_keeps_its_reason_and_remaining_seconds_until_cleared() -> None:
    """A pause that starts records its reason and counts down; an answer clears both."""
    clock = FakeUtcClock(START)
    pause = ProviderPause("syncIncompleteSeasons", clock)
    assert (pause.remaining(), pause.reason) == (0.0, None)
    pause.trip(RateLimited("tmdb", "/tv", 45.0))
    assert (pause.remaining(), pause.reason) == (45.0, "tmdb rate limited (retry after 45 s)")
    clock.advance(40)
    assert pause.remaining() == 5.0
    clock.advance(10)
    assert pause.remaining() == 0.0
    pause.clear()
    assert pause.reason is None


def test_every_task_that_pauses_on_its_provider_snoozes() -> None:
    """The five tasks with a provider pause are registered through `snoozing`."""
    assert [t.name for t in TASKS if t.pause is not None] == [
        "syncIncompleteSeasons",
        "movieSourceSearch",
        "dataFileSearch",
        "updateSourcesStats",
        "resyncMovieSources",
    ]


def test_the_two_hourly_tasks_snooze_a_few_minutes_on_an_outage() -> None:
    """refreshLists and syncMovies end a run TMDB stopped snoozed, for 5 minutes by default."""
    assert {t.name: t.outage_snooze for t in TASKS if t.outage_snooze is not None} == {
        "refreshLists": 300.0,
        "syncMovies": 300.0,
    }


UNREACHABLE = ProviderUnavailable(
    "tmdb", "/discover/movie", "cannot reach the provider: ConnectError: refused"
)


@pytest.mark.parametrize(
    ("report", "seconds", "reason"),
    [
        (
            ListSyncReport((), {"popular-movies": UNREACHABLE}),
            300.0,
            "tmdb unreachable (connect error): no list refreshed",
        ),
        (
            ListSyncReport(
                (),
                {
                    "popular-movies": UNREACHABLE,
                    "popular-shows": RateLimited("tmdb", "/discover/tv", 42.0),
                },
            ),
            42.0,
            "tmdb rate limited (retry after 42 s): no list refreshed",
        ),
        (
            ListSyncReport((), {"popular-shows": RateLimited("tmdb", "/discover/tv", 0.0)}),
            1.0,
            "tmdb rate limited (retry after 0 s): no list refreshed",
        ),
        (
            MovieSyncReport(False, failed_day=date(2026, 3, 14), error=UNREACHABLE),
            300.0,
            "tmdb unreachable (connect error): movie changes from 2026-03-14 not synced",
        ),
    ],
    ids=["lists-down", "lists-429", "lists-429-now", "movies-day"],
)
async def test_a_report_with_an_outage_ends_the_run_snoozed(
    report: ListSyncReport | MovieSyncReport, seconds: float, reason: str
) -> None:
    """A run whose report has an outage ends snoozed with its reason, for the last error's
    Retry-After (at least 1 s) or else the task's outage snooze; no failure is counted."""

    async def sync() -> ListSyncReport | MovieSyncReport:
        return report

    async with Scheduler() as scheduler:
        scheduler.schedule_task("sync", 0.01, snoozing_on_outage(sync, 300.0))
        await wait_for_runs(scheduler, "sync", 1, timeout=5)
        status = scheduler.task_status("sync")
    assert (status.state, status.last_outcome) == ("snoozed", "snoozed")
    assert status.last_outcome_reason == reason
    assert status.failures == 0
    assert status.next_run_at is not None
    assert status.last_finished_at is not None
    assert status.next_run_at - status.last_finished_at == pytest.approx(seconds)


@pytest.mark.parametrize(
    "report",
    [
        ListSyncReport(("popular-shows",), {"popular-movies": UNREACHABLE}),
        ListSyncReport(()),
        MovieSyncReport(False, days=(date(2026, 3, 14),), failed=3),
        MovieSyncReport(skipped=True),
    ],
    ids=["lists-partial", "lists-none-configured", "movies-items-failed", "movies-skipped"],
)
async def test_a_report_without_an_outage_is_the_runs_result(
    report: ListSyncReport | MovieSyncReport,
) -> None:
    """A run that did (some of) its work returns its report: a success."""

    async def sync() -> ListSyncReport | MovieSyncReport:
        return report

    body = snoozing_on_outage(sync, 300.0)
    assert body.__wrapped__ is sync  # type: ignore[attr-defined]
    assert report.outage is None
    assert await body() is report


async def test_a_run_that_trips_the_pause_ends_snoozed_then_the_pause_ends_it() -> None:
    """The run that pauses its task ends snoozed for the pause, its reason shown in status."""
    clock = FakeUtcClock(START)
    pause = ProviderPause("syncIncompleteSeasons", clock)
    calls = 0

    async def sync_one() -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            pause.trip(
                ProviderUnavailable(
                    "tmdb", "/tv", "cannot reach the provider: ConnectError: refused"
                )
            )
            pause.trip(RateLimited("tmdb", "/tv", 45.0))
        return 0

    async with Scheduler() as scheduler:
        scheduler.schedule_task("syncIncompleteSeasons", 0.01, snoozing(sync_one, pause))
        await wait_for_runs(scheduler, "syncIncompleteSeasons", 1, timeout=5)
        status = scheduler.task_status("syncIncompleteSeasons")
    assert status.state == "snoozed"
    assert status.last_outcome == "snoozed"
    assert status.last_outcome_reason == "tmdb rate limited (retry after 45 s)"
    assert status.failures == 0
    assert calls == 1
    assert status.next_run_at is not None
    assert status.last_finished_at is not None
    assert status.next_run_at - status.last_finished_at == pytest.approx(45.0)


async def test_a_run_without_a_pause_returns_the_methods_result() -> None:
    """With no pause in force, the wrapped method's run is a plain success."""
    pause = ProviderPause("movieSourceSearch", FakeUtcClock(START))

    async def search() -> int:
        return 3

    body = snoozing(search, pause)
    assert body.__wrapped__ is search  # type: ignore[attr-defined]
    assert await body() == 3
