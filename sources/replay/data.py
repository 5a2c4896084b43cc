"""The recordings a replay server answers from, indexed for fast lookups by hour.

Why its own module: loading (the project's own file readers) and indexing (one sorted frame per
zone and factor, per weather location, per WattTime region) are done once, up front, so every
request is a slice of an in-memory frame.

Three recordings, each optional:

- ``carbon``: Electricity Maps average intensity, tidy (:data:`~sources.frames.CARBON_COLUMNS` or
  at least ``zone, ts, factor, value``; ``factor`` may come from ``series`` =
  ``"<zone>:average:<factor>"``; optional ``is_estimated``, ``estimation_method``), gCO2eq/kWh,
  hourly.
- ``weather``: hourly weather per ``location`` (:data:`~sources.frames.WEATHER_COLUMNS` or a
  subset), with ``latitude``/``longitude`` columns or a ``weather_coords`` mapping. Missing
  ``wind_speed_100m`` is derived as ``wind_speed_10m / 0.72`` (power law, alpha 0.14, 10 → 100 m)
  and missing ``shortwave_radiation`` from a clear-sky model times the cloud cover
  (``mpc.physics.clear_sky_ghi`` / ``shortwave_from_cloud``, evaluated for the hour *ending* at the time
  stamp, Open-Meteo's convention); :attr:`WeatherSite.derived` says which were derived.
- ``moer``: WattTime marginal emissions per ``region`` in **lbs_co2_per_mwh**, columns ``region``,
  a time column (``point_time``, ``datetime``, ``ts`` or ``time``; UTC ISO, naive = UTC) and a value
  column (``value`` or ``moer``), with ``latitude``/``longitude`` columns or ``moer_coords``.
  Hourly values are expanded to twelve 5-minute points each (step-held); 5-minute data is kept.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mpc.physics import WIND_10M_OVER_100M
from sources.frames import SourceError
from sources.openmeteo import HOURLY

#: the variables served, as the Open-Meteo adapter asks for them
WEATHER_VARS = tuple(HOURLY)
#: 10 m → 100 m wind: (100/10)^0.14 = 1/0.72 (the power law of mpc.physics).
WIND_10M_TO_100M = 1.0 / WIND_10M_OVER_100M
MOER_TIME_COLUMNS = ("point_time", "datetime", "ts", "time")
MOER_VALUE_COLUMNS = ("value", "moer")
#: Names WattTime gives some regions; others are served under their own id.
REGION_NAMES = {
    "CAISO_NORTH": "California ISO Northern",
    "CAISO_SOUTH": "California ISO Southern",
    "PJM_DC": "PJM DC",
    "ERCOT_NORTHCENTRAL": "ERCOT North Central",
    "DE": "Germany",
    "UK": "United Kingdom",
}


def clear_sky_and_shortwave():
    """``(clear_sky_ghi, shortwave_from_cloud)`` from the project's power physics (mpc.physics), the
    same formulas the demo grid, the planner and realised generation use."""
    from mpc.physics import clear_sky_ghi, shortwave_from_cloud

    return clear_sky_ghi, shortwave_from_cloud


def clear_sky(ts: pd.DatetimeIndex, lat: float, lon: float) -> np.ndarray:
    """Clear-sky irradiance (W/m²) of the hour *ending* at each time stamp."""
    fn, _ = clear_sky_and_shortwave()
    return fn(ts - pd.Timedelta(hours=1), lat, lon)


def shortwave(clear: np.ndarray, cloud: np.ndarray) -> np.ndarray:
    _, fn = clear_sky_and_shortwave()
    return np.where(np.isnan(cloud), np.nan, fn(clear, np.nan_to_num(cloud)))


def _utc(values) -> pd.DatetimeIndex:
    idx = pd.DatetimeIndex(pd.to_datetime(pd.Index(values), utc=True, format="ISO8601"))
    return idx.as_unit("ns")


@dataclass(frozen=True)
class WeatherSite:
    """One recorded weather location. ``frame`` is indexed by every hour from the first to the last
    recorded one (absent hours are NaN rows) with :data:`WEATHER_VARS` and ``_clear``."""

    name: str
    lat: float
    lon: float
    frame: pd.DataFrame
    derived: tuple[str, ...]
    elevation: float | None = None


@dataclass(frozen=True)
class MoerRegion:
    """One recorded WattTime region: 5-minute values in lbs/MWh, indexed by point time."""

    name: str
    full_name: str
    lat: float
    lon: float
    points: pd.Series
    recorded_step_s: float


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(a)))


class ReplayData:
    """Recorded data for a :class:`~sources.replay.ReplayServer` (see the module doc for shapes).

    Build it from frames (``ReplayData(carbon=..., weather=..., moer=...)``) or from files
    (:meth:`from_files`). Frames are copied and indexed; nothing is written back.
    """

    def __init__(
        self,
        carbon: pd.DataFrame | None = None,
        weather: pd.DataFrame | None = None,
        moer: pd.DataFrame | None = None,
        *,
        weather_coords: Mapping[str, Sequence[float]] | None = None,
        moer_coords: Mapping[str, Sequence[float]] | None = None,
        region_names: Mapping[str, str] | None = None,
    ):
        self.carbon: dict[tuple[str, str], pd.DataFrame] = _index_carbon(carbon)
        self.weather: dict[str, WeatherSite] = _index_weather(weather, weather_coords or {})
        self.moer: dict[str, MoerRegion] = _index_moer(
            moer, moer_coords or {}, {**REGION_NAMES, **(region_names or {})}
        )

    # -- loading --
    @classmethod
    def from_files(
        cls,
        em_csv: Iterable[str | Path] = (),
        weather: Mapping[str, tuple[float, float, Sequence[str | Path], float]] | None = None,
        watttime: Mapping[str, tuple[float, float, str | Path]] | None = None,
    ) -> ReplayData:
        """Load recordings with the project's own readers.

        Args:
            em_csv: Electricity Maps data-portal exports (:func:`sources.em_csv.read_em_csv`); the
                zone id inside the file is the API's ``zone`` (the DE-LU files hold ``DE``).
            weather: ``name -> (lat, lon, files, utc_offset_hours)``, Open-Meteo historical CSVs
                read with :func:`sources.weather_csv.read_weather_csv`.
            watttime: ``region -> (lat, lon, csv)`` of MOER values in lbs_co2_per_mwh
                (:func:`read_moer_csv`).
        """
        from sources.em_csv import read_em_csv
        from sources.weather_csv import read_weather_csv

        carbon = [read_em_csv(p)[0] for p in em_csv]
        wframes, wcoords = [], {}
        for name, (lat, lon, files, offset) in (weather or {}).items():
            for f in files:
                wframes.append(read_weather_csv(f, location=name, utc_offset_hours=offset)[0])
            wcoords[name] = (lat, lon)
        mframes, mcoords = [], {}
        for region, (lat, lon, path) in (watttime or {}).items():
            mframes.append(read_moer_csv(path).assign(region=region))
            mcoords[region] = (lat, lon)
        return cls(
            carbon=pd.concat(carbon, ignore_index=True) if carbon else None,
            weather=pd.concat(wframes, ignore_index=True) if wframes else None,
            moer=pd.concat(mframes, ignore_index=True) if mframes else None,
            weather_coords=wcoords,
            moer_coords=mcoords,
        )

    # -- lookups --
    @property
    def em_zones(self) -> list[str]:
        return sorted({z for z, _ in self.carbon})

    def nearest_weather(self, lat: float, lon: float, max_km: float) -> WeatherSite | None:
        return _nearest(self.weather.values(), lat, lon, max_km)

    def nearest_region(self, lat: float, lon: float, max_km: float) -> MoerRegion | None:
        return _nearest(self.moer.values(), lat, lon, max_km)

    def spans(self) -> dict[str, dict]:
        """First and last recorded time and count, per zone/factor, location and region."""

        def span(idx: pd.Index, n: int) -> dict:
            if not len(idx):
                return {"first": None, "last": None, "count": 0}
            return {"first": idx[0].isoformat(), "last": idx[-1].isoformat(), "count": n}

        carbon: dict[str, dict] = {}
        for (zone, factor), df in sorted(self.carbon.items()):
            carbon.setdefault(zone, {})[factor] = span(df.index, len(df))
        weather = {}
        for name, site in sorted(self.weather.items()):
            rec = site.frame["temperature_2m"].notna()
            weather[name] = {
                **span(site.frame.index[rec], int(rec.sum())),
                "latitude": site.lat,
                "longitude": site.lon,
                "derived": list(site.derived),
            }
        moer = {
            name: {
                **span(r.points.index, len(r.points)),
                "latitude": r.lat,
                "longitude": r.lon,
                "recorded_step_s": r.recorded_step_s,
            }
            for name, r in sorted(self.moer.items())
        }
        return {"electricitymaps": carbon, "openmeteo": weather, "watttime": moer}


def _nearest(items, lat: float, lon: float, max_km: float):
    best, best_d = None, max_km
    for it in items:
        d = haversine_km(lat, lon, it.lat, it.lon)
        if d <= best_d:
            best, best_d = it, d
    return best


def read_moer_csv(path: str | Path) -> pd.DataFrame:
    """A MOER CSV (lbs_co2_per_mwh) → ``ts``, ``value``. Accepted columns: a time column named
    ``point_time``, ``datetime``, ``ts`` or ``time`` (UTC ISO 8601; naive = UTC) and a value
    column ``value`` or ``moer``. Raises :class:`~sources.frames.SourceError` naming the file and
    the 1-based line for a bad time or value."""
    src = str(path)
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    cols = {c.strip().lower(): c for c in raw.columns}
    tcol = next((cols[c] for c in MOER_TIME_COLUMNS if c in cols), None)
    vcol = next((cols[c] for c in MOER_VALUE_COLUMNS if c in cols), None)
    if tcol is None or vcol is None:
        raise SourceError(
            src,
            f"need a time column ({'/'.join(MOER_TIME_COLUMNS)}) and a value column "
            f"({'/'.join(MOER_VALUE_COLUMNS)}); header is {list(raw.columns)}",
            1,
        )
    ts = pd.to_datetime(raw[tcol].str.strip(), utc=True, errors="coerce", format="ISO8601")
    values = pd.to_numeric(raw[vcol].str.strip(), errors="coerce")
    for bad, what in ((ts.isna(), "time"), (~np.isfinite(values) | (values < 0), "value")):
        if bad.any():
            i = int(np.argmax(bad.to_numpy()))
            cell = raw[tcol if what == "time" else vcol].iloc[i]
            raise SourceError(src, f"bad {what} {cell!r}", i + 2)
    return pd.DataFrame({"ts": ts.dt.as_unit("ns"), "value": values.astype(float)})


# -------------------------------------------------------------------------------------------------
# indexing
# -------------------------------------------------------------------------------------------------
def _index_carbon(df: pd.DataFrame | None) -> dict[tuple[str, str], pd.DataFrame]:
    if df is None or df.empty:
        return {}
    df = df.copy()
    if "factor" not in df and "series" in df:
        df["factor"] = df["series"].str.rsplit(":", n=1).str[-1]
    if "zone" not in df and "series" in df:
        df["zone"] = df["series"].str.split(":", n=1).str[0]
    missing = [c for c in ("zone", "ts", "factor", "value") if c not in df]
    if missing:
        raise ValueError(f"carbon frame lacks column(s) {missing}")
    bad = sorted(set(df["factor"]) - {"lifecycle", "direct"})
    if bad:
        raise ValueError(f"carbon frame: unknown factor(s) {bad} (lifecycle/direct)")
    df["ts"] = _utc(df["ts"])
    if (df["ts"] != df["ts"].dt.floor("h")).any():
        raise ValueError("carbon frame: Electricity Maps recordings must be hourly (hour starts)")
    if "is_estimated" not in df:
        df["is_estimated"] = False
    if "estimation_method" not in df:
        df["estimation_method"] = None
    out = {}
    for (zone, factor), g in df.groupby(["zone", "factor"], sort=True):
        g = g.sort_values("ts", kind="stable").drop_duplicates("ts", keep="last")
        frame = pd.DataFrame(
            {
                "value": g["value"].astype(float).to_numpy(),
                "is_estimated": g["is_estimated"].fillna(False).astype(bool).to_numpy(),
                "estimation_method": g["estimation_method"]
                .astype(object)
                .where(g["estimation_method"].notna(), None)
                .to_numpy(),
            },
            index=pd.DatetimeIndex(g["ts"]),
        )
        out[(str(zone), str(factor))] = frame
    return out


def _coords(df: pd.DataFrame, key: str, name: str, coords: Mapping) -> tuple[float, ...]:
    if name in coords:
        return tuple(float(x) for x in coords[name])
    if {"latitude", "longitude"} <= set(df.columns):
        g = df[df[key] == name]
        return float(g["latitude"].iloc[0]), float(g["longitude"].iloc[0])
    raise ValueError(f"no latitude/longitude for {key} {name!r} (columns or *_coords)")


def _index_weather(df: pd.DataFrame | None, coords: Mapping) -> dict[str, WeatherSite]:
    if df is None or df.empty:
        return {}
    if "location" not in df or "ts" not in df:
        raise ValueError("weather frame needs columns 'location' and 'ts'")
    out = {}
    for name, g in df.groupby("location", sort=True):
        c = _coords(df, "location", name, coords)
        lat, lon = c[0], c[1]
        elevation = c[2] if len(c) > 2 else None
        ts = _utc(g["ts"])
        wide = pd.DataFrame(
            {v: (g[v].astype(float).to_numpy() if v in g else np.nan) for v in WEATHER_VARS},
            index=ts,
        )
        wide = wide[~wide.index.duplicated(keep="last")].sort_index()
        if (wide.index != wide.index.floor("h")).any():
            raise ValueError(f"weather {name!r}: times must be on the hour")
        full = pd.date_range(wide.index[0], wide.index[-1], freq="h")
        wide = wide.reindex(full)
        clear = clear_sky(full, lat, lon)
        derived = []
        w100 = wide["wind_speed_100m"].isna() & wide["wind_speed_10m"].notna()
        if w100.any():
            wide.loc[w100, "wind_speed_100m"] = wide.loc[w100, "wind_speed_10m"] * WIND_10M_TO_100M
            derived.append("wind_speed_100m")
        sw = wide["shortwave_radiation"].isna() & wide["cloud_cover"].notna()
        if sw.any():
            est = shortwave(clear, wide["cloud_cover"].to_numpy())
            wide.loc[sw, "shortwave_radiation"] = est[sw.to_numpy()]
            derived.append("shortwave_radiation")
        wide["_clear"] = clear
        out[str(name)] = WeatherSite(str(name), lat, lon, wide, tuple(derived), elevation)
    return out


def _index_moer(
    df: pd.DataFrame | None, coords: Mapping, names: Mapping[str, str]
) -> dict[str, MoerRegion]:
    if df is None or df.empty:
        return {}
    tcol = next((c for c in MOER_TIME_COLUMNS if c in df), None)
    vcol = next((c for c in MOER_VALUE_COLUMNS if c in df), None)
    if "region" not in df or tcol is None or vcol is None:
        raise ValueError(
            f"moer frame needs 'region', a time column ({'/'.join(MOER_TIME_COLUMNS)}) and a value "
            f"column ({'/'.join(MOER_VALUE_COLUMNS)})"
        )
    out = {}
    five = pd.Timedelta(minutes=5)
    for region, g in df.groupby("region", sort=True):
        lat, lon = _coords(df, "region", region, coords)[:2]
        s = pd.Series(g[vcol].astype(float).to_numpy(), index=_utc(g[tcol]))
        s = s[~s.index.duplicated(keep="last")].sort_index()
        if (s.index != s.index.floor("5min")).any():
            raise ValueError(f"moer {region!r}: point times must be on a 5-minute grid")
        diffs = s.index.to_series().diff().dropna()
        step = diffs.median() if len(diffs) else pd.Timedelta(hours=1)
        if step % five != pd.Timedelta(0):
            raise ValueError(f"moer {region!r}: step {step} is not a multiple of 5 minutes")
        k = int(step / five)
        if k > 1:  # hourly (or coarser) recording: hold each value for its whole interval
            idx = s.index.repeat(k) + pd.to_timedelta(np.tile(np.arange(k) * 5, len(s)), unit="min")
            s = pd.Series(np.repeat(s.to_numpy(), k), index=idx)
            s = s[~s.index.duplicated(keep="first")].sort_index()
        out[str(region)] = MoerRegion(
            str(region), names.get(str(region), str(region)), lat, lon, s, step.total_seconds()
        )
    return out
