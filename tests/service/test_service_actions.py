"""Operator actions over real HTTP: pause, resume, trigger, and every threat they face.

Most tests serve ``create_app`` with uvicorn in this process on 127.0.0.1 (port 0), so the
audit log is seen by ``caplog``; the bound-address rules are also checked against a real
``tickwork run``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from tickwork import Scheduler
from tickwork.coordination import InProcessCoordinator
from tickwork.service import create_app
from tickwork.service._logging import JsonFormatter
from tickwork.service._serve import bind_socket
from tickwork.testing import wait_until

from .conftest import StartService

pytestmark = pytest.mark.slow

JSON = {"Content-Type": "application/json"}


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: the test runner owns SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def served(app: Starlette, host: str = "127.0.0.1") -> AsyncIterator[httpx.AsyncClient]:
    """Serve ``app`` on ``host`` (a free port) in this loop; yield a client for its base URL."""
    sock = bind_socket(host, 0)
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on", ws="none")
    server = _Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await wait_until(lambda: server.started or serving.done(), timeout=5)
        assert server.started
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}", timeout=5) as client:
            yield client
    finally:
        server.should_exit = True
        async with asyncio.timeout(5):
            await serving
        sock.close()


async def _idle() -> None:
    pass


@contextlib.asynccontextmanager
async def service(
    *names: str, bind_address: str | None = "127.0.0.1", **options: Any
) -> AsyncIterator[tuple[Scheduler, httpx.AsyncClient]]:
    """A scheduler with idle tasks ``names`` (hourly, first run at once) served over HTTP."""
    async with Scheduler() as scheduler:
        app = create_app(scheduler, bind_address=bind_address, rate_limit=1000, **options)
        for name in names:
            scheduler.schedule_task(name, 3600, _idle)
        async with served(app) as client:
            yield scheduler, client


def _port(client: httpx.AsyncClient) -> int:
    port = client.base_url.port
    assert port is not None
    return port


async def test_pause_trigger_resume_over_http(caplog: pytest.LogCaptureFixture) -> None:
    """Pause, trigger and resume answer the task's new status, which /status then shows."""
    runs = 0

    async def job() -> None:
        nonlocal runs
        runs += 1

    caplog.set_level(logging.INFO, logger="tickwork.audit")
    async with Scheduler() as scheduler:
        app = create_app(scheduler, bind_address="127.0.0.1")
        scheduler.schedule_task("job", 3600, job)
        async with served(app) as client:
            await wait_until(lambda: runs == 1, timeout=5)
            paused = await client.post("/tasks/job/pause", json={"by": "alice@laptop"})
            assert paused.status_code == 200
            body = paused.json()
            assert (body["task"], body["action"]) == ("job", "pause")
            assert body["status"]["state"] == "paused"
            assert body["status"]["paused_by"] == "alice@laptop (127.0.0.1)"
            assert isinstance(body["status"]["paused_at"], float)
            assert body["status"]["overdue_by"] == 0.0
            document = (await client.get("/status")).json()
            assert document["actions"] == {"enabled": True, "reason": None}
            (task,) = document["tasks"]
            assert task["state"] == "paused"
            assert task["paused_by"] == "alice@laptop (127.0.0.1)"
            assert task["run_requested"] is False

            triggered = await client.post("/tasks/job/trigger", headers=JSON)
            assert triggered.status_code == 200
            assert triggered.json()["action"] == "trigger"
            await wait_until(lambda: runs == 2, timeout=5)
            # A paused task runs once when triggered, and stays paused.
            await wait_until(lambda: scheduler.task_status("job").state == "paused", timeout=5)

            resumed = await client.post("/tasks/job/resume", json={})
            assert resumed.status_code == 200
            assert resumed.json()["status"]["state"] == "scheduled"
            assert resumed.json()["status"]["paused_by"] is None
    results = [(r.getMessage(), r.levelno) for r in caplog.records if r.name == "tickwork.audit"]
    assert results == [
        (
            "action=pause task='job' client=127.0.0.1 actor='alice@laptop (127.0.0.1)' result=ok",
            logging.INFO,
        ),
        ("action=trigger task='job' client=127.0.0.1 actor='127.0.0.1' result=ok", logging.INFO),
        ("action=resume task='job' client=127.0.0.1 actor='127.0.0.1' result=ok", logging.INFO),
    ]


async def test_a_percent_encoded_name_reaches_its_task() -> None:
    """A name with ``/``, spaces and non-ASCII, percent-encoded in the path, is the task's."""
    name = "sync/é ü"
    async with service(name) as (scheduler, client):
        response = await client.post("/tasks/sync%2F%C3%A9%20%C3%BC/pause", headers=JSON)
        assert response.status_code == 200
        assert response.json()["task"] == name
        assert scheduler.task_status(name).state == "paused"


@pytest.mark.parametrize(
    "path", ["/tasks/%3Cscript%3Ealert(1)%3C%2Fscript%3E/pause", "/tasks/%20/trigger"]
)
async def test_unknown_task_is_404_without_its_name(
    path: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An unknown (or blank) name answers 404 without echoing it, and is audited."""
    caplog.set_level(logging.INFO, logger="tickwork.audit")
    async with service("job") as (_, client):
        response = await client.post(path, headers=JSON)
    assert response.status_code == 404
    assert response.json() == {"error": "unknown task"}
    assert "script" not in response.text
    (record,) = [r for r in caplog.records if r.name == "tickwork.audit"]
    assert record.levelno == logging.WARNING
    assert record.getMessage().endswith("result=unknown_task")


SIMPLE_TYPES = [
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "text/plain",
]


@pytest.mark.parametrize("content_type", SIMPLE_TYPES)
async def test_cross_origin_form_post_is_refused(
    content_type: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A form another origin's page posts (a simple content type) changes nothing.

    A browser sends it with the page's ``Origin`` (403 cross_origin); one that hides the
    origin still cannot send JSON without a preflight, so the content type refuses it (415).
    """
    caplog.set_level(logging.INFO, logger="tickwork.audit")
    async with service("job") as (scheduler, client):
        form = {"Content-Type": content_type}
        browser = {**form, "Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
        refused = await client.post("/tasks/job/pause", content=b"by=x", headers=browser)
        assert refused.status_code == 403
        assert refused.json()["error"] == "cross_origin"
        hidden = await client.post("/tasks/job/pause", content=b"by=x", headers=form)
        assert hidden.status_code == 415
        assert hidden.json()["error"] == "json_required"
        assert "application/json" in hidden.json()["message"]
        assert scheduler.task_status("job").state != "paused"
    audited = [r for r in caplog.records if r.name == "tickwork.audit"]
    assert [(r.levelno, getattr(r, "result", None)) for r in audited] == [
        (logging.WARNING, "cross_origin"),
        (logging.WARNING, "json_required"),
    ]


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.example",
        "null",
        "https://127.0.0.1:{port}",
        "http://127.0.0.1:1",
        "http://localhost:{port}",
    ],
)
async def test_fetch_with_a_foreign_origin_is_refused(origin: str) -> None:
    """A JSON fetch whose ``Origin`` is not the service's own (scheme, host, port) gets 403."""
    async with service("job") as (scheduler, client):
        headers = {**JSON, "Origin": origin.format(port=_port(client))}
        response = await client.post("/tasks/job/pause", headers=headers)
        assert response.status_code == 403
        assert response.json()["error"] == "cross_origin"
        assert scheduler.task_status("job").state != "paused"


async def test_own_origin_is_accepted() -> None:
    """The status page's own fetch (same origin, ``Sec-Fetch-Site: same-origin``) may act."""
    async with service("job") as (scheduler, client):
        origin = f"http://127.0.0.1:{_port(client)}"
        headers = {**JSON, "Origin": origin, "Sec-Fetch-Site": "same-origin"}
        response = await client.post("/tasks/job/pause", headers=headers)
        assert response.status_code == 200
        assert scheduler.task_status("job").state == "paused"


@pytest.mark.parametrize(
    ("site", "expected"),
    [("cross-site", 403), ("same-site", 403), ("same-origin", 200), ("none", 200)],
)
async def test_sec_fetch_site_other_than_same_origin_is_refused(site: str, expected: int) -> None:
    """``Sec-Fetch-Site: cross-site`` or ``same-site`` (another port of localhost) is refused."""
    async with service("job") as (_, client):
        response = await client.post("/tasks/job/pause", headers={**JSON, "Sec-Fetch-Site": site})
        assert response.status_code == expected
        if expected == 403:
            assert response.json()["error"] == "cross_origin"


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("evil.example", 403),
        ("evil.example:{port}", 403),
        ("127.0.0.1.evil.example:{port}", 403),
        ("localhost.evil.example", 403),
        ("0.0.0.0:{port}", 403),
        ("127.0.0.1:{port}", 200),
        ("localhost:{port}", 200),
        ("LOCALHOST.:{port}", 200),
        ("app.localhost:{port}", 200),
        ("127.3.2.1:{port}", 200),
        ("[::1]:{port}", 200),
        ("scheduler.internal:{port}", 200),
        ("Scheduler.Internal", 200),
    ],
)
async def test_rebinding_host_is_refused(host: str, expected: int) -> None:
    """``Host`` must be a loopback name, the bound address or an allowed host (DNS rebinding)."""
    async with service("job", allowed_hosts=["scheduler.internal"]) as (scheduler, client):
        header = host.format(port=_port(client))
        response = await client.post("/tasks/job/pause", headers={**JSON, "Host": header})
        assert response.status_code == expected, response.text
        if expected == 403:
            assert response.json()["error"] == "host_not_allowed"
            assert scheduler.task_status("job").state != "paused"
            # Read-only endpoints answer whatever the Host, as before.
            status = await client.get("/status", headers={"Host": header})
            assert status.status_code == 200


async def test_without_token_actions_need_a_loopback_bind_address() -> None:
    """No token: bound elsewhere, or not told where, actions get 403 and /status says why."""
    for bind_address, reason in [
        ("0.0.0.0", "no token and bound to 0.0.0.0"),
        ("10.1.2.3", "no token and bound to 10.1.2.3"),
        (None, "no token, and the app was not told it listens on loopback only"),
    ]:
        async with service("job", bind_address=bind_address) as (scheduler, client):
            response = await client.post("/tasks/job/pause", headers=JSON)
            assert response.status_code == 403
            assert response.json() == {
                "error": "actions_disabled",
                "message": f"actions are disabled: {reason}",
            }
            status = await client.get("/status")
            assert status.status_code == 200
            assert status.json()["actions"] == {"enabled": False, "reason": reason}
            assert scheduler.task_status("job").state != "paused"


async def test_with_a_token_actions_need_it() -> None:
    """With a token, a missing or wrong token is 401, the right one acts (bound anywhere)."""
    async with service("job", bind_address="0.0.0.0", token="s3cret") as (scheduler, client):
        missing = await client.post("/tasks/job/pause", headers=JSON)
        wrong = await client.post(
            "/tasks/job/pause", headers={**JSON, "Authorization": "Bearer nope"}
        )
        for response in (missing, wrong):
            assert response.status_code == 401
            assert response.json()["error"] == "unauthorized"
            assert response.headers["www-authenticate"] == 'Bearer realm="tickwork"'
        assert scheduler.task_status("job").state != "paused"
        right = await client.post(
            "/tasks/job/pause", headers={**JSON, "Authorization": "Bearer s3cret"}
        )
        assert right.status_code == 200
        status = await client.get("/status", headers={"Authorization": "Bearer s3cret"})
        assert status.json()["actions"] == {"enabled": True, "reason": None}


async def test_rate_limit_is_429_and_audited_once(caplog: pytest.LogCaptureFixture) -> None:
    """Past the limit actions get 429 with Retry-After; one audit line per refused episode."""
    caplog.set_level(logging.INFO, logger="tickwork.audit")
    async with Scheduler() as scheduler:
        app = create_app(scheduler, bind_address="127.0.0.1", rate_limit=0.5, burst=2)
        scheduler.schedule_task("job", 3600, _idle)
        async with served(app) as client:
            codes = [
                (await client.post(f"/tasks/job/{action}", headers=JSON)).status_code
                for action in ("pause", "resume", "trigger", "pause", "pause")
            ]
            last = await client.post("/tasks/job/pause", headers=JSON)
    assert codes == [200, 200, 429, 429, 429]
    assert last.status_code == 429
    assert last.json()["error"] == "too_many_requests"
    assert int(last.headers["retry-after"]) >= 1
    results = [getattr(r, "result", None) for r in caplog.records if r.name == "tickwork.audit"]
    assert results == ["ok", "ok", "too_many_requests"]


BAD_BODIES = {
    "too-large": (b'{"by": "' + b"x" * 1100 + b'"}', 413, "body_too_large"),
    "not-json": (b"by=alice", 400, "bad_request"),
    "not-an-object": (b'["pause"]', 400, "bad_request"),
    "unknown-field": (b'{"by": "a", "force": true}', 400, "bad_request"),
    "by-not-text": (b'{"by": 42}', 400, "bad_request"),
    "by-too-long": (b'{"by": "' + b"a" * 101 + b'"}', 400, "bad_request"),
    "by-with-newline": (b'{"by": "alice\\nresult=ok"}', 400, "bad_request"),
    "by-blank": (b'{"by": "  "}', 400, "bad_request"),
}


@pytest.mark.parametrize(("body", "status", "error"), BAD_BODIES.values(), ids=BAD_BODIES.keys())
async def test_bad_body_is_refused(body: bytes, status: int, error: str) -> None:
    """A body other than an empty one or ``{"by": <= 100 printable chars}`` changes nothing."""
    async with service("job") as (scheduler, client):
        response = await client.post("/tasks/job/pause", content=body, headers=JSON)
        assert response.status_code == status
        assert response.json()["error"] == error
        assert scheduler.task_status("job").state != "paused"


async def test_actions_are_post_only() -> None:
    """GET on an action path is 405 and changes nothing (a link or an image cannot act)."""
    async with service("job") as (scheduler, client):
        response = await client.get("/tasks/job/pause")
        assert response.status_code == 405
        assert scheduler.task_status("job").state != "paused"


async def test_audit_line_carries_task_action_client_actor_result(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each attempt is one line on tickwork.audit with its fields, a refusal at WARNING."""
    caplog.set_level(logging.INFO, logger="tickwork.audit")
    async with service("nightly\nreport") as (_, client):
        await client.post("/tasks/nightly%0Areport/trigger", json={"by": "bob"})
        await client.post("/tasks/nightly%0Areport/pause", headers={**JSON, "Host": "evil.example"})
    ok, refused = [r for r in caplog.records if r.name == "tickwork.audit"]
    for record, level, result, actor in [
        (ok, logging.INFO, "ok", "bob (127.0.0.1)"),
        (refused, logging.WARNING, "host_not_allowed", "127.0.0.1"),
    ]:
        assert record.levelno == level
        assert record.__dict__["task"] == "nightly\nreport"
        assert record.__dict__["client"] == "127.0.0.1"
        assert record.__dict__["actor"] == actor
        assert record.__dict__["result"] == result
        assert record.created > 0
        # A name holding a newline still makes one line.
        assert "\n" not in record.getMessage()
    assert ok.__dict__["action"] == "trigger"
    assert refused.__dict__["action"] == "pause"


async def test_json_log_lines_carry_the_audit_fields(caplog: pytest.LogCaptureFixture) -> None:
    """With ``--log-format json`` an audit line has action, task, client, actor, result fields."""
    caplog.set_level(logging.INFO, logger="tickwork.audit")
    async with service("job") as (_, client):
        await client.post("/tasks/job/pause", json={"by": "carol"})
    (record,) = [r for r in caplog.records if r.name == "tickwork.audit"]
    line = json.loads(JsonFormatter().format(record))
    assert {k: v for k, v in line.items() if k != "timestamp"} == {
        "level": "INFO",
        "logger": "tickwork.audit",
        "message": "action=pause task='job' client=127.0.0.1 actor='carol (127.0.0.1)' result=ok",
        "task": "job",
        "action": "pause",
        "client": "127.0.0.1",
        "actor": "carol (127.0.0.1)",
        "result": "ok",
    }


async def test_unreachable_coordinator_is_503() -> None:
    """When the coordinator cannot store the pause, 503 coordinator_unavailable, nothing set."""
    coordinator = InProcessCoordinator(ttl=3.0)
    async with Scheduler(coordinator=coordinator) as scheduler:
        app = create_app(scheduler, bind_address="127.0.0.1")
        scheduler.schedule_task("job", 3600, _idle)
        async with served(app) as client:
            stored = await client.post("/tasks/job/pause", headers=JSON)
            assert stored.status_code == 200
            assert stored.json()["status"]["state"] == "paused"
            coordinator.store.partitioned.add(coordinator.replica)
            response = await client.post("/tasks/job/resume", headers=JSON)
            assert response.status_code == 503
            assert response.json()["error"] == "coordinator_unavailable"
            assert scheduler.task_status("job").state == "paused"


def test_create_app_checks_its_host_arguments() -> None:
    """A bad allowed host or bind address is refused at once, naming the value."""
    scheduler = Scheduler()
    for kwargs, message in [
        ({"allowed_hosts": ["evil.example:8080"]}, "'evil.example:8080' is not a host name"),
        ({"allowed_hosts": ["http://x"]}, "'http://x' is not a host name"),
        ({"bind_address": "localhost"}, "bind_address must be an IP address or None, got"),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            create_app(scheduler, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="allowed_hosts must be an iterable of str"):
        create_app(scheduler, allowed_hosts="scheduler.internal")


CHROMIUM = os.environ.get("TICKWORK_CHROMIUM", "/usr/bin/chromium")

# Another origin's page (served from 127.0.0.2) trying every way a page may post to the service.
# The form uses the text/plain trick that makes its body look like JSON.
EVIL_PAGE = """<!doctype html>
<iframe name="sink"></iframe>
<form id="form" method="POST" action="TARGET" enctype="text/plain" target="sink">
  <input name='{"by": "evil", "x": "' value='"}'>
</form>
<script>
window.results = {};
(async () => {
  document.getElementById("form").submit();
  const json = {"Content-Type": "application/json"};
  try {
    await fetch("TARGET", {method: "POST", mode: "no-cors", headers: json, body: "{}"});
    window.results.noCors = "sent";
  } catch (error) {
    window.results.noCors = "failed";
  }
  try {
    const response = await fetch("TARGET", {method: "POST", headers: json, body: "{}"});
    window.results.cors = response.status;
  } catch (error) {
    window.results.cors = "failed";
  }
  window.done = true;
})();
</script>
"""


def _require_chromium() -> None:
    """Skip when Chromium is absent, or fail under ``CI=true``, where it must be installed."""
    if not Path(CHROMIUM).is_file():
        reason = f"Chromium not found at {CHROMIUM} (install it or set TICKWORK_CHROMIUM)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.mark.browser
async def test_a_cross_origin_page_in_chromium_cannot_act(caplog: pytest.LogCaptureFixture) -> None:
    """In real Chromium, a page of another origin can neither post a form nor fetch an action.

    The form and the ``no-cors`` fetch reach the service with the page's ``Origin`` and are
    refused; the JSON fetch needs a preflight, which the service does not answer, so the
    browser never sends it.
    """
    _require_chromium()
    from playwright.async_api import async_playwright

    def audited() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name == "tickwork.audit"]

    caplog.set_level(logging.INFO, logger="tickwork.audit")
    async with service("job") as (scheduler, client):
        target = str(client.base_url.join("/tasks/job/pause"))

        async def evil(request: Request) -> Response:
            return HTMLResponse(EVIL_PAGE.replace("TARGET", target))

        async with (
            served(Starlette(routes=[Route("/", evil)]), "127.0.0.2") as attacker,
            async_playwright() as playwright,
        ):
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
            )
            try:
                page = await browser.new_page()
                await page.goto(str(attacker.base_url))
                await page.wait_for_function("window.done === true", timeout=10_000)
                results = await page.evaluate("window.results")
                await wait_until(lambda: len(audited()) >= 2, timeout=5)
            finally:
                await browser.close()
        assert results == {"noCors": "sent", "cors": "failed"}
        assert scheduler.task_status("job").state != "paused"
    assert [(r.levelno, r.__dict__["result"]) for r in audited()] == [
        (logging.WARNING, "cross_origin"),
        (logging.WARNING, "cross_origin"),
    ]


IDLE_APP = """
    async def nothing():
        pass

    def setup(scheduler):
        scheduler.schedule_task("nothing", 3600, nothing)
"""


async def test_tickwork_run_on_every_address_without_token_refuses_actions(
    start_service: StartService,
) -> None:
    """``tickwork run --host 0.0.0.0`` without a token: actions 403, /status as before."""
    service = await start_service(IDLE_APP, "--host", "0.0.0.0", wait=False)
    await service.wait_started(serving=re.compile(r"on http://127\.0\.0\.1:(\d+) "))
    await service.wait_for_line(
        r"INFO .*Operator actions \(pause, resume, trigger\) are disabled: "
        r"no token and bound to 0\.0\.0\.0"
    )
    async with httpx.AsyncClient(timeout=5) as client:
        action = await client.post(service.url("/tasks/nothing/pause"), headers=JSON)
        status = await client.get(service.url("/status"))
    assert action.status_code == 403
    assert action.json()["error"] == "actions_disabled"
    assert status.status_code == 200
    assert status.json()["actions"] == {
        "enabled": False,
        "reason": "no token and bound to 0.0.0.0",
    }
    assert status.json()["tasks"][0]["state"] != "paused"


async def test_tickwork_run_allowed_hosts_from_flag_or_variable(
    start_service: StartService,
) -> None:
    """``--allowed-host`` (repeatable) or ``TICKWORK_ALLOWED_HOSTS`` adds Host names; the
    flag wins over the variable; the startup log lists them."""
    variable = {"TICKWORK_ALLOWED_HOSTS": "ops.example, other.example,"}
    for args, accepted, refused in [
        ((), ["ops.example", "other.example"], ["sched.example"]),
        (
            ("--allowed-host", "sched.example", "--allowed-host", "b.example"),
            ["sched.example", "b.example"],
            ["ops.example"],
        ),
    ]:
        service = await start_service(IDLE_APP, *args, env=variable)
        line = await service.wait_for_line(
            r"Operator actions .* need no token \(bound to loopback\)"
        )
        for host in accepted:
            assert host in line.string
        async with httpx.AsyncClient(timeout=5) as client:
            for host, expected in [(h, 200) for h in accepted] + [(h, 403) for h in refused]:
                response = await client.post(
                    service.url("/tasks/nothing/trigger"), headers={**JSON, "Host": host}
                )
                assert response.status_code == expected, (host, response.text)
        code, _ = await service.stop()
        assert code == 0, service.output
