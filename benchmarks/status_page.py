"""The status page with 500 tasks: how long the on-screen charts take after scrolling.

Run ``python -m benchmarks.status_page`` (about 30 seconds; needs Chromium, at
``/usr/bin/chromium`` or ``$TICKWORK_CHROMIUM``). In this process: a ``tickwork.Scheduler`` with
500 one-second tasks and its app (:func:`tickwork.service.create_app`) under uvicorn on
127.0.0.1; headless Chromium (1440 x 900) opens the page, waits for the first chart, scrolls to
the last row and times until every row on screen has its chart (polled every 50 ms).

Options: ``--runs N`` (default 5); ``--page-from COMMIT`` also measures the page's
``index.html`` and ``status.js`` as they were at ``COMMIT`` (read with ``git show``), served in
place of the current ones, for a before/after comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import statistics
import subprocess
import time

import uvicorn
from playwright.async_api import Browser, Route, async_playwright

from tickwork import Scheduler
from tickwork.service import create_app

__all__ = ["main"]

_STATIC = "packages/tickwork/src/tickwork/service/static/"
_CHROMIUM = os.environ.get("TICKWORK_CHROMIUM", "/usr/bin/chromium")
_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
_VISIBLE_CHARTS = """() => {
    const rows = [...document.querySelectorAll('#rows tr')].filter((tr) => {
        const box = tr.getBoundingClientRect();
        return box.bottom > 0 && box.top < innerHeight;
    });
    const filled = rows.filter((tr) => tr.querySelector('path.ok').getAttribute('d'));
    return [rows.length, filled.length];
}"""


async def _fill_time(browser: Browser, url: str, files: dict[str, bytes] | None) -> float:
    page = await browser.new_page(viewport={"width": 1440, "height": 900})
    if files is not None:
        old = files

        async def script(route: Route) -> None:
            await route.fulfill(body=old["status.js"], content_type="text/javascript")

        async def html(route: Route) -> None:
            await route.fulfill(body=old["index.html"], content_type="text/html")

        await page.route(re.compile(r"/static/status\.js$"), script)
        await page.route(url, html)
    await page.goto(url)
    await page.wait_for_function("() => document.querySelectorAll('#rows tr').length === 500")
    await page.wait_for_function(
        "() => document.querySelector('#rows tr path.ok').getAttribute('d')", timeout=30_000
    )
    await page.locator("#rows tr").nth(499).scroll_into_view_if_needed()
    began = time.monotonic()
    while True:
        shown, filled = await page.evaluate(_VISIBLE_CHARTS)
        if shown and filled == shown:
            break
        await page.wait_for_timeout(50)
    elapsed = time.monotonic() - began
    await page.close()
    return elapsed


async def _measure(runs: int, page_from: str | None, old: dict[str, bytes] | None) -> None:
    async def nothing() -> None:
        pass

    async with Scheduler() as scheduler:
        app = create_app(scheduler)
        for i in range(500):
            scheduler.schedule_task(f"task-{i:03d}", 1.0, nothing)
        # Bound and listening before the server starts: the browser's first request waits in
        # the backlog instead of racing the startup.
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
        server = uvicorn.Server(uvicorn.Config(app, log_level="error"))
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=_CHROMIUM, args=_ARGS)
            pages = [("current page", None)] + ([(f"page of {page_from}", old)] if old else [])
            for label, files in pages:
                times = [await _fill_time(browser, url, files) for _ in range(runs)]
                shown = ", ".join(f"{t:.2f}" for t in times)
                print(f"{label}: median {statistics.median(times):.2f} s ({shown})")
            await browser.close()
        server.should_exit = True
        await serving


def main() -> None:
    """Parse the options and print the fill times."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--page-from", metavar="COMMIT")
    options = parser.parse_args()
    old = None
    if options.page_from is not None:
        old = {
            name: subprocess.run(
                ["git", "show", f"{options.page_from}:{_STATIC}{name}"],
                capture_output=True,
                check=True,
            ).stdout
            for name in ("index.html", "status.js")
        }
    asyncio.run(_measure(options.runs, options.page_from, old))


if __name__ == "__main__":
    main()
