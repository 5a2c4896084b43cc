"""The Starlette app of a replay server: the API routes behind one fault-injecting wrapper, plus
the ``/replay/*`` control endpoints.

Why one wrapper: every API route must record the request (without headers, so without secrets),
consume the transport-fault counters, answer with the ``Date`` header set to the replay clock and
shape its errors the way its API does. Doing that once keeps the routes about data only.

Route handlers are plain functions ``(Ctx) -> dict`` run in Starlette's thread pool (pandas work
must not block the event loop, where ``timeout_burst`` sleeps).

Control endpoints (no auth: the server listens on 127.0.0.1 only, and they hold no secrets):

- ``POST /replay/clock`` with ``{"now": "2022-04-01T05:05:00Z"}`` → ``{"clock": …}``.
- ``POST /replay/faults`` with a JSON object of :class:`~sources.replay.state.Faults` fields
  (hours as ISO strings) → the knobs now in force.
- ``GET /replay/status`` → clock, data spans per zone/region/location, knobs, pending bursts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sources.replay import em_routes, om_routes, wt_routes
from sources.replay.common import ApiError, Ctx, dumps, http_date
from sources.replay.data import ReplayData
from sources.replay.state import Faults, Injected, ReplayState

log = logging.getLogger("gridflex.sources.replay")

Handler = Callable[[Ctx], dict[str, Any]]

HTML_PAGE = (
    "<!DOCTYPE html><html><head><title>Gateway</title></head><body>"
    "<h1>Welcome</h1><p>This page is served by a proxy, not the API (replay html_burst).</p>"
    "</body></html>"
)


def _api_of(path: str) -> str:
    if path.startswith("/v3/carbon-intensity"):
        return "electricitymaps"
    if path.startswith("/openmeteo"):
        return "openmeteo"
    if path == "/login" or path.startswith("/v3/"):
        return "watttime"
    return "replay"


def error_body(api: str, message: str, headers: dict[str, str] | None) -> dict[str, Any]:
    """An error in the shape ``api`` uses; ``headers`` echoed only when given (the
    ``echo_headers_on_error`` misbehaviour)."""
    if api == "electricitymaps":
        body: dict[str, Any] = {"status": "error", "message": message}
    elif api == "openmeteo":
        body = {"error": True, "reason": message}
    else:
        body = {"error": message}
    if headers is not None:
        body["request_headers"] = headers
    return body


def _json(obj: Any, status: int, clock, extra: dict[str, str] | None = None) -> Response:
    headers = {"Date": http_date(clock), **(extra or {})}
    return Response(dumps(obj), status, headers=headers, media_type="application/json")


def _wrap(state: ReplayState, data: ReplayData, fn: Handler | None) -> Callable:
    async def endpoint(request: Request) -> Response:
        path = request.url.path
        api = _api_of(path)
        query = dict(request.query_params)
        headers = {k: v for k, v in request.headers.items()}
        control = api == "replay"  # /replay/* and unknown paths outside the APIs
        if not control:
            state.record(request.method, path, query)
        injected = state.take_fault() if not control else Injected()
        if injected.sleep_s:
            await asyncio.sleep(injected.sleep_s)
        snap = state.snapshot()
        echo = headers if snap.faults.echo_headers_on_error else None
        if injected.status is not None:
            extra = {}
            if injected.status == 429 and snap.faults.retry_after is not None:
                extra["Retry-After"] = snap.faults.retry_after
            msg = f"replay fault: injected status {injected.status}"
            return _json(error_body(api, msg, echo), injected.status, snap.clock, extra)
        if injected.html:
            return Response(
                HTML_PAGE, 200, headers={"Date": http_date(snap.clock)}, media_type="text/html"
            )
        if fn is None:
            return _json(error_body(api, f"no such endpoint: {path}", echo), 404, snap.clock)
        ctx = Ctx(state, data, snap.clock, snap.faults, query, headers)
        try:
            body = await run_in_threadpool(fn, ctx)
        except ApiError as exc:
            return _json(error_body(api, exc.message, echo), exc.status, snap.clock)
        except Exception:  # noqa: BLE001 - a replay bug must answer 500, not hang the client
            log.exception("replay: %s %s failed", request.method, path)
            return _json(error_body(api, "replay internal error", None), 500, snap.clock)
        return _json(body, 200, snap.clock)

    return endpoint


def status_body(state: ReplayState, data: ReplayData) -> dict[str, Any]:
    snap = state.snapshot()
    return {
        "clock": snap.clock.isoformat(),
        "follow_wall_clock": state.follow_wall_clock,
        "seed": state.seed,
        "em_tier": state.em_tier,
        "wt_subscription": state.wt_subscription,
        "faults": snap.faults.to_json(),
        "pending": state.pending(),
        "spans": data.spans(),
    }


def create_app(state: ReplayState, data: ReplayData) -> Starlette:
    async def set_clock(request: Request) -> Response:
        try:
            body = await request.json()
            clock = state.set_clock(body["now"])
        except (ValueError, KeyError, TypeError) as exc:
            msg = f'expected {{"now": "<ISO time>"}}: {exc}'
            return _json(error_body("replay", msg, None), 400, state.now())
        return _json({"clock": clock.isoformat()}, 200, state.now())

    async def set_faults(request: Request) -> Response:
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise TypeError("expected a JSON object")
            state.set_faults(Faults.from_json(body))
        except (ValueError, TypeError) as exc:
            return _json(error_body("replay", str(exc), None), 400, state.now())
        return _json({"faults": state.faults.to_json()}, 200, state.now())

    async def status(request: Request) -> Response:
        body = await run_in_threadpool(status_body, state, data)
        return _json(body, 200, state.now())

    routes = [
        Route("/replay/clock", set_clock, methods=["POST"]),
        Route("/replay/faults", set_faults, methods=["POST"]),
        Route("/replay/status", status, methods=["GET"]),
    ]
    for module in (em_routes, wt_routes, om_routes):
        for path, fn in module.ROUTES:
            routes.append(Route(path, _wrap(state, data, fn), methods=["GET"]))
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    routes.append(Route("/{path:path}", _wrap(state, data, None), methods=methods))
    return Starlette(routes=routes)
