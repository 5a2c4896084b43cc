"""WattTime API v3: marginal operating emissions rate (MOER), as tidy hourly UTC frames.

WattTime publishes 5-minute values in ``lbs_co2_per_mwh``; frames carry gCO2/kWh (1 lb/MWh =
0.453592 g/kWh) averaged to the hour. That resampling is recorded in the
:class:`~sources.frames.RepairReport` (``resampled_to_hourly``: points folded; ``partial_hour``:
hours with fewer than 3600 / ``data_point_period_seconds`` points, still averaged). Units the
adapter does not know (e.g. a ``health_damage`` signal's) are refused, never stored as if they were
g/kWh.

- ``series = "<region>:marginal:<signal_type>"``, ``signal="marginal"``, ``factor=signal_type``,
  ``source="watttime"``: marginal and average intensities are different quantities.
- :meth:`WattTimeClient.forecast_historical` returns past forecasts *as issued* (``issued_at =
  generated_at``): the honest input for a backtest.

Auth: ``GET /login`` with HTTP Basic (``WATTTIME_USERNAME`` / ``WATTTIME_PASSWORD``) gives a bearer
token valid ~30 min. It is cached, renewed after ``token_ttl_s``, and renewed once more when a
request answers 401, then the request is retried once. Neither the password nor the token is ever
logged, shown in a ``repr`` or put in a message.
"""

from __future__ import annotations

import logging
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
    AuthError,
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

log = logging.getLogger("gridflex.sources.watttime")

SOURCE = "watttime"
USERNAME_ENV = "WATTTIME_USERNAME"
PASSWORD_ENV = "WATTTIME_PASSWORD"
BASE_URL_ENV = "WATTTIME_BASE_URL"
DEFAULT_BASE_URL = "https://api.watttime.org"
#: Units WattTime may report, and the factor that turns them into gCO2/kWh.
TO_G_PER_KWH = {
    "lbs_co2_per_mwh": 0.453592,
    "g_co2_per_kwh": 1.0,
    "kg_co2_per_mwh": 1.0,
}


class WattTimeClient:
    """Client for WattTime v3 (``/login``, ``/v3/historical``, ``/v3/forecast``,
    ``/v3/forecast/historical``).

    Args:
        username, password: WattTime account (use :meth:`from_env`).
        base_url: API root.
        timeout, max_attempts, retry_after_cap: see :class:`sources.http.HttpClient`.
        token_ttl_s: renew the bearer token after this many seconds (WattTime's last ~30 min).
        max_days_per_call: split ``historical`` / ``forecast_historical`` ranges into windows of
            this many days (None: one request per call).
        transport, sleep: test seams. clock: receive time for ``received_at``.
        monotonic: clock for the token age (tests may replace it).
    """

    def __init__(
        self,
        username: str,
        password: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout: float = 30.0,
        max_attempts: int = 4,
        retry_after_cap: float = 120.0,
        token_ttl_s: float = 25 * 60,
        max_days_per_call: int | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], pd.Timestamp] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        if not username or not password:
            raise ValueError(
                f"WattTime credentials are required (set {USERNAME_ENV} and {PASSWORD_ENV})"
            )
        self.username = username
        self._password = SecretStr(password)
        self.base_url = base_url
        self.token_ttl_s = token_ttl_s
        self.max_days_per_call = max_days_per_call
        self._clock = clock
        self._monotonic = monotonic
        self._token: SecretStr | None = None
        self._token_at = 0.0
        #: how many times /login was called (useful to see the cache work)
        self.logins = 0
        self.http = HttpClient(
            SOURCE,
            base_url,
            timeout=timeout,
            max_attempts=max_attempts,
            retry_after_cap=retry_after_cap,
            auth_hint=f"check {USERNAME_ENV} / {PASSWORD_ENV} (without a subscription only region "
            "CAISO_NORTH returns data)",
            secrets=[password],
            transport=transport,
            sleep=sleep,
        )

    @classmethod
    def from_env(cls, **kwargs: Any) -> WattTimeClient:
        """Credentials from ``WATTTIME_USERNAME`` / ``WATTTIME_PASSWORD``; base URL from
        ``WATTTIME_BASE_URL`` if set."""
        user, pw = os.environ.get(USERNAME_ENV, ""), os.environ.get(PASSWORD_ENV, "")
        missing = [n for n, v in ((USERNAME_ENV, user), (PASSWORD_ENV, pw)) if not v]
        if missing:
            raise ValueError(f"environment variable(s) not set: {', '.join(missing)}")
        if os.environ.get(BASE_URL_ENV):
            kwargs.setdefault("base_url", os.environ[BASE_URL_ENV])
        return cls(user, pw, **kwargs)

    def __repr__(self) -> str:
        return (
            f"WattTimeClient(base_url={self.base_url!r}, username={self.username!r}, "
            "password='***')"
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> WattTimeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- auth --
    def _login(self) -> str:
        payload = self.http.get_json(
            "/login", auth=(self.username, self._password.get_secret_value())
        )
        token = payload.get("token") if isinstance(payload, dict) else None
        if not isinstance(token, str) or not token:
            raise SourceError(self.http.describe("/login"), "no 'token' in the login response")
        self.http.add_secret(token)
        self._token = SecretStr(token)
        self._token_at = self._monotonic()
        self.logins += 1
        return token

    def _bearer(self) -> str:
        if self._token is None or self._monotonic() - self._token_at > self.token_ttl_s:
            return self._login()
        return self._token.get_secret_value()

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        """GET with the cached token; on 401 log in again once and retry once. A refused login
        is raised at once (``/login`` is rate-limited to ~100 per 5 minutes)."""
        token = self._bearer()
        try:
            return self.http.get_json(path, params, headers={"Authorization": f"Bearer {token}"})
        except AuthError as exc:
            if exc.status != 401:
                raise
        log.info(
            "%s: bearer token refused (401); logging in again", self.http.describe(path, params)
        )
        token = self._login()
        return self.http.get_json(path, params, headers={"Authorization": f"Bearer {token}"})

    # -- endpoints --
    def region_from_loc(
        self, latitude: float, longitude: float, signal_type: str = "co2_moer"
    ) -> dict[str, str]:
        """The WattTime region covering a point: ``{"region", "region_full_name", "signal_type"}``."""
        path = "/v3/region-from-loc"
        params = {"latitude": latitude, "longitude": longitude, "signal_type": signal_type}
        payload = self._get(path, params)
        where = self.http.describe(path, params)
        if not isinstance(payload, dict) or not isinstance(payload.get("region"), str):
            raise SourceError(where, "no 'region' in the answer")
        return {
            "region": payload["region"],
            "region_full_name": str(payload.get("region_full_name") or payload["region"]),
            "signal_type": str(payload.get("signal_type") or signal_type),
        }

    def historical(
        self, region: str, start: TimeLike, end: TimeLike, signal_type: str = "co2_moer"
    ) -> tuple[pd.DataFrame, RepairReport]:
        """Actual values for ``region`` in ``[start, end)``, hourly means in gCO2/kWh. An hour with
        fewer 5-minute points than it should have is kept, flagged ``is_estimated`` with
        ``estimation_method="partial_hour_mean"``."""
        path = "/v3/historical"
        report = RepairReport(SOURCE)
        frames = []
        received = self._clock()
        for lo, hi in self._windows(start, end):
            params = {
                "region": region,
                "start": iso_z(lo),
                "end": iso_z(hi),
                "signal_type": signal_type,
            }
            payload = self._get(path, params)
            where = self.http.describe(path, params)
            points, factor, step = self._points(payload, where, signal_type)
            df = _points_frame(points, where, factor)
            frames.append(_in_window(df, "ts", lo, hi, where, report))
        df = pd.concat(frames, ignore_index=True)
        df = hourly_mean(
            df, [], report, f"{SOURCE} {path} {region}", step_seconds=step, mark_partial=True
        )
        out = self._carbon(df, region, signal_type, received, CARBON_COLUMNS)
        # an hour with fewer points than it should have (the hour in progress, a hole) is a mean of
        # what arrived: flagged estimated, and replaced when the rest arrives
        partial = df["partial"].to_numpy(bool)
        out.loc[partial, "is_estimated"] = True
        out.loc[partial, "estimation_method"] = "partial_hour_mean"
        return out, report

    def forecast(
        self, region: str, horizon_hours: int = 24, signal_type: str = "co2_moer"
    ) -> tuple[pd.DataFrame, RepairReport]:
        """The current forecast for ``region``; ``issued_at`` = ``meta.generated_at``."""
        if horizon_hours <= 0:
            raise ValueError(f"horizon_hours must be positive, got {horizon_hours}")
        path = "/v3/forecast"
        params = {"region": region, "signal_type": signal_type, "horizon_hours": horizon_hours}
        received = self._clock()
        payload = self._get(path, params)
        where = self.http.describe(path, params)
        points, factor, step = self._points(payload, where, signal_type)
        meta = payload["meta"]
        if "generated_at" not in meta:
            raise SourceError(where, "missing key 'meta.generated_at' (the forecast's issue time)")
        issued = parse_times([meta["generated_at"]], where, "meta.generated_at")[0]
        report = RepairReport(SOURCE)
        df = hourly_mean(
            _points_frame(points, where, factor),
            [],
            report,
            f"{SOURCE} {path} {region}",
            step_seconds=step,
        )
        df["issued_at"] = issued
        return self._carbon(df, region, signal_type, received, CARBON_FORECAST_COLUMNS), report

    def forecast_historical(
        self, region: str, start: TimeLike, end: TimeLike, signal_type: str = "co2_moer"
    ) -> tuple[pd.DataFrame, RepairReport]:
        """Past forecasts as they were issued between ``start`` and ``end``: one block of rows per
        ``generated_at`` (``issued_at``), each averaged to the hour."""
        path = "/v3/forecast/historical"
        report = RepairReport(SOURCE)
        frames = []
        received = self._clock()
        for lo, hi in self._windows(start, end):
            params = {
                "region": region,
                "start": iso_z(lo),
                "end": iso_z(hi),
                "signal_type": signal_type,
            }
            payload = self._get(path, params)
            where = self.http.describe(path, params)
            blocks, factor, step = self._points(payload, where, signal_type)
            for b, block in enumerate(blocks):
                bwhere = f"{where} data[{b}]"
                if not isinstance(block, dict) or "generated_at" not in block:
                    raise SourceError(where, "forecast block without 'generated_at'", row=b)
                issued = parse_times([block["generated_at"]], where, "generated_at", [b])[0]
                if issued == hi:
                    continue  # an end-inclusive answer: the next window has this issue
                if not lo <= issued < hi:
                    report.add(
                        "outside_window_dropped",
                        1,
                        f"{bwhere}: generated_at {issued} not asked for",
                    )
                    continue
                points = require_list(block, ("forecast",), bwhere)
                df = _points_frame(points, bwhere, factor)
                df["issued_at"] = issued
                frames.append(df)
        if not frames:
            empty = empty_frame(CARBON_FORECAST_COLUMNS)
            return finish_frame(empty, CARBON_FORECAST_COLUMNS), report
        df = pd.concat(frames, ignore_index=True)
        df = hourly_mean(df, ["issued_at"], report, f"{SOURCE} {path} {region}", step_seconds=step)
        out = self._carbon(df, region, signal_type, received, CARBON_FORECAST_COLUMNS)
        return finish_frame(out, CARBON_FORECAST_COLUMNS, sort=("issued_at", "ts")), report

    # -- internals --
    def _windows(self, start: TimeLike, end: TimeLike) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
        t0, t1 = to_utc(start, "start"), to_utc(end, "end")
        span = pd.Timedelta(days=self.max_days_per_call) if self.max_days_per_call else t1 - t0
        return chunk_range(t0, t1, span if span > pd.Timedelta(0) else pd.Timedelta(days=1))

    def _points(self, payload: Any, where: str, signal_type: str) -> tuple[list[Any], float, float]:
        """The ``data`` list, the factor to g/kWh from ``meta.units`` and the point period (s)."""
        data = require_list(payload, ("data",), where)
        meta = payload.get("meta")
        if not isinstance(meta, dict):
            raise SourceError(where, "missing key 'meta'")
        units = meta.get("units")
        if units not in TO_G_PER_KWH:
            raise SourceError(
                where,
                f"unknown units {units!r} in meta.units (known: "
                f"{sorted(TO_G_PER_KWH)}); refusing to store them as gCO2/kWh",
            )
        got = meta.get("signal_type")
        if got is not None and got != signal_type:
            raise SourceError(where, f"asked for signal_type {signal_type!r}, got {got!r}")
        step = meta.get("data_point_period_seconds", 300)
        if not is_number(step) or step <= 0:
            raise SourceError(
                where, f"meta.data_point_period_seconds={step!r} is not a positive number"
            )
        return data, TO_G_PER_KWH[units], float(step)

    def _carbon(
        self,
        df: pd.DataFrame,
        region: str,
        signal_type: str,
        received: pd.Timestamp,
        columns: list[str],
    ) -> pd.DataFrame:
        df = df.drop(columns=["partial"], errors="ignore").copy()
        df["series"] = f"{region}:marginal:{signal_type}"
        df["zone"] = region
        df["signal"] = "marginal"
        df["factor"] = signal_type
        df["source"] = SOURCE
        df["is_estimated"] = False
        df["estimation_method"] = None
        df["received_at"] = received
        df["value"] = df["value"].astype("float64")
        return finish_frame(df, columns)


def _in_window(
    df: pd.DataFrame, col: str, lo: pd.Timestamp, hi: pd.Timestamp, where: str, report: RepairReport
) -> pd.DataFrame:
    """Rows with ``lo <= col < hi``. The ``hi`` row of an end-inclusive answer belongs to the next
    window and is dropped quietly; other strays are counted as ``outside_window_dropped``."""
    stray = (df[col] < lo) | (df[col] > hi)
    report.add(
        "outside_window_dropped",
        int(stray.sum()),
        f"{where}: {int(stray.sum())} row(s) not asked for",
    )
    return df[(df[col] >= lo) & (df[col] < hi)]


def _points_frame(points: list[Any], where: str, factor: float) -> pd.DataFrame:
    """``[{point_time, value}, …]`` → ``ts``, ``value`` (g/kWh). Refuses missing keys and values
    that are not non-negative numbers, naming the item index."""
    times, values = [], []
    for i, p in enumerate(points):
        if not isinstance(p, dict):
            raise SourceError(where, f"item is {type(p).__name__}, expected an object", row=i)
        for key in ("point_time", "value"):
            if key not in p:
                raise SourceError(where, f"missing key {key!r}", row=i)
        v = p["value"]
        if not is_number(v):
            raise SourceError(where, f"value={v!r} is not a number", row=i)
        if v < 0:
            raise SourceError(where, f"value={v!r} is negative", row=i)
        check_range([float(v) * factor], "carbon_g_kwh", where, rows=[i], what="value (g/kWh)")
        times.append(p["point_time"])
        values.append(float(v) * factor)
    return pd.DataFrame(
        {
            "ts": parse_times(times, where, "point_time")
            if times
            else pd.DatetimeIndex([], tz="UTC"),
            "value": pd.Series(values, dtype="float64"),
        }
    )
