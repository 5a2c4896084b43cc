"""Write source frames (see :mod:`sources.frames`) into the warehouse: idempotent, whole, lossless.

- **Nothing received is lost.** Every ingest *upserts* (:meth:`warehouse.Warehouse.upsert`): new hours
  are inserted, revised hours updated (``received_at`` moves forward to the ingest time), hours a
  source omits — a gap in a file, a ``null`` in an answer, an API lagging behind — stay as they are.
  Deleting stored hours is an explicit request (``delete_missing=True``, ``gridflex import …
  --delete-missing``) whose count is reported.
- **One transaction per file or answer**, across its series and tables, with its ``raw.ingest_log``
  rows: a kill leaves each file wholly old or wholly new.
- ``received_at`` is when gridflex received the rows (the ingest time); a file's modification time is
  kept in ``raw.ingest_log.source_modified_at``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from sources.frames import RepairReport, SourceError
from warehouse import UpsertStats, Warehouse, Write

HOUR = pd.Timedelta(hours=1)

#: table -> (columns that scope a series, timestamp column): what ``delete_missing`` replaces
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
    """What one ingest stored for one series of one table (``key``: the scope columns' values, e.g.
    ``{"series": "GB:average:direct", "source": "electricitymaps_csv"}``): the upsert counts and what
    the source repaired."""

    table: str
    stats: UpsertStats
    key: dict = field(default_factory=dict)
    repairs: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def metadata(self) -> dict:
        return {**self.stats.as_dict(), "repairs": dict(self.repairs)}


def store(
    wh: Warehouse,
    frames: Sequence[tuple[str, pd.DataFrame]],
    report: RepairReport | None = None,
    *,
    partition_key: str | None = None,
    source_label: str | None = None,
    window: tuple[pd.Timestamp, pd.Timestamp] | None = None,
    source_modified_at: pd.Timestamp | None = None,
    received_at: pd.Timestamp | None = None,
    delete_missing: bool = False,
) -> list[IngestResult]:
    """Upsert ``frames`` (table, frame) in ONE transaction, one ``raw.ingest_log`` row per series.

    ``received_at``: stamp every row with this time (file imports pass the ingest time); otherwise the
    frames' own ``received_at`` is kept. ``delete_missing``: additionally delete the stored hours of
    each series, inside the span the frame covers for that series, that the frame lacks (counted as
    ``deleted``). Empty frames are skipped; with nothing to write nothing is written.
    """
    repairs = dict(report.counts) if report else {}
    notes = "; ".join(report.notes[:20]) if report and report.notes else None
    writes, keys = [], []
    for table, frame in frames:
        if frame is None or frame.empty:
            continue
        scope_cols, ts_col = TABLES[table]
        if received_at is not None:
            frame = frame.assign(received_at=received_at)
        for _, part in frame.groupby(list(scope_cols), sort=True, dropna=False):
            key = {c: part[c].iloc[0] for c in scope_cols}
            lo, hi = part[ts_col].min(), part[ts_col].max() + HOUR
            span = window or (lo, hi)
            log = {
                "source": source_label or (report.source if report else table),
                "partition_key": partition_key,
                "window_start": pd.Timestamp(span[0]).to_pydatetime(),
                "window_end": pd.Timestamp(span[1]).to_pydatetime(),
                "repairs": repairs,
                "notes": notes,
                "source_modified_at": (
                    pd.Timestamp(source_modified_at).floor("us").to_pydatetime()
                    if source_modified_at
                    else None
                ),
            }
            if delete_missing:  # an explicit request: the series' span is made to equal the frame
                writes.append(
                    Write(
                        table,
                        part,
                        scope=key,
                        window=(lo, hi),
                        ts_column=ts_col,
                        log=log,
                        allow_delete=True,
                    )
                )
            else:
                writes.append(Write(table, part, log=log, mode="upsert"))
            keys.append((table, key))
    if not writes:
        return []
    stats = wh.replace_windows(writes)
    extra = list(report.notes) if report else []
    return [IngestResult(t, st, k, repairs, extra) for (t, k), st in zip(keys, stats, strict=True)]


# ----------------------------------------------------------------------------------------------
# hourly ingest (the assets) and bulk ingest (bootstrap, the demo)

#: the signals one hourly ingest covers, in the order ``ingest_window`` stores them (generation is
#: computed from the weather stored before it)
SIGNALS = ("carbon", "weather", "prices", "generation", "inference", "jobs")


@dataclass
class SignalIngest:
    """One signal's ingest: what was written, what the source repaired and what a person should
    read (``notes``), and rows to preview."""

    signal: str
    source: str
    results: list[IngestResult]
    notes: list[str]
    preview: pd.DataFrame
    fetched: object = None

    def total(self, what: str) -> int:
        return int(sum(getattr(r.stats, what) for r in self.results))


def ingest_signal(
    wh: Warehouse,
    fleet,
    signal: str,
    start: pd.Timestamp,
    end: pd.Timestamp,
    partition_key: str | None = None,
) -> SignalIngest:
    """Fetch one signal of ``fleet``'s sources for hours ``[start, end)`` and upsert it in one
    transaction.

    The one place where a fetch meets its tables: the hourly Dagster assets and the bulk
    :func:`ingest_window` both call it. Day-ahead prices and the job queue reach one planning horizon
    past ``end`` (published / submitted ahead); API sources also return a trailing revision window
    before ``start``, which is upserted too (revisions update; nothing is deleted)."""
    from pipelines.lib import fetch

    hi = end + pd.Timedelta(hours=fleet.planning.horizon_h) if signal in ("prices", "jobs") else end
    got = fetch.FETCHERS[signal](wh, fleet, start, hi)
    results = store(
        wh,
        got.writes,
        got.report,
        partition_key=partition_key,
        source_label=f"{signal}:{got.source}",
        window=(start, hi),
    )
    notes = list(got.notes) + [n for n in got.report.notes[:10]]
    return SignalIngest(signal, got.source, results, notes, got.preview, got)


def ingest_window(wh: Warehouse, fleet, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Bulk-ingest every signal for hours ``[start, end)`` — what the hourly ingest assets do for one
    hour, for a whole history at once (bootstrapping a warehouse, the demo). One row per table."""
    rows = []
    for signal in SIGNALS:
        res = ingest_signal(wh, fleet, signal, start, end)
        for r in res.results:
            rows.append({**r.stats.as_dict(), "repaired": sum(r.repairs.values())})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------
# file imports (`gridflex import …`)

#: kind -> target table
IMPORT_TABLES = {
    "em-csv": "staging.carbon_intensity",
    "prices": "staging.prices",
    "weather": "staging.weather_observed",
    "load": "staging.load",
    "jobs": "staging.jobs",
}


def read_import(kind: str, path: Path, **options) -> tuple[pd.DataFrame, RepairReport, str]:
    """Read one file of ``kind`` with its reader; returns (frame, report, what it is)."""

    if kind == "em-csv":
        from sources.em_csv import read_em_csv

        frame, report = read_em_csv(path)
        return frame, report, ", ".join(sorted(frame.zone.unique()))
    if kind == "prices":
        from sources.prices_csv import SHARED_PRICE_TZ, read_prices_csv

        prefix = path.name.split("_")[0]
        zone = options.get("zone") or prefix
        tz = options.get("tz") if options.get("tz") is not None else SHARED_PRICE_TZ.get(prefix)
        tz = None if tz in ("", "UTC", "utc") else tz
        frame, report = read_prices_csv(path, zone, tz=tz)
        return frame, report, f"zone {zone}, times {'UTC' if tz is None else tz + ' wall clock'}"
    if kind == "weather":
        from sources.weather_csv import SHARED_WEATHER_OFFSETS, read_weather_csv

        site = options.get("site")
        if not site:
            raise SourceError(
                str(path), "--site NAME is required: the fleet site this weather is for"
            )
        off = options.get("utc_offset")
        if off is None:
            off = SHARED_WEATHER_OFFSETS.get(path.parent.name)
        if off is None:
            raise SourceError(
                str(path), "--utc-offset HOURS is required (the file's fixed offset from UTC)"
            )
        frame, report = read_weather_csv(path, location=site, utc_offset_hours=float(off))
        return frame, report, f"site {site}, times UTC{float(off):+g} h"
    if kind == "load":
        from sources.load import read_alibaba_trace, read_helios, read_telemetry_csv

        fmt = options.get("format") or "telemetry"
        site = options.get("site")
        if not site:
            raise SourceError(str(path), "--site NAME is required: the fleet site of this load")
        if fmt == "helios":
            frame, report = read_helios(path, site=site, series=options.get("series") or "venus")
        elif fmt == "alibaba":
            frame, report = read_alibaba_trace(path, site=site)
        else:
            kw = {
                k: options[k]
                for k in ("value_col", "time_col", "unit", "agg", "tz")
                if options.get(k) is not None
            }
            frame, report = read_telemetry_csv(
                path,
                site,
                series_col=options.get("series_col"),
                series=None if options.get("series_col") else (options.get("series") or "load"),
                **kw,
            )
        return frame, report, f"site {site}, series {', '.join(sorted(frame.series.unique()))}"
    if kind == "jobs":
        from sources.jobs import read_job_queue_csv

        frame, report = read_job_queue_csv(path, known_sites=options.get("known_sites"))
        return frame.assign(source="jobs_csv"), report, f"{len(frame)} job(s)"
    raise ValueError(f"unknown import kind {kind!r} ({', '.join(IMPORT_TABLES)})")


def import_files(
    wh: Warehouse,
    kind: str,
    paths: Iterable[str | Path],
    *,
    delete_missing: bool = False,
    **options,
) -> pd.DataFrame:
    """Import files of one kind (``em-csv``, ``prices``, ``weather``, ``load``, ``jobs``).

    Each file is read whole first (a bad file raises :class:`sources.frames.SourceError` naming the
    file, line and problem, and nothing of it is written), then written in ONE transaction across its
    series. Files before a bad one stay imported. Re-importing a file changes nothing. Returns one row
    per (file, series): rows in the file, estimated, repaired, inserted, updated, unchanged, deleted."""
    from sources.em_csv import file_mtime

    table = IMPORT_TABLES.get(kind)
    if table is None:
        raise ValueError(f"unknown import kind {kind!r} ({', '.join(IMPORT_TABLES)})")
    rows = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            raise SourceError(str(path), "is a directory, not a file")
        if not path.exists():
            raise SourceError(str(path), "no such file")
        try:
            frame, report, what = read_import(kind, path, **options)
        except UnicodeDecodeError as exc:
            raise SourceError(
                str(path), f"not UTF-8 text ({exc.reason} at byte {exc.start})"
            ) from None
        results = store(
            wh,
            [(table, frame)],
            report,
            source_label=f"{kind}:{path.name}",
            source_modified_at=file_mtime(path),
            received_at=pd.Timestamp.now(tz="UTC"),
            delete_missing=delete_missing,
        )
        scope_cols, ts_col = TABLES[table]
        label = [c for c in scope_cols if c != "source"] or ["source"]
        for r in results:
            part = frame
            for c, v in r.key.items():
                part = part[part[c] == v]
            rows.append(
                {
                    "file": path.name,
                    "what": what,
                    "series": " ".join(str(r.key[c]) for c in label),
                    "rows": len(part),
                    "first": part[ts_col].min(),
                    "last": part[ts_col].max(),
                    "estimated": int(part["is_estimated"].sum()) if "is_estimated" in part else 0,
                    "repaired": report.total,
                    "inserted": r.stats.inserted,
                    "updated": r.stats.updated,
                    "unchanged": r.stats.unchanged,
                    "deleted": r.stats.deleted,
                }
            )
    return pd.DataFrame(rows)
