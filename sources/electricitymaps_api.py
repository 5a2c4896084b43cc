"""Electricity Maps API v3: average (consumption-based) carbon intensity, as tidy hourly UTC frames.

Endpoints (see ``shared/design/sources.md``): ``latest``, ``history`` (last 24 h), ``past-range``
(capped at 10 days per call: :meth:`ElectricityMapsClient.past_range` chunks) and ``forecast``.
Every method returns ``(frame, RepairReport)``:

- carbon frames have :data:`~sources.frames.CARBON_COLUMNS`; forecast frames
  :data:`~sources.frames.CARBON_FORECAST_COLUMNS` with ``issued_at`` = the response's ``updatedAt``;
- ``series = "<zone>:average:<factor>"`` with ``factor`` the response's ``emissionFactorType``
  (``lifecycle`` / ``direct``; when absent, the factor asked for, else the API default
  ``lifecycle``);
- values are revised after publication, so ``is_estimated`` / ``estimation_method`` are kept;
- repairs are counted: ``duplicate_dropped`` (same datetime twice: the latest ``updatedAt`` wins),
  ``missing_value_dropped`` (``carbonIntensity: null``), ``resampled_to_hourly`` / ``partial_hour``
  (15- or 5-minute granularity averaged to the hour);
- refused with a :class:`~sources.frames.SourceError` naming the endpoint and item index: malformed
  JSON, a missing ``datetime`` / ``carbonIntensity``, a non-numeric or negative intensity.

The token is read from ``ELECTRICITYMAPS_API_TOKEN`` (:meth:`ElectricityMapsClient.from_env`), sent
in the ``auth-token`` header and never logged, shown in a ``repr`` or an error message.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import httpx
import pandas as pd
from pydantic import SecretStr

from sources.frames import (
    CARBON_COLUMNS,
    CARBON_FORECAST_COLUMNS,
    RepairReport,
    SourceError,
    check_range,
    empty_frame,
    utc_now,
)
from sources.http import (
    HttpClient,
    TimeLike,
    chunk_range,
    finish_frame,
    hourly_mean,
    is_number,
    iso_z,
    parse_times,
    require_list,
    to_utc,
)

SOURCE = "electricitymaps_api"
TOKEN_ENV = "ELECTRICITYMAPS_API_TOKEN"
BASE_URL_ENV = "ELECTRICITYMAPS_BASE_URL"
DEFAULT_BASE_URL = "https://api.electricitymap.org"
FACTORS = ("lifecycle", "direct")
GRANULARITIES = ("hourly", "15_minutes", "5_minutes")


class ElectricityMapsClient:
    """Client for the Electricity Maps v3 carbon-intensity endpoints.

    Args:
        token: the API token (use :meth:`from_env`; never hard-code it).
        base_url: API root; ``/v3/...`` paths are appended.
        timeout, max_attempts, retry_after_cap: see :class:`sources.http.HttpClient`.
        max_days_per_call: past-range window per request (the API caps hourly ranges at 10 days).
        emission_factor: default ``emissionFactorType`` to ask for (None: the API default).
        transport, sleep: test seams (``httpx.MockTransport``, a recording sleep).
        clock: returns the receive time stamped in ``received_at``.
    """

    def __init__(
        self,
        token: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout: float = 30.0,
        max_attempts: int = 4,
        retry_after_cap: float = 120.0,
        max_days_per_call: int = 10,
        emission_factor: str | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], pd.Timestamp] = utc_now,
    ):
        if not token:
            raise ValueError(f"an Electricity Maps token is required (set {TOKEN_ENV})")
        _check_factor(emission_factor)
        self._token = SecretStr(token)
        self.base_url = base_url
        self.max_days_per_call = max_days_per_call
        self.emission_factor = emission_factor
        self._clock = clock
        self.http = HttpClient(
            SOURCE,
            base_url,
            timeout=timeout,
            max_attempts=max_attempts,
            retry_after_cap=retry_after_cap,
            auth_hint=f"check {TOKEN_ENV} (and that the plan covers this endpoint)",
            secrets=[token],
            transport=transport,
            sleep=sleep,
        )

    @classmethod
    def from_env(cls, **kwargs: Any) -> ElectricityMapsClient:
        """Token from ``ELECTRICITYMAPS_API_TOKEN``; base URL from ``ELECTRICITYMAPS_BASE_URL``
        when set."""
        token = os.environ.get(TOKEN_ENV, "")
        if not token:
            raise ValueError(f"environment variable {TOKEN_ENV} is not set")
        if os.environ.get(BASE_URL_ENV):
            kwargs.setdefault("base_url", os.environ[BASE_URL_ENV])
        return cls(token, **kwargs)

    def __repr__(self) -> str:
        return f"ElectricityMapsClient(base_url={self.base_url!r}, token='***')"

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ElectricityMapsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- endpoints --
    def latest(
        self, zone: str, *, emission_factor: str | None = None
    ) -> tuple[pd.DataFrame, RepairReport]:
        """The latest hour for ``zone`` (one row)."""
        path = "/v3/carbon-intensity/latest"
        params = self._params(zone, emission_factor)
        received = self._clock()
        payload = self._get(path, params)
        if not isinstance(payload, dict):
            raise SourceError(
                self.http.describe(path, params),
                f"expected a JSON object, got {type(payload).__name__}",
            )
        return self._carbon(zone, [payload], self.http.describe(path, params), received, params)

    def history(
        self, zone: str, *, emission_factor: str | None = None, granularity: str | None = None
    ) -> tuple[pd.DataFrame, RepairReport]:
        """The last 24 hours for ``zone``; sub-hourly ``granularity`` is averaged to the hour."""
        path = "/v3/carbon-intensity/history"
        params = self._params(zone, emission_factor, granularity)
        received = self._clock()
        payload = self._get(path, params)
        where = self.http.describe(path, params)
        return self._carbon(
            zone, require_list(payload, ("history", "data"), where), where, received, params
        )

    def past_range(
        self,
        zone: str,
        start: TimeLike,
        end: TimeLike,
        *,
        emission_factor: str | None = None,
        granularity: str | None = None,
    ) -> tuple[pd.DataFrame, RepairReport]:
        """Hours in ``[start, end)`` for ``zone``, fetched in windows of ``max_days_per_call`` days.

        Windows are adjacent and each keeps only its own ``[lo, hi)`` rows, so an API that includes
        the end hour cannot duplicate the boundary hour.
        """
        path = "/v3/carbon-intensity/past-range"
        t0, t1 = to_utc(start, "start"), to_utc(end, "end")
        report = RepairReport(SOURCE)
        frames = []
        for lo, hi in chunk_range(t0, t1, pd.Timedelta(days=self.max_days_per_call)):
            params = {
                **self._params(zone, emission_factor, granularity),
                "start": iso_z(lo),
                "end": iso_z(hi),
            }
            received = self._clock()
            payload = self._get(path, params)
            where = self.http.describe(path, params)
            items = require_list(payload, ("data", "history"), where)
            frame, rep = self._carbon(zone, items, where, received, params, window=(lo, hi))
            report = report.merge(rep)
            frames.append(frame)
        out = pd.concat([f for f in frames if not f.empty] or [frames[0]], ignore_index=True)
        return finish_frame(out, CARBON_COLUMNS), report

    def forecast(
        self, zone: str, horizon_hours: int = 24, *, emission_factor: str | None = None
    ) -> tuple[pd.DataFrame, RepairReport]:
        """The published forecast for ``zone`` (``horizonHours`` 24, 48 or 72 on the API);
        ``issued_at`` is the response's ``updatedAt``. Forecast rows have ``is_estimated=False``:
        that column describes estimated actuals; a forecast row is marked by its ``issued_at``."""
        if horizon_hours <= 0:
            raise ValueError(f"horizon_hours must be positive, got {horizon_hours}")
        path = "/v3/carbon-intensity/forecast"
        params = {**self._params(zone, emission_factor), "horizonHours": horizon_hours}
        received = self._clock()
        payload = self._get(path, params)
        where = self.http.describe(path, params)
        items = require_list(payload, ("forecast",), where)
        if "updatedAt" not in payload:
            raise SourceError(where, "missing key 'updatedAt' (the forecast's issue time)")
        issued = parse_times([payload["updatedAt"]], where, "updatedAt")[0]
        default_factor = payload.get("emissionFactorType")
        frame, report = self._carbon(
            zone, items, where, received, params, default_factor=default_factor
        )
        frame["issued_at"] = issued
        return finish_frame(frame, CARBON_FORECAST_COLUMNS), report

    # -- internals --
    def _params(
        self, zone: str, emission_factor: str | None, granularity: str | None = None
    ) -> dict[str, Any]:
        factor = emission_factor or self.emission_factor
        _check_factor(factor)
        if granularity is not None and granularity not in GRANULARITIES:
            raise ValueError(f"granularity must be one of {GRANULARITIES}, got {granularity!r}")
        return {"zone": zone, "emissionFactorType": factor, "temporalGranularity": granularity}

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        return self.http.get_json(
            path, params, headers={"auth-token": self._token.get_secret_value()}
        )

    def _carbon(
        self,
        zone: str,
        items: list[Any],
        where: str,
        received: pd.Timestamp,
        params: dict[str, Any],
        *,
        default_factor: str | None = None,
        window: tuple[pd.Timestamp, pd.Timestamp] | None = None,
    ) -> tuple[pd.DataFrame, RepairReport]:
        report = RepairReport(SOURCE)
        fallback_factor = default_factor or params.get("emissionFactorType") or "lifecycle"
        kept = _validate_items(items, where, report)
        if not kept:
            return finish_frame(empty_frame(CARBON_COLUMNS), CARBON_COLUMNS), report
        index = [i for i, _ in kept]
        rows = [r for _, r in kept]
        times = parse_times([r["datetime"] for r in rows], where, "datetime", index)
        updated = [r.get("updatedAt") for r in rows]
        df = pd.DataFrame(
            {
                "ts": times,
                "value": [float(r["carbonIntensity"]) for r in rows],
                "factor": [r.get("emissionFactorType") or fallback_factor for r in rows],
                "is_estimated": [bool(r.get("isEstimated") or False) for r in rows],
                "estimation_method": [r.get("estimationMethod") for r in rows],
                "_updated": pd.to_datetime(
                    pd.Series(updated, dtype="object"), utc=True, format="ISO8601", errors="coerce"
                ),
                "_order": index,
            }
        )
        bad = sorted(set(df["factor"]) - set(FACTORS))
        if bad:
            raise SourceError(
                where,
                f"unknown emissionFactorType {bad[0]!r}",
                row=int(df.loc[df["factor"] == bad[0], "_order"].iloc[0]),
            )
        if window is not None:
            lo, hi = window
            outside = (df["ts"] < lo) | (df["ts"] > hi) | ((df["ts"] == hi) & (hi > lo))
            # The end hour itself is expected from an end-inclusive API: only stray rows count.
            stray = int(((df["ts"] < lo) | (df["ts"] > hi)).sum())
            report.add(
                "outside_window_dropped",
                stray,
                f"{where}: {stray} row(s) outside the requested window dropped",
            )
            df = df[~outside]
        # Same datetime twice: the revision with the latest updatedAt wins (then the later item).
        df = df.sort_values(["_updated", "_order"], na_position="first", kind="stable")
        dup = df.duplicated(["factor", "ts"], keep="last")
        report.add(
            "duplicate_dropped",
            int(dup.sum()),
            f"{where}: {int(dup.sum())} duplicate datetime(s); kept the latest updatedAt",
        )
        df = df[~dup].drop(columns=["_updated", "_order"]).sort_values("ts")
        df = hourly_mean(
            df,
            ["factor"],
            report,
            where,
            extra_agg={"is_estimated": "any", "estimation_method": "first"},
        )
        df["is_estimated"] = df["is_estimated"].astype(bool)
        df["estimation_method"] = (
            df["estimation_method"].astype("object").where(df["estimation_method"].notna(), None)
        )
        df["zone"] = zone
        df["series"] = zone + ":average:" + df["factor"]
        df["signal"] = "average"
        df["source"] = SOURCE
        df["received_at"] = received
        df["value"] = df["value"].astype("float64")
        return finish_frame(df, CARBON_COLUMNS), report


def _check_factor(factor: str | None) -> None:
    if factor is not None and factor not in FACTORS:
        raise ValueError(f"emission_factor must be one of {FACTORS}, got {factor!r}")


def _validate_items(
    items: list[Any], where: str, report: RepairReport
) -> list[tuple[int, dict[str, Any]]]:
    """Items with a usable intensity. Nulls are dropped and counted (a gap the API itself reports);
    anything else that is not a non-negative number is refused."""
    rows = []
    nulls = 0
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise SourceError(where, f"item is {type(item).__name__}, expected an object", row=i)
        for key in ("datetime", "carbonIntensity"):
            if key not in item:
                raise SourceError(where, f"missing key {key!r}", row=i)
        v = item["carbonIntensity"]
        if v is None:
            nulls += 1
            continue
        if not is_number(v):
            raise SourceError(where, f"carbonIntensity={v!r} is not a number", row=i)
        if v < 0:
            raise SourceError(where, f"carbonIntensity={v!r} is negative", row=i)
        check_range([v], "carbon_g_kwh", where, rows=[i], what="carbonIntensity")
        rows.append((i, item))
    report.add(
        "missing_value_dropped",
        nulls,
        f"{where}: {nulls} item(s) with carbonIntensity null dropped",
    )
    return rows
