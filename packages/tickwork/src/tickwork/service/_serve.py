"""``tickwork run``: one event loop running the scheduler, the app's setup and the HTTP server.

Life of the process::

    bind the socket (a port in use fails here, before anything starts)
    -> Scheduler + HTTP app, state "starting"; uvicorn serves on the same loop
    -> CALLABLE(scheduler) (awaited if async; an async context manager it returns is entered,
       an object with ``aclose()`` is remembered), state "running"
    -> first SIGTERM/SIGINT: state "shutting_down"; the server stops accepting connections
       while ``scheduler.shutdown(grace)`` runs; then the app's resources are released (within
       what is left of grace + 1 s), the report is logged, exit 0
    -> a second signal: exit 128 + signum at once (see ``_signals``)
    -> a task body raising SystemExit/KeyboardInterrupt (the core records it as that run's
       failure and tells the hooks): the same graceful shutdown, its report naming the task,
       exit 1

The process always ends within ``grace + 1`` s of the first signal: the scheduler's shutdown
and the resource release are bounded, a watchdog thread ends the process (exit 1) if the loop
itself is blocked, and when plain functions are still stuck in threads the process leaves with
``os._exit`` after flushing the logs, because interpreter shutdown would wait for non-daemon
threads (``asyncio.to_thread``'s) forever.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import logging
import math
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import uvicorn

from tickwork import Execution, ExecutionResult, Scheduler, ShutdownReport
from tickwork.service._logging import LogFormat, configure_logging
from tickwork.service._runtime import ServiceRuntime
from tickwork.service._signals import ShutdownSignals, hard_exit
from tickwork.service._tracing import tracing_hook
from tickwork.service.http import create_app

__all__ = ["RunOptions", "ServiceError", "bind_socket", "run_service"]

logger = logging.getLogger("tickwork.service")

# The share of "grace + 1 s" kept for what follows the scheduler's shutdown (resources, exit).
_SHUTDOWN_MARGIN = 1.0
# The graceful path ends this long before grace + 1 s, leaving time for the process to exit:
# scheduler shutdown <= end - 0.3 s, resources <= end - 0.15 s, HTTP server <= end - 0.1 s.
_EXIT_RESERVE = 0.3
# The watchdog fires this long before grace + 1 s: after the graceful path's end, so it only
# fires when the loop itself is blocked.
_WATCHDOG_EARLY = 0.2


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


class _ExitRequest:
    """An execution hook: the first body raising SystemExit/KeyboardInterrupt stops the service.

    The core keeps the task scheduled and records the run as a failure; a process-level
    intent (``sys.exit()`` in a task) is honoured here, as a graceful shutdown.
    """

    def __init__(self, on_request: Callable[[], None]) -> None:
        self._on_request = on_request
        self.task: str | None = None
        self.error = ""

    def on_start(self, execution: Execution) -> None:
        """Nothing to do when an execution starts."""

    def on_finish(self, execution: Execution, result: ExecutionResult) -> None:
        """Request the shutdown on the first SystemExit/KeyboardInterrupt of a body."""
        if self.task is None and isinstance(result.error, (SystemExit, KeyboardInterrupt)):
            self.task = execution.task
            self.error = f"{type(result.error).__name__}: {result.error}".rstrip(": ")
            self._on_request()


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
        sock.listen(128)
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
    stop = asyncio.Event()
    signal_received: list[tuple[int, float]] = []

    def on_signal(signum: int) -> None:
        signal_received.append((signum, time.monotonic()))
        stop.set()

    signals = ShutdownSignals(
        loop, on_signal, deadline=options.grace + _SHUTDOWN_MARGIN - _WATCHDOG_EARLY
    )
    signals.install()
    try:
        return await _serve(options, target, sock, stop, signal_received)
    finally:
        signals.restore()


async def _serve(
    options: RunOptions,
    target: Callable[..., Any],
    sock: socket.socket,
    stop: asyncio.Event,
    signal_received: list[tuple[int, float]],
) -> int:
    # Our own default executor, so that shutdown can stop its idle workers without waiting
    # for busy ones (``shutdown_default_executor`` joins them, blocking the loop, in 3.11).
    executor = concurrent.futures.ThreadPoolExecutor(thread_name_prefix="tickwork-default")
    asyncio.get_running_loop().set_default_executor(executor)
    hook = tracing_hook()

    def exit_requested() -> None:
        if not stop.is_set():
            signal_received.append((0, time.monotonic()))
            stop.set()

    exit_request = _ExitRequest(exit_requested)
    scheduler = Scheduler(hooks=[exit_request] if hook is None else [exit_request, hook])
    app = create_app(scheduler, token=options.token)
    runtime: ServiceRuntime = app.state.tickwork
    runtime.state = "starting"
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=max(1, math.ceil(options.grace)),
    )
    server = _Server(config)
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
            host, port = sock.getsockname()[:2]
            tasks = scheduler.list_tasks()
            logger.info(
                "Serving %s on http://%s:%s (%d task(s): %s)",
                options.target,
                host,
                port,
                len(tasks),
                ", ".join(tasks) or "none",
            )
            await _wait_for_stop(stop, server_task, signal_received)
        signum, signalled_at = signal_received[0]
        if signum:
            logger.info("Received %s, shutting down gracefully...", signal.Signals(signum).name)
        elif exit_request.task is not None:
            logger.error(
                "Task %s raised %s, shutting down gracefully (exit code 1)...",
                exit_request.task,
                exit_request.error,
            )
        runtime.state = "shutting_down"
        # Stop accepting connections now; uvicorn drains what is open meanwhile.
        server.should_exit = True
        end = signalled_at + options.grace + _SHUTDOWN_MARGIN - _EXIT_RESERVE
        report = await _shutdown_scheduler(scheduler, options.grace, end - 0.3)
        # What is left of the budget goes to the app's resources, then to the HTTP server.
        released = await _bounded(resources.aclose(), end - 0.15 - time.monotonic())
        if not released:
            logger.error("Releasing the app's resources did not finish in time; exiting anyway")
    await _bounded(server_task, end - 0.1 - time.monotonic())
    code = 0 if released and exit_request.task is None else 1
    if report is not None:
        cause = ""
        if exit_request.task is not None:
            cause = f" (requested by task {exit_request.task}: {exit_request.error})"
        logger.info(
            "Shutdown complete%s: finished: %s; cancelled: %s; abandoned in threads: %s",
            cause,
            ", ".join(report.finished) or "none",
            ", ".join(report.cancelled) or "none",
            ", ".join(report.abandoned) or "none",
        )
    # Idle workers of the default executor leave now; one stuck in a function never will.
    executor.shutdown(wait=False, cancel_futures=True)
    threads = await _wait_for_threads(min(end, time.monotonic() + 0.2))
    if report is None or report.abandoned or threads:
        # Interpreter shutdown would wait for these threads forever: nothing can stop them.
        logger.warning(
            "Exiting at once: %s still running in threads",
            ", ".join([*(report.abandoned if report else ()), *threads]) or "work",
        )
        hard_exit(code)
    return code


async def _wait_for_stop(
    stop: asyncio.Event,
    server_task: asyncio.Task[None],
    signal_received: list[tuple[int, float]],
) -> None:
    """Wait for a signal; if the HTTP server ends first, treat that as a stop request."""
    stop_wait = asyncio.create_task(stop.wait())
    await asyncio.wait([stop_wait, server_task], return_when=asyncio.FIRST_COMPLETED)
    stop_wait.cancel()
    if not stop.is_set():
        # uvicorn gave up on its own: do not keep running tasks nobody can observe.
        logger.error("The HTTP server stopped unexpectedly; shutting down")
        signal_received.append((0, time.monotonic()))


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
    """Run ``scheduler.shutdown(grace)``, bounded by ``deadline`` (monotonic); None if cut."""
    try:
        async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
            return await scheduler.shutdown(grace)
    except TimeoutError:
        logger.error("The scheduler's shutdown did not return in time; exiting anyway")
        return None


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
