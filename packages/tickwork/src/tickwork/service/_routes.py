"""Routes an application adds to the service's HTTP app: :func:`register_routes`.

An app's setup receives the scheduler, not the HTTP app (``tickwork run`` builds the app before
it calls setup; a user mounting :func:`~tickwork.service.create_app` builds it whenever they
like), so routes are registered per scheduler, like components: every app created for that
scheduler serves them, whether it was created before or after the registration. The core
runtime knows nothing of what the routes do.

Registry shape (the values must not reference the scheduler, or the weak key would never die)::

    scheduler --weak--> _Registry.routes   the routes as the app registered them
                        _Registry.apps     app --weak--> its wrapper (token, rate limit)
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Route

from tickwork import Scheduler

__all__ = ["attach_app", "register_routes"]

RouteWrapper = Callable[[Route], Route]
"""Turns an app's route into the one served: same path and methods, the endpoint guarded."""


@dataclass
class _Registry:
    routes: list[Route] = field(default_factory=list)
    apps: weakref.WeakKeyDictionary[Starlette, RouteWrapper] = field(
        default_factory=weakref.WeakKeyDictionary
    )


_registries: weakref.WeakKeyDictionary[Scheduler, _Registry] = weakref.WeakKeyDictionary()


def register_routes(scheduler: Scheduler, routes: Iterable[Route]) -> None:
    """Serve ``routes`` on the HTTP app of ``scheduler``, under the rules of ``/status``.

    Call it from an application's setup (``tickwork run`` passes setup the scheduler) to add
    endpoints of your own, e.g. a read API over what the tasks write. Each route is served by
    every app :func:`~tickwork.service.create_app` makes for ``scheduler``, already made or
    made later, with the rules of ``/status``: the bearer token when one is set (401
    otherwise), the per-client rate limit (a bucket of its own per route; 429 with
    ``Retry-After``), ``X-Content-Type-Options: nosniff`` on every answer and
    ``Cache-Control: no-store`` on JSON ones unless the endpoint sets its own, JSON 404/405
    for unknown paths and methods, no trailing-slash redirect. The endpoint answers
    everything else itself (its own 400 and 404 included). All routes are checked before any
    is added: a bad one adds none.

    Example::

        async def lists(request: Request) -> Response:
            return JSONResponse({"lists": [...]})

        def setup(scheduler: Scheduler) -> None:
            register_routes(scheduler, [Route("/api/lists", lists, methods=["GET"])])

    Args:
        scheduler: The :class:`tickwork.Scheduler` whose HTTP app serves the routes.
        routes: Starlette ``Route`` objects whose endpoints are ``async def
            endpoint(request) -> Response`` functions. Path parameters (``/items/{id:int}``)
            work as in Starlette.

    Raises:
        TypeError: ``scheduler`` is not a Scheduler, a route is not a ``starlette.routing.Route``,
            or its endpoint is not an async function.
        ValueError: A path is already served (by the service itself or an earlier
            registration) or given twice.
    """
    if not isinstance(scheduler, Scheduler):
        raise TypeError(f"scheduler must be a tickwork.Scheduler, got {scheduler!r}")
    routes = list(routes)
    registry = _registries.setdefault(scheduler, _Registry())
    taken = {route.path for route in registry.routes}
    for app in registry.apps:
        taken.update(_paths(app.router.routes))
    for route in routes:
        if not isinstance(route, Route):
            raise TypeError(f"routes must be starlette.routing.Route objects, got {route!r}")
        if not inspect.iscoroutinefunction(route.endpoint):
            raise TypeError(
                f"the endpoint of route {route.path!r} must be an async function, "
                f"got {route.endpoint!r}"
            )
        if route.path in taken:
            raise ValueError(f"route path {route.path!r} is already served")
        taken.add(route.path)
    registry.routes.extend(routes)
    for app, wrap in list(registry.apps.items()):
        app.router.routes.extend(wrap(route) for route in routes)


def attach_app(scheduler: Scheduler, app: Starlette, wrap: RouteWrapper) -> None:
    """Serve on ``app`` the routes registered for ``scheduler``, now and later (create_app).

    Raises:
        ValueError: A route registered earlier collides with one of ``app``'s own paths.
    """
    registry = _registries.setdefault(scheduler, _Registry())
    own = _paths(app.router.routes)
    for route in registry.routes:
        if route.path in own:
            raise ValueError(f"route path {route.path!r} is already served")
    app.router.routes.extend(wrap(route) for route in registry.routes)
    registry.apps[app] = wrap


def _paths(routes: Iterable[BaseRoute]) -> set[str]:
    return {route.path for route in routes if isinstance(route, Route)}
