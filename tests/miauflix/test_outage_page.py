"""The status page of `tickwork run miauflix.app:setup` while a provider is down, in Chromium.

The simulator runs in the test process, so a provider can be broken and mended while the
service (a real process) uses it; the page is read in headless Chromium, wide and narrow.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Locator, Page, async_playwright, expect

from miauflix.simulator import Simulator

from .._service_process import ServiceProcess, environment, spawner
from ..service.test_status_page import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, require_chromium

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SERVING = re.compile(r"Serving miauflix\.app:setup on http://127\.0\.0\.1:(\d+)")
WAIT = 30_000  # milliseconds: the lists must be fetched before a source search can fail
# The row's state cell: the state with the snooze's length, then the reason.
# The state cell: the state, its reason, then the row's controls (actions are on: loopback).
SNOOZED = re.compile(r"^snoozed [\d.]+ (ms|s)yts unavailable \(HTTP 50[023]\)(PauseRun now)?$")
# Variables of the developer's shell that would change what the service does.
_OWN_VARIABLES = ("TICKWORK_", "MIAUFLIX_", "DATABASE_URL", "TMDB_", "YTS_", "TORRENT_CACHE_URL")


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium, launched from the system's executable."""
    require_chromium()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    """The providers' simulator, in this process."""
    async with Simulator(seed=7, movies=80, shows=4) as simulator:
        yield simulator


@pytest.fixture
async def service(sim: Simulator, tmp_path: Path) -> AsyncIterator[ServiceProcess]:
    """`tickwork run miauflix.app:setup` configured for `sim` (not demo mode), on a free port."""
    async with spawner(tmp_path) as spawn:
        env = {"MIAUFLIX_DATA_DIR": str(tmp_path / "data"), **sim.environment()}
        process = await spawn(
            "miauflix.app:setup",
            "--port",
            "0",
            env=environment(_OWN_VARIABLES, env),
        )
        await process.wait_started(timeout=20.0, serving=SERVING)
        yield process


def row_of(page: Page, name: str) -> Locator:
    """Task `name`'s row (a card on narrow screens)."""
    return page.locator("#rows tr").filter(has=page.get_by_role("cell", name=name, exact=True))


def state_cell(page: Page, name: str) -> Locator:
    """The state cell (third column) of task `name`'s row."""
    return row_of(page, name).locator("td").nth(2)


@pytest.mark.timeout(150)
async def test_a_provider_down_shows_its_tasks_snoozed_with_the_reason(
    sim: Simulator, service: ServiceProcess, browser: Browser
) -> None:
    """With YTS failing, movieSourceSearch's row says "snoozed N s: yts unavailable (HTTP 5xx)",
    wide and narrow, the Tasks card counts it, and it runs normally once YTS answers again."""
    sim.faults.only = ("/yts",)
    sim.faults.error_rate = 1.0
    ARTIFACTS.mkdir(exist_ok=True)

    wide = await browser.new_page(viewport={"width": 1400, "height": 900})
    await wide.goto(service.url("/"))
    await expect(wide.locator("#rows tr")).to_have_count(7, timeout=WAIT)
    search = state_cell(wide, "movieSourceSearch")
    await expect(search).to_have_text(SNOOZED, timeout=WAIT)
    row = row_of(wide, "movieSourceSearch")
    await expect(row).to_have_class("attention a-snoozed")
    await expect(row.locator("td").nth(6)).to_have_text(re.compile(r"snoozed$"))
    await expect(wide.locator("#svc-problems")).to_contain_text(re.compile("[1-9]\u00a0snoozed"))
    await expect(wide.locator("#svc-attention")).to_have_text(re.compile("needs? attention$"))
    yts = wide.locator("#component-list > li").filter(has_text="yts")
    await expect(yts.locator(".head .badge")).not_to_have_text("ready")
    # The tasks YTS does not hold up are not snoozed: TMDB answers.
    await expect(state_cell(wide, "refreshLists")).not_to_have_text(re.compile("snoozed"))
    await wide.screenshot(path=str(ARTIFACTS / "status-page-outage-wide.png"), full_page=True)

    narrow = await browser.new_page(viewport={"width": 420, "height": 900})
    await narrow.goto(service.url("/"))
    card = state_cell(narrow, "movieSourceSearch")
    await expect(card).to_have_text(SNOOZED, timeout=WAIT)
    width = await narrow.evaluate("document.documentElement.scrollWidth")
    assert width <= 420, width
    box = await card.bounding_box()
    assert box is not None
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= 420, box
    await narrow.screenshot(path=str(ARTIFACTS / "status-page-outage-narrow.png"), full_page=True)
    await narrow.close()

    # YTS answers again: the run after the snooze searches, succeeds, and the row is no longer
    # snoozed (the pause grows 1, 2, 4... s, so this waits for one snooze at most).
    sim.faults.reset()
    await expect(search).not_to_have_text(re.compile("^snoozed"), timeout=WAIT)
    await expect(row.locator("td").nth(6)).to_have_text(re.compile(r"ok$"), timeout=WAIT)
    await wide.close()
    code, _ = await service.stop()
    assert code == 0, service.output
