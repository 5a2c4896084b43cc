"""Electricity Maps data-portal CSV exports → CARBON_COLUMNS.

The export users download from the Electricity Maps data portal (any zone, hourly), e.g.::

    Datetime (UTC),Country,Zone Name,Zone Id,Carbon Intensity gCO₂eq/kWh (direct),
    Carbon Intensity gCO₂eq/kWh (LCA),Low Carbon Percentage,Renewable Percentage,
    Data Source,Data Estimated,Data Estimation Method

Header matching is tolerant: names are stripped of surrounding whitespace (the ``Data Source``
column and its values may carry a leading space), compared case-insensitively, and ``CO₂`` /
``CO2`` are equivalent. Required: the datetime, zone id and both intensity columns; ``Data
Estimated`` and ``Data Estimation Method`` are optional (absent → not estimated, noted in the
report).

Each zone in the file gives two series: ``"<zone>:average:direct"`` (``factor="direct"``) and
``"<zone>:average:lifecycle"`` (``factor="lifecycle"``, the export's ``LCA`` column), both
``signal="average"``, ``source="electricitymaps_csv"``, values in gCO2eq/kWh. ``received_at`` is
the file's modification time (UTC); the importer (:mod:`pipelines.lib.ingest`) stamps its own ingest
time instead and keeps the modification time in ``raw.ingest_log.source_modified_at``.

Errors (:class:`~sources.frames.SourceError`, ``row`` = 1-based line number in the file, the header
being line 1): empty file or header only, missing columns, a line with the wrong number of fields
(a truncated last line included), an unparseable or not-on-the-hour timestamp, a non-numeric, empty
or negative intensity, one above the plausible 2,000 gCO2eq/kWh (:data:`sources.frames.PLAUSIBLE`), an unknown ``Data Estimated`` flag, and two rows for the same zone and hour
with different values. Identical duplicate rows are dropped and counted (``duplicate_dropped``).
Missing hours are **not** invented: they are counted under ``missing_hours`` (per zone, between the
first and last hour of the file) with the first few listed in the notes."""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from sources.frames import CARBON_COLUMNS, RepairReport, SourceError, check_range

SOURCE = "electricitymaps_csv"

#: canonical key → accepted normalised header names
_COLUMNS = {
    "datetime": ("datetime (utc)", "datetime"),
    "zone": ("zone id", "zone_id", "zoneid"),
    "direct": ("carbon intensity gco2eq/kwh (direct)",),
    "lifecycle": ("carbon intensity gco2eq/kwh (lca)", "carbon intensity gco2eq/kwh (lifecycle)"),
    "estimated": ("data estimated",),
    "method": ("data estimation method",),
}
_REQUIRED = ("datetime", "zone", "direct", "lifecycle")
_DISPLAY = {
    "datetime": "Datetime (UTC)",
    "zone": "Zone Id",
    "direct": "Carbon Intensity gCO₂eq/kWh (direct)",
    "lifecycle": "Carbon Intensity gCO₂eq/kWh (LCA)",
}
_TRUE = {"true", "1", "yes", "t"}
_FALSE = {"false", "0", "no", "f", ""}


def _norm(name: str) -> str:
    name = name.replace("\ufeff", "").replace("₂", "2").strip().lower()
    return re.sub(r"\s+", " ", name)


def find_columns(header: list[str], source: str) -> dict[str, int]:
    """Map canonical keys to column positions; raise naming the first missing required column."""
    normed = [_norm(h) for h in header]
    found: dict[str, int] = {}
    for key, names in _COLUMNS.items():
        for i, h in enumerate(normed):
            if h in names:
                found[key] = i
                break
    missing = [_DISPLAY[k] for k in _REQUIRED if k not in found]
    if missing:
        raise SourceError(
            source,
            f"missing column(s) {', '.join(repr(m) for m in missing)}; header is {header!r}",
            1,
        )
    return found


def file_mtime(path: str | os.PathLike) -> pd.Timestamp:
    return pd.Timestamp(os.path.getmtime(path), unit="s", tz="UTC").as_unit("ns")


def read_text_table(
    path: str | os.PathLike, source: str | None = None
) -> tuple[list[str], list[list[str]], list[int]]:
    """Read a small CSV exactly: ``(header, rows, line_numbers)`` with 1-based file line numbers
    (the header is line 1; blank lines are skipped). Shared by the file sources.

    Raises SourceError for an empty file, a header without rows, and a row whose number of fields
    differs from the header's (``truncated last line`` when it is the last line of the file)."""
    src = source or str(path)
    with open(path, newline="", encoding="utf-8-sig") as fh:
        raw_text = fh.read()
    if not raw_text.strip():
        raise SourceError(src, "empty file (no header, no rows)", None)
    ends_with_newline = raw_text.endswith(("\n", "\r"))
    physical = raw_text.splitlines(keepends=True)
    n_lines = len(physical)
    reader = csv.reader(physical)
    header = next(reader)
    nfields = len(header)
    lines: list[int] = []
    rows: list[list[str]] = []
    for row in reader:
        lineno = reader.line_num
        if not row or all(not c.strip() for c in row):
            continue  # blank line
        if len(row) != nfields:
            last = lineno == n_lines
            what = (
                "truncated last line"
                if last and (len(row) < nfields or not ends_with_newline)
                else "wrong number of fields"
            )
            raise SourceError(src, f"{what}: {len(row)} fields, header has {nfields}", lineno)
        lines.append(lineno)
        rows.append(row)
    if not rows:
        raise SourceError(src, "header only: no data rows", None)
    return header, rows, lines


def read_em_csv(path: str | os.PathLike) -> tuple[pd.DataFrame, RepairReport]:
    """Read one Electricity Maps export; return ``(frame, report)`` with CARBON_COLUMNS, two series
    per zone, sorted by series and ts."""
    path = Path(path)
    src = str(path)
    report = RepairReport(src)
    header, rows, lines = read_text_table(path, src)
    cols = find_columns(header, src)

    line_arr = np.asarray(lines)
    col = lambda key: [r[cols[key]].strip() for r in rows]  # noqa: E731

    # timestamps
    ts_raw = col("datetime")
    ts = pd.to_datetime(pd.Series(ts_raw), utc=True, errors="coerce", format="ISO8601")
    bad = ts.isna().to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        raise SourceError(src, f"unparseable timestamp {ts_raw[i]!r}", int(line_arr[i]))
    ts = ts.dt.as_unit("ns")
    off = (ts != ts.dt.floor("h")).to_numpy()
    if off.any():
        i = int(np.argmax(off))
        raise SourceError(src, f"timestamp {ts_raw[i]!r} is not on the hour", int(line_arr[i]))

    # intensities
    values = {}
    for key in ("direct", "lifecycle"):
        raw = col(key)
        v = pd.to_numeric(pd.Series(raw), errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(v)
        if bad.any():
            i = int(np.argmax(bad))
            raise SourceError(
                src, f"non-numeric {_DISPLAY[key]!r} value {raw[i]!r}", int(line_arr[i])
            )
        neg = v < 0
        if neg.any():
            i = int(np.argmax(neg))
            raise SourceError(src, f"negative {_DISPLAY[key]!r} value {raw[i]!r}", int(line_arr[i]))
        check_range(v, "carbon_g_kwh", src, rows=line_arr.tolist(), what=repr(_DISPLAY[key]))
        values[key] = v

    zones = col("zone")
    empty_zone = [i for i, z in enumerate(zones) if not z]
    if empty_zone:
        raise SourceError(src, "empty 'Zone Id'", int(line_arr[empty_zone[0]]))

    if "estimated" in cols:
        est_raw = [s.lower() for s in col("estimated")]
        est = np.empty(len(rows), dtype=bool)
        for i, s in enumerate(est_raw):
            if s in _TRUE:
                est[i] = True
            elif s in _FALSE:
                est[i] = False
            else:
                raise SourceError(
                    src, f"'Data Estimated' must be true/false, got {s!r}", int(line_arr[i])
                )
    else:
        est = np.zeros(len(rows), dtype=bool)
        report.notes.append("no 'Data Estimated' column: every row marked not estimated")
    if "method" in cols:
        method = [m if m else None for m in col("method")]
    else:
        method = [None] * len(rows)

    wide = pd.DataFrame(
        {
            "zone": zones,
            "ts": ts.to_numpy(),
            "direct": values["direct"],
            "lifecycle": values["lifecycle"],
            "is_estimated": est,
            "estimation_method": method,
            "_line": line_arr,
        }
    )
    wide["ts"] = pd.to_datetime(wide["ts"], utc=True).dt.as_unit("ns")

    # duplicates: identical → drop and count; conflicting → error
    key_dup = wide.duplicated(["zone", "ts"], keep=False)
    if key_dup.any():
        d = wide[key_dup]
        content = ["zone", "ts", "direct", "lifecycle", "is_estimated", "estimation_method"]
        d_norm = d[content].astype({"estimation_method": object}).fillna({"estimation_method": ""})
        n_distinct = d_norm.drop_duplicates().groupby(["zone", "ts"]).size()
        conflict = n_distinct[n_distinct > 1]
        if len(conflict):
            z, t = conflict.index[0]
            lns = d[(d.zone == z) & (d.ts == t)]["_line"].tolist()
            raise SourceError(
                src,
                f"conflicting duplicate rows for zone {z} at {t.isoformat()} "
                f"(lines {', '.join(map(str, lns))})",
                int(lns[-1]),
            )
        first_dups = wide[wide.duplicated(["zone", "ts"], keep="first")]
        report.add(
            "duplicate_dropped",
            len(first_dups),
            f"dropped {len(first_dups)} identical duplicate row(s), first at line "
            f"{int(first_dups['_line'].iloc[0])}",
        )
        wide = wide.drop(first_dups.index)

    # missing hours (reported, never invented)
    for zone, g in wide.groupby("zone", sort=True):
        full = pd.date_range(g.ts.min(), g.ts.max(), freq="h")
        missing = full.difference(pd.DatetimeIndex(g.ts))
        if len(missing):
            first = ", ".join(t.strftime("%Y-%m-%d %H:%M") for t in missing[:5])
            report.add(
                "missing_hours",
                len(missing),
                f"{zone}: {len(missing)} missing hour(s) between {full[0]} and {full[-1]} "
                f"(first: {first}); not filled",
            )

    received = file_mtime(path)
    parts = []
    for factor, vcol in (("direct", "direct"), ("lifecycle", "lifecycle")):
        parts.append(
            pd.DataFrame(
                {
                    "series": wide["zone"] + f":average:{factor}",
                    "zone": wide["zone"],
                    "ts": wide["ts"],
                    "value": wide[vcol].astype(float),
                    "signal": "average",
                    "factor": factor,
                    "source": SOURCE,
                    "is_estimated": wide["is_estimated"].astype(bool),
                    "estimation_method": wide["estimation_method"].astype(object),
                    "received_at": received,
                }
            )
        )
    frame = pd.concat(parts, ignore_index=True).sort_values(["series", "ts"], kind="stable")
    frame = frame.reset_index(drop=True)[CARBON_COLUMNS]
    n_est = int(wide["is_estimated"].sum())
    if n_est:
        report.notes.append(f"{n_est} hour(s) marked estimated by Electricity Maps (kept, flagged)")
    return frame, report
