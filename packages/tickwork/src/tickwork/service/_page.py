"""The status page's static files (``GET /``), shipped in the package and served from memory.

The page is a data-free shell: HTML, CSS and JavaScript that fetch ``status`` and ``history``
(relative URLs, so the app can be mounted under a prefix) with the bearer token the operator
gives it, and, when ``status`` says actions are enabled, POST ``tasks/NAME/pause``, ``resume``
or ``trigger`` (a JSON body, the same token) for the buttons of each task. It is served without
the token, because a browser navigating to ``/`` cannot send an ``Authorization`` header; every
value it shows comes from the token-protected endpoints.

Every response carries a strict ``Content-Security-Policy`` (no inline script or style, nothing
but this origin), ``X-Content-Type-Options: nosniff`` and ``Cache-Control: no-cache`` with an
``ETag``, so a browser revalidates (``304``) and picks up a new version after an upgrade.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response

__all__ = ["PAGE_ROUTES", "StatusPage"]

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)

# URL path -> (file under tickwork/service/static/, media type)
PAGE_ROUTES: dict[str, tuple[str, str]] = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/status.css": ("status.css", "text/css; charset=utf-8"),
    "/static/status.js": ("status.js", "text/javascript; charset=utf-8"),
    "/static/favicon.svg": ("favicon.svg", "image/svg+xml"),
}


@dataclass(frozen=True)
class _Asset:
    body: bytes
    media_type: str
    etag: str


class StatusPage:
    """The page's files, read once from the installed package.

    Raises:
        FileNotFoundError: A file is missing from the installed package (a packaging bug).
    """

    def __init__(self) -> None:
        static = resources.files("tickwork.service").joinpath("static")
        self._assets: dict[str, _Asset] = {}
        for path, (name, media_type) in PAGE_ROUTES.items():
            body = static.joinpath(name).read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
            self._assets[path] = _Asset(body, media_type, etag)

    def response(self, request: Request, path: str) -> Response:
        """Return the file served at ``path`` (a key of :data:`PAGE_ROUTES`), or ``304``."""
        asset = self._assets[path]
        headers = {
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-cache",
            "ETag": asset.etag,
        }
        tags = request.headers.get("if-none-match", "")
        if asset.etag in (tag.strip() for tag in tags.split(",")):
            return Response(status_code=304, headers=headers)
        return Response(asset.body, media_type=asset.media_type, headers=headers)
