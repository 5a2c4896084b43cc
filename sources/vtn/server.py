"""Run the test VTN with uvicorn in a daemon thread on 127.0.0.1, and drive it from Python.

Same pattern as :mod:`sources.replay.server`: a real socket, so the VEN client is exercised over
exactly the transport it uses against a grid operator. Notifications go out from one sender
thread, in order, each recorded with when it was queued and delivered and the callback's answer.
"""

from __future__ import annotations

import copy
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import httpx
import pandas as pd

from sources.vtn.state import Notification, VtnFaults, VtnState


class VtnServer:
    """A local OpenADR 3 VTN (see :mod:`sources.vtn.app` for what it answers).

    Args:
        clients: OAuth2 client credentials accepted at ``/auth/token`` (client_id -> secret).
        tokens: static bearer tokens accepted as they are.
        token_ttl_s: lifetime of issued access tokens (wall time).
        clock: the VTN's "now" for ``createdDateTime`` / ``modificationDateTime`` (default: wall
            time); modification times are strictly increasing whatever the clock does.
        faults: the fault knobs (:class:`~sources.vtn.state.VtnFaults`).
        host, port: where to listen (``port=0``: any free port; see :attr:`url`). After
            :meth:`stop` the same port is reused by :meth:`start` (a VTN that comes back).
        notify_timeout_s: how long a callback may take to answer a notification.
    """

    def __init__(
        self,
        *,
        clients: Mapping[str, str] | None = None,
        tokens: Iterable[str] = (),
        token_ttl_s: float = 3600.0,
        clock: Callable[[], pd.Timestamp] | None = None,
        faults: VtnFaults | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        notify_timeout_s: float = 5.0,
    ):
        self.state = VtnState(
            clients=dict(clients or {}),
            static_tokens=set(tokens),
            token_ttl_s=token_ttl_s,
            clock=clock or (lambda: pd.Timestamp.now(tz="UTC")),
        )
        if faults is not None:
            self.state.set_faults(faults)
        self.host = host
        self._port = port
        self.notify_timeout_s = notify_timeout_s
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._queue: queue.Queue = queue.Queue()
        self._sender: threading.Thread | None = None
        self._idle = threading.Condition()

    def __repr__(self) -> str:
        where = self.url if self._server is not None else "not started"
        return f"VtnServer({where}, events={len(self.state.events)})"

    # -- lifecycle --
    def start(self) -> VtnServer:
        """Listen in a daemon thread; returns once the socket is bound."""
        if self._thread is not None:
            raise RuntimeError("VTN already started")
        from sources.serving import serve
        from sources.vtn.app import create_app

        served = serve(
            create_app(self.state, self._notify),
            host=self.host,
            port=self._port,
            name="gridflex-vtn",
            what="VTN",
        )
        self._server, self._thread, self._port = served, served.thread, served.port
        if self._sender is None or not self._sender.is_alive():
            self._sender = threading.Thread(
                target=self._send_loop, name="gridflex-vtn-notify", daemon=True
            )
            self._sender.start()
        return self

    def stop(self) -> None:
        """Stop listening (connections are refused from now on: the VTN is down)."""
        if self._server is None:
            return
        self._server.stop()
        self._server, self._thread = None, None

    def close(self) -> None:
        """Stop listening and stop the notification sender."""
        self.stop()
        if self._sender is not None and self._sender.is_alive():
            self._queue.put(None)
            self._sender.join(timeout=10)
        self._sender = None

    def __enter__(self) -> VtnServer:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """The VTN's base URL (``http://127.0.0.1:<port>``): what a VEN's ``vtn_url`` is."""
        if self._server is None and not self._port:
            raise RuntimeError("VTN not started (call start())")
        return f"http://{self.host}:{self._port}"

    # -- faults --
    @property
    def faults(self) -> VtnFaults:
        return self.state.faults

    def set_faults(self, faults: VtnFaults | None = None, **knobs: Any) -> None:
        """Replace the knobs (``set_faults(status_burst=(503, 503))``) and re-arm the counters."""
        self.state.set_faults(faults or VtnFaults(**knobs))

    def expire_tokens(self) -> None:
        """Invalidate every issued access token now (as if ``token_ttl_s`` had passed)."""
        self.state.expire_tokens()

    @property
    def requests(self) -> list[tuple[str, str, dict[str, Any]]]:
        """``(method, path, query)`` of every API request so far (no headers: no secrets)."""
        with self.state.lock:
            return list(self.state.requests)

    # -- driving it (what a grid operator's business logic does) --
    def add_program(self, program: Mapping[str, Any]) -> dict:
        """Create a program (``{"programName": ..., "payloadDescriptors": [...]}``)."""
        return self.state.create("PROGRAM", program)

    def publish(self, event: Mapping[str, Any]) -> dict:
        """Create an event as given (not validated: malformed events can be served) and notify
        the subscribers (``POST``). Returns the event as stored, with its id."""
        ev = self.state.create("EVENT", event)
        self._notify(ev, "POST")
        return ev

    def modify(self, event_id: str, changes: Mapping[str, Any]) -> dict:
        """Replace the top-level fields in ``changes`` (a new ``modificationDateTime``) and notify
        (``PUT``)."""
        current = self.state.get("EVENT", event_id)
        ev = self.state.update("EVENT", event_id, {**current, **copy.deepcopy(dict(changes))})
        self._notify(ev, "PUT")
        return ev

    def cancel(self, event_id: str) -> dict:
        """Delete the event (how OpenADR 3 cancels it) and notify (``DELETE``)."""
        ev = self.state.delete("EVENT", event_id)
        self._notify(ev, "DELETE")
        return ev

    @property
    def events(self) -> list[dict]:
        return self.state.listing("EVENT")

    @property
    def subscriptions(self) -> list[dict]:
        return self.state.listing("SUBSCRIPTION")

    @property
    def notifications(self) -> list[dict]:
        """Every notification sent or attempted: subscription, callback URL, operation, event id,
        ``queued_at`` / ``delivered_at`` (``time.time()``), ``latency_s``, the callback's status or
        the error."""
        with self.state.lock:
            return [n.as_dict() for n in self.state.notifications]

    def wait_notifications(self, n: int, timeout: float = 10.0) -> list[dict]:
        """Block until at least ``n`` notifications are settled (delivered or failed)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while True:
                done = [
                    x for x in self.notifications if x["delivered_at"] is not None or x["error"]
                ]
                if len(done) >= n:
                    return done
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"{len(done)} of {n} notification(s) settled within {timeout} s"
                    )
                self._idle.wait(min(left, 0.05))

    # -- notifications --
    def _notify(self, event: dict, operation: str) -> None:
        body = {"objectType": "EVENT", "operation": operation, "object": copy.deepcopy(event)}
        for sid, url, token in self.state.matching(event, operation):
            n = Notification(sid, url, operation, str(event.get("id")), body, queued_at=time.time())
            self.state.log_notification(n)
            self._queue.put((n, token))

    def _send_loop(self) -> None:
        with httpx.Client(timeout=self.notify_timeout_s, follow_redirects=False) as client:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                n, token = item
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                try:
                    r = client.post(n.callback_url, json=n.body, headers=headers)
                    with self.state.lock:
                        n.status = r.status_code
                        n.delivered_at = time.time()
                except httpx.HTTPError as exc:
                    with self.state.lock:
                        n.error = f"{type(exc).__name__}: {exc}"
                with self._idle:
                    self._idle.notify_all()
