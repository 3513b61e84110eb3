"""The service's live state behind the HTTP endpoints: phase, clocks, monitor, history, metrics.

One :class:`ServiceRuntime` per :func:`tickwork.service.create_app` call. It adds two execution
hooks to the scheduler (the recent-executions ring and the metrics) and owns the loop monitor.

Phases (``state``)::

    starting --(the app's setup returned)--> running --(SIGTERM/SIGINT)--> shutting_down

An app created by a user for their own server starts in ``running``; ``tickwork run`` moves it
through all three.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from tickwork._spec import check_finite
from tickwork.service._cluster import ClusterStatus, CoordinationCollector
from tickwork.service._components import collect_components
from tickwork.service._history import HistoryRing
from tickwork.service._lag import LoopMonitor
from tickwork.service._taskview import DEFAULT_STUCK_AFTER, overdue_by, task_view
from tickwork.service.metrics import SchedulerMetrics

if TYPE_CHECKING:
    from tickwork import Scheduler

__all__ = ["ServicePhase", "ServiceRuntime"]

ServicePhase: TypeAlias = Literal["starting", "running", "shutting_down"]

# A task past due by less than this is simply being started, not "overdue" in a warning.
_OVERDUE_TOLERANCE = 0.1


class ServiceRuntime:
    """Live state shared by the endpoints of one app.

    Args:
        scheduler: The scheduler served.
        lag_threshold: Seconds of event-loop lag above which ``/health`` answers 503 and a stall
            is reported.
        stuck_after: Seconds after which a running execution of a task without a timeout is
            ``stuck``.
        history_size: Recent executions kept per task.
        probe_interval: Seconds between two loop-lag probes.
    """

    def __init__(
        self,
        scheduler: Scheduler,
        *,
        lag_threshold: float = 1.0,
        stuck_after: float = DEFAULT_STUCK_AFTER,
        history_size: int = 100,
        probe_interval: float = 0.25,
    ) -> None:
        check_finite("lag_threshold", lag_threshold, zero=False)
        check_finite("stuck_after", stuck_after, zero=False)
        self.scheduler = scheduler
        self.state: ServicePhase = "running"
        self.started_at = time.time()
        self._started_monotonic = time.monotonic()
        self.lag_threshold = float(lag_threshold)
        self.stuck_after = float(stuck_after)
        self.monitor = LoopMonitor(
            interval=probe_interval, threshold=lag_threshold, delayed_tasks=self._delayed_tasks
        )
        self.history = HistoryRing(history_size)
        self.metrics = SchedulerMetrics(scheduler, monitor=self.monitor)
        self.metrics.registry.register(CoordinationCollector(scheduler))
        self.cluster = ClusterStatus(scheduler)
        scheduler.add_hook(self.history)
        scheduler.add_hook(self.metrics)

    @property
    def uptime(self) -> float:
        """Seconds since the runtime was created (monotonic)."""
        return time.monotonic() - self._started_monotonic

    def _delayed_tasks(self, since: float) -> list[str]:
        # Overdue now, or started (late) since ``since``: when the loop resumes, a delayed
        # task's timer may fire before the probe's, so by now it may be running or even done.
        now = time.time()
        names = []
        for status in self.scheduler.status():
            started_since = (status.last_started_at or 0.0) >= since
            recent = self.history.get(status.name)[-1:]
            late_run = (
                bool(recent)
                and recent[0]["started_at"] >= since
                and (recent[0]["lateness"] > _OVERDUE_TOLERANCE)
            )
            if (
                (status.state == "running" and started_since)
                or late_run
                or overdue_by(status, now) > _OVERDUE_TOLERANCE
            ):
                names.append(status.name)
        return names

    def health(self) -> tuple[bool, str | None]:
        """Return ``(healthy, reason)``: healthy while running with a responsive loop."""
        self.monitor.start()
        if self.state != "running":
            return False, f"service is {self.state}"
        if self.scheduler.closed:
            return False, "scheduler is shut down"
        lag = self.monitor.current_lag()
        if lag > self.lag_threshold:
            return False, (
                f"event loop lag {lag:.3f} s is above the threshold of {self.lag_threshold:g} s"
            )
        return True, None

    def ready(self) -> tuple[bool, str | None]:
        """Return ``(ready, reason)``: healthy, and the coordinator (if any) answering."""
        healthy, reason = self.health()
        if not healthy:
            return healthy, reason
        if not self.scheduler.coordinator_ready:
            return False, "the coordinator is unreachable (singleton tasks do not run)"
        return True, None

    async def status_document(self) -> dict[str, Any]:
        """Return the ``/status`` JSON document (see :mod:`tickwork.service.http`)."""
        self.monitor.start()
        now = time.time()
        tasks = [task_view(s, now, self.stuck_after) for s in self.scheduler.status()]
        last = self.monitor.last_event
        return {
            "state": self.state,
            "started_at": self.started_at,
            "uptime": round(self.uptime, 3),
            "now": now,
            "event_loop_lag": round(self.monitor.current_lag(), 6),
            "stall_events": {
                kind: self.monitor.event_counts[kind] for kind in ("stall", "suspend", "clock_jump")
            },
            "last_stall": None if last is None else last.to_dict(),
            "tasks": tasks,
            "services": await collect_components(self.scheduler),
            "cluster": await self.cluster.document(),
        }

    def history_document(self, task: str | None) -> dict[str, list[dict[str, Any]]] | None:
        """Return ``/history``: every scheduled task's recent executions, or one task's.

        Returns None when ``task`` is neither scheduled nor remembered.
        """
        if task is not None:
            if task not in self.scheduler.list_tasks() and not self.history.get(task):
                return None
            return {task: self.history.get(task)}
        return {name: self.history.get(name) for name in self.scheduler.list_tasks()}

    def histories(self, names: list[str]) -> dict[str, list[dict[str, Any]]]:
        """Return the recent executions of each of ``names`` that is scheduled or remembered.

        Unknown names are left out; a name given twice appears once.
        """
        scheduled = set(self.scheduler.list_tasks())
        document: dict[str, list[dict[str, Any]]] = {}
        for name in names:
            if name not in document:
                entries = self.history.get(name)
                if entries or name in scheduled:
                    document[name] = entries
        return document

    async def metrics_document(self) -> bytes:
        """Return ``/metrics``: the scheduler's metrics plus each component's state."""
        return self.metrics.render(components=await collect_components(self.scheduler))
