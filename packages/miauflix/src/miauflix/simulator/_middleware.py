"""The ASGI middleware that applies `Faults` to HTTP requests before (or after) the real route."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from miauflix.simulator._context import Context

logger = logging.getLogger("miauflix.simulator")

_HTML = (
    b"<!DOCTYPE html><html><head><title>Just a moment...</title></head>"
    b"<body><h1>Checking your browser before accessing the site.</h1></body></html>"
)


_TMDB_RATE_LIMIT = (
    b'{"status_code":25,"status_message":"Your request count (41) is over the allowed limit '
    b'of (40).","success":false}'
)


class FaultMiddleware:
    """Adds latency, errors, 429s, hangs, HTML pages and truncated bodies as `Faults` says."""

    def __init__(self, app: ASGIApp, context: Context) -> None:
        self.app = app
        self.context = context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        faults = self.context.faults
        if not faults.applies_to(path):
            await self.app(scope, receive, send)
            return
        if faults.latency > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.context.closing.wait(), faults.latency)
        outcome = faults.draw(self.context.rng)
        if outcome != "normal":
            logger.debug("fault %s on %s", outcome, path)
        if outcome == "hang":
            await self._hang(receive)
            await _send(send, 503, b"text/plain", b"simulator stopping")
        elif outcome == "error":
            status = self.context.rng.choice((500, 502, 503))
            await _send(send, status, b"text/plain", f"simulated error {status}".encode())
        elif outcome == "rate_limit":
            retry = [(b"retry-after", str(faults.retry_after).encode())]
            if path == "/tmdb" or path.startswith("/tmdb/"):
                await _send(send, 429, b"application/json", _TMDB_RATE_LIMIT, retry)
            else:
                await _send(send, 429, b"text/plain", b"Too Many Requests", retry)
        elif outcome == "html":
            await _send(send, 200, b"text/html; charset=utf-8", _HTML)
        elif outcome == "truncate":
            await self._truncated(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _hang(self, receive: Receive) -> None:
        """Wait until the client disconnects or the simulator stops."""

        async def disconnected() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        closing = asyncio.ensure_future(self.context.closing.wait())
        gone = asyncio.ensure_future(disconnected())
        try:
            await asyncio.wait((closing, gone), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (closing, gone):
                waiter.cancel()
            await asyncio.gather(closing, gone, return_exceptions=True)

    async def _truncated(self, scope: Scope, receive: Receive, send: Send) -> None:
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        if start is None:
            raise RuntimeError(f"the route for {scope['path']!r} sent no response")
        body = b"".join(chunks)
        cut = body[: len(body) // 2]
        headers = [
            (name, value) for name, value in start.get("headers", []) if name != b"content-length"
        ]
        headers.append((b"content-length", str(len(cut)).encode()))
        await send({"type": "http.response.start", "status": start["status"], "headers": headers})
        await send({"type": "http.response.body", "body": cut})


async def _send(
    send: Send,
    status: int,
    content_type: bytes,
    body: bytes,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
