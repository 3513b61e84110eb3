"""A small example application for ``tickwork run tickwork.service._example:setup``.

Two tasks (an async ``heartbeat`` every 2 s and a plain-function ``tally`` every 5 s) and one
component: something for ``/status``, ``/metrics`` and ``tickwork status`` to show with
``tickwork[service]`` alone, and the target of the service's process tests. The README's run
target is the reference service, ``miauflix.app:setup`` (distribution ``miauflix``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from tickwork import Scheduler
from tickwork.service import ComponentStatus, register_component

__all__ = ["setup"]

logger = logging.getLogger("tickwork.example")


@asynccontextmanager
async def setup(scheduler: Scheduler) -> AsyncIterator[None]:
    """Schedule the example tasks; released (logged) at shutdown.

    Args:
        scheduler: The running scheduler ``tickwork run`` passes in.
    """
    counts = {"heartbeat": 0, "tally": 0}

    async def heartbeat() -> None:
        counts["heartbeat"] += 1
        await asyncio.sleep(0.01)

    def tally() -> None:
        counts["tally"] += 1

    def check() -> ComponentStatus:
        return ComponentStatus("ready", details=dict(counts))

    scheduler.schedule_task("heartbeat", 2.0, heartbeat)
    scheduler.schedule_task("tally", 5.0, tally, timeout=1.0)
    register_component(scheduler, "example", check)
    yield
    logger.info("Example app released after %s", counts)
