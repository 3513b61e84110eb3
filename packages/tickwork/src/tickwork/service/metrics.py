"""Prometheus metrics for a scheduler, in a registry of their own.

:class:`SchedulerMetrics` is an :class:`tickwork.ExecutionHook` (counters and histograms are
fed by finished executions) and a collector (gauges are read from ``scheduler.status()`` at
scrape time, so they are never stale). Exported, with the ``task`` label where it applies:

==========================================  =========  =======================================
``tickwork_task_runs_total``                counter    finished executions, label ``outcome``
                                                       (a :data:`tickwork.Outcome`)
``tickwork_task_failures_total``            counter    executions that failed or timed out
``tickwork_task_duration_seconds``          histogram  execution durations
``tickwork_task_lateness_seconds``          histogram  start delay against the due time
``tickwork_task_running``                   gauge      1 while an execution runs
``tickwork_task_paused``                    gauge      1 while an operator has it paused
``tickwork_task_skipped_instants_total``    counter    a calendar task's instants that did not
                                                       run (``TaskStatus.skipped``)
``tickwork_task_last_success_timestamp_seconds``  gauge  epoch of the last success
``tickwork_task_overdue_seconds``           gauge      how far past due a waiting task is
``tickwork_event_loop_lag_seconds``         gauge      current event-loop lag
``tickwork_stall_events_total``             counter    stalls, suspends, clock jumps (``kind``)
``tickwork_component_status``               gauge      per ``component`` and ``status``: 1 for
                                                       its current state, 0 for the other three
==========================================  =========  =======================================

``tickwork_component_status`` is a state set (one series per component and state, the current
one 1): ``tickwork_component_status{status="ready"} == 0`` selects every component that is not
ready. It is present when :meth:`SchedulerMetrics.render` is given the components (``/metrics``
does: it runs the checks of :func:`tickwork.service.register_component`, as ``/status`` does).
No ``*_created`` series are exported: they would double the series count for a value
Prometheus does not need (a counter reset shows in the counter itself).

The registry is not prometheus-client's global one, so several schedulers (or tests) in one
process never collide.

A task's series live while it is scheduled: each scrape first drops the labelled series of
tasks no longer in ``scheduler.list_tasks()`` (cancelled ones), so a service that schedules
and cancels tasks with generated names does not grow without bound. Counters of scheduled
tasks are never touched; a name scheduled again after a scrape dropped it starts from 0,
which Prometheus reads as a counter reset.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Protocol, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector

from tickwork.service._lag import LoopMonitor, StallEvent
from tickwork.service._taskview import overdue_by

if TYPE_CHECKING:
    from tickwork import Execution, ExecutionResult, TaskStatus

__all__ = ["CONTENT_TYPE", "SchedulerMetrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
"""The ``Content-Type`` of :meth:`SchedulerMetrics.render`'s output."""

_DURATION_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)
_LATENESS_BUCKETS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 60.0)
_FAILED_OUTCOMES = frozenset({"failure", "timeout"})
_COMPONENT_STATES = ("ready", "degraded", "error", "needs_configuration")

_M = TypeVar("_M", bound=MetricWrapperBase)


class _StatusSource(Protocol):
    def status(self) -> list[TaskStatus]: ...

    def list_tasks(self) -> list[str]: ...


class SchedulerMetrics:
    """Collect a scheduler's metrics; add it to the scheduler as a hook.

    Args:
        scheduler: The scheduler whose ``status()`` feeds the gauges and whose
            ``list_tasks()`` decides which tasks' series are kept.
        monitor: The loop monitor whose lag and events are exported, if any.
        registry: Where to register; a new :class:`prometheus_client.CollectorRegistry` by
            default.

    Example:
        >>> metrics = SchedulerMetrics(scheduler)        # doctest: +SKIP
        >>> scheduler.add_hook(metrics)                  # doctest: +SKIP
        >>> body = metrics.render()                      # doctest: +SKIP
    """

    def __init__(
        self,
        scheduler: _StatusSource,
        *,
        monitor: LoopMonitor | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self._scheduler = scheduler
        self._monitor = monitor
        # The components of the scrape being rendered (render() holds _render_lock meanwhile).
        self._components: Mapping[str, Mapping[str, object]] = {}
        self._render_lock = threading.Lock()
        # Task name -> its labelled series (metric, label values): what to drop once the task
        # is not scheduled. The lock keeps the listing and the series in step when a scrape
        # runs on another thread than the hooks (older prometheus-client releases raise
        # KeyError when remove() names a series that does not exist).
        self._series: dict[str, set[tuple[MetricWrapperBase, tuple[str, ...]]]] = {}
        self._series_lock = threading.Lock()
        # Registered first: the registry collects in registration order, so the pruning runs
        # before the counters and histograms of the same scrape are read.
        self.registry.register(_PruneCollector(self))
        self._runs = Counter(
            "tickwork_task_runs",
            "Finished executions per task and outcome.",
            ["task", "outcome"],
            registry=self.registry,
        )
        self._failures = Counter(
            "tickwork_task_failures",
            "Executions that failed or timed out, per task.",
            ["task"],
            registry=self.registry,
        )
        self._duration = Histogram(
            "tickwork_task_duration_seconds",
            "Execution duration per task.",
            ["task"],
            buckets=_DURATION_BUCKETS,
            registry=self.registry,
        )
        self._lateness = Histogram(
            "tickwork_task_lateness_seconds",
            "Start delay of each execution against its due time, per task.",
            ["task"],
            buckets=_LATENESS_BUCKETS,
            registry=self.registry,
        )
        self._stalls = Counter(
            "tickwork_stall_events",
            "Event-loop stalls, process suspends and wall-clock jumps detected.",
            ["kind"],
            registry=self.registry,
        )
        for kind in ("stall", "suspend", "clock_jump"):
            self._stalls.labels(kind=kind)
        self.registry.register(_StatusCollector(self))
        if monitor is not None:
            monitor.add_listener(self._on_stall)

    def on_start(self, execution: Execution) -> None:
        """Record the start delay of an execution."""
        with self._series_lock:
            self._child(self._lateness, execution.task).observe(execution.lateness)

    def on_finish(self, execution: Execution, result: ExecutionResult) -> None:
        """Count a finished execution and record its duration."""
        task = execution.task
        with self._series_lock:
            self._child(self._runs, task, result.outcome).inc()
            # Created at 0 on success too, so rate() works from the first failure on.
            failures = self._child(self._failures, task)
            if result.outcome in _FAILED_OUTCOMES:
                failures.inc()
            self._child(self._duration, task).observe(result.duration)

    def _child(self, metric: _M, task: str, *labels: str) -> _M:
        """Return ``metric``'s series for ``task`` (first label) and ``labels``, listed."""
        values = (task, *labels)
        child = metric.labels(*values)
        self._series.setdefault(task, set()).add((metric, values))
        return child

    def _prune(self) -> None:
        """Drop the labelled series of every task that is no longer scheduled."""
        scheduled = set(self._scheduler.list_tasks())
        with self._series_lock:
            # An execution still finishing after cancel_task() lists its task again; the
            # next scrape drops it again.
            for task in [name for name in self._series if name not in scheduled]:
                for metric, values in self._series.pop(task):
                    metric.remove(*values)

    def _on_stall(self, event: StallEvent) -> None:
        self._stalls.labels(kind=event.kind).inc()

    def render(self, components: Mapping[str, Mapping[str, object]] | None = None) -> bytes:
        """Return every metric in the Prometheus text format (see :data:`CONTENT_TYPE`).

        Args:
            components: ``/status``'s ``services``: component name -> ``{"status": ...}``.
                Each adds its ``tickwork_component_status`` series; None or empty adds none.

        Returns:
            The exposition, without ``*_created`` series.
        """
        with self._render_lock:
            self._components = components or {}
            try:
                return generate_latest(_WithoutCreated(self.registry))
            finally:
                self._components = {}


class _WithoutCreated(Collector):
    """A registry view whose metrics carry no ``*_created`` samples."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        for metric in self._registry.collect():
            # Our own metric names never end in _created, so only prometheus-client's go.
            metric.samples = [s for s in metric.samples if not s.name.endswith("_created")]
            yield metric


class _PruneCollector(Collector):
    """Yields nothing; drops the series of unscheduled tasks at the start of each scrape."""

    def __init__(self, metrics: SchedulerMetrics) -> None:
        self._metrics = metrics

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        self._metrics._prune()
        return iter(())


class _StatusCollector(Collector):
    """Gauges read from ``scheduler.status()`` and the loop monitor at scrape time."""

    def __init__(self, metrics: SchedulerMetrics) -> None:
        self._metrics = metrics

    def describe(self) -> list[Metric]:
        # Describing without collecting: registration must not call status() (no loop yet).
        return list(self._families())

    def collect(self) -> Iterator[Metric]:
        running, paused, last_success, overdue, lag = self._families()
        skipped = CounterMetricFamily(
            "tickwork_task_skipped_instants",
            "Instants of a calendar task that did not run (overlap, downtime, misfire grace).",
            labels=["task"],
        )
        now = time.time()
        for status in self._metrics._scheduler.status():
            if status.schedule is not None:
                skipped.add_metric([status.name], status.skipped)
            running.add_metric([status.name], 1.0 if status.state == "running" else 0.0)
            paused.add_metric([status.name], 0.0 if status.paused_at is None else 1.0)
            if status.last_success_at is not None:
                last_success.add_metric([status.name], status.last_success_at)
            overdue.add_metric([status.name], overdue_by(status, now))
        yield running
        yield paused
        if skipped.samples:
            yield skipped
        yield last_success
        yield overdue
        monitor = self._metrics._monitor
        if monitor is not None:
            lag.add_metric([], monitor.current_lag())
            yield lag
        components = self._metrics._components
        if components:
            family = GaugeMetricFamily(
                "tickwork_component_status",
                "1 for the component's current status, 0 for the others.",
                labels=["component", "status"],
            )
            for name, component in components.items():
                current = component.get("status")
                for state in _COMPONENT_STATES:
                    family.add_metric([name, state], 1.0 if current == state else 0.0)
            yield family

    def _families(
        self,
    ) -> tuple[
        GaugeMetricFamily,
        GaugeMetricFamily,
        GaugeMetricFamily,
        GaugeMetricFamily,
        GaugeMetricFamily,
    ]:
        return (
            GaugeMetricFamily(
                "tickwork_task_running", "1 while an execution of the task runs.", labels=["task"]
            ),
            GaugeMetricFamily(
                "tickwork_task_paused",
                "1 while the task is paused by an operator (pause_task), else 0.",
                labels=["task"],
            ),
            GaugeMetricFamily(
                "tickwork_task_last_success_timestamp_seconds",
                "Epoch seconds of the task's last successful execution.",
                labels=["task"],
            ),
            GaugeMetricFamily(
                "tickwork_task_overdue_seconds",
                "Seconds a waiting task is past its due time (0 when not due).",
                labels=["task"],
            ),
            GaugeMetricFamily(
                "tickwork_event_loop_lag_seconds", "Current event-loop lag in seconds."
            ),
        )
