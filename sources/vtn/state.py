"""Mutable state of one test VTN: its objects, credentials, fault knobs and the logs.

Why a separate object: the Starlette routes (in uvicorn's event loop and thread pool), the
notification sender thread and the :class:`~sources.vtn.server.VtnServer` helpers (driven from a
test or benchmark thread) share it, so every read and write goes through one lock here.
"""

from __future__ import annotations

import copy
import itertools
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

#: accepted subscription / notification operation words, by the HTTP method they stand for
#: (3.0.1 notifications say POST/PUT/DELETE; subscriptions, and 3.1, CREATE/UPDATE/DELETE)
OPERATION_WORDS = {"POST": {"POST", "CREATE"}, "PUT": {"PUT", "UPDATE"}, "DELETE": {"DELETE"}}


class ApiProblem(Exception):
    """An error answer in the spec's problem shape ``{type, title, status, detail}``."""

    def __init__(self, status: int, title: str, detail: str):
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail

    def body(self) -> dict[str, Any]:
        return {
            "type": "about:blank",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class VtnFaults:
    """Fault knobs (everything off by default). Counters are consumed one per API request.

    - ``unauthorized``: every API request (``/auth/token`` included) answers 401.
    - ``status_burst``: the next requests answer these statuses in order (e.g. ``(503, 503)``).
    - ``not_json_burst``: the next N requests answer 200 with a body that is not JSON.
    - ``echo_secrets_on_error``: error bodies echo the request's Authorization header and form
      (a misbehaviour that clients must never pass on).
    - ``retry_after``: the ``Retry-After`` header (seconds, as text) of injected 429 answers.
    - ``slow_burst`` / ``slow_s``: the next N requests answer only after ``slow_s`` seconds (a
      client's read timeout).
    - ``redirect_to``: every API request answers ``302 Found`` with ``Location: redirect_to +
      path`` (e.g. another host: a client must not follow it with its credentials).
    A VTN that is down is a stopped server (:meth:`~sources.vtn.server.VtnServer.stop`).
    """

    unauthorized: bool = False
    status_burst: tuple[int, ...] = ()
    not_json_burst: int = 0
    echo_secrets_on_error: bool = False
    retry_after: str | None = None
    slow_burst: int = 0
    slow_s: float = 0.0
    redirect_to: str | None = None


@dataclass
class Notification:
    """One notification the VTN sent (or tried to): when, to whom, and how it went."""

    subscription_id: str
    callback_url: str
    operation: str
    event_id: str
    body: dict[str, Any]
    queued_at: float  # time.time()
    delivered_at: float | None = None
    status: int | None = None
    error: str | None = None

    @property
    def latency_s(self) -> float | None:
        return None if self.delivered_at is None else self.delivered_at - self.queued_at

    def as_dict(self) -> dict[str, Any]:
        return {
            "subscription_id": self.subscription_id,
            "callback_url": self.callback_url,
            "operation": self.operation,
            "event_id": self.event_id,
            "queued_at": self.queued_at,
            "delivered_at": self.delivered_at,
            "latency_s": self.latency_s,
            "status": self.status,
            "error": self.error,
        }


@dataclass
class VtnState:
    clients: dict[str, str]  # client_id -> client_secret
    static_tokens: set[str]
    token_ttl_s: float
    clock: Callable[[], pd.Timestamp]
    faults: VtnFaults = VtnFaults()
    programs: dict[str, dict] = field(default_factory=dict)
    events: dict[str, dict] = field(default_factory=dict)
    subscriptions: dict[str, dict] = field(default_factory=dict)
    tokens: dict[str, float] = field(default_factory=dict)  # access token -> expiry (monotonic)
    requests: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _last_modified: pd.Timestamp | None = None
    _burst: list[int] = field(default_factory=list)
    _not_json: int = 0
    _slow: int = 0

    # -- faults --
    def set_faults(self, faults: VtnFaults) -> None:
        with self.lock:
            self.faults = faults
            self._burst = list(faults.status_burst)
            self._not_json = int(faults.not_json_burst)
            self._slow = int(faults.slow_burst)

    def take_delay(self) -> float:
        """Seconds to wait before answering one request (``slow_burst``)."""
        with self.lock:
            if self._slow > 0:
                self._slow -= 1
                return float(self.faults.slow_s)
            return 0.0

    def take_fault(self) -> tuple[int | None, bool]:
        """``(status to answer instead, answer non-JSON)`` for one request."""
        with self.lock:
            if self.faults.unauthorized:
                return 401, False
            if self._burst:
                return self._burst.pop(0), False
            if self._not_json > 0:
                self._not_json -= 1
                return None, True
            return None, False

    def pending(self) -> dict[str, int]:
        with self.lock:
            return {
                "status_burst": len(self._burst),
                "not_json_burst": self._not_json,
                "slow_burst": self._slow,
            }

    def record(self, method: str, path: str, query: dict[str, Any]) -> None:
        with self.lock:
            self.requests.append((method, path, query))

    # -- auth --
    def issue_token(self, client_id: str, client_secret: str) -> str:
        with self.lock:
            if self.clients.get(client_id) != client_secret or not client_id:
                raise ApiProblem(
                    401, "Unauthorized", "invalid_client: unknown client or wrong secret"
                )
            token = secrets.token_urlsafe(24)
            self.tokens[token] = time.monotonic() + self.token_ttl_s
            return token

    def token_ok(self, token: str) -> bool:
        with self.lock:
            if token in self.static_tokens:
                return True
            exp = self.tokens.get(token)
            return exp is not None and exp > time.monotonic()

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    # -- objects --
    def new_id(self, prefix: str) -> str:
        with self.lock:
            return f"{prefix}-{next(self._ids)}"

    def stamp(self) -> str:
        """A modificationDateTime strictly after the previous one (ms resolution, UTC)."""
        with self.lock:
            now = pd.Timestamp(self.clock()).tz_convert("UTC").floor("ms")
            if self._last_modified is not None and now <= self._last_modified:
                now = self._last_modified + pd.Timedelta(milliseconds=1)
            self._last_modified = now
            return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"

    def create(self, kind: str, body: Mapping[str, Any]) -> dict:
        """Store a new PROGRAM / EVENT / SUBSCRIPTION with VTN-provisioned fields."""
        with self.lock:
            obj = copy.deepcopy(dict(body))
            now = self.stamp()
            prefix = {"PROGRAM": "program", "EVENT": "event", "SUBSCRIPTION": "sub"}[kind]
            obj.update(
                id=self.new_id(prefix),
                createdDateTime=now,
                modificationDateTime=now,
                objectType=kind,
            )
            self._table(kind)[obj["id"]] = obj
            return copy.deepcopy(obj)

    def update(self, kind: str, oid: str, body: Mapping[str, Any]) -> dict:
        with self.lock:
            table = self._table(kind)
            if oid not in table:
                raise ApiProblem(404, "Not Found", f"no {kind.lower()} with id {oid!r}")
            old = table[oid]
            obj = copy.deepcopy(dict(body))
            obj.update(
                id=oid,
                createdDateTime=old["createdDateTime"],
                modificationDateTime=self.stamp(),
                objectType=kind,
            )
            table[oid] = obj
            return copy.deepcopy(obj)

    def delete(self, kind: str, oid: str) -> dict:
        with self.lock:
            table = self._table(kind)
            if oid not in table:
                raise ApiProblem(404, "Not Found", f"no {kind.lower()} with id {oid!r}")
            return copy.deepcopy(table.pop(oid))

    def get(self, kind: str, oid: str) -> dict:
        with self.lock:
            table = self._table(kind)
            if oid not in table:
                raise ApiProblem(404, "Not Found", f"no {kind.lower()} with id {oid!r}")
            return copy.deepcopy(table[oid])

    def listing(self, kind: str) -> list[dict]:
        with self.lock:
            return [copy.deepcopy(o) for o in self._table(kind).values()]

    def _table(self, kind: str) -> dict[str, dict]:
        return {"PROGRAM": self.programs, "EVENT": self.events, "SUBSCRIPTION": self.subscriptions}[
            kind
        ]

    # -- notifications --
    def matching(
        self, event: Mapping[str, Any], operation: str
    ) -> list[tuple[str, str, str | None]]:
        """``(subscription id, callbackUrl, bearerToken)`` of every subscription that asked for
        this EVENT operation (and this program, when it names one)."""
        words = OPERATION_WORDS[operation]
        out = []
        with self.lock:
            for sid, sub in self.subscriptions.items():
                if sub.get("programID") not in (None, event.get("programID")):
                    continue
                for oo in sub.get("objectOperations") or []:
                    if "EVENT" in (oo.get("objects") or []) and words & set(
                        oo.get("operations") or []
                    ):
                        out.append((sid, oo["callbackUrl"], oo.get("bearerToken")))
        return out

    def log_notification(self, n: Notification) -> Notification:
        with self.lock:
            self.notifications.append(n)
        return n

    def snapshot_faults(self) -> VtnFaults:
        with self.lock:
            return replace(self.faults)
