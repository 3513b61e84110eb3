"""`register_routes`: an application's own routes served under the rules of `/status`."""

from __future__ import annotations

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tickwork import Scheduler
from tickwork.service import create_app, register_routes

from .conftest import StartService, serving

pytestmark = pytest.mark.slow


async def _echo(request: Request) -> Response:
    return JSONResponse({"id": request.path_params["item_id"]})


def _routes() -> list[Route]:
    return [Route("/api/items/{item_id:int}", _echo, methods=["GET"])]


async def test_a_route_registered_before_the_app_needs_the_token_and_gets_the_headers() -> None:
    """A route registered before create_app answers 401 without the token, 200 with it."""
    async with Scheduler() as scheduler:
        register_routes(scheduler, _routes())
        app = create_app(scheduler, token="t")
        async with serving(app) as client:
            denied = await client.get("/api/items/7")
            answer = await client.get("/api/items/7", headers={"Authorization": "Bearer t"})
    assert denied.status_code == 401
    assert answer.status_code == 200
    assert answer.json() == {"id": 7}
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["cache-control"] == "no-store"


async def test_a_route_registered_after_the_app_is_served() -> None:
    """A route registered after create_app (as `tickwork run` calls setup) is served at once."""
    async with Scheduler() as scheduler:
        app = create_app(scheduler)
        register_routes(scheduler, _routes())
        async with serving(app) as client:
            answer = await client.get("/api/items/3")
            wrong_method = await client.post("/api/items/3")
    assert answer.json() == {"id": 3}
    assert wrong_method.status_code == 405
    assert wrong_method.json() == {"error": "method not allowed"}


async def test_registered_routes_are_rate_limited_per_client() -> None:
    """A client over the rate limit on a registered route gets 429 with Retry-After."""
    async with Scheduler() as scheduler:
        app = create_app(scheduler, rate_limit=0.5, burst=1)
        register_routes(scheduler, _routes())
        async with serving(app) as client:
            first = await client.get("/api/items/1")
            second = await client.get("/api/items/1")
    assert first.status_code == 200
    assert second.status_code == 429
    assert int(second.headers["retry-after"]) >= 1


@pytest.mark.parametrize(
    ("routes", "error", "message"),
    [
        ([Route("/status", _echo)], ValueError, "'/status' is already served"),
        ([Route("/a", _echo), Route("/a", _echo)], ValueError, "'/a' is already served"),
        (["/a"], TypeError, "must be starlette.routing.Route"),
        ([Route("/a", lambda request: None)], TypeError, "must be an async function"),
    ],
)
async def test_register_routes_rejects_bad_routes_and_adds_none(
    routes: list[Route], error: type[Exception], message: str
) -> None:
    """A taken path, a duplicate, a non-Route or a plain endpoint raises and adds no route."""
    async with Scheduler() as scheduler:
        app = create_app(scheduler)
        before = len(app.router.routes)
        with pytest.raises(error, match=message):
            register_routes(scheduler, routes)
        assert len(app.router.routes) == before


async def test_an_app_setup_registers_routes_under_tickwork_run(
    start_service: StartService,
) -> None:
    """`tickwork run` serves the routes its app's setup registered, over real HTTP."""
    service = await start_service(
        """
        from starlette.responses import JSONResponse
        from starlette.routing import Route
        from tickwork.service import register_routes

        async def hello(request):
            return JSONResponse({"hello": request.query_params.get("name", "")})

        def setup(scheduler):
            register_routes(scheduler, [Route("/api/hello", hello, methods=["GET"])])
        """,
        env={"TICKWORK_TOKEN": "secret"},
    )
    async with httpx.AsyncClient(timeout=5) as client:
        denied = await client.get(service.url("/api/hello"))
        answer = await client.get(
            service.url("/api/hello?name=x"), headers={"Authorization": "Bearer secret"}
        )
    await service.stop()
    assert denied.status_code == 401
    assert answer.json() == {"hello": "x"}
