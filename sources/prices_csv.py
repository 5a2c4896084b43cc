"""Wholesale electricity price CSVs → PRICE_COLUMNS.

Format::

    Datetime,Price (EUR/MWh)
    2021-01-01 00:00:00,50.87

The currency is read from the price column's header (``Price (<CUR>/MWh)``). ``Datetime`` is either
naive UTC (``tz=None``; the CISO files), naive **local wall-clock** time in ``tz`` (the DE-LU and
GB files: :data:`SHARED_PRICE_TZ`), or carries its own UTC offset (then ``tz`` is ignored).
``source="prices_csv"``; ``received_at`` is the file's modification time (UTC). Prices may be
negative.

Wall-clock files are converted to UTC with these repairs, each counted in the report:

- ``dst_nonexistent_dropped``: a row for a wall-clock hour that does not exist (the spring-forward
  hour, 02:00 in Berlin, 01:00 in London). The exports fill it with a copy of a neighbouring hour
  (or 0.0); the real day has 23 hours, so the row is dropped and no UTC hour is lost.
- ``dst_hour_filled``: the autumn day's repeated wall-clock hour appears only once; the single row
  is taken as the first (summer-time) occurrence and the second occurrence is filled with the same
  price, so the UTC series has no hole.
- ``dst_zero_replaced``: the repeated hour appears twice, once as a stray ``0.0`` placeholder (out
  of order in DE-LU 2021): the placeholder becomes the second occurrence with the other row's
  price.
- ``dst_duplicate_dropped``: more than two rows for the repeated hour: identical extras dropped.
- ``duplicate_dropped``: identical duplicate rows elsewhere (conflicting duplicates raise).
- ``rows_reordered``: rows that were out of order in the file (sorted, not otherwise changed).

Gaps are **not** invented: ``missing_day`` counts whole (local) days without any row, with the
dates in the notes, and ``missing_hours`` the other missing hours, between the first and last row.
The covered range is always noted (e.g. GB 2022 starts 2022-01-21). Empty files, missing columns,
truncated lines, unparseable or off-the-hour times, non-numeric prices and prices outside the
plausible range (:data:`sources.frames.PLAUSIBLE`) raise
:class:`~sources.frames.SourceError` with the 1-based file line."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from sources.em_csv import file_mtime, read_text_table
from sources.frames import PRICE_COLUMNS, RepairReport, SourceError, check_range

SOURCE = "prices_csv"

#: Time convention of the shared price files by zone: an IANA zone for naive local wall-clock files,
#: ``None`` for naive UTC.
SHARED_PRICE_TZ: dict[str, str | None] = {
    "US-CAL-CISO": None,
    "DE-LU": "Europe/Berlin",
    "GB": "Europe/London",
}

_PRICE_RE = re.compile(r"^price\s*\(\s*([a-z]{3})\s*/\s*mwh\s*\)$", re.IGNORECASE)


def _find_columns(header: list[str], src: str) -> tuple[int, int, str]:
    names = [h.strip() for h in header]
    t_idx = next(
        (
            i
            for i, h in enumerate(names)
            if h.lower() in ("datetime", "datetime (utc)", "time", "ts")
        ),
        None,
    )
    if t_idx is None:
        raise SourceError(src, f"missing column 'Datetime'; header is {header!r}", 1)
    for i, h in enumerate(names):
        m = _PRICE_RE.match(h)
        if m:
            return t_idx, i, m.group(1).upper()
    raise SourceError(src, f"missing column 'Price (<CUR>/MWh)'; header is {header!r}", 1)


def read_prices_csv(
    path: str | os.PathLike, zone: str, tz: str | None = None
) -> tuple[pd.DataFrame, RepairReport]:
    """Read one price CSV for ``zone``. ``tz``: IANA zone of naive wall-clock timestamps, ``None``
    when they are UTC (see :data:`SHARED_PRICE_TZ`). Returns ``(frame, report)``, sorted by ts, one
    row per UTC hour."""
    path = Path(path)
    src = str(path)
    report = RepairReport(src)
    header, rows, lines = read_text_table(path, src)
    t_idx, p_idx, currency = _find_columns(header, src)
    line_arr = np.asarray(lines)

    raw_t = [r[t_idx].strip() for r in rows]
    parsed = pd.to_datetime(pd.Series(raw_t), errors="coerce", format="ISO8601")
    if parsed.isna().any():
        i = int(np.argmax(parsed.isna().to_numpy()))
        raise SourceError(src, f"unparseable Datetime {raw_t[i]!r}", int(line_arr[i]))
    aware = parsed.dt.tz is not None
    off = (parsed != parsed.dt.floor("h")).to_numpy()
    if off.any():
        i = int(np.argmax(off))
        raise SourceError(src, f"Datetime {raw_t[i]!r} is not on the hour", int(line_arr[i]))

    raw_p = [r[p_idx].strip() for r in rows]
    price = pd.to_numeric(pd.Series(raw_p), errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(price)
    if bad.any():
        i = int(np.argmax(bad))
        raise SourceError(src, f"non-numeric price {raw_p[i]!r}", int(line_arr[i]))
    check_range(price, "price_per_mwh", src, rows=line_arr.tolist(), what="price")

    df = pd.DataFrame(
        {
            "wall": parsed.to_numpy() if not aware else parsed,
            "price": price,
            "line": line_arr,
            "pos": np.arange(len(rows)),
        }
    )

    if aware or tz is None:
        df["ts"] = (
            pd.to_datetime(df["wall"], utc=True) if aware else df["wall"].dt.tz_localize("UTC")
        )
        df = _drop_duplicates(df, "ts", src, report)
        local_tz = "UTC"
    else:
        df = _localize_wall_clock(df, tz, src, report)
        local_tz = tz

    # order
    ts_sorted = df["ts"].sort_values(kind="stable")
    if not df["ts"].is_monotonic_increasing:
        inversions = int((df["ts"].diff() < pd.Timedelta(0)).sum())
        report.add("rows_reordered", inversions, f"{inversions} row(s) out of time order, sorted")
    df = df.loc[ts_sorted.index].reset_index(drop=True)
    df["ts"] = pd.to_datetime(df["ts"], utc=True).dt.as_unit("ns")
    if df["ts"].duplicated().any():  # cannot happen after the repairs above; guard the contract
        t = df.loc[df["ts"].duplicated(), "ts"].iloc[0]
        raise SourceError(src, f"two rows for UTC hour {t.isoformat()} after DST handling")

    _report_gaps(df["ts"], local_tz, report)
    frame = pd.DataFrame(
        {
            "zone": zone,
            "ts": df["ts"],
            "price": df["price"].astype(float),
            "currency": currency,
            "source": SOURCE,
            "received_at": file_mtime(path),
        }
    )
    return frame[PRICE_COLUMNS], report


def _drop_duplicates(df: pd.DataFrame, key: str, src: str, report: RepairReport) -> pd.DataFrame:
    dup = df.duplicated(key, keep=False)
    if not dup.any():
        return df
    d = df[dup]
    distinct = d.groupby(key)["price"].nunique()
    if (distinct > 1).any():
        k = distinct[distinct > 1].index[0]
        lns = d.loc[d[key] == k, "line"].tolist()
        raise SourceError(
            src,
            f"conflicting duplicate rows for {pd.Timestamp(k).isoformat()} "
            f"(lines {', '.join(map(str, lns))})",
            int(lns[-1]),
        )
    extra = df.duplicated(key, keep="first")
    report.add(
        "duplicate_dropped",
        int(extra.sum()),
        f"dropped {int(extra.sum())} identical duplicate row(s), first at line "
        f"{int(df.loc[extra, 'line'].iloc[0])}",
    )
    return df[~extra]


def _localize_wall_clock(df: pd.DataFrame, tz: str, src: str, report: RepairReport) -> pd.DataFrame:
    wall = pd.to_datetime(df["wall"])
    n = len(wall)
    a = wall.dt.tz_localize(tz, ambiguous=np.ones(n, dtype=bool), nonexistent="NaT")
    b = wall.dt.tz_localize(tz, ambiguous=np.zeros(n, dtype=bool), nonexistent="NaT")
    nonexistent = a.isna().to_numpy()
    ambiguous = (~nonexistent) & (a != b).to_numpy()

    if nonexistent.any():
        gone = df[nonexistent]
        for _, r in gone.iterrows():
            report.notes.append(
                f"line {int(r.line)}: wall-clock {r.wall} does not exist in {tz} "
                f"(spring forward); row with price {r.price:g} dropped"
            )
        report.add("dst_nonexistent_dropped", int(nonexistent.sum()))

    plain = df[~nonexistent & ~ambiguous].copy()
    plain = _drop_duplicates(plain, "wall", src, report)
    plain["ts"] = pd.to_datetime(plain["wall"]).dt.tz_localize(tz).dt.tz_convert("UTC")

    amb_parts = []
    for wall_t, g in df[ambiguous].groupby("wall", sort=True):
        g = g.sort_values("pos")
        recs = list(zip(g["price"].tolist(), g["line"].tolist(), g["pos"].tolist(), strict=True))
        if len(recs) > 2:
            distinct = list(dict.fromkeys(r[0] for r in recs))
            if len(distinct) > 2:
                raise SourceError(
                    src,
                    f"{len(distinct)} different prices for the repeated DST hour {wall_t}",
                    int(recs[-1][1]),
                )
            # keep two rows (the two occurrences), preferring one per distinct price, in file order
            keep_idx = [next(i for i, r in enumerate(recs) if r[0] == v) for v in distinct]
            if len(keep_idx) == 1:
                keep_idx.append(1)
            keep_idx = sorted(keep_idx)
            for i, rec in enumerate(recs):
                if i not in keep_idx:
                    report.add(
                        "dst_duplicate_dropped",
                        1,
                        f"line {rec[1]}: extra row for the repeated DST hour {wall_t} "
                        f"(same price as a kept one) dropped",
                    )
            recs = [recs[i] for i in keep_idx]
        if len(recs) == 1:
            first = second = recs[0]
            report.add(
                "dst_hour_filled",
                1,
                f"line {first[1]}: repeated DST hour {wall_t} given once; its second occurrence "
                f"filled with the same price {first[0]:g}",
            )
            second = (first[0], first[1], first[2] + 0.5)
        else:
            first, second = recs
            zeros = [r[0] == 0.0 for r in recs]
            if zeros.count(True) == 1:
                real = recs[zeros.index(False)]
                stray = recs[zeros.index(True)]
                first = real
                second = (real[0], stray[1], real[2] + 0.5)
                report.add(
                    "dst_zero_replaced",
                    1,
                    f"line {stray[1]}: stray 0.0 for the repeated DST hour {wall_t} replaced by "
                    f"{real[0]:g} (its second occurrence)",
                )
        ts_first = pd.Timestamp(wall_t).tz_localize(tz, ambiguous=True).tz_convert("UTC")
        ts_second = pd.Timestamp(wall_t).tz_localize(tz, ambiguous=False).tz_convert("UTC")
        amb_parts.append(
            pd.DataFrame(
                {
                    "wall": [wall_t, wall_t],
                    "price": [first[0], second[0]],
                    "line": [first[1], second[1]],
                    "pos": [first[2], second[2]],
                    "ts": [ts_first, ts_second],
                }
            )
        )
    out = pd.concat([plain, *amb_parts], ignore_index=True) if amb_parts else plain
    # keep file order (pos) so the reorder count reflects the file
    return out.sort_values("pos", kind="stable").reset_index(drop=True)


def _report_gaps(ts: pd.Series, local_tz: str, report: RepairReport) -> None:
    first, last = ts.iloc[0], ts.iloc[-1]
    report.notes.append(f"covers {first.isoformat()} .. {last.isoformat()} UTC ({len(ts)} hours)")
    full = pd.date_range(first, last, freq="h")
    missing = full.difference(pd.DatetimeIndex(ts))
    if not len(missing):
        return
    present_days = set(pd.DatetimeIndex(ts).tz_convert(local_tz).date)
    miss_local = pd.DatetimeIndex(missing).tz_convert(local_tz)
    miss_days = pd.Series(miss_local.date)
    whole = sorted(d for d in set(miss_days) if d not in present_days)
    if whole:
        report.add(
            "missing_day",
            len(whole),
            f"{len(whole)} whole day(s) missing, not filled: {', '.join(map(str, whole[:10]))}",
        )
    rest = int((~miss_days.isin(whole)).sum())
    if rest:
        first_few = ", ".join(
            t.strftime("%Y-%m-%d %H:%M") for t in missing[~miss_days.isin(whole).to_numpy()][:5]
        )
        report.add(
            "missing_hours", rest, f"{rest} missing hour(s), not filled (first: {first_few} UTC)"
        )
