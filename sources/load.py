"""Data-centre load: generic telemetry CSVs and two real AI-cluster traces → LOAD_COLUMNS.

- :func:`read_telemetry_csv`: any CSV with a timestamp column and a value column (one series, or a
  column naming the series). Sub-hourly samples are aggregated to the hour start: ``agg="sum"`` for
  counts (requests, GPUs asked for), ``agg="mean"`` for rates/levels (power in MW).
- :func:`read_helios`: the SenseTime Helios "Venus" cluster throughput (10-minute bins) → hourly
  GPU demand (sum of ``submit_gpu_num``), unit ``gpus``.
- :func:`read_alibaba_trace`: the Alibaba image-generation request trace (one row per request) →
  requests per hour per ``predict_type``, unit ``requests/h``.

``received_at`` is the file's modification time (UTC) everywhere. Values must be non-negative
numbers; a bad value, a missing column, a truncated line or an unparseable timestamp raises
:class:`~sources.frames.SourceError` with the 1-based file line. Identical duplicate samples are
dropped (``duplicate_dropped``), conflicting ones raise. Missing hours are never invented:
``missing_hours`` counts hours without any sample between a series' first and last hour, and
``partial_hours`` counts hours with fewer samples than the series' usual sampling interval implies
(for ``agg="sum"`` those hours are under-counted; they are kept as they are)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from sources.em_csv import file_mtime, read_text_table
from sources.frames import LOAD_COLUMNS, RepairReport, SourceError

#: Local time zone assumed for the Helios trace (SenseTime, mainland China; UTC+8, no DST).
HELIOS_TZ = "Asia/Shanghai"


def _col(header: list[str], name: str, src: str) -> int:
    names = [h.strip() for h in header]
    if name in names:
        return names.index(name)
    low = [h.lower() for h in names]
    if name.lower() in low:
        return low.index(name.lower())
    raise SourceError(src, f"missing column {name!r}; header is {header!r}", 1)


def _parse_ts(raw: list[str], lines: np.ndarray, tz: str | None, src: str, what: str) -> pd.Series:
    t = pd.to_datetime(pd.Series(raw), errors="coerce", format="ISO8601")
    if t.isna().any():
        i = int(np.argmax(t.isna().to_numpy()))
        raise SourceError(src, f"unparseable {what} {raw[i]!r}", int(lines[i]))
    if t.dt.tz is not None:
        return t.dt.tz_convert("UTC")
    if tz is None:
        return t.dt.tz_localize("UTC")
    loc = t.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
    if loc.isna().any():
        i = int(np.argmax(loc.isna().to_numpy()))
        raise SourceError(
            src,
            f"{what} {raw[i]!r} is ambiguous or does not exist in {tz} (DST); use UTC timestamps",
            int(lines[i]),
        )
    return loc.dt.tz_convert("UTC")


def _parse_values(raw: list[str], lines: np.ndarray, src: str, what: str) -> np.ndarray:
    v = pd.to_numeric(pd.Series(raw), errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(v)
    if bad.any():
        i = int(np.argmax(bad))
        raise SourceError(src, f"non-numeric {what} {raw[i]!r}", int(lines[i]))
    neg = v < 0
    if neg.any():
        i = int(np.argmax(neg))
        raise SourceError(src, f"negative {what} {raw[i]!r}", int(lines[i]))
    return v


def _to_hourly(
    df: pd.DataFrame, agg: str, src: str, report: RepairReport, fill_zero: bool = False
) -> pd.DataFrame:
    """``df``: series, t (UTC), value, line. Returns series, ts, value hourly."""
    if agg not in ("sum", "mean"):
        raise ValueError(f"agg must be 'sum' or 'mean', got {agg!r}")
    dup = df.duplicated(["series", "t"], keep=False)
    if dup.any():
        d = df[dup]
        n = d.groupby(["series", "t"])["value"].nunique()
        if (n > 1).any():
            s, t = n[n > 1].index[0]
            lns = d.loc[(d.series == s) & (d.t == t), "line"].tolist()
            raise SourceError(
                src,
                f"conflicting duplicate samples for {s} at {t.isoformat()} "
                f"(lines {', '.join(map(str, lns))})",
                int(lns[-1]),
            )
        extra = df.duplicated(["series", "t"], keep="first")
        report.add(
            "duplicate_dropped",
            int(extra.sum()),
            f"dropped {int(extra.sum())} identical duplicate sample(s)",
        )
        df = df[~extra]
    df = df.assign(ts=df["t"].dt.floor("h"))
    out = []
    for s, g in df.groupby("series", sort=True):
        g = g.sort_values("t")
        step = g["t"].diff().dropna()
        step = step[step > pd.Timedelta(0)]
        per_hour = 1
        if len(step):
            med = step.median()
            if med < pd.Timedelta(hours=1):
                per_hour = max(1, int(round(pd.Timedelta(hours=1) / med)))
        hourly = g.groupby("ts")["value"].agg(agg)
        counts = g.groupby("ts").size()
        full = pd.date_range(hourly.index.min(), hourly.index.max(), freq="h")
        if fill_zero:
            hourly = hourly.reindex(full, fill_value=0.0)
        else:
            missing = full.difference(hourly.index)
            if len(missing):
                first = ", ".join(t.strftime("%Y-%m-%d %H:%M") for t in missing[:5])
                report.add(
                    "missing_hours",
                    len(missing),
                    f"{s}: {len(missing)} hour(s) without samples, not filled (first: {first} UTC)",
                )
            partial = int((counts < per_hour).sum()) if per_hour > 1 else 0
            report.add(
                "partial_hours",
                partial,
                f"{s}: {partial} hour(s) with fewer than {per_hour} samples" if partial else None,
            )
        out.append(
            pd.DataFrame({"series": s, "ts": hourly.index, "value": hourly.to_numpy(dtype=float)})
        )
    return pd.concat(out, ignore_index=True)


def _finish(h: pd.DataFrame, site: str, unit: str, source: str, path: Path) -> pd.DataFrame:
    f = pd.DataFrame(
        {
            "site": site,
            "series": h["series"].astype(str),
            "ts": pd.to_datetime(h["ts"], utc=True).dt.as_unit("ns"),
            "value": h["value"].astype(float),
            "unit": unit,
            "source": source,
            "received_at": file_mtime(path),
        }
    )
    return f.sort_values(["series", "ts"], kind="stable").reset_index(drop=True)[LOAD_COLUMNS]


def read_telemetry_csv(
    path: str | os.PathLike,
    site: str,
    series_col: str | None = None,
    series: str | None = None,
    value_col: str = "value",
    unit: str = "MW",
    agg: str = "mean",
    time_col: str = "timestamp",
    tz: str | None = None,
    source: str = "telemetry_csv",
) -> tuple[pd.DataFrame, RepairReport]:
    """Generic data-centre telemetry → hourly LOAD_COLUMNS.

    Give either ``series_col`` (a column naming each row's series, e.g. an inference class) or
    ``series`` (one name for the whole file). ``time_col`` is UTC when naive and ``tz`` is None,
    local wall-clock in ``tz`` when naive and ``tz`` is given (ambiguous/nonexistent DST times
    raise), and is converted when it carries an offset. ``agg``: ``"sum"`` for counts per interval
    (requests), ``"mean"`` for levels (power in MW)."""
    path = Path(path)
    src = str(path)
    if (series_col is None) == (series is None):
        raise ValueError("give exactly one of series_col or series")
    report = RepairReport(src)
    header, rows, lines = read_text_table(path, src)
    ti = _col(header, time_col, src)
    vi = _col(header, value_col, src)
    si = _col(header, series_col, src) if series_col is not None else None
    line_arr = np.asarray(lines)
    t = _parse_ts([r[ti].strip() for r in rows], line_arr, tz, src, time_col)
    v = _parse_values([r[vi].strip() for r in rows], line_arr, src, value_col)
    names = [r[si].strip() for r in rows] if si is not None else [series] * len(rows)
    if si is not None and any(not n for n in names):
        i = names.index("")
        raise SourceError(src, f"empty {series_col!r}", int(line_arr[i]))
    df = pd.DataFrame({"series": names, "t": t, "value": v, "line": line_arr})
    h = _to_hourly(df, agg, src, report)
    return _finish(h, site, unit, source, path), report


def read_helios(
    path: str | os.PathLike,
    site: str = "venus",
    tz: str = HELIOS_TZ,
    series: str = "venus",
    drop_trailing_zero_days: bool = True,
) -> tuple[pd.DataFrame, RepairReport]:
    """Helios "Venus" ``cluster_throughput.csv`` → hourly GPU demand (unit ``gpus``: the sum of
    ``submit_gpu_num``, GPUs requested by jobs submitted in that hour).

    The trace's ``time`` is the **local time of the cluster**, which the trace does not state; we
    take it as ``Asia/Shanghai`` (UTC+8, no daylight saving; SenseTime's clusters are in mainland
    China) and convert to UTC, so the hours stay whole. Trailing local days whose bins are all zero
    (the last day, 2020-09-28, is all zero: the trace ended) are dropped and counted as
    ``trailing_zero_day_dropped``. The series is heavy-tailed (one hour asks for 40,237 GPUs): kept
    as is."""
    path = Path(path)
    src = str(path)
    report = RepairReport(src)
    header, rows, lines = read_text_table(path, src)
    ti = _col(header, "time", src)
    vi = _col(header, "submit_gpu_num", src)
    line_arr = np.asarray(lines)
    raw_t = [r[ti].strip() for r in rows]
    local = pd.to_datetime(pd.Series(raw_t), errors="coerce", format="ISO8601")
    if local.isna().any():
        i = int(np.argmax(local.isna().to_numpy()))
        raise SourceError(src, f"unparseable time {raw_t[i]!r}", int(line_arr[i]))
    v = _parse_values([r[vi].strip() for r in rows], line_arr, src, "submit_gpu_num")
    keep = np.ones(len(rows), dtype=bool)
    if drop_trailing_zero_days:
        day = local.dt.normalize()
        day_sum = pd.Series(v).groupby(day.to_numpy()).sum().sort_index()
        dropped = []
        for d, s in day_sum[::-1].items():
            if s != 0:
                break
            dropped.append(d)
        if dropped and len(dropped) < len(day_sum):
            keep = ~day.isin(dropped).to_numpy()
            report.add(
                "trailing_zero_day_dropped",
                len(dropped),
                f"dropped trailing all-zero local day(s): "
                f"{', '.join(pd.Timestamp(d).strftime('%Y-%m-%d') for d in sorted(dropped))}",
            )
    t = _parse_ts([raw_t[i] for i in np.flatnonzero(keep)], line_arr[keep], tz, src, "time")
    df = pd.DataFrame(
        {"series": series, "t": t.to_numpy(), "value": v[keep], "line": line_arr[keep]}
    )
    df["t"] = pd.to_datetime(df["t"], utc=True)
    h = _to_hourly(df, "sum", src, report)
    report.notes.append(f"timestamps taken as local time {tz} and converted to UTC")
    return _finish(h, site, "gpus", "helios", path), report


def read_alibaba_trace(
    path: str | os.PathLike,
    site: str = "alibaba",
    statuses: tuple[str, ...] | None = None,
) -> tuple[pd.DataFrame, RepairReport]:
    """Alibaba GenAI ``lora_request_trace.csv`` (one row per request) → requests per hour per
    ``predict_type`` (``TXT_2_IMG``, ``IMG_2_IMG``, ``INPAINTING``), unit ``requests/h``.

    **The calendar is shifted** for anonymity: the daily and weekly *shape* is real, the dates and
    the hour of day are not; ``gmt_create`` is read as UTC. Every request counts whatever its
    ``predict_status`` unless ``statuses`` restricts it (e.g. ``("SUCCEED",)``). Hours without a
    request inside the trace's span are real zeros (a per-request log has no row for them): every
    series is filled with 0 from the first to the last hour of the whole trace."""
    path = Path(path)
    src = str(path)
    report = RepairReport(src)
    header, rows, lines = read_text_table(path, src)
    ti = _col(header, "gmt_create", src)
    pi = _col(header, "predict_type", src)
    line_arr = np.asarray(lines)
    if statuses is not None:
        st = _col(header, "predict_status", src)
        keep = np.array([r[st].strip() in statuses for r in rows])
        report.notes.append(
            f"kept {int(keep.sum())} of {len(rows)} requests with status in {statuses}"
        )
        rows = [r for r, k in zip(rows, keep, strict=True) if k]
        line_arr = line_arr[keep]
        if not rows:
            raise SourceError(src, f"no request with status in {statuses}")
    t = _parse_ts([r[ti].strip() for r in rows], line_arr, None, src, "gmt_create")
    types = [r[pi].strip() for r in rows]
    if any(not x for x in types):
        raise SourceError(src, "empty 'predict_type'", int(line_arr[types.index("")]))
    hours = t.dt.floor("h")
    counts = pd.DataFrame({"series": types, "ts": hours}).groupby(["series", "ts"]).size()
    full = pd.date_range(hours.min(), hours.max(), freq="h")
    parts = []
    for s in sorted(set(types)):
        c = counts.loc[s].reindex(full, fill_value=0)
        parts.append(pd.DataFrame({"series": s, "ts": full, "value": c.to_numpy(dtype=float)}))
    h = pd.concat(parts, ignore_index=True)
    report.notes.append(
        f"{len(rows)} requests over {len(full)} hours ({hours.nunique()} with requests); "
        f"calendar shifted for anonymity: shape real, dates/hours not"
    )
    return _finish(h, site, "requests/h", "alibaba_trace", path), report
