"""``tickwork run``: one event loop running the scheduler, the app's setup and the HTTP server.

Life of the process::

    bind the socket (a port in use fails here, before anything starts)
    -> Scheduler + HTTP app, state "starting"; uvicorn serves on the same loop, its connections
       bounded (see ``_connections``)
    -> CALLABLE(scheduler) (awaited if async; an async context manager it returns is entered,
       an object with ``aclose()`` is remembered), state "running"
    -> a shutdown request (the first SIGTERM/SIGINT, or ``_signals.request_shutdown(reason,
       exit_code)`` from inside): state "shutting_down"; the server stops accepting
       connections while ``scheduler.shutdown(grace)`` runs; its report is logged; then the
       app's resources are released; every step is bounded by one ``ShutdownDeadline``
    -> a second signal: exit 128 + signum at once (see ``_signals``)
    -> a task body raising SystemExit/KeyboardInterrupt (the core records it as that run's
       failure and tells the hooks): the same graceful shutdown, its report naming the task,
       exit 1

The process always ends within ``grace + 1`` s of the request. Exit code: the request's (0
after a signal), or 1 when the shutdown overran: an execution ignored its cancellation, the
scheduler's shutdown or the resource release did not finish in time, or the watchdog thread had
to end a blocked loop. (A plain function left running in its thread is no overrun: threads
cannot be stopped, and the report names it.) When something is still running, the process
leaves with ``os._exit`` after flushing the logs, because interpreter shutdown would wait for
it (a non-daemon thread of ``asyncio.to_thread``, a task that ignores cancellation) forever.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import inspect
import ipaddress
import logging
import math
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import uvicorn

from tickwork import Execution, ExecutionResult, Scheduler, ShutdownReport
from tickwork.coordination import Coordinator
from tickwork.service._actions import ActionPolicy, check_host_name
from tickwork.service._connections import (
    ACCEPT_BACKLOG,
    ConnectionLimits,
    connection_cap,
    guarded_protocol,
    quiet_accept_errors,
)
from tickwork.service._logging import LogFormat, configure_logging
from tickwork.service._runtime import ServiceRuntime
from tickwork.service._signals import (
    ShutdownDeadline,
    ShutdownRequest,
    ShutdownSignals,
    hard_exit,
)
from tickwork.service._tracing import tracing_hook
from tickwork.service.http import create_app

__all__ = ["RunOptions", "ServiceError", "bind_socket", "run_service"]

logger = logging.getLogger("tickwork.service")


class ServiceError(Exception):
    """The service could not start; the message is one line for the user."""


@dataclass(frozen=True)
class RunOptions:
    """The options of ``tickwork run``, already validated by the command line."""

    target: str
    host: str = "127.0.0.1"
    port: int = 8080
    grace: float = 5.0
    log_level: str = "info"
    log_format: LogFormat = "text"
    token: str | None = None
    # Comma-separated addresses or networks of proxies whose X-Forwarded-For/-Proto headers
    # are trusted ("*": any); None trusts no forwarded header.
    forwarded_allow_ips: str | None = None
    max_connections: int = 100
    header_timeout: float = 10.0
    coordinator: Coordinator | None = None
    # Host names (besides loopback ones and the bound address) operator actions may be sent to.
    allowed_hosts: tuple[str, ...] = ()


class _ExitRequest:
    """An execution hook: the first body raising SystemExit/KeyboardInterrupt stops the service.

    The core keeps the task scheduled and records the run as a failure; a process-level
    intent (``sys.exit()`` in a task) is honoured here, as a graceful shutdown.
    """

    def __init__(self, signals: ShutdownSignals) -> None:
        self._signals = signals
        self.task: str | None = None
        self.error = ""

    def on_start(self, execution: Execution) -> None:
        """Nothing to do when an execution starts."""

    def on_finish(self, execution: Execution, result: ExecutionResult) -> None:
        """Request the shutdown on the first SystemExit/KeyboardInterrupt of a body."""
        if self.task is None and isinstance(result.error, (SystemExit, KeyboardInterrupt)):
            self.task = execution.task
            self.error = f"{type(result.error).__name__}: {result.error}".rstrip(": ")
            self._signals.request(f"Task {self.task} raised {self.error}", 1)


class _Server(uvicorn.Server):
    """uvicorn's server without its signal handlers: ``_signals`` owns SIGTERM and SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Any:
        yield


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind and listen on ``host:port`` (port 0: any free port).

    Raises:
        ServiceError: The address is in use or cannot be bound (the message says which).
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ServiceError(f"cannot resolve host {host!r}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(ACCEPT_BACKLOG)
    except OSError as exc:
        sock.close()
        reason = "address already in use" if exc.errno == 98 else (exc.strerror or str(exc))
        raise ServiceError(f"cannot listen on {host}:{port}: {reason}") from None
    sock.setblocking(False)
    return sock


def run_service(options: RunOptions, target: Callable[..., Any]) -> int:
    """Run the service until a signal; return the process exit code.

    Args:
        options: What ``tickwork run`` was given.
        target: The app's setup callable, already loaded.

    Raises:
        ServiceError: The socket cannot be bound, or the setup callable failed.
    """
    configure_logging(options.log_level, options.log_format)
    sock = bind_socket(options.host, options.port)
    return asyncio.run(_main(options, target, sock))


async def _main(options: RunOptions, target: Callable[..., Any], sock: socket.socket) -> int:
    loop = asyncio.get_running_loop()
    quiet_accept_errors(loop)
    stop = asyncio.Event()
    requests: list[ShutdownRequest] = []

    def on_request(request: ShutdownRequest) -> None:
        requests.append(request)
        stop.set()

    signals = ShutdownSignals(loop, on_request, grace=options.grace)
    signals.install()
    try:
        return await _serve(options, target, sock, stop, requests, signals)
    finally:
        signals.restore()


class _Running:
    """An execution hook that knows which tasks have an execution under way."""

    def __init__(self) -> None:
        self._counts: collections.Counter[str] = collections.Counter()

    def on_start(self, execution: Execution) -> None:
        self._counts[execution.task] += 1

    def on_finish(self, execution: Execution, result: ExecutionResult) -> None:
        self._counts[execution.task] -= 1
        if self._counts[execution.task] <= 0:
            del self._counts[execution.task]

    def names(self) -> list[str]:
        return sorted(self._counts)


def _http_config(options: RunOptions, app: Any) -> uvicorn.Config:
    limits = ConnectionLimits(
        header_timeout=options.header_timeout,
        max_connections=connection_cap(options.max_connections),
    )
    if limits.max_connections < options.max_connections:
        logger.info(
            "HTTP connections capped at %d to fit the file descriptor limit",
            limits.max_connections,
        )
    return uvicorn.Config(
        app,
        http=guarded_protocol(limits),
        ws="none",
        log_config=None,
        access_log=False,
        lifespan="on",
        backlog=ACCEPT_BACKLOG,
        server_header=False,
        # Forwarded headers name the client (and so its rate-limit bucket): trusted only from
        # the proxies the operator names, never by default, not even from loopback.
        proxy_headers=options.forwarded_allow_ips is not None,
        forwarded_allow_ips=options.forwarded_allow_ips or "",
        timeout_graceful_shutdown=max(1, math.ceil(options.grace)),
    )


async def _serve(
    options: RunOptions,
    target: Callable[..., Any],
    sock: socket.socket,
    stop: asyncio.Event,
    requests: list[ShutdownRequest],
    signals: ShutdownSignals,
) -> int:
    # Our own default executor, so that shutdown can stop its idle workers without waiting
    # for busy ones (``shutdown_default_executor`` joins them, blocking the loop, in 3.11).
    executor = concurrent.futures.ThreadPoolExecutor(thread_name_prefix="tickwork-default")
    asyncio.get_running_loop().set_default_executor(executor)
    hook = tracing_hook()
    running = _Running()
    exit_request = _ExitRequest(signals)
    hooks: list[Any] = [running, exit_request] if hook is None else [hook, running, exit_request]
    scheduler = Scheduler(hooks=hooks, coordinator=options.coordinator)
    app = create_app(
        scheduler,
        token=options.token,
        allowed_hosts=_allowed_hosts(options),
        bind_address=sock.getsockname()[0],
    )
    runtime: ServiceRuntime = app.state.tickwork
    runtime.state = "starting"
    server = _Server(_http_config(options, app))
    server_task = asyncio.create_task(server.serve(sockets=[sock]), name="tickwork-http")
    async with contextlib.AsyncExitStack() as resources:
        failure = await _setup(target, scheduler, resources, stop, options.target)
        if failure is not None:
            runtime.state = "shutting_down"
            server.should_exit = True
            await scheduler.shutdown(0)
            await _bounded(server_task, 1.0)
            raise ServiceError(failure)
        if not stop.is_set():
            runtime.state = "running"
            _log_serving(options, sock, scheduler.list_tasks())
            policy: ActionPolicy = app.state.tickwork_actions
            logger.info("%s", policy.describe())
            await _wait_for_stop(stop, server_task, signals)
        request = requests[0]
        deadline = request.deadline
        if request.signum is None and exit_request.task is not None:
            logger.error(
                "%s, shutting down gracefully (exit code %d)...", request.reason, request.exit_code
            )
        else:
            logger.info("%s, shutting down gracefully...", request.reason)
        runtime.state = "shutting_down"
        # Stop accepting connections now; uvicorn drains what is open meanwhile.
        server.should_exit = True
        report = await _shutdown_scheduler(scheduler, options.grace, deadline.scheduler_by)
        cause = ""
        if exit_request.task is not None and request.signum is None:
            cause = f" (requested by task {exit_request.task}: {exit_request.error})"
        left_running, overran = _log_report(report, running.names(), deadline, cause)
        # What is left of the budget goes to the app's resources, then to the HTTP server.
        released = await _bounded(resources.aclose(), deadline.left(deadline.resources_by))
        if not released:
            logger.error("Releasing the app's resources did not finish in time; exiting anyway")
    await _bounded(server_task, deadline.left(deadline.server_by))
    # Idle workers of the default executor leave now; one stuck in a function never will.
    executor.shutdown(wait=False, cancel_futures=True)
    threads = await _wait_for_threads(deadline.threads_by)
    code = request.exit_code or (1 if overran or not released else 0)
    if left_running or threads:
        # Interpreter shutdown would wait for these forever: nothing can stop them.
        if threads:
            left_running.append(f"{', '.join(threads)} still running in threads")
        logger.warning("Exiting at once (exit code %d): %s", code, "; ".join(left_running))
        hard_exit(code)
    return code


def _allowed_hosts(options: RunOptions) -> tuple[str, ...]:
    """``--allowed-host`` plus ``--host`` when it names one host (not ``0.0.0.0``, ``::``)."""
    try:
        given = check_host_name(options.host)
    except ValueError:
        return options.allowed_hosts
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(given).is_unspecified:
            return options.allowed_hosts
    return (*options.allowed_hosts, given)


def _log_serving(options: RunOptions, sock: socket.socket, tasks: list[str]) -> None:
    """Log the URL to use and, on an address other hosts reach without a token, a warning."""
    host, port = sock.getsockname()[:2]
    address = ipaddress.ip_address(host.split("%")[0])
    if address.is_unspecified:
        # "http://[::]:8080" or "http://0.0.0.0:8080" is no URL to open: name the loopback one.
        local = "[::1]" if address.version == 6 else "127.0.0.1"
        where = f"http://{local}:{port} (listening on every address, port {port})"
    else:
        where = f"http://{f'[{host}]' if address.version == 6 else host}:{port}"
    logger.info(
        "Serving %s on %s (%d task(s): %s)",
        options.target,
        where,
        len(tasks),
        ", ".join(tasks) or "none",
    )
    if options.token is None and not address.is_loopback:
        logger.warning(
            "Listening on %s without a token: anyone who can reach this address can read "
            "/status, /metrics and /history; set TICKWORK_TOKEN (or --token), or bind 127.0.0.1",
            options.host,
        )


def _log_report(
    report: ShutdownReport | None, running: list[str], deadline: ShutdownDeadline, cause: str = ""
) -> tuple[list[str], bool]:
    """Log what the scheduler's shutdown did.

    Returns:
        What is still running, one phrase each; and whether the shutdown overran: an execution
        ignored its cancellation, or the scheduler's shutdown did not return in time. (A plain
        function left in its thread is no overrun: threads cannot be stopped, by design.)
    """
    if report is None:
        logger.error(
            "The scheduler's shutdown did not return within %.1f s; still running: %s",
            deadline.scheduler_by - deadline.requested_at,
            ", ".join(running) or "none",
        )
        return [f"the scheduler's shutdown ({', '.join(running) or 'no task'})"], True
    # A coroutine that swallows its cancellation is still under way; the core lists it as
    # cancelled (and warns that it did not stop).
    ignored = [name for name in running if name not in report.abandoned]
    cancelled = [name for name in report.cancelled if name not in ignored]
    logger.log(
        logging.WARNING if ignored else logging.INFO,
        "Shutdown complete%s: finished: %s; cancelled: %s; abandoned in threads: %s; "
        "ignored cancellation: %s",
        cause,
        ", ".join(report.finished) or "none",
        ", ".join(cancelled) or "none",
        ", ".join(report.abandoned) or "none",
        ", ".join(ignored) or "none",
    )
    left = []
    if report.abandoned:
        left.append(f"{', '.join(report.abandoned)} still running in threads")
    if ignored:
        left.append(f"{', '.join(ignored)} ignored cancellation and still running")
    return left, bool(ignored)


async def _wait_for_stop(
    stop: asyncio.Event, server_task: asyncio.Task[None], signals: ShutdownSignals
) -> None:
    """Wait for a shutdown request; if the HTTP server ends first, request one (exit 1)."""
    stop_wait = asyncio.create_task(stop.wait())
    await asyncio.wait([stop_wait, server_task], return_when=asyncio.FIRST_COMPLETED)
    if not stop.is_set():
        # uvicorn gave up on its own: do not keep running tasks nobody can observe.
        signals.request("The HTTP server stopped unexpectedly", 1)
    await stop_wait


async def _wait_for_threads(deadline: float) -> list[str]:
    """Wait until ``deadline`` (monotonic) for non-daemon threads to end; return those left."""
    main = threading.main_thread()
    while True:
        threads = [t.name for t in threading.enumerate() if t is not main and not t.daemon]
        if not threads or time.monotonic() >= deadline:
            return threads
        # No event tells when a thread ends; poll briefly, bounded by the deadline.
        await asyncio.sleep(0.02)


async def _setup(
    target: Callable[..., Any],
    scheduler: Scheduler,
    resources: contextlib.AsyncExitStack,
    stop: asyncio.Event,
    spec: str,
) -> str | None:
    """Call the app's setup; return a one-line error, or None when it succeeded (or a signal
    came first, which cancels it)."""

    async def call() -> Any:
        result = target(scheduler)
        if inspect.isawaitable(result):
            result = await result
        return result

    setup = asyncio.create_task(call(), name="tickwork-setup")
    stop_wait = asyncio.create_task(stop.wait())
    await asyncio.wait([setup, stop_wait], return_when=asyncio.FIRST_COMPLETED)
    stop_wait.cancel()
    if not setup.done():
        setup.cancel()
        await asyncio.wait([setup])
        return None
    if setup.cancelled():
        return f"{spec} was cancelled during setup"
    exc = setup.exception()
    if exc is not None:
        logger.debug("Setup of %s failed", spec, exc_info=exc)
        return f"{spec} failed during setup: {type(exc).__name__}: {exc}"
    result = setup.result()
    try:
        if hasattr(result, "__aenter__") and hasattr(result, "__aexit__"):
            await resources.enter_async_context(result)
        elif callable(getattr(result, "aclose", None)):
            resources.push_async_callback(result.aclose)
    except Exception as exc:
        return f"{spec} failed during setup: {type(exc).__name__}: {exc}"
    return None


async def _shutdown_scheduler(
    scheduler: Scheduler, grace: float, deadline: float
) -> ShutdownReport | None:
    """Run ``scheduler.shutdown(grace)`` until ``deadline`` (monotonic); None if it is not done.

    The shutdown is left running rather than cancelled past the deadline: cancelling it would
    lose the report of a shutdown that was about to return.
    """
    shutdown = asyncio.ensure_future(scheduler.shutdown(grace))
    done, _ = await asyncio.wait([shutdown], timeout=ShutdownDeadline.left(deadline))
    return shutdown.result() if done else None


async def _bounded(awaitable: Any, seconds: float) -> bool:
    """Await ``awaitable`` for at most ``seconds``; return whether it finished."""
    task = asyncio.ensure_future(awaitable)
    done, _ = await asyncio.wait([task], timeout=max(0.0, seconds))
    if not done:
        task.cancel()
        return False
    if task.cancelled():
        return False
    error = task.exception()
    if error is not None:
        logger.error("Error during shutdown: %s: %s", type(error).__name__, error, exc_info=error)
        return False
    return True
