"""Training-job queue: CSV import and validation → JOB_COLUMNS.

CSV format (header required, extra columns ignored and noted)::

    job_id,power_mw,duration_h,release,deadline,value,eligible_sites
    job-0001,8.5,4,2026-01-05T03:00Z,2026-01-05T20:00Z,9200,sanjose;frankfurt

``release`` / ``deadline`` are hour starts; naive timestamps are UTC, timestamps with an offset are
converted to UTC. The job may start in the release hour and must have finished by the **end** of
the deadline hour, so its window is ``(deadline − release) / 1 h + 1`` hours. ``eligible_sites`` is
a ``;``-separated list of site names in the CSV and a ``list[str]`` in the frame. ``value`` is the
money (in the fleet's currency) earned by completing the job.

:func:`validate_jobs` raises :class:`~sources.frames.SourceError` naming the job id and the field
for: missing columns, a missing/non-numeric field, non-positive ``power_mw``, non-positive or
non-integer ``duration_h``, timestamps not on the hour, ``deadline`` before ``release``, a job
longer than its window, an empty ``eligible_sites`` (or a site not in ``known_sites`` when given),
a negative ``value`` and duplicate job ids."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from sources.frames import JOB_COLUMNS, RepairReport, SourceError


def _sites(v, job: str, src: str, row) -> list[str]:
    if isinstance(v, str):
        names = [s.strip() for s in v.split(";")]
    elif isinstance(v, (list, tuple, np.ndarray, pd.Series)):
        names = [str(s).strip() for s in v]
    elif v is None or (isinstance(v, float) and np.isnan(v)):
        names = []
    else:
        raise SourceError(
            src,
            f"job {job!r}: field 'eligible_sites' must be a list or ';'-separated names, got {v!r}",
            row,
        )
    names = [s for s in names if s]
    if not names:
        raise SourceError(src, f"job {job!r}: field 'eligible_sites' is empty", row)
    if len(set(names)) != len(names):
        names = list(dict.fromkeys(names))
    return names


def _ts(v, job: str, field: str, src: str, row) -> pd.Timestamp:
    try:
        t = pd.Timestamp(v)
    except (ValueError, TypeError):
        raise SourceError(
            src, f"job {job!r}: field {field!r} is not a timestamp: {v!r}", row
        ) from None
    if t is pd.NaT or pd.isna(t):
        raise SourceError(src, f"job {job!r}: field {field!r} is missing", row)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    if t != t.floor("h"):
        raise SourceError(
            src, f"job {job!r}: field {field!r} = {t.isoformat()} is not on the hour", row
        )
    return t


def _num(v, job: str, field: str, src: str, row) -> float:
    try:
        x = float(v)
    except (ValueError, TypeError):
        raise SourceError(
            src, f"job {job!r}: field {field!r} is not a number: {v!r}", row
        ) from None
    if not np.isfinite(x):
        raise SourceError(src, f"job {job!r}: field {field!r} is missing or not finite: {v!r}", row)
    return x


def validate_jobs(
    frame: pd.DataFrame,
    source: str = "jobs",
    known_sites: Iterable[str] | None = None,
    rows: list[int] | None = None,
) -> pd.DataFrame:
    """Check a job frame and return it normalised to JOB_COLUMNS (UTC ``datetime64[ns, UTC]``
    release and deadline, float power/value, int duration, ``list[str]`` eligible sites).

    ``rows`` optionally gives the row number to cite for each job (the CSV line); by default the
    0-based position in ``frame``."""
    missing = [c for c in JOB_COLUMNS if c not in frame.columns]
    if missing:
        raise SourceError(source, f"missing column(s) {', '.join(repr(c) for c in missing)}")
    known = set(known_sites) if known_sites is not None else None
    out = {c: [] for c in JOB_COLUMNS}
    seen: dict[str, object] = {}
    for i, rec in enumerate(frame[JOB_COLUMNS].itertuples(index=False)):
        row = rows[i] if rows is not None else i
        raw_id = rec.job_id
        if (
            raw_id is None
            or (isinstance(raw_id, float) and np.isnan(raw_id))
            or not str(raw_id).strip()
        ):
            raise SourceError(source, "field 'job_id' is empty", row)
        job = str(raw_id).strip()
        if job in seen:
            raise SourceError(
                source, f"job {job!r}: field 'job_id' duplicated (first at row {seen[job]})", row
            )
        seen[job] = row
        power = _num(rec.power_mw, job, "power_mw", source, row)
        if power <= 0:
            raise SourceError(
                source, f"job {job!r}: field 'power_mw' must be > 0, got {power:g}", row
            )
        dur = _num(rec.duration_h, job, "duration_h", source, row)
        if dur <= 0:
            raise SourceError(
                source, f"job {job!r}: field 'duration_h' must be > 0, got {dur:g}", row
            )
        if dur != int(dur):
            raise SourceError(
                source, f"job {job!r}: field 'duration_h' must be whole hours, got {dur:g}", row
            )
        rel = _ts(rec.release, job, "release", source, row)
        dl = _ts(rec.deadline, job, "deadline", source, row)
        if dl < rel:
            raise SourceError(
                source,
                f"job {job!r}: field 'deadline' {dl.isoformat()} is before release "
                f"{rel.isoformat()}",
                row,
            )
        window = int((dl - rel) / pd.Timedelta(hours=1)) + 1
        if dur > window:
            raise SourceError(
                source,
                f"job {job!r}: field 'duration_h' = {int(dur)} h is longer than its window "
                f"of {window} h (release {rel.isoformat()} to end of deadline hour "
                f"{dl.isoformat()})",
                row,
            )
        value = _num(rec.value, job, "value", source, row)
        if value < 0:
            raise SourceError(
                source, f"job {job!r}: field 'value' must be >= 0, got {value:g}", row
            )
        sites = _sites(rec.eligible_sites, job, source, row)
        if known is not None:
            unknown = [s for s in sites if s not in known]
            if unknown:
                raise SourceError(
                    source,
                    f"job {job!r}: field 'eligible_sites' names unknown site(s) "
                    f"{', '.join(unknown)}",
                    row,
                )
        for c, v in zip(JOB_COLUMNS, (job, power, int(dur), rel, dl, value, sites), strict=True):
            out[c].append(v)
    f = pd.DataFrame(
        {
            "job_id": pd.Series(out["job_id"], dtype=object),
            "power_mw": pd.Series(out["power_mw"], dtype=float),
            "duration_h": pd.Series(out["duration_h"], dtype="int64"),
            "release": pd.to_datetime(pd.Series(out["release"], dtype=object), utc=True).dt.as_unit(
                "ns"
            ),
            "deadline": pd.to_datetime(
                pd.Series(out["deadline"], dtype=object), utc=True
            ).dt.as_unit("ns"),
            "value": pd.Series(out["value"], dtype=float),
            "eligible_sites": pd.Series(out["eligible_sites"], dtype=object),
        }
    )
    return f[JOB_COLUMNS]


def read_job_queue_csv(
    path: str | os.PathLike, known_sites: Iterable[str] | None = None
) -> tuple[pd.DataFrame, RepairReport]:
    """Read a job-queue CSV (see module docstring); rows in the error messages are 1-based file
    lines."""
    path = Path(path)
    src = str(path)
    report = RepairReport(src)
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise SourceError(src, "empty file (no header)") from None
    raw.columns = [str(c).strip() for c in raw.columns]
    missing = [c for c in JOB_COLUMNS if c not in raw.columns]
    if missing:
        raise SourceError(src, f"missing column(s) {', '.join(repr(c) for c in missing)}", 1)
    extra = [c for c in raw.columns if c not in JOB_COLUMNS]
    if extra:
        report.notes.append(f"ignored column(s): {', '.join(extra)}")
    raw = raw[JOB_COLUMNS].apply(lambda s: s.str.strip())
    raw = raw.replace({"": np.nan})
    frame = validate_jobs(
        raw, source=src, known_sites=known_sites, rows=list(range(2, len(raw) + 2))
    )
    return frame, report
