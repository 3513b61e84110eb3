"""Hostile clients and awkward shutdowns, over real sockets against a real ``tickwork run``."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import re
import socket
import sys

import httpx
import pytest

from tickwork import testing
from tickwork.service._connections import quiet_accept_errors

from .conftest import StartService

pytestmark = pytest.mark.slow

IDLE_APP = """
    async def nothing():
        pass

    def setup(scheduler):
        scheduler.schedule_task("nothing", 60, nothing)
"""


async def test_forwarded_for_does_not_dodge_the_rate_limit(start_service: StartService) -> None:
    """By default X-Forwarded-For is ignored: wrong tokens from one address meet the limit."""
    service = await start_service(IDLE_APP, env={"TICKWORK_TOKEN": "right"})
    async with httpx.AsyncClient(timeout=5) as client:
        codes = [
            (
                await client.get(
                    service.url("/status"),
                    headers={"Authorization": "Bearer wrong", "X-Forwarded-For": f"10.0.0.{i}"},
                )
            ).status_code
            for i in range(30)
        ]
    assert set(codes) == {401, 429}, codes
    assert codes[:10] == [401] * 10


async def test_forwarded_for_is_trusted_from_named_proxies(start_service: StartService) -> None:
    """With --forwarded-allow-ips naming the proxy, each forwarded client has its own bucket."""
    service = await start_service(
        IDLE_APP, "--forwarded-allow-ips", "127.0.0.1", env={"TICKWORK_TOKEN": "right"}
    )
    async with httpx.AsyncClient(timeout=5) as client:
        codes = [
            (
                await client.get(
                    service.url("/status"),
                    headers={"Authorization": "Bearer wrong", "X-Forwarded-For": f"10.0.0.{i}"},
                )
            ).status_code
            for i in range(30)
        ]
    assert codes == [401] * 30


# The service under a descriptor limit of 200, as in the probe.
LIMITED = (
    sys.executable,
    "-c",
    "import resource; resource.setrlimit(resource.RLIMIT_NOFILE, (200, 200)); "
    "from tickwork.__main__ import main; main()",
)


async def _closed_by_server(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> bool:
    try:
        return await loop.sock_recv(sock, 1024) == b""
    except ConnectionResetError:
        return True


@pytest.mark.timeout(60)
async def test_idle_and_slow_header_sockets_do_not_lock_out_health(
    start_service: StartService,
) -> None:
    """200 idle or slow-header sockets under a 200-descriptor limit: /health answers, each
    socket is closed in bounded time, and the log grows by a few lines."""
    service = await start_service(IDLE_APP, "--header-timeout", "2", command=LIMITED)
    loop = asyncio.get_running_loop()
    before = len(service.lines)
    sockets: list[socket.socket] = []
    try:
        async with asyncio.timeout(20):
            for i in range(200):
                sock = socket.socket()
                sockets.append(sock)
                sock.setblocking(False)
                await loop.sock_connect(sock, ("127.0.0.1", service.port))
                if i % 2:
                    # A request head that never ends.
                    await loop.sock_sendall(sock, b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: ")
            async with httpx.AsyncClient(timeout=5) as client:
                health = await client.get(service.url("/health"))
            assert health.status_code == 200
            closed = await asyncio.gather(*(_closed_by_server(loop, s) for s in sockets))
        assert all(closed)
    finally:
        for sock in sockets:
            sock.close()
    grown = service.lines[before:]
    assert 1 <= len(grown) <= 6, "\n".join(grown)
    assert "Traceback" not in service.output
    code, _ = await service.stop()
    assert code == 0, service.output


async def test_slow_head_after_a_response_is_closed(start_service: StartService) -> None:
    """After a response, a keep-alive connection gets --header-timeout for its next head."""
    service = await start_service(IDLE_APP, "--header-timeout", "1")
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection("127.0.0.1", service.port)

    async def drip() -> None:
        # A slow client: one header line every 0.3 s, which stops uvicorn's keep-alive timer.
        with contextlib.suppress(ConnectionError):
            while True:
                writer.write(b"X-Slow: 1\r\n")
                await writer.drain()
                await asyncio.sleep(0.3)

    try:
        async with asyncio.timeout(10):
            writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 ")
            length = re.search(rb"content-length: (\d+)", head, re.IGNORECASE)
            assert length is not None
            await reader.readexactly(int(length[1]))
            started = loop.time()
            dripping = asyncio.create_task(drip())
            assert await reader.read() == b""
            elapsed = loop.time() - started
            dripping.cancel()
    finally:
        writer.close()
    assert 0.9 <= elapsed < 3, elapsed


def test_accept_errors_are_logged_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    """1,000 accept() errors give one line at once and, 10 s later, one line with the count."""

    async def flood() -> None:
        loop = asyncio.get_running_loop()
        quiet_accept_errors(loop)
        error = OSError(errno.EMFILE, "Too many open files")
        for _ in range(1000):
            loop.call_exception_handler(
                {"message": "socket.accept() out of system resource", "exception": error}
            )
        await asyncio.sleep(15)

    caplog.set_level(logging.INFO, "tickwork.service")
    testing.run(flood())
    lines = [r.getMessage() for r in caplog.records if r.name == "tickwork.service"]
    what = "Cannot accept HTTP connections: the process is out of file descriptors"
    assert lines == [
        f"{what} ([Errno 24] Too many open files)",
        f"{what}: 999 more time(s) in the last 10 s",
    ]


async def test_trailing_slash_is_not_redirected_to_the_host_header(
    start_service: StartService,
) -> None:
    """GET /status/ with a foreign Host gets a JSON 404, never a redirect to that host."""
    service = await start_service(IDLE_APP)
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(service.url("/status/"), headers={"Host": "evil.example"})
    assert response.status_code == 404
    assert "location" not in response.headers
    assert response.json() == {"error": "not found"}


async def test_every_json_answer_has_safe_headers_and_no_banner(
    start_service: StartService,
) -> None:
    """200, 401, 404, 405 and 429 JSON answers carry nosniff and no-store, and no server header."""
    service = await start_service(IDLE_APP, env={"TICKWORK_TOKEN": "right"})
    auth = {"Authorization": "Bearer right"}
    async with httpx.AsyncClient(timeout=5) as client:
        answers = {
            200: await client.get(service.url("/status"), headers=auth),
            401: await client.get(service.url("/status")),
            404: await client.get(service.url("/nowhere")),
            405: await client.post(service.url("/status"), headers=auth),
        }
        for _ in range(20):
            response = await client.get(service.url("/health"))
            if response.status_code == 429:
                answers[429] = response
                break
    assert sorted(answers) == [200, 401, 404, 405, 429]
    for status, response in answers.items():
        assert response.status_code == status
        assert response.headers["content-type"] == "application/json", status
        assert response.headers["x-content-type-options"] == "nosniff", status
        assert response.headers["cache-control"] == "no-store", status
        assert "server" not in response.headers, status


async def test_unknown_task_name_is_not_echoed(start_service: StartService) -> None:
    """/history of an unknown task answers 404 without the name the client sent."""
    service = await start_service(IDLE_APP)
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(
            service.url("/history"), params={"task": "<script>alert(1)</script>"}
        )
    assert response.status_code == 404
    assert response.json() == {"error": "unknown task"}
    assert "script" not in response.text


async def test_every_address_without_token_warns_and_prints_a_usable_url(
    start_service: StartService,
) -> None:
    """Bound to :: without a token: a warning at startup, and a URL that answers."""
    service = await start_service(IDLE_APP, "--host", "::", wait=False)
    port = await service.wait_started(serving=re.compile(r"on http://\[::1\]:(\d+) "))
    await service.wait_for_line(r"WARNING .*Listening on :: without a token")
    async with httpx.AsyncClient(timeout=5) as client:
        assert (await client.get(f"http://[::1]:{port}/health")).status_code == 200


async def test_every_address_with_token_does_not_warn(start_service: StartService) -> None:
    """Bound to :: with a token, the service starts without the no-token warning."""
    service = await start_service(
        IDLE_APP, "--host", "::", wait=False, env={"TICKWORK_TOKEN": "right"}
    )
    await service.wait_started(serving=re.compile(r"on http://\[::1\]:(\d+) "))
    code, _ = await service.stop()
    assert code == 0, service.output
    assert "without a token" not in service.output


STUBBORN_APP = """
    import asyncio
    import sys

    async def stubborn():
        print("stubborn started", flush=True, file=sys.stderr)
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                print("cancellation swallowed", flush=True, file=sys.stderr)

    def setup(scheduler):
        scheduler.schedule_task("stubborn", 60, stubborn)
"""


async def test_swallowed_cancellation_is_reported_and_exits_1(
    start_service: StartService,
) -> None:
    """A coroutine that swallows its cancellation: the report names it, exit 1, in grace + 1 s."""
    service = await start_service(STUBBORN_APP, "--grace", "0.5")
    await service.wait_for_line("stubborn started")
    code, elapsed = await service.stop()
    assert code == 1, service.output
    assert elapsed < 1.5, service.output
    assert "cancellation swallowed" in service.output
    assert (
        "Shutdown complete: finished: none; cancelled: none; abandoned in threads: none; "
        "ignored cancellation: stubborn" in service.output
    )
    assert (
        "Exiting at once (exit code 1): stubborn ignored cancellation and still running"
        in service.output
    )
    assert "still running in threads" not in service.output


async def test_shutdown_requested_from_inside_with_its_exit_code(
    start_service: StartService,
) -> None:
    """request_shutdown(reason, code) from a task shuts the service down gracefully with code."""
    service = await start_service(
        """
        from tickwork.service._signals import request_shutdown

        async def quitter():
            request_shutdown("Task quitter asked to stop", 3)

        def setup(scheduler):
            scheduler.schedule_task("quitter", 60, quitter)
        """
    )
    code = await service.wait_exit()
    assert code == 3, service.output
    assert "Task quitter asked to stop, shutting down gracefully..." in service.output
    assert "Shutdown complete: " in service.output
