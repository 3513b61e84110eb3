"""The ``cluster`` section of ``/status`` and the coordination metrics.

The view is read from the coordinator at most once a second (``/status`` is polled every second
by each open page); a coordinator that does not answer is reported, not raised.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tickwork.coordination import CoordinatorError

if TYPE_CHECKING:
    from tickwork import Scheduler

__all__ = ["ClusterStatus", "CoordinationCollector"]

# The cluster view is read at most this often (seconds).
_CACHE = 1.0


class ClusterStatus:
    """Reads and caches the cluster view of a scheduler's coordinator."""

    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler
        self._cached: dict[str, Any] | None = None
        self._read_at = 0.0
        self._lock = asyncio.Lock()

    async def document(self) -> dict[str, Any] | None:
        """The ``cluster`` section of ``/status``; None without a coordinator."""
        coordinator = self._scheduler.coordinator
        if coordinator is None:
            return None
        async with self._lock:
            if self._cached is not None and time.monotonic() - self._read_at < _CACHE:
                return self._cached
            base: dict[str, Any] = {
                "backend": coordinator.backend,
                "cluster": coordinator.cluster,
                "replica": coordinator.replica,
                "lease_ttl": coordinator.ttl,
                "ready": self._scheduler.coordinator_ready,
            }
            try:
                async with asyncio.timeout(max(1.0, coordinator.ttl / 3)):
                    view = await coordinator.cluster_view()
            except (CoordinatorError, TimeoutError, OSError) as exc:
                document = {**base, "reachable": False, "error": str(exc)[:500]}
            else:
                document = {
                    **base,
                    "reachable": True,
                    "peers": [
                        {
                            "replica": p.replica,
                            "host": p.host,
                            "pid": p.pid,
                            "alive": p.alive,
                            "last_seen_ago": round(p.last_seen_ago, 3),
                            "started_ago": round(p.started_ago, 3),
                            "tasks": list(p.tasks),
                        }
                        for p in view.peers
                    ],
                    "tasks": [
                        {
                            "name": t.name,
                            "interval": t.interval,
                            "holder": t.holder,
                            "token": t.token,
                            "lease_expires_in": _round(t.lease_expires_in),
                            "next_due_in": _round(t.next_due_in),
                            "runs": t.runs,
                            "failures": t.failures,
                            "last_outcome": t.last_outcome,
                            "paused": t.paused,
                            "paused_for": _round(t.paused_for),
                            "paused_by": t.paused_by,
                            "run_requested": t.run_requested,
                            "orphaned": t.orphaned,
                        }
                        for t in view.tasks
                    ],
                }
            self._cached = document
            self._read_at = time.monotonic()
            return document


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


class CoordinationCollector(Collector):
    """Lease counters and coordinator call time, read from the scheduler at scrape time."""

    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler

    def collect(self) -> Iterator[Metric]:
        coordination = self._scheduler._coordination
        if coordination is None:
            return
        leases = CounterMetricFamily(
            "tickwork_leases", "Leases of singleton runs by event.", labels=["event"]
        )
        leases.add_metric(["acquired"], coordination.leases_acquired)
        leases.add_metric(["lost"], coordination.leases_lost)
        leases.add_metric(["superseded"], coordination.leases_superseded)
        yield leases
        calls = CounterMetricFamily("tickwork_coordinator_calls", "Calls to the coordinator.")
        calls.add_metric([], coordination.calls)
        yield calls
        seconds = CounterMetricFamily(
            "tickwork_coordinator_call_seconds", "Seconds spent in coordinator calls."
        )
        seconds.add_metric([], coordination.call_seconds)
        yield seconds
        ready = GaugeMetricFamily(
            "tickwork_coordinator_ready", "1 while the coordinator answers, else 0."
        )
        ready.add_metric([], 1.0 if coordination.ready else 0.0)
        yield ready
