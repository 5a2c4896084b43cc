"""Write source frames (see :mod:`sources.frames`) into the warehouse, idempotently, with provenance."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from sources.frames import RepairReport
from warehouse import UpsertStats, Warehouse

HOUR = pd.Timedelta(hours=1)

#: table -> (columns that scope a source's window, timestamp column)
TABLES: dict[str, tuple[tuple[str, ...], str]] = {
    "staging.carbon_intensity": (("series", "source"), "ts"),
    "staging.carbon_forecast_external": (("series", "source"), "ts"),
    "staging.weather_observed": (("location", "source"), "ts"),
    "staging.weather_forecast": (("location", "source"), "issued_at"),
    "staging.prices": (("zone", "source"), "ts"),
    "staging.generation": (("site", "source"), "ts"),
    "staging.load": (("site", "series", "source"), "ts"),
    "staging.jobs": (("source",), "release"),
}


@dataclass
class IngestResult:
    """What one ingest stored: the upsert counts and what the source repaired."""

    table: str
    stats: UpsertStats
    repairs: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def metadata(self) -> dict:
        return {**self.stats.as_dict(), "repairs": dict(self.repairs)}


def _scope(frame: pd.DataFrame, cols: Iterable[str]) -> dict[str, list]:
    return {c: sorted(frame[c].dropna().astype(str).unique().tolist()) for c in cols}


def store(
    wh: Warehouse,
    table: str,
    frame: pd.DataFrame,
    report: RepairReport | None = None,
    *,
    window: tuple[pd.Timestamp, pd.Timestamp] | None = None,
    partition_key: str | None = None,
    source_label: str | None = None,
) -> IngestResult:
    """Replace ``frame``'s window of ``table`` in one transaction and log it in ``raw.ingest_log``.

    The window is scoped to the series/locations/sites and sources present in ``frame`` and to
    ``window`` (default: the frame's own time span). An empty frame with an explicit window and
    explicit scope is refused rather than wiping data: sources that legitimately return nothing raise
    before reaching here.
    """
    scope_cols, ts_col = TABLES[table]
    if frame.empty:
        raise ValueError(
            f"{table}: refusing to store an empty frame from {source_label or 'a source'}"
        )
    if window is None:
        window = (frame[ts_col].min(), frame[ts_col].max() + HOUR)
    repairs = dict(report.counts) if report else {}
    log = {
        "source": source_label or (report.source if report else table),
        "partition_key": partition_key,
        "window_start": pd.Timestamp(window[0]).to_pydatetime(),
        "window_end": pd.Timestamp(window[1]).to_pydatetime(),
        "repairs": repairs,
        "notes": "; ".join(report.notes[:20]) if report and report.notes else None,
    }
    stats = wh.replace_window(
        table, frame, scope=_scope(frame, scope_cols), window=window, ts_column=ts_col, log=log
    )
    return IngestResult(table, stats, repairs, list(report.notes) if report else [])


def import_em_csv(wh: Warehouse, paths: Iterable[str | Path]) -> pd.DataFrame:
    """Import Electricity Maps data-portal CSV exports. Returns one row per (file, series): hours stored,
    hours missing/repaired in the file, and what the upsert changed. Each file is its own transaction:
    a bad file raises :class:`sources.frames.SourceError` naming it, and earlier files stay imported."""
    from sources.em_csv import read_em_csv

    rows = []
    for path in paths:
        path = Path(path)
        frame, report = read_em_csv(path)
        for series, part in frame.groupby("series", sort=True):
            res = store(
                wh,
                "staging.carbon_intensity",
                part,
                report,
                source_label=f"electricitymaps_csv:{path.name}",
            )
            rows.append(
                {
                    "file": path.name,
                    "series": series,
                    "zone": part["zone"].iloc[0],
                    "hours": len(part),
                    "first": part["ts"].min(),
                    "last": part["ts"].max(),
                    "estimated": int(part["is_estimated"].sum()),
                    "repaired": report.total,
                    "inserted": res.stats.inserted,
                    "updated": res.stats.updated,
                    "unchanged": res.stats.unchanged,
                }
            )
    return pd.DataFrame(rows)


#: the signals one hourly ingest covers, in the order ``ingest_window`` stores them
SIGNALS = ("carbon", "weather", "prices", "generation", "inference", "jobs")


def ingest_signal(
    wh: Warehouse,
    fleet,
    signal: str,
    start: pd.Timestamp,
    end: pd.Timestamp,
    partition_key: str | None = None,
) -> tuple[list[IngestResult], pd.DataFrame]:
    """Fetch one signal of ``fleet``'s sources for hours ``[start, end)`` and store it idempotently.

    The one place where a fetch meets its table: the hourly Dagster assets and the bulk
    :func:`ingest_window` both call it. Day-ahead prices and the job queue reach one planning horizon
    past ``end`` (published / submitted ahead); API sources may return a trailing revision window before
    ``start``, which is replaced too. Returns the upsert results and the main frame (for metadata)."""
    from pipelines.lib import fetch

    ahead = end + pd.Timedelta(hours=fleet.planning.horizon_h)

    def span(frame: pd.DataFrame, col: str, hi) -> tuple:
        return (min(start, frame[col].min()) if not frame.empty else start, hi)

    kw = {"partition_key": partition_key}
    if signal == "weather":
        obs, fcst, report = fetch.fetch_weather(fleet, start, end)
        out = [
            store(wh, "staging.weather_observed", obs, report, window=span(obs, "ts", end), **kw)
        ]
        if not fcst.empty:
            out.append(
                store(
                    wh,
                    "staging.weather_forecast",
                    fcst,
                    None,
                    window=span(fcst, "issued_at", end),
                    **kw,
                )
            )
        return out, obs.assign(forecast_rows=len(fcst))
    if signal == "jobs":
        frame, report = fetch.fetch_jobs(fleet, start, ahead)
        if frame.empty:
            return [], frame
        frame = frame.assign(source=fleet.jobs.source, received_at=frame["release"])
        return [
            store(wh, "staging.jobs", frame, report, window=span(frame, "release", ahead), **kw)
        ], frame
    table, fn, hi = {
        "carbon": ("staging.carbon_intensity", fetch.fetch_carbon, end),
        "prices": ("staging.prices", fetch.fetch_prices, ahead),
        "generation": ("staging.generation", fetch.fetch_generation, end),
        "inference": ("staging.load", fetch.fetch_inference, end),
    }[signal]
    frame, report = fn(fleet, start, hi)
    return [store(wh, table, frame, report, window=span(frame, "ts", hi), **kw)], frame


def ingest_window(wh: Warehouse, fleet, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Bulk-ingest every signal for hours ``[start, end)`` — what the hourly ingest assets do for one
    hour, for a whole history at once (bootstrapping a warehouse, the demo). One row per table."""
    results: list[IngestResult] = []
    for signal in SIGNALS:
        results.extend(ingest_signal(wh, fleet, signal, start, end)[0])
    return pd.DataFrame(
        [{**r.stats.as_dict(), "repaired": sum(r.repairs.values())} for r in results]
    )
