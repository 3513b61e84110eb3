"""Operator actions over HTTP: ``POST /tasks/{name}/pause``, ``/resume``, ``/trigger``.

The three endpoints change what the scheduler does, so on top of ``/status``'s rules (token,
rate limit) they defend against a browser being used against a service it can reach:

- CSRF (a page on another origin posting to ``http://127.0.0.1:8080``): the body must be sent
  as ``Content-Type: application/json``, which a form or a ``no-cors`` fetch cannot send
  without a CORS preflight (never answered here); ``Origin``, when present, must be the
  service's own; ``Sec-Fetch-Site``, when present, ``same-origin`` or ``none``.
- DNS rebinding (a page whose name resolves to 127.0.0.1 after loading, so its requests are
  same-origin to the browser): the ``Host`` header must name a loopback host, the bound
  address, or a host the operator allowed.
- A service reachable from other machines without a token: actions are then refused.

Checks, in order; the first that fails answers (and is audited at WARNING)::

    rate limit (the /status limit, one bucket per client for the three) -> 429 too_many_requests
    Host                                                 -> 403 host_not_allowed
    Origin, Sec-Fetch-Site                               -> 403 cross_origin
    no token and not on loopback                         -> 403 actions_disabled
    token (when set)                                     -> 401 unauthorized
    Content-Type application/json                        -> 415 json_required
    body: empty or a JSON object of at most 1 KB,
          optionally {"by": "<= 100 printable chars"}    -> 413 body_too_large, 400 bad_request
    the scheduler                                        -> 200, 404, 503

Every attempt that reaches the scheduler is audited too (INFO when it succeeded), one line on
logger ``tickwork.audit`` naming the action, the task, the client address, the actor and the
result. A client over the rate limit is audited once per episode (until a request of its gets
through again), so a flood cannot flood the log.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeAlias
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tickwork import SchedulerError
from tickwork.service._components import truncate
from tickwork.service._ratelimit import RateLimiter
from tickwork.service._taskview import task_view

if TYPE_CHECKING:
    from tickwork import Scheduler, TaskStatus

__all__ = [
    "ACTIONS",
    "MAX_ACTOR_LENGTH",
    "MAX_BODY_BYTES",
    "Action",
    "ActionEndpoints",
    "ActionPolicy",
    "check_host_name",
    "is_loopback_host",
]

Action: TypeAlias = Literal["pause", "resume", "trigger"]
ACTIONS: tuple[Action, ...] = ("pause", "resume", "trigger")

MAX_BODY_BYTES = 1024
MAX_ACTOR_LENGTH = 100
# Characters of a task name an audit line shows (a name is any non-blank text, of any length).
_MAX_LOGGED_NAME = 200
_NO_STORE = {"Cache-Control": "no-store"}
_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?")

audit_logger = logging.getLogger("tickwork.audit")


def check_host_name(value: str) -> str:
    """Return ``value`` as a host the ``Host`` header is compared with: lower case, no brackets.

    Args:
        value: A DNS name (``scheduler.internal``) or an IP address (``10.0.0.5``, ``::1`` or
            ``[::1]``); no scheme, port or path.

    Raises:
        ValueError: ``value`` is none of these (the message shows it).
    """
    text = str(value).strip().lower().rstrip(".")
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return ipaddress.ip_address(text).compressed
    except ValueError:
        pass
    labels = text.split(".")
    if (
        not text
        or len(text) > 253
        or not all(_LABEL.fullmatch(label) for label in labels)
        # A dotted-decimal look-alike (``127.1``, ``1.2.3.400``) is no name of its own.
        or labels[-1].isdigit()
    ):
        raise ValueError(
            f"{value!r} is not a host name or IP address (give it without scheme, port or path)"
        )
    return text


def is_loopback_host(host: str) -> bool:
    """Return whether ``host`` (as :func:`check_host_name` returns it) is a loopback name.

    ``localhost`` and ``*.localhost`` (which browsers and RFC 6761 resolve to loopback),
    ``127.0.0.0/8`` and ``::1``.
    """
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ActionPolicy:
    """Whether actions are accepted, and which ``Host`` names they may be sent to.

    Attributes:
        enabled: Actions are accepted (a token is set, or the service is bound to loopback).
        reason: Why not, in words, when disabled; None when enabled.
        token_required: A token is set and every action needs it.
        hosts: Accepted ``Host`` names besides the loopback ones (normalised).
    """

    enabled: bool
    reason: str | None
    token_required: bool
    hosts: frozenset[str]

    @classmethod
    def build(
        cls, *, token: bool, bind_address: str | None, allowed_hosts: Iterable[str]
    ) -> ActionPolicy:
        """Decide the policy of an app (see :func:`tickwork.service.create_app`).

        Raises:
            ValueError: ``bind_address`` is not an IP address, or an allowed host is no host.
        """
        hosts = {check_host_name(host) for host in allowed_hosts}
        address = None
        if bind_address is not None:
            try:
                address = ipaddress.ip_address(str(bind_address).strip("[]").split("%")[0])
            except ValueError:
                raise ValueError(
                    f"bind_address must be an IP address or None, got {bind_address!r}"
                ) from None
            # 0.0.0.0 or :: is no host name: a browser may still reach it (it means this
            # machine), so accepting it would reopen what the Host check closes.
            if not address.is_unspecified:
                hosts.add(address.compressed)
        if token:
            return cls(True, None, True, frozenset(hosts))
        if address is None:
            reason = "no token, and the app was not told it listens on loopback only"
            return cls(False, reason, False, frozenset(hosts))
        if not address.is_loopback:
            return cls(False, f"no token and bound to {address}", False, frozenset(hosts))
        return cls(True, None, False, frozenset(hosts))

    def allows_host(self, host: str) -> bool:
        """Return whether a request whose ``Host`` names ``host`` may act."""
        return is_loopback_host(host) or host in self.hosts

    def document(self) -> dict[str, Any]:
        """Return ``/status`` -> ``actions``: ``{"enabled": bool, "reason": str | null}``."""
        return {"enabled": self.enabled, "reason": self.reason}

    def describe(self) -> str:
        """Return the rule that applies, in one sentence for the startup log."""
        hosts = ", ".join(sorted(self.hosts)) or "none"
        if not self.enabled:
            return (
                f"Operator actions (pause, resume, trigger) are disabled: {self.reason}; "
                "set TICKWORK_TOKEN (or --token) to enable them"
            )
        rule = "need the token" if self.token_required else "need no token (bound to loopback)"
        return (
            f"Operator actions (pause, resume, trigger) {rule}; accepted for Host names "
            f"localhost, loopback addresses and: {hosts} (add one with --allowed-host)"
        )


class _Refused(Exception):
    """An action request refused before it reaches the scheduler."""

    def __init__(
        self, status: int, error: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.headers = headers or {}


class ActionEndpoints:
    """The three action routes of one app.

    Args:
        scheduler: The scheduler acted on.
        policy: What :meth:`ActionPolicy.build` decided.
        limiter: The app's rate limiter (the three actions share one bucket per client).
        authorized: Whether a request carries the app's token (only asked when one is set).
        stuck_after: As ``/status``, for the task view in the answer.
    """

    def __init__(
        self,
        scheduler: Scheduler,
        policy: ActionPolicy,
        limiter: RateLimiter,
        authorized: Callable[[Request], bool],
        stuck_after: float,
    ) -> None:
        self._scheduler = scheduler
        self._policy = policy
        self._limiter = limiter
        self._authorized = authorized
        self._stuck_after = stuck_after
        # Clients refused by the rate limit since their last request that got through: their
        # further 429s are not audited (bounded like the limiter's own table).
        self._limited: OrderedDict[str, None] = OrderedDict()

    def routes(self) -> list[Route]:
        """Return ``POST /tasks/{name}/ACTION`` for each action.

        ``name`` is percent-decoded by the server, a ``/`` in it included (``{name:path}``).
        """
        routes = []
        for action in ACTIONS:
            route = Route(
                f"/tasks/{{name:path}}/{action}", self._endpoint(action), methods=["POST"]
            )
            # A task name is any non-blank text: let ``.`` match a newline in it too.
            route.path_regex = re.compile(route.path_regex.pattern, re.DOTALL)
            routes.append(route)
        return routes

    def _endpoint(self, action: Action) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            return await self._handle(action, request)

        return endpoint

    async def _handle(self, action: Action, request: Request) -> Response:
        name: str = request.path_params["name"]
        client = request.client.host if request.client is not None else "unknown"
        actor = client
        try:
            self._admit(request, client)
            body = await _read_body(request)
            if body.get("by") is not None:
                actor = f"{body['by']} ({client})"
        except _Refused as refused:
            if refused.status != 429 or self._first_refusal(client):
                _audit(logging.WARNING, action, name, client, actor, refused.error)
            return JSONResponse(
                {"error": refused.error, "message": refused.message},
                status_code=refused.status,
                headers={**_NO_STORE, **refused.headers},
            )
        return await self._act(action, name, client, actor)

    def _admit(self, request: Request, client: str) -> None:
        wait = self._limiter.acquire(client, "actions")
        if wait > 0:
            raise _Refused(
                429,
                "too_many_requests",
                "too many requests; retry later",
                {"Retry-After": str(max(1, math.ceil(wait)))},
            )
        self._limited.pop(client, None)
        host_header = request.headers.get("host", "")
        host = _host_of(host_header)
        if host is None or not self._policy.allows_host(host):
            raise _Refused(
                403,
                "host_not_allowed",
                f"Host {host_header!r} is not allowed to act: use a loopback address, or "
                "start the service with --allowed-host naming it",
            )
        origin = request.headers.get("origin")
        if origin is not None and _origin(origin) != _origin(
            f"{request.url.scheme}://{host_header}"
        ):
            raise _Refused(403, "cross_origin", "requests from another origin cannot act")
        fetch_site = request.headers.get("sec-fetch-site")
        if fetch_site is not None and fetch_site.strip().lower() not in ("same-origin", "none"):
            raise _Refused(403, "cross_origin", "requests from another site cannot act")
        if not self._policy.enabled:
            raise _Refused(403, "actions_disabled", f"actions are disabled: {self._policy.reason}")
        if self._policy.token_required and not self._authorized(request):
            raise _Refused(
                401,
                "unauthorized",
                "a valid bearer token is required",
                {"WWW-Authenticate": 'Bearer realm="tickwork"'},
            )
        media_type = request.headers.get("content-type", "").partition(";")[0]
        if media_type.strip().lower() != "application/json":
            raise _Refused(
                415, "json_required", "send the request as Content-Type: application/json"
            )

    def _first_refusal(self, client: str) -> bool:
        if client in self._limited:
            return False
        self._limited[client] = None
        while len(self._limited) > 10_000:
            self._limited.popitem(last=False)
        return True

    async def _act(self, action: Action, name: str, client: str, actor: str) -> Response:
        call = {
            "pause": self._scheduler.pause_task,
            "resume": self._scheduler.resume_task,
            "trigger": self._scheduler.trigger,
        }[action]
        try:
            status: TaskStatus = await call(name, by=actor)
        except ValueError:
            # A blank name (``/tasks/%20/pause``) is no task's: the core refuses it as a
            # caller mistake, which over HTTP is simply an unknown task.
            return self._unknown(action, name, client, actor)
        except SchedulerError as exc:
            if exc.code == "not_scheduled":
                return self._unknown(action, name, client, actor)
            _audit(logging.WARNING, action, name, client, actor, exc.code)
            return JSONResponse(
                {"error": exc.code, "message": str(exc)}, status_code=503, headers=_NO_STORE
            )
        _audit(logging.INFO, action, name, client, actor, "ok")
        return JSONResponse(
            {
                "task": name,
                "action": action,
                "status": task_view(status, time.time(), self._stuck_after),
            },
            headers=_NO_STORE,
        )

    def _unknown(self, action: Action, name: str, client: str, actor: str) -> Response:
        _audit(logging.WARNING, action, name, client, actor, "unknown_task")
        # The name is not echoed: the answer is JSON, but a client that renders it should not
        # get markup back from us.
        return JSONResponse({"error": "unknown task"}, status_code=404, headers=_NO_STORE)


async def _read_body(request: Request) -> dict[str, Any]:
    """Return the request's JSON object (``{}`` for an empty body), checked."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
        raise _Refused(413, "body_too_large", f"the body must be at most {MAX_BODY_BYTES} bytes")
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            raise _Refused(
                413, "body_too_large", f"the body must be at most {MAX_BODY_BYTES} bytes"
            )
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _Refused(400, "bad_request", "the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise _Refused(400, "bad_request", "the body must be a JSON object")
    unknown = sorted(set(data) - {"by"})
    if unknown:
        raise _Refused(400, "bad_request", f"unknown field(s): {', '.join(map(repr, unknown))}")
    by = data.get("by")
    if by is not None and (
        not isinstance(by, str)
        or not by.strip()
        or len(by) > MAX_ACTOR_LENGTH
        or not by.isprintable()
    ):
        raise _Refused(
            400,
            "bad_request",
            f'"by" must be 1 to {MAX_ACTOR_LENGTH} printable characters',
        )
    return data


def _host_of(header: str) -> str | None:
    """The host part of a ``Host`` header, normalised as :func:`check_host_name`; None if bad."""
    text = header.strip()
    if text.startswith("["):
        end = text.find("]")
        host, rest = text[1:end], text[end + 1 :]
        if end < 0 or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
    else:
        host, _, port = text.partition(":")
        if ":" in port or (port and not port.isdigit()):
            return None
    try:
        return check_host_name(host)
    except ValueError:
        return None


def _origin(url: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of an origin, default ports filled in; None if it is none."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    return scheme, parts.hostname.rstrip("."), port or (443 if scheme == "https" else 80)


def _audit(level: int, action: str, name: str, client: str, actor: str, result: str) -> None:
    # repr() keeps one attempt on one line whatever the name holds (a name is any text).
    task = truncate(name, _MAX_LOGGED_NAME)
    audit_logger.log(
        level,
        "action=%s task=%r client=%s actor=%r result=%s",
        action,
        task,
        client,
        actor,
        result,
        extra={"task": task, "action": action, "client": client, "actor": actor, "result": result},
    )
