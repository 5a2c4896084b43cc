"""The VEN's push endpoint: a small Starlette app (uvicorn in a daemon thread, like the replay
server) serving ``POST /openadr/notifications`` for the subscription gridflex gave the VTN.

- ``Authorization: Bearer <token>`` must be the token gridflex gave the VTN (compared in constant
  time; never echoed): else **401**.
- The body must be a notification ``{"objectType", "operation", "object"}`` (``openadr3``'s
  ``coerce_notification``; operation POST/PUT/DELETE, or 3.1's CREATE/UPDATE/DELETE): else **400**
  with a message saying what is wrong. Notifications about other object types are answered 200
  and ignored (counted).
- An EVENT notification is answered **200** at once and handed, in arrival order, to a worker
  thread that parses it (:func:`sources.openadr.parse_events`, ``via="push"``, ``as_of`` = the
  time received) and calls ``on_events(parsed)``. An event inside a well-formed notification that
  cannot be used is not a 400: it is kept as received and reported as a problem, like a polled one.
"""

from __future__ import annotations

import copy
import hmac
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import openadr3
import pandas as pd
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sources.frames import utc_now
from sources.openadr import OPERATION_ALIASES, ParsedEvents, parse_events

log = logging.getLogger("gridflex.sources.openadr_push")

PATH = "/openadr/notifications"


def _problem(status: int, title: str, detail: str) -> Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return Response(json.dumps(body), status, media_type="application/json")


def check_notification(body: Any) -> str | None:
    """What is wrong with a notification's envelope (None: nothing). Uses
    ``openadr3.coerce_notification`` on a copy whose event targets are set aside (3.0.1 targets
    are valuesMaps, which the library's ``list[str]`` does not take) — an event the library cannot
    read is *not* an envelope error (it is stored and reported by the parser)."""
    if not isinstance(body, dict):
        return f"expected a JSON object (an OpenADR notification), got {type(body).__name__}"
    if not openadr3.is_notification(body):
        missing = [k for k in ("objectType", "operation", "object") if k not in body]
        return f"not an OpenADR notification: missing {', '.join(missing)}"
    op = body.get("operation")
    if not isinstance(op, str) or OPERATION_ALIASES.get(op.upper(), op.upper()) not in (
        "POST",
        "PUT",
        "DELETE",
    ):
        return f"operation {op!r} is not POST, PUT or DELETE (or CREATE, UPDATE, DELETE)"
    obj = body.get("object")
    if not isinstance(obj, dict):
        return f"'object' is {type(obj).__name__}, expected the event object"
    if body.get("objectType") != "EVENT":
        return None
    clean = copy.deepcopy(body)
    clean["object"].pop("targets", None)
    clean.pop("targets", None)
    try:
        openadr3.coerce_notification(clean)
    except Exception:  # noqa: BLE001 - the event's own problems are the parser's to report
        log.debug(
            "openadr push: the notified event is not readable as it is; the parser reports it"
        )
    return None


@dataclass
class Received:
    """One request the receiver answered: when, with what status, and the notification's gist."""

    at: float
    status: int
    operation: str | None = None
    object_type: str | None = None
    event_id: str | None = None
    detail: str | None = None


@dataclass
class _Stats:
    received: list[Received] = field(default_factory=list)
    handled: int = 0
    errors: list[str] = field(default_factory=list)


class PushReceiver:
    """Receives the VTN's pushed notifications and calls ``on_events(parsed)`` for each.

    Args:
        on_events: called with a :class:`~sources.openadr.ParsedEvents` per EVENT notification,
            in arrival order, from one worker thread (e.g. ``store_events`` into the warehouse).
            An exception it raises is logged and kept in :attr:`errors`; the VTN got its 200.
        bearer_token: the token given to the VTN in the subscription.
        site_of_target, all_sites, ven_name, programs: as for :func:`sources.openadr.parse_events`.
        host, port: where to listen (``port=0``: any free port); :attr:`callback_url` is what to
            give the VTN.
        clock: the receive time (``received_at`` of what arrives, and its ``as_of`` unless
            ``as_of_clock`` is given).
        as_of_clock: the hour the receiver is at, when it is not wall time (a replay or a
            simulated day: events are judged "already over" against it, not the wall clock).
    """

    def __init__(
        self,
        on_events: Callable[[ParsedEvents], Any],
        *,
        bearer_token: str,
        site_of_target: Mapping[str, str],
        all_sites: Sequence[str],
        ven_name: str | None = None,
        programs: Iterable[Mapping[str, Any]] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], pd.Timestamp] = utc_now,
        as_of_clock: Callable[[], pd.Timestamp] | None = None,
    ):
        if not bearer_token or len(bearer_token) < 8:
            raise ValueError("bearer_token must be at least 8 characters")
        self.on_events = on_events
        self._token = bearer_token.encode("utf-8")
        self.site_of_target = dict(site_of_target)
        self.all_sites = list(all_sites)
        self.ven_name = ven_name
        self.programs = list(programs)
        self.host = host
        self._port = port
        self._clock = clock
        self._as_of_clock = as_of_clock
        self._stats = _Stats()
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        self._queue: queue.Queue = queue.Queue()
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._worker: threading.Thread | None = None

    def __repr__(self) -> str:
        where = self.callback_url if self._server is not None else "not started"
        return f"PushReceiver({where}, token='***')"

    # -- the app --
    def app(self) -> Starlette:
        async def notifications(request: Request) -> Response:
            header = request.headers.get("authorization", "")
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                token.strip().encode("utf-8"), self._token
            ):
                self._record(Received(time.time(), 401, detail="bad or missing bearer token"))
                return _problem(401, "Unauthorized", "missing or wrong bearer token")
            raw = await request.body()
            try:
                text = raw.decode("utf-8")
                body = json.loads(text)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                detail = f"body is not JSON ({type(exc).__name__}: {exc})"
                self._record(Received(time.time(), 400, detail=detail))
                return _problem(400, "Bad Request", detail)
            wrong = check_notification(body)
            if wrong:
                self._record(Received(time.time(), 400, detail=wrong))
                return _problem(400, "Bad Request", wrong)
            obj = body["object"]
            got = Received(
                time.time(),
                200,
                operation=str(body["operation"]).upper(),
                object_type=str(body["objectType"]),
                event_id=obj.get("id") if isinstance(obj.get("id"), str) else None,
            )
            if body["objectType"] != "EVENT":
                got.detail = "not an EVENT notification: ignored"
            else:
                now = self._clock()
                as_of = self._as_of_clock() if self._as_of_clock is not None else now
                self._queue.put((text, now, as_of))
            self._record(got)
            return Response(json.dumps({"status": "accepted"}), 200, media_type="application/json")

        return Starlette(routes=[Route(PATH, notifications, methods=["POST"])])

    def _record(self, r: Received) -> None:
        with self._lock:
            self._stats.received.append(r)

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            text, received_at, as_of = item
            try:
                parsed = parse_events(
                    [text],
                    received_at=received_at,
                    as_of=as_of,
                    site_of_target=self.site_of_target,
                    all_sites=self.all_sites,
                    via="push",
                    ven_name=self.ven_name,
                    programs=self.programs,
                )
                self.on_events(parsed)
            except Exception as exc:  # noqa: BLE001 - the receiver keeps receiving
                log.exception("openadr push: on_events failed")
                with self._lock:
                    self._stats.errors.append(f"{type(exc).__name__}: {exc}")
            with self._done:
                self._stats.handled += 1
                self._done.notify_all()

    # -- lifecycle --
    def start(self) -> PushReceiver:
        if self._thread is not None:
            raise RuntimeError("push receiver already started")
        from sources.serving import serve

        served = serve(
            self.app(),
            host=self.host,
            port=self._port,
            name="gridflex-openadr-push",
            what="push receiver",
        )
        self._server, self._thread, self._port = served, served.thread, served.port
        self._worker = threading.Thread(
            target=self._work, name="gridflex-openadr-push-worker", daemon=True
        )
        self._worker.start()
        return self

    def stop(self) -> None:
        """Stop listening, then let the worker finish what was received."""
        if self._server is None:
            return
        self._server.stop()
        self._queue.put(None)
        if self._worker is not None:
            self._worker.join(timeout=30)
        self._server, self._thread, self._worker = None, None, None

    def __enter__(self) -> PushReceiver:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- where, and what happened --
    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("push receiver not started (call start())")
        return f"http://{self.host}:{self._port}"

    @property
    def callback_url(self) -> str:
        """What to give the VTN as the subscription's ``callbackUrl``."""
        return self.url + PATH

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._stats.received)

    @property
    def handled(self) -> int:
        with self._lock:
            return self._stats.handled

    @property
    def errors(self) -> list[str]:
        with self._lock:
            return list(self._stats.errors)

    def wait_handled(self, n: int, timeout: float = 10.0) -> int:
        """Block until ``on_events`` has been called (or failed) ``n`` times in all."""
        deadline = time.monotonic() + timeout
        with self._done:
            while self._stats.handled < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"{self._stats.handled} of {n} notification(s) handled within {timeout} s"
                    )
                self._done.wait(left)
            return self._stats.handled
