"""The tickwork service runtime: HTTP status, health, metrics, history and operator actions.

``tickwork run MODULE:CALLABLE`` (see :mod:`tickwork.service.cli`) runs an application; to
serve a scheduler from your own Starlette or FastAPI application, mount :func:`create_app`
(see :mod:`tickwork.service.http` for how, lifespan included). Applications report their
components (a database, an outside API) under ``/status`` -> ``services`` with
:func:`register_component`, and serve routes of their own (a read API) beside ``/status``, under
its token and rate limit, with :func:`register_routes`.

Needs the ``[service]`` extra (``pip install 'tickwork[service]'``); without it, importing
this package raises one ``ModuleNotFoundError`` that says so.
"""

from tickwork._extras import require_extra

require_extra(
    "tickwork.service", "service", ("click", "httpx", "prometheus_client", "starlette", "uvicorn")
)

from tickwork.service._components import (  # noqa: E402
    ComponentCheck,
    ComponentState,
    ComponentStatus,
    register_component,
)
from tickwork.service._routes import register_routes  # noqa: E402
from tickwork.service._tracing import TracingHook, tracing_hook  # noqa: E402
from tickwork.service.http import create_app  # noqa: E402
from tickwork.service.metrics import SchedulerMetrics  # noqa: E402

__all__ = [
    "ComponentCheck",
    "ComponentState",
    "ComponentStatus",
    "SchedulerMetrics",
    "TracingHook",
    "create_app",
    "register_component",
    "register_routes",
    "tracing_hook",
]
