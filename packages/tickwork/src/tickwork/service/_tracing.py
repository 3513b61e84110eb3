"""OpenTelemetry tracing of executions: one new root span per execution.

:func:`tracing_hook` returns a :class:`TracingHook` when ``opentelemetry-api`` is importable
and None otherwise; this module imports OpenTelemetry only inside that function, so without it
nothing is imported and nothing changes.

Each span is named ``task NAME``, starts from an empty context (no parent and no baggage
leaking from the code that scheduled the task), carries ``task.name``, ``task.interval``,
``task.lateness``, ``task.execution``, ``task.outcome`` and, when the outcome has one,
``task.outcome_reason`` (a snooze's reason, a failure's error text), records the error of a
failed or timed-out execution and ends with status ERROR then. The span is attached as the current
context in ``on_start`` (the core calls hooks in the execution's own context, so the span is
current in the task body, in a plain function's worker thread too) and detached in
``on_finish``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.trace import Span, TracerProvider

    from tickwork import Execution, ExecutionResult

__all__ = ["TracingHook", "tracing_hook"]


class TracingHook:
    """An :class:`tickwork.ExecutionHook` that runs each execution in its own root span.

    Args:
        tracer_provider: The provider to trace with; OpenTelemetry's global one by default.

    Raises:
        ImportError: ``opentelemetry-api`` is not installed (use :func:`tracing_hook` to get
            None instead).
    """

    def __init__(self, tracer_provider: TracerProvider | None = None) -> None:
        from opentelemetry import context, trace

        self._context = context
        self._trace = trace
        self._tracer = trace.get_tracer("tickwork", tracer_provider=tracer_provider)
        # (task name, execution number) -> (span, context token). A task never overlaps
        # itself, so the key is unique while the execution runs.
        self._open: dict[tuple[str, int], tuple[Span, object]] = {}

    def on_start(self, execution: Execution) -> None:
        """Start the execution's root span and make it the current context."""
        empty = self._context.Context()
        span = self._tracer.start_span(
            f"task {execution.task}",
            context=empty,
            attributes={
                "task.name": execution.task,
                "task.interval": execution.interval,
                "task.lateness": execution.lateness,
                "task.execution": execution.number,
            },
            start_time=int(execution.started_at * 1e9),
        )
        token = self._context.attach(self._trace.set_span_in_context(span, empty))
        self._open[(execution.task, execution.number)] = (span, token)

    def on_finish(self, execution: Execution, result: ExecutionResult) -> None:
        """Record the outcome (and error) on the span, end it and detach its context."""
        opened = self._open.pop((execution.task, execution.number), None)
        if opened is None:
            return
        span, token = opened
        span.set_attribute("task.outcome", result.outcome)
        if result.reason is not None:
            span.set_attribute("task.outcome_reason", result.reason)
        if result.error is not None:
            span.record_exception(result.error)
            span.set_status(
                self._trace.Status(
                    self._trace.StatusCode.ERROR, f"{type(result.error).__name__}: {result.error}"
                )
            )
        elif result.outcome == "success":
            span.set_status(self._trace.Status(self._trace.StatusCode.OK))
        span.end(end_time=int(result.finished_at * 1e9))
        self._context.detach(token)  # type: ignore[arg-type]


def tracing_hook(tracer_provider: Any = None) -> TracingHook | None:
    """Return a :class:`TracingHook`, or None when OpenTelemetry is not installed.

    Args:
        tracer_provider: The provider to trace with; OpenTelemetry's global one by default.
    """
    try:
        import opentelemetry.trace  # noqa: F401
    except ImportError:
        return None
    return TracingHook(tracer_provider)
