"""The service's HTTP API as a Starlette app: status, health, metrics, history, operator actions.

Read-only endpoints (``GET``):

- ``/`` (and ``/static/...``): the live status page, a data-free shell that reads ``/status`` and
  ``/history`` with the token the operator gives it (see :mod:`tickwork.service._page`). It is
  served without the token (a browser navigation cannot send a bearer header), under a strict
  Content-Security-Policy.
- ``/health`` (never needs the token): 200 ``{"status": "ok"}`` while the service is running
  and the event loop responsive; 503 ``{"status": "unavailable", "reason": ...}`` while
  starting or shutting down, or while the loop lag is above ``lag_threshold`` (1 s). A
  liveness check: it stays 200 while a coordinator is unreachable.
- ``/ready`` (never needs the token): as ``/health``, and 503 while the scheduler's coordinator
  (if any) cannot be reached, since this replica then runs no singleton task.
- ``/status``: ``{"state", "started_at", "uptime", "now", "event_loop_lag", "stall_events",
  "last_stall", "tasks": [...], "services": {...}, "cluster": {...} | null}``. Each task is its
  :meth:`tickwork.TaskStatus.to_dict` (``last_error`` cut to 500 characters; ``state``
  ``"snoozed"`` and ``last_outcome``/``last_outcome_reason`` tell a snoozed task apart) plus
  ``overdue_by`` (seconds a waiting task is past due, 0.0 otherwise) and ``stuck`` (running
  longer than its timeout or, without one, than ``stuck_after``, 600 s). ``services`` holds the
  components registered with :func:`tickwork.service.register_component`. ``cluster`` (null
  without a coordinator): ``backend``, ``cluster``, ``replica`` (this one's id), ``lease_ttl``,
  ``ready``, ``reachable``, and when reachable ``peers`` (``replica, host, pid, alive,
  last_seen_ago, started_ago, tasks``) and ``tasks`` (``name, interval, holder, token,
  lease_expires_in, next_due_in, runs, failures, last_outcome, paused, paused_for, paused_by,
  run_requested, orphaned``); durations in seconds on the coordinator's clock. ``actions``:
  ``{"enabled": bool, "reason": str | null}``, whether the action endpoints below accept
  requests (``reason`` says why not, e.g. ``"no token and bound to 0.0.0.0"``). Each task also
  carries ``paused_at``, ``paused_by`` and ``run_requested``.
- ``/metrics``: Prometheus text (see :mod:`tickwork.service.metrics`).
- ``/history`` (``?task=NAME`` for one task, repeated for several, at most 100):
  ``{"NAME": [{"started_at", "duration", "outcome", "lateness", "reason"}, ...]}``, the last
  executions of each task, oldest first; ``outcome`` is a :data:`tickwork.Outcome` and
  ``reason`` its words (a failed run's error text, a snooze's reason; at most 500 characters)
  or null. One unknown name gets 404 ``{"error": "unknown task"}`` (the name is
  not echoed back); with several names, unknown ones are left out of the answer; more than 100
  names get 400.

Operator actions (``POST``; see :mod:`tickwork.service._actions` for every check):

- ``/tasks/{name}/pause``, ``/tasks/{name}/resume``, ``/tasks/{name}/trigger`` (``name``
  percent-encoded): :meth:`tickwork.Scheduler.pause_task`, ``resume_task``, ``trigger``. The
  request must be ``Content-Type: application/json`` (else 415 ``json_required``), its body
  empty or a JSON object of at most 1 KB, optionally ``{"by": "alice@laptop"}`` (at most 100
  printable characters; the actor recorded is then ``"alice@laptop (CLIENT)"``, else the client
  address). ``Origin``, when sent, must be the service's own origin and ``Sec-Fetch-Site``,
  when sent, ``same-origin`` or ``none`` (else 403 ``cross_origin``); the ``Host`` header must
  name a loopback host (``localhost``, ``*.localhost``, ``127.0.0.0/8``, ``[::1]``), the bound
  address or one of ``allowed_hosts`` (else 403 ``host_not_allowed``). With a ``token`` every
  action needs it (401); without one, actions are accepted only when ``bind_address`` is a
  loopback address (else 403 ``actions_disabled``). Same rate limit as ``/status`` (one bucket
  per client for the three). 200 ``{"task", "action", "status": {the task as in /status}}``;
  404 ``{"error": "unknown task"}`` (the name is not echoed); 503 ``{"error":
  "coordinator_unavailable" | "shut_down", "message"}``. Every refusal is ``{"error": CODE,
  "message": WORDS}``. Each attempt is one line on logger ``tickwork.audit``.

Routes an application registers with :func:`tickwork.service.register_routes` (from its setup)
are served beside these, protected like ``/status`` (token, rate limit, headers).

Every answer carries ``X-Content-Type-Options: nosniff``, and every JSON answer (errors
included: 401, 404, 405, 429) ``Cache-Control: no-store``. Unknown paths and methods answer
JSON 404/405; a trailing slash is not redirected (Starlette would build an absolute ``Location``
from the request's ``Host`` header).

With a ``token``, every endpoint but ``/health``, ``/ready`` and the page needs
``Authorization: Bearer TOKEN``; a missing or wrong token gets 401 and nothing else. Every
endpoint is rate-limited per client address and route (``rate_limit`` requests per second,
bursts of ``burst``); over the limit: 429 with ``Retry-After``.

Mounting in your own application: the app is a plain ASGI app. Starlette does not run a mounted
app's lifespan, so enter it from yours (otherwise the loop monitor starts on the first request
and stops with the loop)::

    tickwork_app = create_app(scheduler, token=TOKEN)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        async with tickwork_app.router.lifespan_context(tickwork_app):
            yield

    app = Starlette(routes=[Mount("/scheduler", app=tickwork_app)], lifespan=lifespan)
    # FastAPI: app = FastAPI(lifespan=lifespan); app.mount("/scheduler", tickwork_app)
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, cast

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tickwork._spec import check_finite
from tickwork.service._actions import ActionEndpoints, ActionPolicy
from tickwork.service._page import PAGE_ROUTES, StatusPage
from tickwork.service._ratelimit import RateLimiter
from tickwork.service._routes import attach_app
from tickwork.service._runtime import ServiceRuntime
from tickwork.service._taskview import DEFAULT_STUCK_AFTER
from tickwork.service.metrics import CONTENT_TYPE

if TYPE_CHECKING:
    from tickwork import Scheduler

__all__ = ["create_app"]

_Endpoint = Callable[[Request], Awaitable[Response]]
_NO_STORE = {"Cache-Control": "no-store"}
# Task names one /history request may ask for (the status page asks for its visible rows).
MAX_HISTORY_TASKS = 100


def create_app(
    scheduler: Scheduler,
    *,
    token: str | None = None,
    rate_limit: float = 10.0,
    burst: int | None = None,
    lag_threshold: float = 1.0,
    stuck_after: float = DEFAULT_STUCK_AFTER,
    history_size: int = 100,
    allowed_hosts: Iterable[str] = (),
    bind_address: str | None = None,
) -> Starlette:
    """Return the Starlette app serving ``scheduler``'s status, health, metrics and history.

    Adds two execution hooks to ``scheduler`` (metrics and recent executions), so create the
    app before scheduling tasks to count their first runs. The app's lifespan starts and stops
    the event-loop monitor. It also serves the routes registered for ``scheduler`` with
    :func:`tickwork.service.register_routes`, before or after this call.

    Args:
        scheduler: The scheduler to serve.
        token: When set, the bearer token required on every endpoint but ``/health``. Compared
            in constant time; never logged.
        rate_limit: Requests per second allowed per client address and route.
        burst: Requests a quiet client may send at once; defaults to ``rate_limit`` rounded up.
        lag_threshold: Event-loop lag (seconds) above which ``/health`` is 503 and a stall is
            reported.
        stuck_after: Seconds after which a running execution of a task without a timeout shows
            as ``stuck``.
        history_size: Executions kept per task for ``/history``.
        allowed_hosts: Host names or IP addresses (no port) that an action request's ``Host``
            header may name besides the loopback ones and ``bind_address``: the names the
            operator reaches the service by (``scheduler.internal``).
        bind_address: The IP address the server listens on, when the caller knows it
            (``tickwork run`` passes its own). A ``Host`` naming it is accepted (not when it
            is ``0.0.0.0`` or ``::``), and without a ``token``, actions are accepted only when
            it is a loopback address. None (the default): without a token, actions are
            refused. Pass it only if clients of other machines cannot reach the app some other
            way (a proxy on the same machine forwarding to it would make them local).

    Returns:
        The app; its :class:`~tickwork.service._runtime.ServiceRuntime` is ``app.state.tickwork``
        and the :class:`~tickwork.service._actions.ActionPolicy` it decided
        ``app.state.tickwork_actions``.

    Raises:
        TypeError: ``token`` is not a str or None.
        ValueError: ``token`` is empty, or a number is out of range (the message names it),
            an allowed host is no host name or IP address, ``bind_address`` is no IP
            address, or a route registered for ``scheduler`` uses a path the service serves.
    """
    if token is not None and not isinstance(token, str):
        raise TypeError(f"token must be a str or None, got {type(token).__name__}")
    if token == "":
        raise ValueError("token must be a non-empty str or None, got ''")
    check_finite("rate_limit", rate_limit, zero=False, unit="requests per second")
    limiter = RateLimiter(rate_limit, burst)
    runtime = ServiceRuntime(
        scheduler,
        lag_threshold=lag_threshold,
        stuck_after=stuck_after,
        history_size=history_size,
    )
    if isinstance(allowed_hosts, str):
        raise TypeError(f"allowed_hosts must be an iterable of str, got str {allowed_hosts!r}")
    policy = ActionPolicy.build(
        token=token is not None, bind_address=bind_address, allowed_hosts=allowed_hosts
    )
    expected = None if token is None else token.encode()
    page = StatusPage()

    def guard(endpoint: _Endpoint, *, route: str, protected: bool) -> _Endpoint:
        async def guarded(request: Request) -> Response:
            client = request.client.host if request.client is not None else "unknown"
            # Rate-limit before checking the token, so guessing tokens is rate-limited too.
            wait = limiter.acquire(client, route)
            if wait > 0:
                return JSONResponse(
                    {"error": "too many requests"},
                    status_code=429,
                    headers={"Retry-After": str(max(1, math.ceil(wait)))},
                )
            if protected and expected is not None and not _authorized(request, expected):
                return JSONResponse(
                    {"error": "unauthorized"},
                    status_code=401,
                    headers={"WWW-Authenticate": 'Bearer realm="tickwork"'},
                )
            return await endpoint(request)

        return guarded

    async def status(request: Request) -> Response:
        document = await runtime.status_document()
        document["actions"] = policy.document()
        return JSONResponse(document, headers=_NO_STORE)

    async def health(request: Request) -> Response:
        healthy, reason = runtime.health()
        if healthy:
            return JSONResponse({"status": "ok"}, headers=_NO_STORE)
        return JSONResponse(
            {"status": "unavailable", "reason": reason}, status_code=503, headers=_NO_STORE
        )

    async def ready(request: Request) -> Response:
        is_ready, reason = runtime.ready()
        if is_ready:
            return JSONResponse({"status": "ready"}, headers=_NO_STORE)
        return JSONResponse(
            {"status": "not_ready", "reason": reason}, status_code=503, headers=_NO_STORE
        )

    async def metrics(request: Request) -> Response:
        runtime.monitor.start()
        body = await runtime.metrics_document()
        return Response(body, media_type=CONTENT_TYPE, headers=_NO_STORE)

    async def history(request: Request) -> Response:
        names = request.query_params.getlist("task")
        if len(names) > MAX_HISTORY_TASKS:
            return JSONResponse(
                {"error": f"at most {MAX_HISTORY_TASKS} task names per request, got {len(names)}"},
                status_code=400,
            )
        if len(names) > 1:
            # The status page asks for every visible row at once: unknown names (a task
            # cancelled since the page last refreshed) are left out rather than failing the rest.
            body = await asyncio.to_thread(_encode_by_task, runtime.histories(names))
            return Response(body, media_type="application/json", headers=_NO_STORE)
        task = names[0] if names else None
        document = runtime.history_document(task)
        if document is None:
            return JSONResponse({"error": "unknown task"}, status_code=404)
        if task is not None:
            return JSONResponse(document, headers=_NO_STORE)
        # Every task's history (50,000 entries at 500 tasks) takes ~0.1 s to encode: do it in a
        # thread, one task at a time, so the loop (and every task's timing) gets the GIL between.
        body = await asyncio.to_thread(_encode_by_task, document)
        return Response(body, media_type="application/json", headers=_NO_STORE)

    def page_file(path: str) -> _Endpoint:
        async def serve(request: Request) -> Response:
            return page.response(request, path)

        return serve

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        runtime.monitor.start()
        try:
            yield
        finally:
            await runtime.monitor.aclose()

    routes = [
        Route("/health", guard(health, route="health", protected=False), methods=["GET"]),
        Route("/ready", guard(ready, route="ready", protected=False), methods=["GET"]),
        Route("/status", guard(status, route="status", protected=True), methods=["GET"]),
        Route("/metrics", guard(metrics, route="metrics", protected=True), methods=["GET"]),
        Route("/history", guard(history, route="history", protected=True), methods=["GET"]),
    ]

    def authorized(request: Request) -> bool:
        return expected is None or _authorized(request, expected)

    routes += ActionEndpoints(scheduler, policy, limiter, authorized, runtime.stuck_after).routes()
    routes += [
        Route(path, guard(page_file(path), route="page", protected=False), methods=["GET"])
        for path in PAGE_ROUTES
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(_SafeHeaders)],
        exception_handlers={HTTPException: _http_error},
    )
    app.router.redirect_slashes = False
    app.state.tickwork = runtime
    app.state.tickwork_actions = policy

    def wrap(route: Route) -> Route:
        # An app's route is rate-limited in a bucket of its own, apart from the service's.
        endpoint = guard(cast(_Endpoint, route.endpoint), route=f"app:{route.path}", protected=True)
        methods = sorted(route.methods) if route.methods else None
        return Route(route.path, endpoint, methods=methods, name=route.name)

    attach_app(scheduler, app, wrap)
    return app


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown path or method: a JSON error, without echoing the request back."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    message = {404: "not found", 405: "method not allowed"}.get(status, "error")
    headers = dict(exc.headers or {}) if isinstance(exc, HTTPException) else None
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class _SafeHeaders:
    """Add ``X-Content-Type-Options: nosniff`` to every answer, ``Cache-Control: no-store`` to
    JSON ones (unless the endpoint set its own), whichever part of the app wrote them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("x-content-type-options", "nosniff")
                if headers.get("content-type", "").startswith("application/json"):
                    headers.setdefault("cache-control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _authorized(request: Request, expected: bytes) -> bool:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    # compare_digest on bytes: constant time in the token's content (non-ASCII included).
    return hmac.compare_digest(credentials.strip().encode(), expected)


def _encode_by_task(document: dict[str, list[dict[str, object]]]) -> bytes:
    """JSON of ``{task: entries}``, as Starlette's JSONResponse would write it, piece by piece."""

    def dump(value: object) -> str:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))

    parts = [dump(name) + ":" + dump(entries) for name, entries in document.items()]
    return ("{" + ",".join(parts) + "}").encode()
