"""Mutable state of one replay server: its clock, its fault knobs, WattTime tokens, the request log.

Why a separate object: the Starlette routes (run in uvicorn's event loop and its thread pool) and
the :class:`~sources.replay.server.ReplayServer` (driven from the test or CLI thread) share it, so
every read and write goes through one lock here and nowhere else.

A request takes one *snapshot* (:meth:`ReplayState.snapshot`): the clock and the knobs as they are
when it arrives, so a clock moved mid-request cannot give a half-old, half-new answer.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import pandas as pd

from sources.http import TimeLike, to_utc

#: The three replayed APIs, as named in :attr:`Faults.lag_hours`.
APIS = ("electricitymaps", "watttime", "openmeteo")


def _hours(values: Iterable[TimeLike] | None, name: str) -> frozenset[pd.Timestamp]:
    out = set()
    for v in values or ():
        ts = to_utc(v, name)
        if ts != ts.floor("h"):
            raise ValueError(f"{name}: {ts.isoformat()} is not on the hour")
        out.add(ts)
    return frozenset(out)


@dataclass(frozen=True)
class Faults:
    """Fault knobs of a replay server; everything off except the realistic defaults.

    Data faults (apply to every answer computed while they are set):

    - ``lag_hours``: per API (``"electricitymaps"``, ``"watttime"``, ``"openmeteo"``), actuals stop
      that many hours before the clock's hour (EM latest/history/past-range, WattTime historical,
      Open-Meteo archive/historical-forecast). Forecast endpoints are not lagged.
    - ``null_hours``: those hours answer ``carbonIntensity: null`` (EM), no points (WattTime),
      ``null`` values (Open-Meteo). ``null_fraction``: that share of hours, drawn from ``seed``
      (None: the server's seed) per source, hour *and clock hour* — a null can fill in at the next
      poll, as in real life, while the same request at the same clock gives the same answer.
    - ``drop_hours``: those hours missing from answers altogether (a partial answer).
    - ``em_estimated_hours`` (default 2): the newest hours Electricity Maps serves as estimated,
      perturbed by up to ``revision_shift`` (default 5 %) and revised later (see the package doc).
    - ``archive_lag_hours`` (default 120 = 5 days): the Open-Meteo archive ends that long before
      the clock, like the real reanalysis.

    Transport faults (counters, consumed one per request by any endpoint except ``/replay/*``):

    - ``status_burst``: the next requests answer these statuses in order (``[503, 500, 429]``);
      a 429 carries ``Retry-After: retry_after`` (seconds like ``"1"`` or an HTTP date; None: no
      header).
    - ``timeout_burst``: the next N requests wait ``timeout_s`` seconds before answering (then
      answer normally, or with the next status/html fault).
    - ``html_burst``: the next N requests answer 200 with an HTML page (a misconfigured proxy),
      after any pending ``status_burst``.
    - ``echo_headers_on_error``: error bodies echo the request headers (a real-world misbehaviour,
      to test that clients never leak secrets). False: never echoed.
    """

    lag_hours: Mapping[str, int] = field(default_factory=dict)
    null_hours: frozenset[pd.Timestamp] = frozenset()
    null_fraction: float = 0.0
    drop_hours: frozenset[pd.Timestamp] = frozenset()
    seed: int | None = None
    em_estimated_hours: int = 2
    revision_shift: float = 0.05
    archive_lag_hours: int = 120
    status_burst: tuple[int, ...] = ()
    retry_after: str | None = "1"
    timeout_burst: int = 0
    timeout_s: float = 5.0
    html_burst: int = 0
    echo_headers_on_error: bool = False

    def __post_init__(self) -> None:
        lag = dict(self.lag_hours or {})
        unknown = sorted(set(lag) - set(APIS))
        if unknown:
            raise ValueError(f"lag_hours: unknown API(s) {unknown}; known: {list(APIS)}")
        if any(int(v) < 0 for v in lag.values()):
            raise ValueError("lag_hours must be >= 0")
        object.__setattr__(self, "lag_hours", {k: int(v) for k, v in lag.items()})
        object.__setattr__(self, "null_hours", _hours(self.null_hours, "null_hours"))
        object.__setattr__(self, "drop_hours", _hours(self.drop_hours, "drop_hours"))
        object.__setattr__(self, "status_burst", tuple(int(s) for s in self.status_burst))
        if not 0.0 <= self.null_fraction <= 1.0:
            raise ValueError(f"null_fraction must be in [0, 1], got {self.null_fraction}")
        for name in ("em_estimated_hours", "archive_lag_hours", "timeout_burst", "html_burst"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0")
        if any(not 100 <= s <= 599 for s in self.status_burst):
            raise ValueError(f"status_burst holds a non-HTTP status: {self.status_burst}")
        if self.timeout_s < 0 or self.revision_shift < 0:
            raise ValueError("timeout_s and revision_shift must be >= 0")

    def lag(self, api: str) -> int:
        return int(self.lag_hours.get(api, 0))

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Faults:
        """Knobs from a JSON object (``POST /replay/faults``): hours as ISO strings."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(obj) - known)
        if unknown:
            raise ValueError(f"unknown fault knob(s) {unknown}; known: {sorted(known)}")
        return cls(**dict(obj))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, frozenset):
                v = sorted(t.isoformat() for t in v)
            elif isinstance(v, tuple):
                v = list(v)
            elif isinstance(v, Mapping):
                v = dict(v)
            out[f.name] = v
        return out


@dataclass(frozen=True)
class Injected:
    """What the transport faults do to one request."""

    sleep_s: float = 0.0
    status: int | None = None
    html: bool = False


@dataclass(frozen=True)
class Snapshot:
    """The clock (UTC) and knobs one request is answered with."""

    clock: pd.Timestamp
    faults: Faults


class ReplayState:
    """Clock, knobs, credentials and logs shared by the routes and the server thread."""

    def __init__(
        self,
        clock: TimeLike,
        *,
        faults: Faults | None = None,
        follow_wall_clock: bool = False,
        em_token: str,
        em_tier: str,
        wt_username: str,
        wt_password: str,
        wt_subscription: bool,
        token_ttl_s: float,
        seed: int,
    ):
        if em_tier not in ("free", "paid"):
            raise ValueError(f"em_tier must be 'free' or 'paid', got {em_tier!r}")
        if not em_token or not wt_username or not wt_password:
            raise ValueError("em_token, wt_username and wt_password must be non-empty")
        self._lock = threading.Lock()
        self._base = to_utc(clock, "clock")
        self._wall0: float | None = None
        self.follow_wall_clock = follow_wall_clock
        self._faults = faults or Faults()
        self._burst: list[int] = []
        self._timeouts = 0
        self._html = 0
        self._arm(self._faults)
        self.em_token = em_token
        self.em_tier = em_tier
        self.wt_username = wt_username
        self.wt_password = wt_password
        self.wt_subscription = wt_subscription
        self.token_ttl_s = float(token_ttl_s)
        self.seed = int(seed)
        self._tokens: dict[str, float] = {}
        self._requests: list[tuple[str, str, dict[str, str]]] = []

    # -- clock --
    def start_wall(self) -> None:
        """Start following wall time from now (called by ``ReplayServer.start``)."""
        with self._lock:
            self._wall0 = time.monotonic()

    def now(self) -> pd.Timestamp:
        with self._lock:
            return self._now_locked()

    def _now_locked(self) -> pd.Timestamp:
        if self.follow_wall_clock and self._wall0 is not None:
            return self._base + pd.Timedelta(seconds=time.monotonic() - self._wall0)
        return self._base

    def set_clock(self, ts: TimeLike) -> pd.Timestamp:
        new = to_utc(ts, "clock")
        with self._lock:
            self._base = new
            if self._wall0 is not None:
                self._wall0 = time.monotonic()
        return new

    # -- faults --
    def _arm(self, faults: Faults) -> None:
        self._burst = list(faults.status_burst)
        self._timeouts = int(faults.timeout_burst)
        self._html = int(faults.html_burst)

    @property
    def faults(self) -> Faults:
        with self._lock:
            return self._faults

    def set_faults(self, faults: Faults) -> None:
        if not isinstance(faults, Faults):
            raise TypeError(f"expected Faults, got {type(faults).__name__}")
        with self._lock:
            self._faults = faults
            self._arm(faults)

    def take_fault(self) -> Injected:
        """Consume this request's share of the transport-fault counters."""
        with self._lock:
            sleep = 0.0
            if self._timeouts > 0:
                self._timeouts -= 1
                sleep = float(self._faults.timeout_s)
            if self._burst:
                return Injected(sleep, status=self._burst.pop(0))
            if self._html > 0:
                self._html -= 1
                return Injected(sleep, html=True)
            return Injected(sleep)

    def pending(self) -> dict[str, Any]:
        with self._lock:
            return {
                "status_burst": list(self._burst),
                "timeout_burst": self._timeouts,
                "html_burst": self._html,
            }

    def snapshot(self) -> Snapshot:
        with self._lock:
            return Snapshot(self._now_locked(), self._faults)

    # -- WattTime tokens (wall time, like the real ~30 min bearer tokens) --
    def issue_token(self) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = time.monotonic()
        return token

    def token_ok(self, token: str) -> bool:
        with self._lock:
            issued = self._tokens.get(token)
            if issued is None:
                return False
            if time.monotonic() - issued > self.token_ttl_s:
                del self._tokens[token]
                return False
            return True

    def expire_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()

    # -- request log (no headers, hence no secrets) --
    def record(self, method: str, path: str, query: Mapping[str, str]) -> None:
        secret_values = {self.em_token, self.wt_password}
        clean = {
            k: ("***" if v in secret_values or _secret_name(k) else v) for k, v in query.items()
        }
        with self._lock:
            self._requests.append((method, path, clean))

    @property
    def requests(self) -> list[tuple[str, str, dict[str, str]]]:
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()


def _secret_name(name: str) -> bool:
    n = name.lower()
    return any(w in n for w in ("token", "password", "secret", "apikey", "api_key", "auth"))
