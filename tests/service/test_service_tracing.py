"""The OpenTelemetry hook: a new root span per execution, current while the body runs."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from tickwork import Scheduler
from tickwork.service import TracingHook, tracing_hook
from tickwork.testing import wait_until

from .conftest import StartService

pytestmark = pytest.mark.slow


@pytest.fixture
def exporter() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """A tracer provider exporting to memory."""
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    yield provider, spans
    provider.shutdown()


async def test_each_execution_is_a_root_span(
    exporter: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    """Spans are named ``task NAME``, have no parent, carry the attributes and are current."""
    provider, spans = exporter
    seen: dict[str, object] = {}
    tracer = provider.get_tracer("test")

    async def coro() -> None:
        seen["coro"] = trace.get_current_span()

    def plain() -> None:
        seen["plain"] = trace.get_current_span()

    async def broken() -> None:
        raise ValueError("no rows")

    async with Scheduler(hooks=[TracingHook(provider)]) as scheduler:
        # A span current at schedule time must not become the executions' parent.
        with tracer.start_as_current_span("caller"):
            scheduler.schedule_task("coro", 60, coro)
            scheduler.schedule_task("plain", 60, plain)
            scheduler.schedule_task("broken", 60, broken)
        await wait_until(lambda: sum(s.runs for s in scheduler.status()) >= 3, timeout=5)
    finished = {s.name: s for s in spans.get_finished_spans() if s.name.startswith("task ")}
    assert set(finished) == {"task coro", "task plain", "task broken"}
    for name, span in finished.items():
        task = name.removeprefix("task ")
        assert span.parent is None
        assert span.attributes is not None
        assert span.attributes["task.name"] == task
        assert span.attributes["task.interval"] == 60.0
        assert span.attributes["task.lateness"] >= 0  # type: ignore[operator]
        assert span.attributes["task.execution"] == 1
        if task != "broken":
            current = seen[task]
            assert current.get_span_context().span_id == span.context.span_id  # type: ignore[attr-defined]
            assert span.attributes["task.outcome"] == "success"
    broken_span = finished["task broken"]
    assert broken_span.attributes is not None
    assert broken_span.attributes["task.outcome"] == "failure"
    assert broken_span.status.status_code is StatusCode.ERROR
    assert broken_span.events[0].name == "exception"
    assert otel_context.get_current() == otel_context.Context()


def test_tracing_hook_without_opentelemetry_imports_nothing() -> None:
    """When opentelemetry cannot be imported, tracing_hook() is None and nothing is loaded."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.startswith('opentelemetry'):\n"
        "            raise ImportError('blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import tickwork.service, tickwork.service.cli\n"
        "from tickwork.service import tracing_hook\n"
        "assert tracing_hook() is None\n"
        "assert not [m for m in sys.modules if m.startswith('opentelemetry')]\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.stdout.strip() == "ok", result.stderr


def test_tracing_hook_available_with_opentelemetry() -> None:
    """With opentelemetry installed, tracing_hook() returns a TracingHook."""
    assert isinstance(tracing_hook(), TracingHook)


TRACED_APP = """
    import sys

    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

    def line(span):
        return f"exported span {span.name!r} outcome={span.attributes['task.outcome']}\\n"

    # Installed at import, as an app would: before `tickwork run` builds its scheduler.
    provider = TracerProvider()
    provider.add_span_processor(
        SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stderr, formatter=line))
    )
    trace.set_tracer_provider(provider)

    async def traced():
        pass

    def setup(scheduler):
        scheduler.schedule_task("traced", 60, traced)
"""


async def test_tickwork_run_traces_executions_with_the_global_provider(
    start_service: StartService,
) -> None:
    """``tickwork run`` adds the tracing hook, so executions reach the app's global provider."""
    service = await start_service(TRACED_APP)
    await service.wait_for_line(r"exported span 'task traced' outcome=success", timeout=10)
    code, _ = await service.stop()
    assert code == 0, service.output
