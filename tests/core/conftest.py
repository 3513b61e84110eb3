"""Core tests run on virtual time: idle waits jump the clock, so times are exact and instant."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import pytest

from tickwork.testing import VirtualTimeLoop


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Every async test under tests/core runs on a VirtualTimeLoop."""
    return {"virtual": VirtualTimeLoop}
