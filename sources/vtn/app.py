"""The Starlette app of the test VTN: OpenADR 3 resources as the 3.0.1 spec shapes them.

- ``POST /auth/token`` (form ``grant_type=client_credentials&client_id&client_secret``) →
  ``{"access_token", "token_type": "Bearer", "expires_in"}``; other routes need
  ``Authorization: Bearer <token>`` (an issued token or a static one), else 401.
- ``GET/POST /programs``, ``GET /programs/{id}``; ``GET/POST /events`` (filters ``programID``,
  ``targetType`` + ``targetValues``, 3.1's ``targets``; ``skip``, ``limit`` ≤ 50),
  ``GET/PUT/DELETE /events/{id}``; ``GET/POST /subscriptions`` (filters ``clientName``,
  ``programID``), ``GET/PUT/DELETE /subscriptions/{id}``.
- Objects carry ``id``, ``createdDateTime``, ``modificationDateTime`` (later on every change) and
  ``objectType``. Creating, replacing (PUT) or deleting an event queues a notification
  ``{"objectType": "EVENT", "operation": "POST"|"PUT"|"DELETE", "object": {...}}`` to every
  subscription asking for it (see :meth:`~sources.vtn.state.VtnState.matching`).
- Errors are the spec's problem shape ``{"type", "title", "status", "detail"}``.

Every API request consumes the fault counters first (:class:`~sources.vtn.state.VtnFaults`).
An event without targets matches every target filter (it applies to every VEN).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sources.vtn.state import ApiProblem, VtnState

log = logging.getLogger("gridflex.sources.vtn")

MAX_LIMIT = 50
NOT_JSON = (
    "<html><body><h1>502 Bad Gateway</h1><p>proxy error (vtn not_json_burst)</p></body></html>"
)

Notify = Callable[[dict, str], None]


def _json(obj: Any, status: int = 200) -> Response:
    return Response(json.dumps(obj), status, media_type="application/json")


def _problem(exc: ApiProblem, echo: dict | None = None) -> Response:
    body = exc.body()
    if echo:
        body["detail"] += f" (request: {json.dumps(echo)})"
    return _json(body, exc.status)


def _int(query, name: str, default: int, lo: int, hi: int | None = None) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        v = int(raw)
    except ValueError:
        raise ApiProblem(
            400, "Bad Request", f"query parameter {name}={raw!r} is not an integer"
        ) from None
    if v < lo or (hi is not None and v > hi):
        raise ApiProblem(400, "Bad Request", f"query parameter {name}={v} is outside {lo}..{hi}")
    return v


def _page(items: list[dict], query) -> list[dict]:
    skip = _int(query, "skip", 0, 0)
    limit = _int(query, "limit", MAX_LIMIT, 0, MAX_LIMIT)
    return items[skip : skip + limit]


def _targets_match(obj: dict, ttype: str | None, tvalues: list[str], tlist: list[str]) -> bool:
    targets = obj.get("targets")
    if not targets:
        return True  # an untargeted event applies to everyone
    if ttype:
        wanted = set(tvalues)
        return any(
            isinstance(t, dict)
            and t.get("type") == ttype
            and wanted & {str(v) for v in t.get("values") or []}
            for t in targets
        )
    if tlist:
        return any(isinstance(t, str) and t in tlist for t in targets)
    return True


def create_app(state: VtnState, notify: Notify) -> Starlette:
    async def body_of(request: Request) -> dict:
        raw = await request.body()
        try:
            obj = json.loads(raw or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ApiProblem(400, "Bad Request", f"request body is not JSON ({exc})") from None
        if not isinstance(obj, dict):
            raise ApiProblem(400, "Bad Request", "request body must be a JSON object")
        return obj

    def wrap(handler, *, auth: bool = True):
        async def endpoint(request: Request) -> Response:
            query = {k: request.query_params.getlist(k) for k in request.query_params.keys()}
            state.record(
                request.method,
                request.url.path,
                {k: v if len(v) > 1 else v[0] for k, v in query.items()},
            )
            faults = state.snapshot_faults()
            echo = None
            if faults.echo_secrets_on_error:
                echo = {
                    "authorization": request.headers.get("authorization"),
                    "body": (await request.body()).decode("utf-8", "replace"),
                }
            delay = state.take_delay()
            if delay:
                await asyncio.sleep(delay)
            if faults.redirect_to:
                return Response(
                    status_code=302,
                    headers={"Location": faults.redirect_to.rstrip("/") + request.url.path},
                )
            status, not_json = state.take_fault()
            if status is not None:
                title = {
                    401: "Unauthorized",
                    429: "Too Many Requests",
                    500: "Internal Server Error",
                    502: "Bad Gateway",
                    503: "Service Unavailable",
                }.get(status, "Error")
                answer = _problem(
                    ApiProblem(status, title, f"vtn fault: injected status {status}"), echo
                )
                if status == 429 and faults.retry_after is not None:
                    answer.headers["Retry-After"] = faults.retry_after
                return answer
            if not_json:
                return Response(NOT_JSON, 200, media_type="text/html")
            try:
                if auth:
                    header = request.headers.get("authorization", "")
                    scheme, _, token = header.partition(" ")
                    if scheme.lower() != "bearer" or not token or not state.token_ok(token.strip()):
                        raise ApiProblem(
                            401, "Unauthorized", "missing, unknown or expired bearer token"
                        )
                status, body = await handler(request)
            except ApiProblem as exc:
                return _problem(exc, echo)
            except Exception:  # noqa: BLE001 - a VTN bug answers 500, never hangs the client
                log.exception("vtn: %s %s failed", request.method, request.url.path)
                return _problem(ApiProblem(500, "Internal Server Error", "vtn internal error"))
            return _json(body, status)

        return endpoint

    # -- auth --
    async def token(request: Request):
        form = {
            k: v[-1] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()
        }
        if form.get("grant_type") != "client_credentials":
            raise ApiProblem(
                400, "Bad Request", "unsupported_grant_type: grant_type must be client_credentials"
            )
        access = state.issue_token(form.get("client_id", ""), form.get("client_secret", ""))
        return 200, {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": int(state.token_ttl_s),
        }

    # -- programs --
    async def programs(request: Request):
        if request.method == "POST":
            body = await body_of(request)
            if not isinstance(body.get("programName"), str) or not body["programName"]:
                raise ApiProblem(400, "Bad Request", "programName is required")
            if any(p.get("programName") == body["programName"] for p in state.listing("PROGRAM")):
                raise ApiProblem(409, "Conflict", f"a program named {body['programName']!r} exists")
            return 201, state.create("PROGRAM", body)
        return 200, _page(state.listing("PROGRAM"), request.query_params)

    async def program(request: Request):
        return 200, state.get("PROGRAM", request.path_params["oid"])

    # -- events --
    async def events(request: Request):
        if request.method == "POST":
            body = await body_of(request)
            pid = body.get("programID")
            if not isinstance(pid, str) or pid not in state.programs:
                raise ApiProblem(400, "Bad Request", f"programID {pid!r} names no program")
            if not isinstance(body.get("intervals"), list):
                raise ApiProblem(400, "Bad Request", "intervals is required (a list)")
            ev = state.create("EVENT", body)
            notify(ev, "POST")
            return 201, ev
        q = request.query_params
        pid = q.get("programID")
        ttype = q.get("targetType")
        tvalues = q.getlist("targetValues")
        tlist = q.getlist("targets")
        items = [
            e
            for e in state.listing("EVENT")
            if (not pid or e.get("programID") == pid) and _targets_match(e, ttype, tvalues, tlist)
        ]
        return 200, _page(items, q)

    async def event(request: Request):
        oid = request.path_params["oid"]
        if request.method == "PUT":
            body = await body_of(request)
            ev = state.update("EVENT", oid, body)
            notify(ev, "PUT")
            return 200, ev
        if request.method == "DELETE":
            ev = state.delete("EVENT", oid)
            notify(ev, "DELETE")
            return 200, ev
        return 200, state.get("EVENT", oid)

    # -- subscriptions --
    async def subscriptions(request: Request):
        if request.method == "POST":
            body = await body_of(request)
            _check_subscription(body)
            return 201, state.create("SUBSCRIPTION", body)
        q = request.query_params
        items = [
            s
            for s in state.listing("SUBSCRIPTION")
            if (not q.get("clientName") or s.get("clientName") == q.get("clientName"))
            and (not q.get("programID") or s.get("programID") == q.get("programID"))
        ]
        return 200, _page(items, q)

    async def subscription(request: Request):
        oid = request.path_params["oid"]
        if request.method == "PUT":
            body = await body_of(request)
            _check_subscription(body)
            return 200, state.update("SUBSCRIPTION", oid, body)
        if request.method == "DELETE":
            return 200, state.delete("SUBSCRIPTION", oid)
        return 200, state.get("SUBSCRIPTION", oid)

    async def not_found(request: Request):
        raise ApiProblem(404, "Not Found", f"no such resource: {request.method} {request.url.path}")

    routes = [
        Route("/auth/token", wrap(token, auth=False), methods=["POST"]),
        Route("/programs", wrap(programs), methods=["GET", "POST"]),
        Route("/programs/{oid}", wrap(program), methods=["GET"]),
        Route("/events", wrap(events), methods=["GET", "POST"]),
        Route("/events/{oid}", wrap(event), methods=["GET", "PUT", "DELETE"]),
        Route("/subscriptions", wrap(subscriptions), methods=["GET", "POST"]),
        Route("/subscriptions/{oid}", wrap(subscription), methods=["GET", "PUT", "DELETE"]),
        Route("/{path:path}", wrap(not_found), methods=["GET", "POST", "PUT", "DELETE"]),
    ]
    return Starlette(routes=routes)


def _check_subscription(body: dict) -> None:
    if not isinstance(body.get("clientName"), str) or not body["clientName"]:
        raise ApiProblem(400, "Bad Request", "clientName is required")
    ops = body.get("objectOperations")
    if not isinstance(ops, list) or not ops:
        raise ApiProblem(400, "Bad Request", "objectOperations is required (a non-empty list)")
    for k, o in enumerate(ops):
        if not isinstance(o, dict) or not all(
            key in o for key in ("objects", "operations", "callbackUrl")
        ):
            raise ApiProblem(
                400, "Bad Request", f"objectOperations[{k}] needs objects, operations, callbackUrl"
            )
        if not str(o["callbackUrl"]).startswith(("http://", "https://")):
            raise ApiProblem(
                400, "Bad Request", f"objectOperations[{k}].callbackUrl is not an http(s) URL"
            )
