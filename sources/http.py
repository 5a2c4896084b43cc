"""The one HTTP layer every API adapter (Electricity Maps, WattTime, Open-Meteo) goes through.

Why one layer: timeouts, retries, rate limits and secret hygiene are easy to get subtly wrong and
identical for every API, so they live here once and are tested once.

- Timeouts on every request (``timeout`` seconds, connect/read/write/pool alike).
- Retries with exponential backoff (``backoff_initial * 2**(attempt-1)``, capped at ``backoff_max``)
  on 5xx, timeouts and connection errors, up to ``max_attempts`` attempts in all.
- ``429 Too Many Requests`` waits what ``Retry-After`` asks (seconds or an HTTP date), capped at
  ``retry_after_cap`` seconds; without the header it backs off like a 5xx.
- Clear, typed errors: :class:`AuthError` (401/403, naming the environment variable to check),
  :class:`NotFoundError` (404, with the path and parameters), :class:`ClientError` (other 4xx),
  :class:`ServerError` / :class:`RateLimitedError` / :class:`TransportFailure` once retries are
  spent, and :class:`~sources.frames.SourceError` for a body that is not the JSON it should be.
- Secrets travel in headers only. Every string this layer logs or puts in an exception passes
  through :meth:`HttpClient.redact`, which blanks every registered secret, and no ``repr`` shows
  one.

Tests inject an ``httpx.MockTransport`` (``transport=``) and a recording ``sleep=`` so nothing
waits.

The small parsing helpers at the end (timestamps, numbers, hourly means, range chunking) are shared
by the adapters built on this layer.
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import pandas as pd
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from sources.frames import RepairReport, SourceError

log = logging.getLogger("gridflex.sources.http")

#: Timestamp-like inputs accepted by the adapters (naive values are taken as UTC).
TimeLike = str | datetime | pd.Timestamp


# -------------------------------------------------------------------------------------------------
# Errors
# -------------------------------------------------------------------------------------------------
class HttpError(SourceError):
    """A request that did not give a usable answer. ``status`` is the HTTP status (None: no
    response); ``transient`` says whether trying again later may help (rate limit, 5xx, network)."""

    transient = False

    def __init__(self, where: str, problem: str, status: int | None = None):
        self.status = status
        super().__init__(where, problem)


class AuthError(HttpError):
    """401/403: the credentials were refused (or do not cover this request)."""


class NotFoundError(HttpError):
    """404: e.g. an unknown zone or region."""


class ClientError(HttpError):
    """Any other 4xx: the request itself is wrong (bad parameter, range too long, ...)."""


class RateLimitedError(HttpError):
    """429 on every attempt."""

    transient = True


class ServerError(HttpError):
    """5xx on every attempt."""

    transient = True


class TransportFailure(HttpError):
    """Timeouts or connection errors on every attempt."""

    transient = True


class _Retry(Exception):
    """Internal: this attempt failed in a way worth retrying."""

    def __init__(
        self, kind: str, detail: str, status: int | None = None, retry_after: float | None = None
    ):
        super().__init__(detail)
        self.kind = kind  # "rate_limited" | "server" | "transport"
        self.detail = detail
        self.status = status
        self.retry_after = retry_after


# -------------------------------------------------------------------------------------------------
# Retry-After
# -------------------------------------------------------------------------------------------------
def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date. ``None`` when
    the header is absent or unreadable; never negative."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    when = parse_http_date(value)
    if when is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def parse_http_date(value: str | None) -> pd.Timestamp | None:
    """A response's ``Date`` header as a UTC timestamp (None when absent or unreadable). A source's
    own "now": what a forecast endpoint that does not say when it was issued was issued at."""
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    ts = pd.Timestamp(when)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


# -------------------------------------------------------------------------------------------------
# Client
# -------------------------------------------------------------------------------------------------
def add_secret(secrets: set[str], secret: str | None) -> None:
    """Add ``secret`` to the set a client blanks (strings shorter than 4 characters are not
    secrets worth blanking: they would blank ordinary text)."""
    if secret and len(secret) >= 4:
        secrets.add(secret)


def redact(text: str, secrets: set[str]) -> str:
    """``text`` with every string of ``secrets`` blanked (longest first)."""
    for s in sorted(secrets, key=len, reverse=True):
        text = text.replace(s, "***")
    return text


class HttpClient:
    """A small JSON-over-HTTPS client with timeouts, retries, rate-limit handling and redaction.

    Args:
        name: what to call this source in messages and logs (``"electricitymaps_api"``).
        base_url: prefix for relative paths; absolute URLs passed to :meth:`get_json` are used
            as they are.
        timeout: seconds for connect/read/write/pool.
        max_attempts: attempts in all (1 = no retry).
        backoff_initial, backoff_max: exponential backoff between attempts, in seconds.
        retry_after_cap: longest wait a ``Retry-After`` header may impose, in seconds.
        auth_hint: what to tell the user on 401/403 (e.g. ``"check ELECTRICITYMAPS_API_TOKEN"``).
        secrets: strings never to show in logs or messages (tokens, passwords).
        transport: an ``httpx.BaseTransport`` (tests pass ``httpx.MockTransport``).
        sleep: the sleep function used between attempts (tests pass a recorder).
    """

    def __init__(
        self,
        name: str,
        base_url: str = "",
        *,
        timeout: float = 30.0,
        max_attempts: int = 4,
        backoff_initial: float = 1.0,
        backoff_max: float = 30.0,
        retry_after_cap: float = 120.0,
        auth_hint: str = "check the credentials",
        secrets: Iterable[str] = (),
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        user_agent: str = "gridflex (+https://github.com/gridflex)",
    ):
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.retry_after_cap = retry_after_cap
        self.auth_hint = auth_hint
        self._secrets: set[str] = set()
        for s in secrets:
            self.add_secret(s)
        self._sleep = sleep
        #: the ``Date`` header of the last successful response (the server's "now"), or None
        self.server_time: pd.Timestamp | None = None
        self._client = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout),
            transport=transport,
            headers={"User-Agent": user_agent, "Accept": "application/json"},
            # Redirects are not followed: a custom auth header would travel to the new host.
            follow_redirects=False,
        )

    # -- secrets --
    def add_secret(self, secret: str | None) -> None:
        """Register a string to blank in every log line and message (e.g. a fresh token)."""
        add_secret(self._secrets, secret)

    def redact(self, text: str) -> str:
        return redact(text, self._secrets)

    def __repr__(self) -> str:
        return (
            f"HttpClient(name={self.name!r}, base_url={self.base_url!r}, timeout={self.timeout}, "
            f"max_attempts={self.max_attempts})"
        )

    # -- lifecycle --
    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests --
    def describe(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        """``"<name> GET <path>?<params>"`` with secrets blanked: how messages name a request."""
        query = urlencode({k: v for k, v in (params or {}).items() if v is not None}, doseq=True)
        return self.redact(f"{self.name} GET {path}" + (f"?{query}" if query else ""))

    def get_json(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
    ) -> Any:
        """GET ``path`` and return the decoded JSON body, retrying what is worth retrying.

        Raises :class:`HttpError` subclasses for HTTP failures and :class:`SourceError` for a body
        that is not JSON.
        """
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        where = self.describe(path, clean)
        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=self._wait,
            retry=retry_if_exception_type(_Retry),
            sleep=self._sleep,
            before_sleep=lambda rs: self._log_retry(where, rs),
            reraise=True,
        )
        try:
            response = retrying(self._attempt, path, clean, headers, auth, where)
        except _Retry as last:
            problem = f"gave up after {self.max_attempts} attempt(s): {last.detail}"
            cls = {"rate_limited": RateLimitedError, "server": ServerError}.get(
                last.kind, TransportFailure
            )
            raise cls(where, problem, status=last.status) from None
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as exc:
            raise SourceError(
                where,
                f"malformed JSON in the response body ({exc.__class__.__name__}: "
                f"{self.redact(str(exc))}); body starts {self._snippet(response)!r}",
            ) from None

    def _attempt(
        self,
        path: str,
        params: dict[str, Any],
        headers: Mapping[str, str] | None,
        auth: tuple[str, str] | None,
        where: str,
    ) -> httpx.Response:
        log.debug("%s", where)
        try:
            response = self._client.get(path, params=params, headers=headers, auth=auth)
        except httpx.TimeoutException as exc:
            raise _Retry(
                "transport", f"timeout after {self.timeout} s ({type(exc).__name__})"
            ) from None
        except httpx.TransportError as exc:
            raise _Retry(
                "transport", f"connection error ({type(exc).__name__}: {self.redact(str(exc))})"
            ) from None
        status = response.status_code
        if status < 300:
            self.server_time = parse_http_date(response.headers.get("Date"))
            return response
        body = self._snippet(response)
        if status < 400:
            target = response.headers.get("Location", "?")
            raise ClientError(
                where,
                f"{status} redirect to {self.redact(target)} not followed (credentials are not sent"
                " to another address): fix the base URL",
                status,
            )
        if status == 429:
            wait = parse_retry_after(response.headers.get("Retry-After"))
            raise _Retry(
                "rate_limited",
                f"429 rate limited (Retry-After: {response.headers.get('Retry-After', 'absent')})",
                status,
                wait,
            )
        if status >= 500:
            raise _Retry("server", f"{status} {response.reason_phrase}: {body}", status)
        if status in (401, 403):
            what = "token refused" if status == 401 else "not allowed for these credentials/plan"
            raise AuthError(
                where,
                f"{status} {response.reason_phrase} ({what}): {self.auth_hint}. Response: {body}",
                status,
            )
        if status == 404:
            raise NotFoundError(
                where, f"404 Not Found (unknown zone/region or endpoint?). Response: {body}", status
            )
        raise ClientError(where, f"{status} {response.reason_phrase}. Response: {body}", status)

    def _wait(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(exc, _Retry) and exc.retry_after is not None:
            return min(exc.retry_after, self.retry_after_cap)
        n = retry_state.attempt_number
        return min(self.backoff_max, self.backoff_initial * 2 ** (n - 1))

    def _log_retry(self, where: str, retry_state: RetryCallState) -> None:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        wait = retry_state.next_action.sleep if retry_state.next_action else 0.0
        log.warning(
            "%s: %s; attempt %d/%d, retrying in %.1f s",
            where,
            self.redact(getattr(exc, "detail", str(exc))),
            retry_state.attempt_number,
            self.max_attempts,
            wait,
        )

    def _snippet(self, response: httpx.Response, limit: int = 300) -> str:
        try:
            text = response.text
        except Exception:  # noqa: BLE001 - undecodable body: say so, never fail on the message
            text = "<undecodable body>"
        text = " ".join(text.split())
        return self.redact(text[:limit] + ("…" if len(text) > limit else ""))


# -------------------------------------------------------------------------------------------------
# Parsing helpers shared by the adapters
# -------------------------------------------------------------------------------------------------
def to_utc(value: TimeLike, name: str = "time") -> pd.Timestamp:
    """A caller's time argument as a UTC timestamp (naive values are taken as UTC)."""
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}={value!r} is not a timestamp: {exc}") from None
    if ts is pd.NaT:
        raise ValueError(f"{name} is NaT")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def iso_z(ts: pd.Timestamp) -> str:
    """``2026-05-01T00:00:00Z``: how the APIs want times in query strings."""
    return ts.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def chunk_range(
    start: pd.Timestamp, end: pd.Timestamp, max_span: pd.Timedelta
) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Split ``[start, end)`` into adjacent, non-overlapping windows no longer than ``max_span``."""
    if end <= start:
        raise ValueError(f"empty range: start {start} is not before end {end}")
    out = []
    lo = start
    while lo < end:
        hi = min(lo + max_span, end)
        out.append((lo, hi))
        lo = hi
    return out


def parse_times(
    values: Sequence[Any], where: str, field: str, indices: Sequence[int] | None = None
) -> pd.DatetimeIndex:
    """Parse ISO-8601 strings to a UTC ``DatetimeIndex``; naive strings are taken as UTC.

    On failure a :class:`SourceError` names the offending item index (``indices[i]`` when given:
    the position in the response when some items were set aside before parsing)."""
    try:
        idx = pd.to_datetime(pd.Index(values, dtype="object"), utc=True, format="ISO8601")
        if not idx.isna().any():
            return idx.as_unit("ns")
    except (TypeError, ValueError, OverflowError):
        pass
    for i, v in enumerate(values):
        try:
            if not isinstance(v, str):
                raise TypeError(f"not a string: {v!r}")
            ts = pd.Timestamp(v)
            if ts is pd.NaT:
                raise ValueError("NaT")
        except (TypeError, ValueError, OverflowError) as exc:
            row = indices[i] if indices is not None else i
            raise SourceError(
                where, f"{field}={v!r} is not an ISO-8601 time ({exc})", row=row
            ) from None
    raise SourceError(where, f"{field} values could not be parsed as times")  # pragma: no cover


def is_number(v: Any) -> bool:
    """A real JSON number (not a bool, not NaN/inf)."""
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def require_list(payload: Any, keys: Sequence[str], where: str) -> list[Any]:
    """The first of ``keys`` present in a JSON object, which must hold a list."""
    if not isinstance(payload, dict):
        raise SourceError(where, f"expected a JSON object, got {type(payload).__name__}")
    for key in keys:
        if key in payload:
            items = payload[key]
            if not isinstance(items, list):
                raise SourceError(where, f"'{key}' is {type(items).__name__}, expected a list")
            return items
    raise SourceError(
        where, f"missing key {' or '.join(repr(k) for k in keys)} (keys present: {sorted(payload)})"
    )


def hourly_mean(
    df: pd.DataFrame,
    keys: Sequence[str],
    report: RepairReport,
    what: str,
    *,
    step_seconds: float | None = None,
    extra_agg: Mapping[str, Any] | None = None,
    mark_partial: bool = False,
) -> pd.DataFrame:
    """Average sub-hourly rows of ``df`` (columns ``ts``, ``value`` and ``keys``) to hour starts.

    Hourly input passes through untouched. Otherwise every input row folded into an hour is
    counted as ``resampled_to_hourly`` and hours holding fewer points than ``3600 / step_seconds``
    (the step is inferred from the data when not given) are counted as ``partial_hour``: still
    averaged, never silent. ``extra_agg`` maps other columns to aggregations (e.g. ``"any"``).
    ``mark_partial`` adds a boolean ``partial`` column (an hour still in progress, say).
    """
    if df.empty:
        return df.assign(partial=False) if mark_partial else df
    hour = df["ts"].dt.floor("h")
    group_keys = [*keys, "_hour"]
    sub_hourly = (hour != df["ts"]).any() or df.assign(_hour=hour).duplicated(group_keys).any()
    if not sub_hourly:
        return df.assign(partial=False) if mark_partial else df
    if step_seconds is None:
        steps = df["ts"].drop_duplicates().sort_values().diff().dropna().dt.total_seconds()
        steps = steps[steps > 0]
        step_seconds = float(steps.median()) if len(steps) else 3600.0
    expected = max(1, round(3600 / step_seconds)) if step_seconds > 0 else 1
    agg: dict[str, Any] = {"value": ("value", "mean"), "_n": ("value", "size")}
    for col, how in (extra_agg or {}).items():
        agg[col] = (col, how)
    work = df.assign(_hour=hour)
    out = work.groupby(group_keys, sort=True, dropna=False).agg(**agg).reset_index()
    partial = int((out["_n"] < expected).sum())
    report.add(
        "resampled_to_hourly",
        len(df),
        f"{what}: {len(df)} points at {step_seconds:g} s averaged to {len(out)} hourly rows "
        f"(hourly mean)",
    )
    report.add(
        "partial_hour",
        partial,
        f"{what}: {partial} hour(s) had fewer than {expected} points; averaged anyway",
    )
    if mark_partial:
        out["partial"] = out["_n"] < expected
    out = out.drop(columns="_n").rename(columns={"_hour": "ts"})
    return out


def finish_frame(
    df: pd.DataFrame,
    columns: Sequence[str],
    time_columns: Sequence[str] = ("ts", "received_at", "issued_at"),
    sort: Sequence[str] = ("ts",),
) -> pd.DataFrame:
    """Exactly ``columns`` in order, UTC ``datetime64[ns]`` time columns, sorted, fresh index."""
    out = df.reindex(columns=list(columns))
    if "value" in out:
        out["value"] = out["value"].astype("float64")
    if "is_estimated" in out:
        out["is_estimated"] = out["is_estimated"].astype(bool)
    for col in time_columns:
        if col in out:
            out[col] = pd.to_datetime(out[col], utc=True).astype("datetime64[ns, UTC]")
    by = [c for c in sort if c in out]
    if by and not out.empty:
        out = out.sort_values(by, kind="stable")
    return out.reset_index(drop=True)
