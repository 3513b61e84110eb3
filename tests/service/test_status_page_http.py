"""The status page's HTTP side in process: files, security and cache headers, token, mounting."""

from __future__ import annotations

import re
from importlib import resources

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from tickwork import Scheduler
from tickwork.service import create_app
from tickwork.service._page import PAGE_ROUTES

from . import test_status_page
from .conftest import serving

pytestmark = pytest.mark.slow

STATIC = resources.files("tickwork.service").joinpath("static")


@pytest.mark.parametrize(("path", "file_and_type"), PAGE_ROUTES.items())
async def test_page_files_served_without_token_with_security_headers(
    path: str, file_and_type: tuple[str, str]
) -> None:
    """Each page file is served as shipped, without the token, under a strict CSP and nosniff."""
    name, media_type = file_and_type
    async with Scheduler() as scheduler:
        scheduler.schedule_task("secret-task-name", 60, lambda: None)
        async with serving(create_app(scheduler, token="t")) as client:
            response = await client.get(path)
            assert (await client.get("/status")).status_code == 401
    assert response.status_code == 200
    assert response.content == STATIC.joinpath(name).read_bytes()
    assert response.headers["content-type"] == media_type
    assert b"secret-task-name" not in response.content
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self';" in csp
    assert "unsafe" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-cache"
    assert re.fullmatch(r'"[0-9a-f]{20}"', response.headers["etag"])


async def test_page_revalidates_with_etag() -> None:
    """A request carrying the current ETag gets 304 with no body."""
    async with Scheduler() as scheduler, serving(create_app(scheduler)) as client:
        first = await client.get("/")
        again = await client.get("/", headers={"If-None-Match": first.headers["etag"]})
        stale = await client.get("/", headers={"If-None-Match": '"0000"'})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == first.headers["etag"]
    assert stale.status_code == 200


async def test_page_is_rate_limited_like_other_routes() -> None:
    """The page route shares the per-client rate limit: over it, 429 with Retry-After."""
    async with Scheduler() as scheduler, serving(create_app(scheduler, rate_limit=1)) as client:
        assert (await client.get("/")).status_code == 200
        limited = await client.get("/static/status.js")
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "1"


async def test_page_works_mounted_under_a_prefix() -> None:
    """Mounted under /scheduler, the page and its files resolve relative to the prefix."""
    async with Scheduler() as scheduler:
        parent = Starlette(routes=[Mount("/scheduler", app=create_app(scheduler))])
        async with serving(parent) as client:
            page = await client.get("/scheduler/")
            script = await client.get("/scheduler/static/status.js")
    assert page.status_code == 200
    assert 'src="static/status.js"' in page.text
    assert script.status_code == 200


def test_html_has_no_inline_script_or_style() -> None:
    """The HTML loads its script and style from files, as the CSP requires."""
    html = STATIC.joinpath("index.html").read_text()
    assert re.findall(r"<script\b[^>]*>", html) == ['<script src="static/status.js" defer>']
    assert "<style" not in html
    assert " style=" not in html
    assert not re.search(r"\son[a-z]+=", html)


def test_script_never_inserts_html() -> None:
    """The script builds the page with DOM calls and textContent, never by parsing HTML."""
    script = STATIC.joinpath("status.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script
    assert "new Function" not in script


def test_page_stays_small() -> None:
    """HTML, CSS and JavaScript together stay under 50 KB (no framework, no build step)."""
    # 24 KB until the outcome states, the narrow layout and readable component details; 40 KB
    # until the operator controls (pause, resume, run now, their answers in words).
    total = sum(len(STATIC.joinpath(name).read_bytes()) for name, _ in PAGE_ROUTES.values())
    assert total < 50_000


@pytest.mark.parametrize(
    ("ci", "outcome"), [("true", pytest.fail.Exception), (None, pytest.skip.Exception)]
)
def test_missing_chromium_skips_locally_and_fails_in_ci(
    monkeypatch: pytest.MonkeyPatch, ci: str | None, outcome: type[BaseException]
) -> None:
    """Without Chromium the browser tests skip with a reason, except under CI=true: they fail."""
    monkeypatch.setattr(test_status_page, "CHROMIUM", "/nonexistent/chromium")
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="Chromium not found at /nonexistent/chromium"):
        test_status_page.require_chromium()
