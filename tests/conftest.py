"""Fixtures shared by every test package."""

from __future__ import annotations

import os
import socket

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"

POSTGRES_URL = os.environ.get(
    "TICKWORK_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip (on a user's machine) or fail (in CI) when an external service does not answer."""
    if _answers(host, port):
        return
    message = f"{name} is not answering on {host}:{port}"
    if IN_CI:
        pytest.fail(f"{message}; CI must start it (see .ci/run)")
    pytest.skip(f"{message}; start it to run this test")


@pytest.fixture
def postgres_url() -> str:
    """The URL of the PostgreSQL test database; skips or fails when it is down."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    return POSTGRES_URL
