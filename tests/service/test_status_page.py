"""The status page at ``GET /`` in headless Chromium against a real ``tickwork run`` process."""

from __future__ import annotations

import asyncio
import os
import re
import textwrap
import time
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import (
    Browser,
    Dialog,
    Locator,
    Page,
    Request,
    Route,
    async_playwright,
    expect,
)

from .conftest import StartService, free_port

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = os.environ.get("TICKWORK_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
EVIL = "<img src=x onerror=alert(1)>"
WAIT = 10_000  # milliseconds, for every expect()

APP = f"""
    import asyncio
    import time

    from tickwork.service import ComponentStatus, register_component

    async def refresh():
        await asyncio.sleep(0.02)

    async def sync_sources():
        raise RuntimeError("database is down: <b>not bold</b>\\nsecond line of the error")

    async def import_catalogue():
        await asyncio.sleep(30)

    def scrape_trackers():
        time.sleep(30)

    async def nothing():
        pass

    def setup(scheduler):
        register_component(scheduler, "database", lambda: ComponentStatus("ready"))
        register_component(
            scheduler, "tmdb", lambda: ComponentStatus("degraded", reason="HTTP 503; retrying")
        )
        scheduler.schedule_task("refresh-lists", 0.3, refresh)
        scheduler.schedule_task("sync-sources", 0.5, sync_sources)
        scheduler.schedule_task("import-catalogue", 3600, import_catalogue)
        scheduler.schedule_task("scrape-trackers", 3600, scrape_trackers, timeout=0.2)
        scheduler.schedule_task({EVIL!r}, 0.5, nothing)
"""

MANY_APP = """
    async def nothing():
        pass

    def setup(scheduler):
        for i in range(500):
            scheduler.schedule_task(f"task-{i:03d}", 1.0, nothing)
"""


def require_chromium() -> None:
    """Skip when Chromium is absent, or fail under ``CI=true``, where it must be installed."""
    if not Path(CHROMIUM).is_file():
        reason = f"Chromium not found at {CHROMIUM} (install it or set TICKWORK_CHROMIUM)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium, launched from the system's executable."""
    require_chromium()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh page; fails the test if a dialog opens or the CSP blocks anything."""
    context = await browser.new_context(viewport={"width": 1440, "height": 900})
    opened = await context.new_page()
    dialogs: list[str] = []
    violations: list[str] = []

    async def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        await dialog.dismiss()

    opened.on("dialog", on_dialog)
    opened.on(
        "console",
        lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    yield opened
    await context.close()
    assert dialogs == [], "a dialog opened"
    assert violations == [], "the Content-Security-Policy blocked something"


def row(page: Page, name: str) -> Locator:
    """Return the table row of task ``name`` (matched on the exact name cell text)."""
    return page.locator("#rows tr").filter(has=page.get_by_role("cell", name=name, exact=True))


def cell(page: Page, name: str, column: int) -> Locator:
    """Return the ``column``-th cell (0-based) of task ``name``'s row."""
    return row(page, name).locator("td").nth(column)


async def wait_runs_above(page: Page, name: str, runs: int) -> None:
    """Wait until the page shows more than ``runs`` runs for task ``name``."""
    await page.wait_for_function(
        """([name, runs]) => [...document.querySelectorAll('#rows tr')].some(
            (tr) => tr.cells[0].textContent === name && Number(tr.cells[3].textContent) > runs)""",
        arg=[name, runs],
        timeout=WAIT,
    )


async def test_rows_show_values_update_and_mark_failures(
    start_service: StartService, page: Page
) -> None:
    """Rows show each task's values, update as tasks run, and failing or stuck rows stand out."""
    service = await start_service(APP)
    await page.goto(service.url("/"))
    await expect(page.locator("#rows tr")).to_have_count(5, timeout=WAIT)
    await expect(page.locator("body")).to_have_attribute("data-connection", "connected")
    await expect(page.locator("#svc-state")).to_have_text("running")

    await expect(cell(page, "refresh-lists", 1)).to_have_text("300 ms")
    await expect(cell(page, "import-catalogue", 1)).to_have_text("1 h")
    await expect(cell(page, "import-catalogue", 2).locator(".badge")).to_have_text(
        re.compile(r"^running for \d+ s$")
    )
    await expect(cell(page, "scrape-trackers", 2)).to_have_text(re.compile(r"^stuck"), timeout=WAIT)
    await expect(row(page, "scrape-trackers")).to_have_class(re.compile("attention"))

    runs = int(await cell(page, "refresh-lists", 3).text_content() or "0")
    await wait_runs_above(page, "refresh-lists", runs + 2)
    await expect(cell(page, "refresh-lists", 8)).to_have_text(
        re.compile(r"^(in 0\.\d s|in \d+ s|due|–)$")
    )
    await expect(cell(page, "refresh-lists", 6)).to_have_text(re.compile(r"(just now|s ago)ok$"))
    chart = row(page, "refresh-lists").locator("path.ok")
    await expect(chart).to_have_attribute("d", re.compile(r"^M\d+"), timeout=WAIT)

    failing = row(page, "sync-sources")
    await expect(failing).to_have_class(re.compile("attention"))
    await expect(failing.locator("path.bad")).to_have_attribute("d", re.compile(r"^M"))
    await wait_runs_above(page, "sync-sources", 1)
    assert int(await cell(page, "sync-sources", 4).text_content() or "0") >= 2
    assert int(await cell(page, "sync-sources", 5).text_content() or "0") >= 2
    summary = failing.locator("summary")
    await expect(summary).to_have_text("RuntimeError: database is down: <b>not bold</b>")
    await summary.click()
    await expect(failing.locator("pre")).to_have_text(re.compile(r"<b>not bold</b>\nsecond line"))
    assert await page.locator("b").count() == 0

    await expect(page.locator("#component-list > li")).to_have_count(2)
    tmdb = page.locator("#component-list > li").filter(has_text="tmdb")
    await expect(tmdb.locator(".badge")).to_have_text("degraded")
    await expect(tmdb).to_contain_text("HTTP 503; retrying")

    await page.locator("#attention").check()
    first_two = page.locator("#rows tr td.name")
    await expect(first_two.nth(0)).to_have_text("scrape-trackers")
    await expect(first_two.nth(1)).to_have_text("sync-sources")
    await page.locator("#attention").uncheck()
    await expect(first_two.nth(0)).to_have_text("refresh-lists")

    ARTIFACTS.mkdir(exist_ok=True)
    await page.locator("#attention").check()
    await wait_runs_above(page, "refresh-lists", 20)
    await page.screenshot(path=str(ARTIFACTS / "status-page.png"), full_page=True)


async def test_untrusted_task_name_renders_as_text(start_service: StartService, page: Page) -> None:
    """A task named like an HTML tag is shown literally; no element is created, no script runs."""
    service = await start_service(APP)
    await page.goto(service.url("/"))
    await expect(row(page, EVIL)).to_have_count(1, timeout=WAIT)
    await wait_runs_above(page, EVIL, 1)
    await expect(row(page, EVIL).locator("td.name")).to_have_text(EVIL)
    assert await page.locator("img").count() == 0
    # The page fixture asserts that no dialog opened.


async def test_token_flow(start_service: StartService, page: Page) -> None:
    """Without the token the page asks for it and shows no task; with it, rows appear."""
    service = await start_service(APP, "--token", "s3cret")
    response = await page.request.get(service.url("/status"))
    assert response.status == 401
    await page.goto(service.url("/"))
    await expect(page.locator("#login")).to_be_visible(timeout=WAIT)
    await expect(page.locator("body")).to_have_attribute("data-connection", "unauthorized")
    assert await page.locator("#rows tr").count() == 0

    await page.locator("#token").fill("wrong")
    await page.locator("#login button").click()
    await expect(page.locator("#login-text")).to_have_text(re.compile("refused"), timeout=WAIT)
    await page.locator("#token").fill("s3cret")
    await page.locator("#login button").click()
    await expect(page.locator("#rows tr")).to_have_count(5, timeout=WAIT)
    await expect(page.locator("#login")).to_be_hidden()

    fresh = await page.context.new_page()
    await fresh.goto(service.url("/#token=s3cret"))
    await expect(fresh.locator("#rows tr")).to_have_count(5, timeout=WAIT)
    assert "#" not in fresh.url, "the token stays in the address bar"


async def test_disconnected_then_recovers_after_restart(
    start_service: StartService, page: Page
) -> None:
    """The page shows "disconnected" while the service is down and recovers when it returns."""
    port = str(free_port())
    service = await start_service(APP, "--port", port, "--grace", "0.5")
    await page.goto(service.url("/"))
    await wait_runs_above(page, "refresh-lists", 2)

    code, _ = await service.stop()
    assert code == 0
    await expect(page.locator("body")).to_have_attribute(
        "data-connection", "disconnected", timeout=WAIT
    )
    await expect(page.locator("#banner")).to_contain_text("Disconnected")

    restarted = await start_service(None, "--port", port, "--grace", "0.5")
    assert restarted.port == service.port
    await expect(page.locator("body")).to_have_attribute(
        "data-connection", "connected", timeout=WAIT
    )
    await expect(page.locator("#banner")).to_be_hidden()
    await expect(page.locator("#rows tr")).to_have_count(5)
    await wait_runs_above(page, "refresh-lists", 0)


async def visible_charts(page: Page) -> tuple[int, int]:
    """Return how many task rows are on screen and how many of them have a drawn chart."""
    counts: list[int] = await page.evaluate(
        """() => {
            const rows = [...document.querySelectorAll('#rows tr')].filter((tr) => {
                const box = tr.getBoundingClientRect();
                return box.bottom > 0 && box.top < innerHeight;
            });
            const filled = rows.filter((tr) => tr.querySelector('path.ok').getAttribute('d'));
            return [rows.length, filled.length];
        }"""
    )
    return counts[0], counts[1]


async def test_500_tasks_render_update_and_fetch_history_once_per_refresh(
    start_service: StartService, page: Page
) -> None:
    """With 500 rows a refresh stays fast, each refresh sends at most one /history request, and
    after scrolling every visible chart is filled within two refreshes."""
    # Record every refresh the page measures (it keeps only the latest), plus the style and
    # layout work it causes, forced at once so that it is counted.
    await page.add_init_script(
        """window.__updates = [];
        const measure = performance.measure.bind(performance);
        performance.measure = (...args) => {
            const entry = measure(...args);
            void document.body.offsetHeight;
            window.__updates.push(performance.now() - entry.startTime);
            return entry;
        };"""
    )
    requests: list[tuple[str, float, str]] = []

    def record(request: Request) -> None:
        path = urllib.parse.urlsplit(request.url).path
        if path in ("/status", "/history"):
            requests.append((path, time.monotonic(), request.url))

    page.on("request", record)
    service = await start_service(MANY_APP)
    await page.goto(service.url("/"))
    await expect(page.locator("#rows tr")).to_have_count(500, timeout=WAIT)
    await wait_runs_above(page, "task-000", 2)
    await expect(row(page, "task-000").locator("path.ok")).to_have_attribute(
        "d", re.compile("^M"), timeout=WAIT
    )

    await row(page, "task-499").scroll_into_view_if_needed()
    scrolled = time.monotonic()
    async with asyncio.timeout(WAIT / 1000):
        while True:
            on_screen, filled = await visible_charts(page)
            if on_screen and filled == on_screen:
                break
            await page.wait_for_timeout(50)  # polls the page; progress comes from its refreshes
    fill_time = time.monotonic() - scrolled
    refreshes = sum(1 for path, at, _ in requests if path == "/status" and at > scrolled)
    assert on_screen >= 10
    assert refreshes <= 2, (refreshes, fill_time)

    # At most one /history request between two /status requests, never more than 100 names.
    between = 0
    for path, _, url in requests:
        if path == "/status":
            between = 0
        else:
            between += 1
            assert between <= 1, [p for p, _, _ in requests]
            assert 1 <= url.count("task=") <= 100
    history = [url for path, _, url in requests if path == "/history"]
    assert any(url.count("task=") > 4 for url in history), history

    runs = int(await cell(page, "task-499", 3).text_content() or "0")
    await wait_runs_above(page, "task-499", runs + 3)
    first, *updates = await page.evaluate("window.__updates")
    print(
        f"500 rows: first render {first:.1f} ms, refreshes {sorted(updates)} ms; charts of "
        f"{on_screen} visible rows filled {fill_time:.2f} s after scrolling, "
        f"{refreshes} refresh(es), {len(history)} /history requests in all"
    )
    assert first < 2000
    assert len(updates) >= 3
    assert max(updates) < 250, updates


def task(name: str, **fields: object) -> dict[str, object]:
    """Return a ``/status`` task entry for ``name``: an idle, healthy task unless overridden."""
    entry: dict[str, object] = {
        "name": name,
        "interval": 30.0,
        "timeout": None,
        "state": "scheduled",
        "runs": 3,
        "failures": 0,
        "consecutive_failures": 0,
        "last_started_at": 990.0,
        "last_finished_at": 990.5,
        "last_success_at": 990.5,
        "last_duration": 0.5,
        "last_error": None,
        "next_run_at": 1020.5,
        "running_for": None,
        "overdue_by": 0.0,
        "stuck": False,
    }
    entry.update(fields)
    return entry


CANNED_STATUS = {
    "state": "running",
    "started_at": 900.0,
    "uptime": 100.0,
    "now": 1000.0,
    "event_loop_lag": 0.002,
    "stall_events": {"stall": 1, "suspend": 0, "clock_jump": 0},
    "last_stall": {"kind": "stall", "seconds": 2.5, "detected_at": 950.0, "delayed_tasks": []},
    "tasks": [
        task("healthy"),
        task("late", next_run_at=995.0, overdue_by=5.0),
        task("broken", failures=2, consecutive_failures=2, last_error=f"ValueError: {EVIL}"),
        task("wedged", state="running", running_for=700.0, stuck=True, next_run_at=None),
        task("hourly", interval=5400.0, next_run_at=1000.0 + 3599.4),
    ],
    "services": {
        "tmdb": {"status": "needs_configuration", "reason": f"set TMDB_TOKEN {EVIL}"},
        "catalog": {"status": "ready", "details": {"movies": 180, EVIL: 3, "nested": {"x": 1}}},
    },
}


async def test_states_components_sorting_and_filter_from_canned_status(
    start_service: StartService, page: Page
) -> None:
    """Overdue, failing and stuck rows, durations, uptime and components render from a canned
    /status."""
    service = await start_service(APP)

    async def fulfil_status(route: Route) -> None:
        await route.fulfill(json=CANNED_STATUS)

    async def fulfil_history(route: Route) -> None:
        await route.fulfill(json={"broken": []})

    await page.route(re.compile(r"/status$"), fulfil_status)
    await page.route(re.compile(r"/history\?"), fulfil_history)
    await page.goto(service.url("/"))
    await expect(page.locator("#rows tr")).to_have_count(5, timeout=WAIT)

    await expect(cell(page, "late", 2)).to_have_text("overdue by 5 s")
    await expect(row(page, "late")).to_have_class("attention a-overdue")
    await expect(cell(page, "wedged", 2)).to_have_text("stuck, running 700 s")
    await expect(row(page, "broken")).to_have_class("attention a-failing")
    await expect(row(page, "healthy")).to_have_class("")
    await expect(cell(page, "healthy", 6)).to_have_text("9 s agook")
    await expect(cell(page, "healthy", 7)).to_have_text("500 ms")
    await expect(cell(page, "healthy", 8)).to_have_text("in 21 s")
    await expect(cell(page, "broken", 2)).to_have_text("failing")
    await expect(cell(page, "broken", 6)).to_have_text("9 s agofailed")
    await expect(row(page, "broken").locator("summary")).to_have_text(f"ValueError: {EVIL}")
    await expect(cell(page, "hourly", 1)).to_have_text("1.5 h")
    # 3599 s rounds to 60 min: shown as the next unit, never "in 60 min".
    await expect(cell(page, "hourly", 8)).to_have_text("in 1 h")
    await expect(page.locator("#svc-uptime")).to_have_text("1 min 40 s")
    await expect(page.locator("#svc-stall")).to_have_text("1 stall event(s); last: stall of 2.5 s")
    await expect(page.locator("#svc-attention")).to_have_text("3 need attention")
    await expect(page.locator("#svc-problems")).to_have_text(
        "1 failing · 0 snoozed · 1 overdue · 1 stuck"
    )
    component = page.locator("#component-list > li").first
    await expect(component.locator(".badge")).to_have_text("needs configuration")
    await expect(component).to_contain_text(f"set TMDB_TOKEN {EVIL}")
    # Details in words, as text; a nested mapping's scalars in parentheses.
    catalog = page.locator("#component-list > li").nth(1)
    await expect(catalog.locator(".details")).to_have_text(f"movies 180 · {EVIL} 3 · nested (x 1)")
    assert await page.locator("img").count() == 0

    names = page.locator("#rows tr:not([hidden]) td.name")
    await expect(names).to_have_text(["healthy", "late", "broken", "wedged", "hourly"])
    await page.locator("#attention").check()
    await expect(names).to_have_text(["wedged", "broken", "late", "healthy", "hourly"])
    await page.locator("#filter").fill("BRO")
    await expect(names).to_have_text(["broken"])


NOW = 1_800_000_000.0
TRACKER_A = "udp://tracker.example:6969/announce"
TRACKER_B = "http://tracker.example/announce"
LONG_REASON = "ConnectError: " + " ".join(["all connection attempts failed"] * 12)


def outcome_task(name: str, **fields: object) -> dict[str, object]:
    """Return a ``/status`` task entry at :data:`NOW`: it finished 12 s ago and is due in 18 s."""
    base: dict[str, object] = {
        "last_started_at": NOW - 12.5,
        "last_finished_at": NOW - 12.0,
        "last_success_at": NOW - 12.0,
        "next_run_at": NOW + 18.0,
    }
    base.update(fields)
    return task(name, **base)


OUTCOME_STATUS = {
    **CANNED_STATUS,
    "now": NOW,
    "started_at": NOW - 100.0,
    "last_stall": None,
    "stall_events": {"stall": 0, "suspend": 0, "clock_jump": 0},
    "tasks": [
        outcome_task(
            "sync-lists",
            last_outcome="snoozed",
            last_outcome_reason="tmdb unreachable (connect error)",
            next_run_at=NOW + 33.0,
        ),
        outcome_task("sync-sources", state="snoozed", last_outcome="snoozed", next_run_at=NOW + 3),
        outcome_task(
            "archive",
            state="paused",
            next_run_at=None,
            last_outcome="success",
            paused_at=NOW - 180.0,
            paused_by="alice@laptop (127.0.0.1)",
        ),
        outcome_task(
            "scrape-trackers", last_outcome="lease_lost", last_outcome_reason="held by replica-b"
        ),
        outcome_task(
            "import-catalogue",
            failures=1,
            consecutive_failures=1,
            last_success_at=NOW - 3600.0,
            last_error="TimeoutError: execution exceeded its timeout of 5 s",
        ),
        outcome_task("refresh", interval=0.3, next_run_at=NOW + 0.07, last_finished_at=NOW - 0.2),
        outcome_task("hourly", interval=3600.0, next_run_at=NOW + 3479.0),
        outcome_task("never-ran", runs=0, last_finished_at=None, last_success_at=None),
    ],
    "services": {
        "tmdb": {
            "status": "error",
            "reason": LONG_REASON,
            "details": {
                "requests": 12,
                "consecutive_failures": 3,
                "last_success_at": NOW - 300.0,
                "last_failure_at": NOW - 4.0,
                "last_error": LONG_REASON,
                "last_error_code": "unreachable",
                "rate_limited_until": NOW + 7.2,
            },
        },
        "trackers": {
            "status": "degraded",
            "reason": "1 of 2 trackers failing: timed out",
            "details": {
                "trackers": {
                    TRACKER_A: {"status": "ready", "reason": None, "details": {"requests": 4}},
                    TRACKER_B: {"status": "error", "reason": "timed out", "details": {}},
                }
            },
        },
    },
}


async def serve_canned(page: Page, service_url: str, document: dict[str, object]) -> None:
    """Open the page with ``/status`` answering ``document`` and ``/history`` answering nothing."""

    async def fulfil_status(route: Route) -> None:
        await route.fulfill(json=document)

    async def fulfil_history(route: Route) -> None:
        await route.fulfill(json={})

    await page.route(re.compile(r"/status$"), fulfil_status)
    await page.route(re.compile(r"/history\?"), fulfil_history)
    await page.goto(service_url)
    tasks = document["tasks"]
    assert isinstance(tasks, list)
    await expect(page.locator("#rows tr")).to_have_count(len(tasks), timeout=WAIT)


async def test_outcome_states_last_run_and_attention_from_canned_status(
    start_service: StartService, page: Page
) -> None:
    """Snoozed, paused and lease-lost tasks have their own states (a paused one says who paused
    it and when), the last run shows when and how it ended, and the Tasks card counts what needs
    attention, paused tasks included."""
    service = await start_service(MANY_APP.replace("range(500)", "range(1)"))
    await page.set_viewport_size({"width": 1400, "height": 900})
    await serve_canned(page, service.url("/"), OUTCOME_STATUS)

    await expect(cell(page, "sync-lists", 2)).to_have_text(
        "snoozed 45 stmdb unreachable (connect error)"
    )
    await expect(row(page, "sync-lists")).to_have_class("attention a-snoozed")
    await expect(cell(page, "sync-lists", 6)).to_have_text("12 s agosnoozed")
    await expect(cell(page, "sync-lists", 8)).to_have_text("in 33 s")
    await expect(cell(page, "sync-sources", 2)).to_have_text("snoozed 15 s")
    await expect(cell(page, "archive", 2)).to_have_text(
        "pausedpaused by alice@laptop (127.0.0.1), 3 min ago"
    )
    await expect(row(page, "archive")).to_have_class("attention a-paused paused")
    await expect(cell(page, "archive", 8)).to_have_text("–")
    await expect(cell(page, "scrape-trackers", 2)).to_have_text("lease lostheld by replica-b")
    await expect(row(page, "scrape-trackers")).to_have_class("attention a-lease_lost")
    await expect(cell(page, "import-catalogue", 2)).to_have_text("failing")
    await expect(cell(page, "import-catalogue", 6)).to_have_text("12 s agotimed out")
    await expect(cell(page, "refresh", 8)).to_have_text("in 0.1 s")
    await expect(cell(page, "refresh", 6)).to_have_text("just nowok")
    await expect(cell(page, "hourly", 8)).to_have_text("in 58 min")
    await expect(cell(page, "never-ran", 6)).to_have_text("–")
    # "Next run" is never cut: its text fits its cell.
    fits = await cell(page, "hourly", 8).evaluate("(td) => td.scrollWidth <= td.clientWidth")
    assert fits

    await expect(page.locator("#svc-attention")).to_have_text("5 need attention")
    await expect(page.locator("#svc-problems")).to_have_text(
        "1 failing · 2 snoozed · 0 overdue · 0 stuck · 1 lease lost · 1 paused"
    )
    await page.locator("#attention").check()
    names = page.locator("#rows tr:not([hidden]) td.name")
    await expect(names).to_have_text(
        [
            "import-catalogue",
            "scrape-trackers",
            "sync-lists",
            "sync-sources",
            "archive",
            "refresh",
            "hourly",
            "never-ran",
        ]
    )

    tmdb = page.locator("#component-list > li").filter(has_text="tmdb")
    await expect(tmdb.locator(".reason")).to_have_text(LONG_REASON)
    await expect(tmdb.locator(".details")).to_have_text(
        "requests 12 · consecutive failures 3 · last success 5 min ago · "
        "last failure 4 s ago · last error code unreachable · rate limited for 8 s"
    )
    trackers = page.locator("#component-list > li").filter(has_text="trackers")
    await expect(trackers.locator(".parts li")).to_have_text(
        [f"{TRACKER_A}readyrequests 4", f"{TRACKER_B}errortimed out"]
    )
    await expect(trackers.locator(".parts .badge")).to_have_class(
        ["badge s-ready", "badge s-error"]
    )
    components = await page.locator("#components").inner_text()
    assert not re.search(r"\d{9,}", components), components
    # The long reason wraps within its block, at word boundaries, instead of being cut.
    wrapped = await tmdb.locator(".reason").evaluate(
        "(p) => p.getClientRects().length === 1 && p.scrollWidth <= p.clientWidth"
        " && p.getBoundingClientRect().height > 30"
    )
    assert wrapped

    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "status-page-wide.png"), full_page=True)


async def test_narrow_screen_shows_a_card_per_task_without_horizontal_scrolling(
    start_service: StartService, page: Page
) -> None:
    """At 420 px every task's state, next run and last error are on screen, with no horizontal
    scrolling."""
    service = await start_service(MANY_APP.replace("range(500)", "range(1)"))
    await page.set_viewport_size({"width": 420, "height": 900})
    tasks = OUTCOME_STATUS["tasks"]
    assert isinstance(tasks, list)
    document = {
        **OUTCOME_STATUS,
        "tasks": [
            *tasks,
            outcome_task(
                "broken",
                failures=4,
                consecutive_failures=4,
                last_error="ValueError: " + " ".join(["the database refused the query"] * 6),
            ),
        ],
    }
    await serve_canned(page, service.url("/"), document)
    await expect(cell(page, "broken", 2)).to_have_text("failing")
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 420, width
    for name in ("sync-lists", "broken", "hourly"):
        for column in (2, 8, 10):
            box = await cell(page, name, column).bounding_box()
            assert box is not None
            assert box["x"] >= 0
            assert box["x"] + box["width"] <= 420, (name, column, box)
    await expect(cell(page, "hourly", 8)).to_have_text("in 58 min")
    await expect(row(page, "broken").locator("summary")).to_be_visible()
    overflowing = await page.evaluate(
        """() => [...document.querySelectorAll('#rows td, #components li')]
            .filter((e) => e.scrollWidth > e.clientWidth + 1).map((e) => e.textContent)"""
    )
    assert overflowing == []

    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "status-page-narrow.png"), full_page=True)


CRON_TASK = outcome_task(
    "nightly-report",
    interval=None,
    schedule={"kind": "cron", "expression": "0 3 * * *", "tz": "Europe/Rome"},
    skipped=0,
    next_run_at=NOW + 64_800.0,  # 2027-01-16 02:00 UTC, 03:00 in Rome
)


@pytest.mark.parametrize("width", [1400, 420])
async def test_a_calendar_task_shows_its_expression_zone_and_next_local_time(
    start_service: StartService, page: Page, width: int
) -> None:
    """A cron task shows its expression and zone instead of an interval, and its next run in
    its zone (on the row) and in UTC (on hover), wide and narrow."""
    service = await start_service(MANY_APP.replace("range(500)", "range(1)"))
    await page.set_viewport_size({"width": width, "height": 900})
    tasks = OUTCOME_STATUS["tasks"]
    assert isinstance(tasks, list)
    await serve_canned(page, service.url("/"), {**OUTCOME_STATUS, "tasks": [CRON_TASK, *tasks]})
    await expect(cell(page, "nightly-report", 1)).to_have_text("0 3 * * * Europe/Rome")
    await expect(cell(page, "nightly-report", 8)).to_have_text(re.compile(r"^in 18 h · 0?3[:.]00"))
    await expect(cell(page, "nightly-report", 8)).to_have_attribute(
        "title", re.compile(r"Europe/Rome \(2027-01-16 02:00 UTC\)$")
    )
    await expect(cell(page, "hourly", 1)).to_have_text("1 h")  # interval tasks unchanged
    width_seen = await page.evaluate("document.documentElement.scrollWidth")
    assert width_seen <= width, width_seen

    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"status-page-cron-{width}.png"), full_page=True)


CLUSTER = {
    "backend": "postgresql",
    "cluster": "miauflix.app:setup",
    "replica": "web-1:4242:ab12cd34",
    "lease_ttl": 30.0,
    "ready": True,
    "reachable": True,
    "peers": [
        {
            "replica": "web-1:4242:ab12cd34",
            "host": "web-1",
            "pid": 4242,
            "alive": True,
            "last_seen_ago": 2.2,
            "started_ago": 600.0,
            "tasks": ["refreshLists", "syncMovies"],
        },
        {
            "replica": "web-2:977:<img src=x onerror=alert(1)>",
            "host": "web-2",
            "pid": 977,
            "alive": False,
            "last_seen_ago": 95.0,
            "started_ago": 900.0,
            "tasks": ["refreshLists"],
        },
    ],
    "tasks": [
        {
            "name": "refreshLists",
            "interval": 3600.0,
            "holder": "web-1:4242:ab12cd34",
            "token": 41,
            "lease_expires_in": 27.4,
            "next_due_in": -3.0,
            "runs": 12,
            "failures": 0,
            "last_outcome": "success",
            "paused": False,
            "orphaned": False,
        },
        {
            "name": "oldTask",
            "interval": 60.0,
            "holder": None,
            "token": 7,
            "lease_expires_in": None,
            "next_due_in": 3500.0,
            "runs": 3,
            "failures": 2,
            "last_outcome": "failure",
            "paused": False,
            "orphaned": True,
        },
    ],
}


@pytest.mark.parametrize("width", [1400, 420])
async def test_cluster_section_shows_peers_and_holders(
    start_service: StartService, page: Page, width: int
) -> None:
    """A coordinated replica's page names its cluster, its peers and each task's holder."""
    service = await start_service(MANY_APP.replace("range(500)", "range(1)"))
    await page.set_viewport_size({"width": width, "height": 900})
    await serve_canned(page, service.url("/"), {**OUTCOME_STATUS, "cluster": CLUSTER})
    section = page.locator("#cluster")
    await expect(section).to_be_visible()
    await expect(page.locator("#cluster-head")).to_have_text(
        "postgresql · cluster miauflix.app:setup · this replica web-1:4242:ab12cd34 · "
        "lease 30 s · coordinator ready"
    )
    await expect(page.locator("#cluster-peers li")).to_have_text(
        [
            "web-1:4242:ab12cd34 (this replica)aliveseen 2 s ago · 2 task(s)",
            "web-2:977:<img src=x onerror=alert(1)>goneseen 1.6 min ago · 1 task(s)",
        ]
    )
    await expect(page.locator("#cluster-tasks li")).to_have_text(
        [
            "refreshListsheldby web-1:4242:ab12cd34 (token 41), lease for 28 s · 12 run(s), "
            "last success",
            "oldTaskorphanedtoken 7, due in 58 min · 3 run(s), 2 failing in a row, last failure",
        ]
    )
    scrolls = await page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
    assert not scrolls
    ARTIFACTS.mkdir(exist_ok=True)
    await section.screenshot(path=str(ARTIFACTS / f"status-page-cluster-{width}.png"))


async def test_no_cluster_section_without_a_coordinator(
    start_service: StartService, page: Page
) -> None:
    """A scheduler on its own shows no cluster section."""
    service = await start_service(MANY_APP.replace("range(500)", "range(1)"))
    await serve_canned(page, service.url("/"), {**OUTCOME_STATUS, "cluster": None})
    await expect(page.locator("#cluster")).to_be_hidden()


ACTIONS_ON = {"enabled": True, "reason": None}


async def test_action_answers_are_shown_in_words_in_the_row(
    start_service: StartService, page: Page
) -> None:
    """A click POSTs JSON with the token to the task's percent-encoded URL, disables the row's
    buttons until the answer, and shows a refusal or failure in words in that row; a running
    task paused meanwhile offers Resume and says so."""
    service = await start_service(MANY_APP.replace("range(500)", "range(1)"))
    await page.goto(service.url("/#token=s3cret"))
    name = "nightly/report?x=1 " + EVIL
    busy = outcome_task(
        "busy",
        state="running",
        running_for=5.0,
        next_run_at=None,
        paused_at=NOW - 60.0,
        paused_by="bob",
        run_requested=True,
    )
    tasks = [outcome_task(name), outcome_task("other"), busy]
    answers: asyncio.Queue[tuple[int, dict[str, object], dict[str, str]]] = asyncio.Queue()
    posted: list[Request] = []
    release = asyncio.Event()

    async def fulfil_action(route: Route) -> None:
        posted.append(route.request)
        await release.wait()
        status, body, headers = answers.get_nowait()
        await route.fulfill(status=status, json=body, headers=headers)

    await page.route(re.compile(r"/tasks/"), fulfil_action)
    await serve_canned(
        page, service.url("/"), {**OUTCOME_STATUS, "tasks": tasks, "actions": ACTIONS_ON}
    )
    pause = page.get_by_role("button", name=f"Pause {name}", exact=True)
    run = page.get_by_role("button", name=f"Run {name} now", exact=True)
    result = row(page, name).get_by_role("status")
    await expect(pause).to_have_text("Pause")
    await expect(row(page, "busy").locator(".why")).to_have_text(
        "paused by bob, 1 min ago; pauses when this run ends · run requested"
    )
    await expect(page.get_by_role("button", name="Resume busy", exact=True)).to_be_visible()
    await expect(row(page, "busy")).to_have_class("")

    await pause.click()
    await expect(pause).to_be_disabled()
    await expect(run).to_be_disabled()
    await expect(page.get_by_role("button", name="Pause other", exact=True)).to_be_enabled()
    request = posted[0]
    assert request.method == "POST"
    assert request.url == service.url("/tasks/" + urllib.parse.quote(name, safe="!*'()") + "/pause")
    headers = await request.all_headers()
    assert headers["content-type"] == "application/json"
    assert headers["authorization"] == "Bearer s3cret"
    assert request.post_data == "{}"
    answers.put_nowait((503, {"error": "coordinator_unavailable"}, {}))
    release.set()
    await expect(result).to_have_text("coordinator unreachable: nothing changed (503)")
    await expect(result).to_have_class("result r-error")
    await expect(pause).to_be_enabled()

    refusals: list[tuple[int, dict[str, object], dict[str, str], str]] = [
        (401, {"error": "unauthorized"}, {}, "refused: token missing or wrong (401)"),
        (403, {"error": "actions_disabled"}, {}, "refused: actions disabled (403)"),
        (403, {"error": "host_not_allowed"}, {}, "refused: host name not allowed (403)"),
        (404, {"error": "unknown task"}, {}, "unknown task: cancelled meanwhile? (404)"),
        (429, {"error": "rate limited"}, {"Retry-After": "7"}, "rate limited: retry in 7 s (429)"),
        (500, {}, {}, "failed: HTTP 500"),
    ]
    for status, body, extra, words in refusals:
        answers.put_nowait((status, body, extra))
        await run.click()
        await expect(result).to_have_text(words)
    assert [urllib.parse.urlsplit(r.url).path.rsplit("/", 1)[1] for r in posted] == [
        "pause",
        *["trigger"] * len(refusals),
    ]
    assert await page.locator("img").count() == 0


CONTROLS_APP = """
    import asyncio
    import os

    from tickwork import SchedulerError

    async def refresh():
        await asyncio.sleep(0.01)

    async def import_catalogue():
        await asyncio.sleep(0.05)

    async def doomed():
        pass

    def setup(scheduler):
        async def reaper():
            # Cancels "doomed" once the test creates the flag file: a task cancelled meanwhile.
            if os.path.exists(FLAG):
                try:
                    scheduler.cancel_task("doomed")
                except SchedulerError:
                    pass

        scheduler.schedule_task("refresh-lists", 0.3, refresh)
        scheduler.schedule_task("import-catalogue", 3600, import_catalogue)
        scheduler.schedule_task("doomed", 0.5, doomed)
        scheduler.schedule_task("reaper", 0.1, reaper)
"""


def controls_app(flag: Path) -> str:
    """Return :data:`CONTROLS_APP` with its flag file at ``flag``."""
    return f"FLAG = {str(flag)!r}\n" + textwrap.dedent(CONTROLS_APP)


async def status_task(page: Page, url: str, name: str) -> dict[str, object]:
    """Return task ``name`` as the service's ``/status`` has it right now."""
    response = await page.request.get(url)
    assert response.status == 200
    document = await response.json()
    found = [t for t in document["tasks"] if t["name"] == name]
    assert len(found) == 1, (name, document["tasks"])
    entry: dict[str, object] = found[0]
    return entry


async def wait_refreshes(page: Page, count: int) -> None:
    """Wait until the page has fetched ``/status`` ``count`` more times."""
    for _ in range(count):
        async with page.expect_response(re.compile(r"/status$"), timeout=WAIT):
            pass


@pytest.mark.parametrize("width", [1400, 420])
async def test_pause_then_resume_from_the_page(
    start_service: StartService, page: Page, tmp_path: Path, width: int
) -> None:
    """Pause stops a task (its row turns paused, says who paused it and counts as needing
    attention, and /status agrees); Resume, pressed from the keyboard, starts it again."""
    service = await start_service(controls_app(tmp_path / "flag"))
    await page.set_viewport_size({"width": width, "height": 900})
    await page.goto(service.url("/"))
    await wait_runs_above(page, "refresh-lists", 1)
    await expect(page.locator("#svc-attention")).to_have_text("none needs attention")
    pause = page.get_by_role("button", name="Pause refresh-lists", exact=True)
    result = row(page, "refresh-lists").get_by_role("status")

    await pause.click()
    await expect(result).to_have_text("paused")
    await expect(row(page, "refresh-lists")).to_have_class("attention a-paused paused")
    state = cell(page, "refresh-lists", 2)
    await expect(state.locator(".badge")).to_have_text("paused")
    await expect(state.locator(".why")).to_have_text(
        re.compile(r"^paused by 127\.0\.0\.1\b.*, (just\snow|\d+\ss\sago)$")
    )
    resume = page.get_by_role("button", name="Resume refresh-lists", exact=True)
    await expect(resume).to_have_text("Resume")
    await expect(page.locator("#svc-attention")).to_have_text("1 needs attention")
    await expect(page.locator("#svc-problems")).to_contain_text("1 paused")
    entry = await status_task(page, service.url("/status"), "refresh-lists")
    assert entry["state"] == "paused"
    assert str(entry["paused_by"]).startswith("127.0.0.1")
    runs = entry["runs"]
    assert isinstance(runs, int)
    await wait_refreshes(page, 2)  # three intervals or more: a running task would have run
    assert (await status_task(page, service.url("/status"), "refresh-lists"))["runs"] == runs

    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"status-page-paused-{width}.png"), full_page=True)

    await resume.focus()
    await page.keyboard.press("Enter")
    await expect(result).to_have_text("resumed")
    await expect(pause).to_be_focused()  # the same button, relabelled: the keyboard stays put
    await row(page, "refresh-lists").screenshot(
        path=str(ARTIFACTS / f"status-page-resumed-{width}.png")
    )
    await expect(row(page, "refresh-lists")).to_have_class("")
    await wait_runs_above(page, "refresh-lists", runs)
    await expect(page.locator("#svc-attention")).to_have_text("none needs attention")
    assert (await status_task(page, service.url("/status"), "refresh-lists"))["paused_at"] is None


async def test_run_now_runs_an_idle_task_once(
    start_service: StartService, page: Page, tmp_path: Path
) -> None:
    """Run now starts a task that is not due for an hour: one more run, then it waits again."""
    service = await start_service(controls_app(tmp_path / "flag"))
    await page.goto(service.url("/"))
    await expect(cell(page, "import-catalogue", 3)).to_have_text("1", timeout=WAIT)
    await expect(cell(page, "import-catalogue", 8)).to_have_text(re.compile(r"^in (1 h|\d+ min)$"))

    await page.get_by_role("button", name="Run import-catalogue now", exact=True).click()
    await expect(row(page, "import-catalogue").get_by_role("status")).to_have_text("run requested")
    await expect(cell(page, "import-catalogue", 3)).to_have_text("2", timeout=WAIT)
    await expect(cell(page, "import-catalogue", 8)).to_have_text(re.compile(r"^in (1 h|\d+ min)$"))
    entry = await status_task(page, service.url("/status"), "import-catalogue")
    assert entry["runs"] == 2
    assert entry["run_requested"] is False
    assert entry["state"] == "scheduled"


async def test_a_task_cancelled_meanwhile_shows_404_in_its_row(
    start_service: StartService, page: Page, tmp_path: Path
) -> None:
    """A click on a task the service no longer has shows the 404 in words in that row."""
    flag = tmp_path / "flag"
    service = await start_service(controls_app(flag))
    frozen = asyncio.Event()
    last: list[bytes] = []

    async def status(route: Route) -> None:
        # Once frozen, the page keeps seeing the last real /status, the cancelled task in it.
        if frozen.is_set():
            await route.fulfill(body=last[-1], content_type="application/json")
            return
        response = await route.fetch()
        last.append(await response.body())
        await route.fulfill(response=response)

    await page.route(re.compile(r"/status$"), status)
    await page.goto(service.url("/"))
    await wait_runs_above(page, "doomed", 0)
    frozen.set()
    flag.touch()
    async with asyncio.timeout(WAIT / 1000):
        while True:
            response = await page.request.get(service.url("/status"))
            names = [t["name"] for t in (await response.json())["tasks"]]
            if "doomed" not in names:
                break
            await asyncio.sleep(0.1)

    pause = page.get_by_role("button", name="Pause doomed", exact=True)
    await pause.click()
    await expect(row(page, "doomed").get_by_role("status")).to_have_text(
        "unknown task: cancelled meanwhile? (404)"
    )
    await expect(pause).to_be_enabled()
    frozen.clear()
    await expect(row(page, "doomed")).to_have_count(0, timeout=WAIT)


async def test_controls_are_hidden_when_actions_are_disabled(
    start_service: StartService, page: Page, tmp_path: Path
) -> None:
    """Bound to every address without a token, the service refuses actions: the page shows no
    button and says why."""
    service = await start_service(controls_app(tmp_path / "flag"), "--host", "0.0.0.0", wait=False)
    await service.wait_started(serving=re.compile(r"on http://127\.0\.0\.1:(\d+) "))
    await page.goto(service.url("/"))
    await wait_runs_above(page, "refresh-lists", 0)
    await expect(page.locator("#actions-off")).to_have_text(
        "Actions are disabled: no token and bound to 0.0.0.0"
    )
    assert await page.locator("#rows button").count() == 0
    await expect(cell(page, "refresh-lists", 2)).to_have_text(re.compile(r"^(scheduled|running)"))
    ARTIFACTS.mkdir(exist_ok=True)
    await page.locator("section.tasks").screenshot(
        path=str(ARTIFACTS / "status-page-actions-disabled.png")
    )
