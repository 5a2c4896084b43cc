"""Open-Meteo historical weather CSV (reanalysis, what happened) → WEATHER_COLUMNS,
``kind="observed"``.

The shared files look like::

    time,temperature_2m,relative_humidity_2m,cloudcover,windspeed_10m
    2021-01-01T00:00,-0.2,96,65,3.8

``time`` is **local standard time on a fixed offset, without daylight saving**: ``UTC = time −
offset`` (:data:`SHARED_WEATHER_OFFSETS`: CISO −7 h, so UTC = time + 7 h; DE-LU +1 h; GB 0). Both
the old (``cloudcover``, ``windspeed_10m``) and the current Open-Meteo names (``cloud_cover``,
``wind_speed_10m``) are accepted. Variables absent from the file (the shared files have no
``wind_speed_100m`` nor ``shortwave_radiation``) become NaN and are listed in the report notes.
``issued_at`` is NaT, ``source="open_meteo_csv"``, ``received_at`` is the file's modification time
(UTC).

These are observations: using them as "known future" covariates leaks the future.

Repairs and errors:

- NaN runs of at most ``max_gap_h`` hours (default 3) inside a column are linearly interpolated and
  counted as ``gap_interpolated`` (values filled); longer runs, and NaNs at the edges, are left NaN
  and counted as ``gap_left``.
- Identical duplicate hours are dropped (``duplicate_dropped``); conflicting ones raise.
- Missing hours are not invented: counted as ``missing_hours`` with the first few in the notes.
- Empty file, header only, missing ``time``, truncated / short lines, unparseable or off-the-hour
  times, non-numeric values and physically impossible values (humidity or cloud cover outside 0–100
  %, negative wind speed or radiation) raise :class:`~sources.frames.SourceError` with the 1-based
  file line.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from sources.em_csv import file_mtime, read_text_table
from sources.frames import WEATHER_COLUMNS, RepairReport, SourceError

SOURCE = "open_meteo_csv"

#: Fixed UTC offsets (hours) of the shared weather files, by zone directory: UTC = time − offset.
SHARED_WEATHER_OFFSETS: dict[str, float] = {"US-CAL-CISO": -7.0, "DE-LU": 1.0, "GB": 0.0}

VARIABLES = [
    "temperature_2m",
    "relative_humidity_2m",
    "cloud_cover",
    "wind_speed_10m",
    "wind_speed_100m",
    "shortwave_radiation",
]
_ALIASES = {
    "temperature_2m": ("temperature_2m",),
    "relative_humidity_2m": ("relative_humidity_2m", "relativehumidity_2m"),
    "cloud_cover": ("cloud_cover", "cloudcover"),
    "wind_speed_10m": ("wind_speed_10m", "windspeed_10m"),
    "wind_speed_100m": ("wind_speed_100m", "windspeed_100m"),
    "shortwave_radiation": ("shortwave_radiation",),
}
_BOUNDS = {
    "relative_humidity_2m": (0.0, 100.0),
    "cloud_cover": (0.0, 100.0),
    "wind_speed_10m": (0.0, np.inf),
    "wind_speed_100m": (0.0, np.inf),
    "shortwave_radiation": (0.0, np.inf),
    "temperature_2m": (-90.0, 60.0),
}


def _strip_unit(name: str) -> str:
    # Open-Meteo's own CSV download writes "temperature_2m (°C)"
    return name.split(" (")[0].strip().lower()


def interpolate_short_gaps(values: np.ndarray, max_gap: int) -> tuple[np.ndarray, int, int]:
    """Linearly fill interior NaN runs of length <= ``max_gap``. Returns (values, filled, left)."""
    v = np.asarray(values, dtype=float).copy()
    isnan = np.isnan(v)
    if not isnan.any():
        return v, 0, 0
    filled = left = 0
    n = len(v)
    i = 0
    while i < n:
        if not isnan[i]:
            i += 1
            continue
        j = i
        while j < n and isnan[j]:
            j += 1
        run = j - i
        if i > 0 and j < n and run <= max_gap:
            v[i:j] = np.interp(np.arange(i, j), [i - 1, j], [v[i - 1], v[j]])
            filled += run
        else:
            left += run
        i = j
    return v, filled, left


def read_weather_csv(
    path: str | os.PathLike,
    location: str,
    utc_offset_hours: float,
    max_gap_h: int = 3,
) -> tuple[pd.DataFrame, RepairReport]:
    """Read one Open-Meteo historical CSV for ``location`` whose ``time`` is local standard time at
    ``utc_offset_hours`` (UTC = time − offset). Returns ``(frame, report)``, WEATHER_COLUMNS,
    sorted by ts."""
    path = Path(path)
    src = str(path)
    report = RepairReport(src)
    header, rows, lines = read_text_table(path, src)
    names = [_strip_unit(h) for h in header]
    if "time" not in names:
        raise SourceError(src, f"missing column 'time'; header is {header!r}", 1)
    idx = {"time": names.index("time")}
    for var, aliases in _ALIASES.items():
        for a in aliases:
            if a in names:
                idx[var] = names.index(a)
                break
    present = [v for v in VARIABLES if v in idx]
    if not present:
        raise SourceError(
            src,
            f"no weather column found (expected some of {', '.join(VARIABLES)}); "
            f"header is {header!r}",
            1,
        )
    absent = [v for v in VARIABLES if v not in idx]
    if absent:
        report.notes.append(f"column(s) not in file, left NaN: {', '.join(absent)}")
    line_arr = np.asarray(lines)

    raw_t = [r[idx["time"]].strip() for r in rows]
    local = pd.to_datetime(pd.Series(raw_t), errors="coerce", format="ISO8601")
    if local.dt.tz is not None:
        raise SourceError(src, "'time' carries a UTC offset; expected naive local standard time", 2)
    bad = local.isna().to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        raise SourceError(src, f"unparseable time {raw_t[i]!r}", int(line_arr[i]))
    off = (local != local.dt.floor("h")).to_numpy()
    if off.any():
        i = int(np.argmax(off))
        raise SourceError(src, f"time {raw_t[i]!r} is not on the hour", int(line_arr[i]))
    ts = (local - pd.Timedelta(hours=utc_offset_hours)).dt.tz_localize("UTC").dt.as_unit("ns")

    data = {}
    for var in VARIABLES:
        if var not in idx:
            data[var] = np.full(len(rows), np.nan)
            continue
        raw = [r[idx[var]].strip() for r in rows]
        empty = np.array([s == "" or s.lower() in ("nan", "null", "none") for s in raw])
        v = pd.to_numeric(pd.Series(np.where(empty, "nan", raw)), errors="coerce").to_numpy(
            dtype=float
        )
        bad = np.isnan(v) & ~empty
        if bad.any():
            i = int(np.argmax(bad))
            raise SourceError(src, f"non-numeric {var!r} value {raw[i]!r}", int(line_arr[i]))
        lo, hi = _BOUNDS[var]
        oob = (v < lo) | (v > hi)
        if oob.any():
            i = int(np.argmax(oob))
            raise SourceError(
                src, f"{var!r} value {raw[i]!r} outside [{lo:g}, {hi:g}]", int(line_arr[i])
            )
        data[var] = v

    wide = pd.DataFrame({"ts": ts, **data, "_line": line_arr})
    dup = wide.duplicated("ts", keep=False)
    if dup.any():
        d = wide[dup]
        distinct = d.drop(columns="_line").fillna(-1e300).drop_duplicates().groupby("ts").size()
        if (distinct > 1).any():
            t = distinct[distinct > 1].index[0]
            lns = d.loc[d.ts == t, "_line"].tolist()
            raise SourceError(
                src,
                f"conflicting duplicate rows for {t.isoformat()} (lines "
                f"{', '.join(map(str, lns))})",
                int(lns[-1]),
            )
        drop = wide.duplicated("ts", keep="first")
        report.add(
            "duplicate_dropped",
            int(drop.sum()),
            f"dropped {int(drop.sum())} identical duplicate hour(s)",
        )
        wide = wide[~drop]
    wide = wide.sort_values("ts", kind="stable").reset_index(drop=True)

    full = pd.date_range(wide.ts.iloc[0], wide.ts.iloc[-1], freq="h")
    missing = full.difference(pd.DatetimeIndex(wide.ts))
    if len(missing):
        first = ", ".join(t.strftime("%Y-%m-%d %H:%M") for t in missing[:5])
        report.add(
            "missing_hours",
            len(missing),
            f"{len(missing)} missing hour(s) (first: {first}); not filled",
        )

    # short NaN gaps, along the hourly axis (only where hours are consecutive)
    consecutive = wide.ts.diff().ne(pd.Timedelta(hours=1)).cumsum()
    for var in present:
        out = wide[var].to_numpy(dtype=float).copy()
        filled = left = 0
        for _, seg in wide.groupby(consecutive).groups.items():
            pos = np.asarray(seg)
            v, f, lft = interpolate_short_gaps(out[pos], max_gap_h)
            out[pos] = v
            filled += f
            left += lft
        wide[var] = out
        report.add(
            "gap_interpolated",
            filled,
            f"{var}: {filled} value(s) in gaps <= {max_gap_h} h interpolated" if filled else None,
        )
        report.add(
            "gap_left",
            left,
            f"{var}: {left} value(s) in longer/edge gaps left NaN" if left else None,
        )

    frame = pd.DataFrame(
        {
            "location": location,
            "ts": wide["ts"],
            **{v: wide[v].astype(float) for v in VARIABLES},
            "kind": "observed",
            "issued_at": pd.Series(pd.NaT, index=wide.index, dtype="datetime64[ns, UTC]"),
            "source": SOURCE,
            "received_at": file_mtime(path),
        }
    )
    return frame[WEATHER_COLUMNS], report
