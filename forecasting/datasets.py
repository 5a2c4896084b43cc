"""Loaders for the real benchmark data (``../shared/data``; never copied into the repo).

* DACF (carbonfirst/DACF, EIA-930): ``<R>_direct_emissions.csv`` and
  ``<R>_carbon_from_src_prod_forecasts_direct.csv``, naive UTC hour starts.
* Helios "Venus" cluster throughput: 10-minute bins in local time (Asia/Shanghai, UTC+8, no DST);
  summed to hourly GPUs requested (``submit_gpu_num``), last (all-zero) day dropped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from forecasting.spec import SERIES, TS, ForecastInputError

DACF_SOURCES = ("coal", "nat_gas", "nuclear", "oil", "hydro", "solar", "wind", "other")
#: GFS weather forecasts averaged over the region: real forecasts, usable as known-future inputs.
DACF_WEATHER = (
    "forecast_avg_wind_speed_wMean",
    "forecast_avg_temperature_wMean",
    "forecast_avg_dewpoint_wMean",
    "forecast_avg_dswrf_wMean",
    "forecast_avg_precipitation_wMean",
)


def load_dacf(data_dir: str | Path, region: str) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Returns ``(frame, published, notes)``.

    ``frame``: ``series=region, ts, value`` (carbon intensity, gCO2eq/kWh), generation shares
    ``share_<source>`` (observed-only), total generation ``gen_total`` (observed-only), and the five
    GFS columns renamed ``wx_<name>`` (known-future). The file's ``avg_*_production_forecast``
    columns (the published model's own outputs) are dropped. GFS values that are exactly 0 on the
    file's last day (a known artefact) are replaced by the same hour of the previous day, which was
    known earlier;
    ``notes`` says how many.
    ``published``: ``series, ts, actual, published`` for the test period.
    """
    d = Path(data_dir)
    f1 = d / f"{region}_direct_emissions.csv"
    f2 = d / f"{region}_carbon_from_src_prod_forecasts_direct.csv"
    for f in (f1, f2):
        if not f.exists():
            raise FileNotFoundError(f"{f} not found (DACF data: see DATA.md)")
    raw = pd.read_csv(f1, index_col=0)
    notes: list[str] = []
    ts = pd.to_datetime(raw["UTC time"]).dt.tz_localize("UTC")
    out = pd.DataFrame({SERIES: region, TS: ts, "value": raw["carbon_intensity"].astype(float)})
    srcs = [s for s in DACF_SOURCES if s in raw.columns]
    gen = raw[srcs].astype(float).clip(lower=0)
    total = gen.sum(axis=1)
    out["gen_total"] = total.to_numpy()
    for s in srcs:
        if gen[s].abs().sum() == 0:
            continue
        out[f"share_{s}"] = (gen[s] / total.where(total > 0)).fillna(0.0).to_numpy()
    last_day = ts.dt.normalize() == ts.dt.normalize().max()
    for c in DACF_WEATHER:
        v = raw[c].astype(float).to_numpy().copy()
        bad = last_day.to_numpy() & (v == 0)
        n_bad = int(bad.sum())
        if n_bad:
            v[bad] = v[np.nonzero(bad)[0] - 24]
            notes.append(f"{c}: {n_bad} zero values on the last day replaced by the previous day's")
        out["wx_" + c.removeprefix("forecast_avg_").removesuffix("_wMean")] = v
    n_nan = int(out.isna().sum().sum())
    if n_nan:
        num = out.columns.drop([SERIES, TS])
        out[num] = out[num].interpolate(limit=3, limit_direction="both")
        notes.append(f"{n_nan} missing values interpolated (at most 3 h)")
        if out.isna().any().any():
            raise ForecastInputError(f"{f1}: gaps longer than 3 h")
    pub = pd.read_csv(f2, index_col=0)
    published = pd.DataFrame(
        {
            SERIES: region,
            TS: pd.to_datetime(pub["UTC time"]).dt.tz_localize("UTC"),
            "actual": pub["carbon_intensity"].astype(float),
            "published": pub["carbon_from_src_forecasts"].astype(float),
        }
    )
    return out, published, notes


def dacf_columns(frame: pd.DataFrame) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(known_reals, observed_reals) of a :func:`load_dacf` frame."""
    known = tuple(c for c in frame.columns if c.startswith("wx_"))
    observed = tuple(c for c in frame.columns if c.startswith("share_") or c == "gen_total")
    return known, observed


def load_helios(
    path: str | Path,
    *,
    series: str = "helios-venus",
    utc_offset_h: int = 8,
) -> pd.DataFrame:
    """Hourly GPUs requested (sum of ``submit_gpu_num`` over the hour), ``series, ts, value``."""
    p = Path(path)
    if p.is_dir():
        p = p / "cluster_throughput.csv"
    raw = pd.read_csv(p)
    local = pd.to_datetime(raw["time"])
    ts = (local - pd.Timedelta(hours=utc_offset_h)).dt.tz_localize("UTC").dt.floor("h")
    hourly = raw.assign(ts=ts).groupby("ts")["submit_gpu_num"].sum()
    full = pd.date_range(hourly.index.min(), hourly.index.max(), freq="h")
    hourly = hourly.reindex(full, fill_value=0).astype(float)
    # drop the last (all-zero) local day
    day = (hourly.index + pd.Timedelta(hours=utc_offset_h)).normalize()
    last = day == day.max()
    if hourly[last].sum() == 0:
        hourly = hourly[~last]
    # and a leading partial hour-block if any: start at a full local day
    return pd.DataFrame({SERIES: series, TS: hourly.index, "value": hourly.to_numpy()})
