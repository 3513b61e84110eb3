"""The ``tickwork`` command: ``tickwork run MODULE:CALLABLE``, ``tickwork status`` and the
operator actions ``tickwork pause|resume|trigger NAME``.

Every option of ``run`` also reads an environment variable (the flag wins):
``TICKWORK_HOST``, ``TICKWORK_PORT``, ``TICKWORK_GRACE``, ``TICKWORK_LOG_LEVEL``,
``TICKWORK_LOG_FORMAT``, ``TICKWORK_TOKEN``, ``TICKWORK_FORWARDED_ALLOW_IPS``,
``TICKWORK_MAX_CONNECTIONS``, ``TICKWORK_HEADER_TIMEOUT``, ``TICKWORK_ALLOWED_HOSTS``
(comma-separated, for the repeatable ``--allowed-host``); ``status``, ``pause``, ``resume``
and ``trigger`` read ``TICKWORK_URL`` and ``TICKWORK_TOKEN``. Prefer the environment variable
for the token: a flag shows in ``ps``.

Bad input (an unknown module or attribute, a setup that raises, a port in use, a bad flag or
variable value) prints one line, ``tickwork: error: ...``, on stderr and exits non-zero, without
a traceback; a bad value read from a variable is named with the variable
(``TICKWORK_PORT='abc'``). Exit codes: 0 after a graceful shutdown; 1 for a failure to start or
a shutdown that overran (something still running when the process left); 2 for bad
command-line input; 128 + signal number after a second signal.
"""

from __future__ import annotations

import asyncio
import getpass
import ipaddress
import json
import math
import os
import socket
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
import httpx
from click.core import ParameterSource

from tickwork._extras import MissingExtraError
from tickwork.coordination import Coordinator, CoordinatorError, from_url
from tickwork.service._actions import MAX_ACTOR_LENGTH, Action, check_host_name
from tickwork.service._components import truncate
from tickwork.service._loader import LoadError, load_target
from tickwork.service._serve import RunOptions, ServiceError, run_service

__all__ = ["cli", "main"]

_LEVELS = ("debug", "info", "warning", "error", "critical")
_DEFAULT_LEASE_TTL = 30.0


class _Seconds(click.ParamType[float]):
    """A finite number of seconds >= 0, or > 0 (``nan``, ``inf`` and negatives are refused)."""

    name = "seconds"

    def __init__(self, *, positive: bool = False) -> None:
        self.positive = positive

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        bound = "> 0" if self.positive else ">= 0"
        if not math.isfinite(seconds) or seconds < 0 or (self.positive and seconds == 0):
            self.fail(f"{value!r} is not a finite number of seconds {bound}", param, ctx)
        return seconds


class _Proxies(click.ParamType[str]):
    """Comma-separated IP addresses or networks, or ``*``; returned normalised, comma-joined."""

    name = "addresses"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        items = [item.strip() for item in str(value).split(",") if item.strip()]
        if not items:
            self.fail(f"{value!r} names no address", param, ctx)
        if items == ["*"]:
            return "*"
        for item in items:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                self.fail(f"{item!r} is not an IP address or network (or '*' alone)", param, ctx)
        return ",".join(items)


class _Host(click.ParamType[str]):
    """A host name or address that resolves (what ``tickwork run`` will bind)."""

    name = "host"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            socket.getaddrinfo(str(value), None, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        except (socket.gaierror, UnicodeError) as exc:
            self.fail(f"cannot resolve host {value!r}: {exc}", param, ctx)
        return str(value)


class _AllowedHost(click.ParamType[str]):
    """A host name or IP address, no port; from the environment, a comma-separated list."""

    name = "host"
    envvar_list_splitter = ","

    def split_envvar_value(self, rv: str) -> list[str]:
        """Split ``TICKWORK_ALLOWED_HOSTS`` on commas, ignoring empty items."""
        return [item.strip() for item in (rv or "").split(",") if item.strip()]

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return check_host_name(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class _Url(click.ParamType[str]):
    """An ``http://`` or ``https://`` URL with a host."""

    name = "url"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            url = httpx.URL(str(value))
        except httpx.InvalidURL as exc:
            self.fail(f"{value!r} is not a URL: {exc}", param, ctx)
        if url.scheme not in ("http", "https") or not url.host:
            self.fail(f"{value!r} is not an http:// or https:// URL with a host", param, ctx)
        return str(value)


class _EnvOption(click.Option):
    """An option whose bad value, when read from its environment variable, names the variable.

    click names only the flag (``Invalid value for '--port'``), which misleads when the value
    came from ``TICKWORK_PORT``.
    """

    def type_cast_value(self, ctx: click.Context, value: Any) -> Any:
        """Convert ``value``; a value from the environment that fails names its variable."""
        try:
            return super().type_cast_value(ctx, value)
        except click.BadParameter as exc:
            if not isinstance(self.envvar, str) or self.name is None:
                raise
            if ctx.get_parameter_source(self.name) is not ParameterSource.ENVIRONMENT:
                raise
            shown = "(hidden)" if self.hide_input else repr(os.environ.get(self.envvar, ""))
            raise click.UsageError(
                f"invalid value in environment variable {self.envvar}={shown} "
                f"(for {self.opts[0]}): {exc.message}",
                ctx,
            ) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """tickwork: run and inspect a recurring-task service."""


@cli.command()
@click.argument("target", metavar="MODULE:CALLABLE")
@click.option(
    "--host",
    cls=_EnvOption,
    envvar="TICKWORK_HOST",
    type=_Host(),
    default="127.0.0.1",
    show_default=True,
    help="Address to serve HTTP on.",
)
@click.option(
    "--port",
    cls=_EnvOption,
    envvar="TICKWORK_PORT",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="Port to serve HTTP on (0: any free port).",
)
@click.option(
    "--grace",
    cls=_EnvOption,
    envvar="TICKWORK_GRACE",
    type=_Seconds(),
    default=5.0,
    show_default=True,
    help="Seconds running tasks get to finish on shutdown.",
)
@click.option(
    "--log-level",
    cls=_EnvOption,
    envvar="TICKWORK_LOG_LEVEL",
    default="info",
    show_default=True,
    type=click.Choice(_LEVELS, case_sensitive=False),
)
@click.option(
    "--log-format",
    cls=_EnvOption,
    envvar="TICKWORK_LOG_FORMAT",
    default="text",
    show_default=True,
    type=click.Choice(("text", "json")),
    help="json: one object per line.",
)
@click.option(
    "--token",
    cls=_EnvOption,
    envvar="TICKWORK_TOKEN",
    default=None,
    show_default=False,
    help="Bearer token required on /status, /metrics, /history (not /health) and on operator "
    "actions (without it, actions work only while bound to loopback).",
)
@click.option(
    "--forwarded-allow-ips",
    cls=_EnvOption,
    envvar="TICKWORK_FORWARDED_ALLOW_IPS",
    type=_Proxies(),
    default=None,
    help="Comma-separated addresses or networks of the reverse proxies whose "
    "X-Forwarded-For/-Proto headers to trust ('*': any). Default: trust none.",
)
@click.option(
    "--max-connections",
    cls=_EnvOption,
    envvar="TICKWORK_MAX_CONNECTIONS",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="HTTP connections open at once (lowered to fit the file descriptor limit); over it, "
    "the connection waiting longest for a request is closed.",
)
@click.option(
    "--header-timeout",
    cls=_EnvOption,
    envvar="TICKWORK_HEADER_TIMEOUT",
    type=_Seconds(positive=True),
    default=10.0,
    show_default=True,
    help="Seconds a connection has to send a complete request head.",
)
@click.option(
    "--coordinator",
    cls=_EnvOption,
    envvar="TICKWORK_COORDINATOR",
    default=None,
    help="Coordinate singleton tasks with the replicas sharing this store "
    "(postgresql://... or redis://...); wins over one the app's setup supplies.",
)
@click.option(
    "--cluster",
    cls=_EnvOption,
    envvar="TICKWORK_CLUSTER",
    default=None,
    help="Cluster name in the coordinator's store [default: MODULE:CALLABLE].",
)
@click.option(
    "--lease-ttl",
    cls=_EnvOption,
    envvar="TICKWORK_LEASE_TTL",
    type=_Seconds(positive=True),
    default=_DEFAULT_LEASE_TTL,
    show_default=True,
    help="Seconds a singleton run's lease lasts without renewal.",
)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    cls=_EnvOption,
    envvar="TICKWORK_ALLOWED_HOSTS",
    type=_AllowedHost(),
    multiple=True,
    help="A host name (or address) clients reach the service by, accepted in the Host header "
    "of operator actions besides loopback names and the bound address; repeatable "
    "(TICKWORK_ALLOWED_HOSTS: comma-separated).",
)
def run(
    target: str,
    host: str,
    port: int,
    grace: float,
    log_level: str,
    log_format: str,
    token: str | None,
    forwarded_allow_ips: str | None,
    max_connections: int,
    header_timeout: float,
    coordinator: str | None,
    cluster: str | None,
    lease_ttl: float,
    allowed_hosts: tuple[str, ...],
) -> None:
    """Run MODULE:CALLABLE's tasks and serve /status, /health, /metrics, /history and the
    operator actions (POST /tasks/NAME/pause|resume|trigger).

    CALLABLE is called with the running Scheduler; it may be async, and may return an async
    context manager or an object with an async aclose() to release at shutdown. Runs until
    SIGTERM or SIGINT.
    """
    store = _coordinator(coordinator, cluster or target, lease_ttl) if coordinator else None
    try:
        setup = load_target(target)
    except LoadError as exc:
        raise click.ClickException(str(exc)) from None
    options = RunOptions(
        target=target,
        host=host,
        port=port,
        grace=grace,
        log_level=log_level.lower(),
        log_format="json" if log_format == "json" else "text",
        token=token or None,
        forwarded_allow_ips=forwarded_allow_ips,
        max_connections=max_connections,
        header_timeout=header_timeout,
        coordinator=store,
        allowed_hosts=tuple(dict.fromkeys(allowed_hosts)),
    )
    try:
        code = run_service(options, setup)
    except ServiceError as exc:
        raise click.ClickException(str(exc)) from None
    sys.exit(code)


def _coordinator(url: str, cluster: str, ttl: float) -> Coordinator:
    """The coordinator of ``--coordinator``; a bad URL or a missing extra is a usage error."""
    try:
        return from_url(url, cluster=cluster, ttl=ttl)
    except (ValueError, MissingExtraError) as exc:
        raise click.UsageError(f"--coordinator: {exc}") from None


@cli.command()
@click.argument("name")
@click.option(
    "--coordinator",
    cls=_EnvOption,
    envvar="TICKWORK_COORDINATOR",
    required=True,
    help="The coordinator's store (postgresql://... or redis://...).",
)
@click.option(
    "--cluster",
    cls=_EnvOption,
    envvar="TICKWORK_CLUSTER",
    required=True,
    help="The cluster name (by default `tickwork run` uses MODULE:CALLABLE).",
)
@click.option("--force", is_flag=True, help="Remove it even if a live replica declares it.")
def forget(name: str, coordinator: str, cluster: str, force: bool) -> None:
    """Remove task NAME's row from a cluster: a task no replica declares any more."""
    store = _coordinator(coordinator, cluster, _DEFAULT_LEASE_TTL)

    async def remove() -> str:
        try:
            await store.start()
            view = await store.cluster_view()
            row = next((t for t in view.tasks if t.name == name), None)
            if row is None:
                raise click.ClickException(f"no task {name!r} in cluster {cluster!r}")
            if not row.orphaned and not force:
                holders = [p.replica for p in view.peers if p.alive and name in p.tasks]
                raise click.ClickException(
                    f"task {name!r} is declared by live replica(s) {', '.join(holders)}: "
                    "deploy without it first, or pass --force"
                )
            await store.forget(name)
            return f"forgot task {name!r} of cluster {cluster!r}"
        except CoordinatorError as exc:
            raise click.ClickException(str(exc)) from None
        finally:
            await store.close()

    click.echo(asyncio.run(remove()))


@cli.command()
@click.option(
    "--url",
    cls=_EnvOption,
    envvar="TICKWORK_URL",
    type=_Url(),
    default="http://127.0.0.1:8080",
    show_default=True,
    help="Base URL of the running service.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the raw /status JSON.")
@click.option(
    "--token", cls=_EnvOption, envvar="TICKWORK_TOKEN", default=None, help="Bearer token."
)
def status(url: str, as_json: bool, token: str | None) -> None:
    """Print the task table of a running service."""
    endpoint = url.rstrip("/") + "/status"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.get(endpoint, headers=headers, timeout=10.0)
    except httpx.HTTPError as exc:
        raise click.ClickException(f"cannot reach {endpoint}: {exc}") from None
    if response.status_code == 401:
        raise click.ClickException(
            f"{endpoint} answered 401 Unauthorized: pass --token or set TICKWORK_TOKEN"
        )
    if response.status_code != 200:
        raise click.ClickException(
            f"{endpoint} answered {response.status_code} {response.reason_phrase}"
        )
    try:
        document = response.json()
        tasks = document["tasks"]
    except (ValueError, KeyError, TypeError):
        raise click.ClickException(f"{endpoint} did not answer with a tickwork status") from None
    if as_json:
        click.echo(json.dumps(document, indent=2))
        return
    click.echo(_render_table(document, tasks))


_URL_OPTION = click.option(
    "--url",
    cls=_EnvOption,
    envvar="TICKWORK_URL",
    type=_Url(),
    default="http://127.0.0.1:8080",
    show_default=True,
    help="Base URL of the running service.",
)
_TOKEN_OPTION = click.option(
    "--token", cls=_EnvOption, envvar="TICKWORK_TOKEN", default=None, help="Bearer token."
)
_BY_OPTION = click.option(
    "--by",
    default=None,
    help="Who acts, in words, for the audit log and the task's paused_by [default: USER@HOSTNAME].",
)
# What each action did, for the one line printed on success.
_DONE = {"pause": "paused", "resume": "resumed", "trigger": "triggered"}


@cli.command()
@click.argument("name")
@_URL_OPTION
@_TOKEN_OPTION
@_BY_OPTION
def pause(name: str, url: str, token: str | None, by: str | None) -> None:
    """Pause task NAME of a running service: no run starts until it is resumed."""
    click.echo(_act("pause", name, url, token, by))


@cli.command()
@click.argument("name")
@_URL_OPTION
@_TOKEN_OPTION
@_BY_OPTION
def resume(name: str, url: str, token: str | None, by: str | None) -> None:
    """Resume task NAME of a running service (it runs at once if its due time passed)."""
    click.echo(_act("resume", name, url, token, by))


@cli.command()
@click.argument("name")
@_URL_OPTION
@_TOKEN_OPTION
@_BY_OPTION
def trigger(name: str, url: str, token: str | None, by: str | None) -> None:
    """Run task NAME of a running service now (right after the run in progress, if any)."""
    click.echo(_act("trigger", name, url, token, by))


def _act(action: Action, name: str, url: str, token: str | None, by: str | None) -> str:
    """POST the action; return the line to print, or raise ClickException with the reason."""
    endpoint = f"{url.rstrip('/')}/tasks/{quote(name, safe='')}/{action}"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    actor = by if by is not None else _default_actor()
    if len(actor) > MAX_ACTOR_LENGTH or not actor.strip() or not actor.isprintable():
        raise click.BadParameter(
            f"must be 1 to {MAX_ACTOR_LENGTH} printable characters, got {actor!r}",
            param_hint="--by",
        )
    try:
        response = httpx.post(endpoint, json={"by": actor}, headers=headers, timeout=10.0)
    except httpx.HTTPError as exc:
        raise click.ClickException(f"cannot reach {endpoint}: {exc}") from None
    try:
        document = response.json()
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise click.ClickException(
            f"{endpoint} answered {response.status_code} {response.reason_phrase}"
        )
    if response.status_code == 404 and document.get("error") == "unknown task":
        raise click.ClickException(f"no task {name!r} at {url}")
    if response.status_code == 401:
        raise click.ClickException(
            f"{action} {name!r} refused (401 Unauthorized): pass --token or set TICKWORK_TOKEN"
        )
    if response.status_code != 200:
        reason = document.get("message") or document.get("error") or response.reason_phrase
        raise click.ClickException(
            f"{action} {name!r} refused ({response.status_code} {document.get('error')}): {reason}"
        )
    task = document.get("status") or {}
    state = str(task.get("state", "?"))
    if task.get("run_requested"):
        state += ", a run is requested"
    return f"{_DONE[action]} task {name!r}: now {state}"


def _default_actor() -> str:
    """``USER@HOSTNAME``, cut to what the service accepts."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    actor = f"{user}@{socket.gethostname()}"
    return actor[:MAX_ACTOR_LENGTH] if actor.isprintable() else "tickwork CLI"


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.0f}ms"
    if value < 120:
        return f"{value:.1f}s"
    if value < 7200:
        return f"{value / 60:.1f}m"
    return f"{value / 3600:.1f}h"


def _state(task: dict[str, Any]) -> str:
    if task.get("stuck"):
        return f"stuck {_seconds(task.get('running_for'))}"
    if task.get("state") == "running":
        return f"running {_seconds(task.get('running_for'))}"
    if (task.get("overdue_by") or 0) >= 1.0:
        return f"overdue {_seconds(task.get('overdue_by'))}"
    return str(task.get("state", "?"))


def _render_table(document: dict[str, Any], tasks: list[dict[str, Any]]) -> str:
    now = float(document.get("now") or 0.0)
    lines = [
        f"tickwork {document.get('state', '?')}, up {_seconds(document.get('uptime'))}, "
        f"{len(tasks)} task(s)"
    ]
    header = ("NAME", "STATE", "RUNS", "FAILURES", "LAST DURATION", "NEXT RUN", "LAST ERROR")
    rows: list[tuple[str, ...]] = [header]
    for task in tasks:
        next_run = task.get("next_run_at")
        error = task.get("last_error") or "-"
        rows.append(
            (
                str(task.get("name")),
                _state(task),
                str(task.get("runs", 0)),
                f"{task.get('failures', 0)} ({task.get('consecutive_failures', 0)} in a row)"
                if task.get("consecutive_failures")
                else str(task.get("failures", 0)),
                _seconds(task.get("last_duration")),
                "-" if next_run is None else f"in {_seconds(max(0.0, next_run - now))}",
                truncate(error.splitlines()[0] if error.strip() else "-", 60),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    lines.extend(_calendar_lines(tasks))
    lines.extend(_why_lines(tasks, now))
    services = document.get("services") or {}
    if services:
        lines.append("")
        for name, component in services.items():
            reason = component.get("reason")
            lines.append(
                f"service {name}: {component.get('status')}" + (f" ({reason})" if reason else "")
            )
    last_stall = document.get("last_stall")
    if last_stall:
        lines.append(
            f"last stall: {last_stall.get('kind')} of {_seconds(last_stall.get('seconds'))}"
        )
    return "\n".join(lines)


def _why_lines(tasks: list[dict[str, Any]], now: float) -> list[str]:
    """One line per paused task (who, how long ago) and per snoozed task (the reason)."""
    lines: list[str] = []
    for task in tasks:
        name = task.get("name")
        paused_at = task.get("paused_at")
        if paused_at is not None:
            by = task.get("paused_by") or "the application"
            ago = _seconds(max(0.0, now - float(paused_at)))
            lines.append(f"paused {name}: by {by}, {ago} ago")
        elif task.get("state") == "snoozed" and task.get("last_outcome_reason"):
            lines.append(f"snoozed {name}: {truncate(str(task['last_outcome_reason']), 100)}")
    return lines


def _calendar_lines(tasks: list[dict[str, Any]]) -> list[str]:
    """One line per calendar task: its expression and zone, the next run in local and UTC."""
    lines: list[str] = []
    for task in tasks:
        schedule = task.get("schedule") or {}
        if schedule.get("kind") != "cron":
            continue
        next_run = task.get("next_run_at")
        when = "-" if next_run is None else _local_and_utc(float(next_run), schedule.get("tz"))
        if not lines:
            lines.append("")
        lines.append(
            f"cron {task.get('name')}: {schedule.get('expression')} ({schedule.get('tz')}), "
            f"next {when}, skipped {task.get('skipped', 0)}"
        )
    return lines


def _local_and_utc(epoch: float, tz: object) -> str:
    """``2026-01-02 03:00 CET (02:00 UTC)``."""
    instant = datetime.fromtimestamp(epoch, UTC)
    try:
        local = instant.astimezone(ZoneInfo(str(tz)))
    except (ZoneInfoNotFoundError, ValueError):
        local = instant
    return f"{local:%Y-%m-%d %H:%M %Z} ({instant:%H:%M} UTC)"


@cli.command("cron-preview")
@click.argument("expression")
@click.option("--tz", default="UTC", show_default=True, help="IANA time zone of the expression.")
@click.option(
    "-n",
    "count",
    type=click.IntRange(1, 1000),
    default=10,
    show_default=True,
    help="How many fire times to print.",
)
def cron_preview(expression: str, tz: str, count: int) -> None:
    """Print the next fire times of a cron EXPRESSION, in its zone and in UTC."""
    from tickwork._cron import cron_preview as preview

    try:
        instants = preview(expression, tz, count=count)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="EXPRESSION/--tz") from None
    for epoch in instants:
        click.echo(_local_and_utc(epoch, tz))


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Run the ``tickwork`` command line and exit with its code.

    Args:
        argv: The arguments (without the program name); ``sys.argv[1:]`` by default.
    """
    try:
        result = cli.main(args=argv, prog_name="tickwork", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.NoArgsIsHelpError as exc:
        # "tickwork" alone: the help text, as is, is the clearest answer.
        exc.show()
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"tickwork: error: {_one_line(exc.format_message())}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("tickwork: aborted", err=True)
        sys.exit(1)
    sys.exit(result if isinstance(result, int) else 0)


def _one_line(message: str) -> str:
    return " ".join(message.split())
