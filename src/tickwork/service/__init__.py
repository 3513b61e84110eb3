"""The tickwork service runtime: HTTP status, health, metrics and history for a scheduler.

``tickwork run MODULE:CALLABLE`` (see :mod:`tickwork.service.cli`) runs an application; to
serve a scheduler from your own Starlette or FastAPI application, mount :func:`create_app`
(see :mod:`tickwork.service.http` for how, lifespan included). Applications report their
components (a database, an outside API) under ``/status`` -> ``services`` with
:func:`register_component`.
"""

from tickwork.service._components import (
    ComponentCheck,
    ComponentState,
    ComponentStatus,
    register_component,
)
from tickwork.service._tracing import TracingHook, tracing_hook
from tickwork.service.http import create_app
from tickwork.service.metrics import SchedulerMetrics

__all__ = [
    "ComponentCheck",
    "ComponentState",
    "ComponentStatus",
    "SchedulerMetrics",
    "TracingHook",
    "create_app",
    "register_component",
    "tracing_hook",
]
