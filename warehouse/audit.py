"""Decisions you can audit: ``plans.audit`` (what each committed hour was decided from), ``verify``
(does the warehouse still hold it?) and ``explain`` (why the plan did what it did).

This module lives in ``warehouse/`` because everything it does is reading and hashing warehouse rows;
it imports nothing else of ours. What the planner reads is given to it as plain data by
``pipelines.lib.plan.plan_hour`` (:func:`plan_inputs` mirrors those reads).

**The record** (:func:`plan_audit_row`, one row per planned hour, written in the plan's own
transaction):

- ``inputs``: per input the planner reads — carbon intensity per site series, inference load per class,
  prices per zone, weather forecasts and observations and generation per site, the grid operator's
  event intervals per site (when the fleet has a grid-event source: those overlapping the window,
  cancelled or not, without the cancellation flags), the job queue, the carried state — the table, the series, the hour range read, the row count, a hash of the rows and the
  ``received_at`` cut-off (the latest ``received_at`` among them), and a hash per UTC day of the range.
  Carbon and load cover the forecast's look-back (:data:`FORECAST_HISTORY`, what the forecast issued
  for the hour was computed from) plus the committed hour (what its re-balance reads); prices cover
  the week before the window (the planner's fallback) and the window; weather forecasts the window as
  issued by ``t0``; observations the :data:`WEATHER_HISTORY` before ``t0`` and ``t0``. Carbon is hashed
  over every source's rows of the series (``staging.carbon_best`` picks among them), i.e. a superset of
  the rows the view passes on. The warm start (the previous hour's plan) is not recorded: it changes how
  fast the solver finds the plan, not the problem.
- ``forecast``: the forecasts issued at ``t0`` (``forecasts.carbon``/``forecasts.load``: every row of the
  issue, also the persistence rows the plan writes itself), the served model ids (from the rows;
  ``plans.runs.forecast_policy``), and each model's checkpoint hash. ``forecasts.models`` records a
  checkpoint *directory* (``checkpoint_path``) but no hash, so the files in it are hashed (sorted
  relative paths and contents; cached per process by size and mtime). A path that is not found from
  the working directory is recorded as such (``sha256: null``).
- ``fleet_hash``: sha256 of the validated fleet (``Fleet.model_dump(mode="json")``) as JSON with sorted
  keys and no whitespace — comments, whitespace and key order in the file do not count.
- ``solver``: :data:`mpc.solve.HIGHS_OPTIONS`, the MIP gap and the time limit; ``status``,
  ``termination``, ``mip_gap`` of the solve; ``code_version``
  (``importlib.metadata.version('gridflex')``), ``git_commit`` (``git rev-parse HEAD`` when the code
  runs from a git checkout, else NULL); ``dagster_run_id`` (NULL outside Dagster).
- ``decision``: the committed ``plans.dispatch`` rows (the columns stored), ``plans.dispatch_routing``
  rows and the jobs started (``plans.runs.jobs_started``).
- ``record_hash``: sha256 of the row's fields as canonical JSON; ``chain_hash = sha256(prev_chain_hash +
  record_hash)`` with ``prev_chain_hash`` the previous hour's ``chain_hash``, or ``''`` where a chain
  starts (a fresh start, the first plan, or a previous hour planned before auditing existed).

**Canonical hashing** (:func:`digest`): each row becomes one line of its columns' canonical texts joined
by ``\\x1f`` — floats as ``repr(round(x, 9))`` (the shortest round-trip decimal; ``-0.0`` as ``0.0``),
timestamps as integer microseconds since the epoch (UTC), booleans ``true``/``false``, NULL/NaN
``null``, lists ``[a,b]``, strings as they are; the hash is ``hashlib.sha256`` of the column names
joined by ``\\x1f``, ``\\n``, and the lines sorted as text joined by ``\\x1e`` (so row order does not
matter); a day's hash is the first 16 hex digits of the same over that UTC day's lines.

**Verify** (:func:`verify`) re-reads, for each audited hour, the same series and hour ranges and splits
the rows at the recorded cut-off. Rows received after it were revised or arrived after the decision
(the ingest only ever moves ``received_at`` forward): a day whose rows at or before the cut-off lost
exactly as many rows as came in later is *revised after the decision* — reported, not a failure.
staging keeps only the latest value of each key and ``raw.ingest_log`` records counts, not values, so
verify can tell that a revision happened (and which ingest, when its log row is found), not restore the
value planned on; a revision also hides an in-place alteration of another row of the same day. A day
whose hash differs with no row received after the cut-off — a value changed in place, a row deleted
(unless ``raw.ingest_log`` records an explicit deletion after the decision) or inserted with a
back-dated ``received_at`` — is an *unrecorded alteration*: a failure naming the input. Forecasts,
checkpoints, the carried state, the decision rows, the record and the chain have no revisions: any
difference fails (also a forecast re-issued for an audited hour whose plan was then not re-made). The chain makes SQL edits and deleted rows evident; it is not a signature (someone
who recomputes every later hash can rewrite history), so keep the latest ``chain_hash`` elsewhere if
that matters.

The audit re-reads the inputs in one read-only connection after the solve, just before the plan's
write (the plan's own reads are spread over many short connections); an ingest landing in between is
recorded as read. Under Dagster the ingest and the plan share the ``duckdb_writer`` pool.

``gridflex explain`` (:mod:`pipelines.lib.explain`) reads the same tables to say why an hour's plan did
what it did.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

HOUR = pd.Timedelta(hours=1)
DAY = pd.Timedelta(days=1)
#: carbon and load look-back recorded per hour: the forecast issued at ``t0`` reads
#: ``max(history_needed, 2·168 + 1) + 24·ENSEMBLE_DAYS + 48`` = 721 h of history for the demo's spec
#: (``pipelines.lib.forecast.issue_forecast``); 31 days cover it
FORECAST_HISTORY = pd.Timedelta(days=31)
#: prices: the planner falls back to the same hour up to a week earlier (``plan._prices``)
PRICE_HISTORY = pd.Timedelta(days=7)
#: weather observations: the planner's persistence fallback looks up to 8 days back (``plan_weather``)
WEATHER_HISTORY = pd.Timedelta(days=8)
WEATHER_COLUMNS = (
    "temperature_2m",
    "relative_humidity_2m",
    "cloud_cover",
    "wind_speed_10m",
    "wind_speed_100m",
    "shortwave_radiation",
)
#: table -> (key columns, value columns, timestamp column); received_at is the cut-off, not hashed
TABLES: dict[str, tuple[tuple[str, ...], tuple[str, ...], str | None]] = {
    "staging.carbon_intensity": (
        ("series", "ts", "source"),
        ("value", "is_estimated", "estimation_method"),
        "ts",
    ),
    "staging.load": (("site", "series", "ts", "source"), ("value", "unit"), "ts"),
    "staging.prices": (("zone", "ts", "source"), ("price", "currency"), "ts"),
    "staging.weather_forecast": (("location", "ts", "source", "issued_at"), WEATHER_COLUMNS, "ts"),
    "staging.weather_observed": (("location", "ts", "source"), WEATHER_COLUMNS, "ts"),
    "staging.generation": (("site", "ts", "source"), ("pv_cf", "wind_cf"), "ts"),
    "staging.jobs": (
        ("job_id", "source"),
        ("power_mw", "duration_h", "release", "deadline", "value", "eligible_sites"),
        None,
    ),
    # the grid operator's event intervals (the planner reads those not cancelled); the cancellation
    # flags are left out: a deletion after the decision marks rows in place (raw.openadr_events
    # keeps the deletion as received), a newer version with other values moves received_at
    "staging.grid_events": (
        ("event_id", "interval_id", "sub_interval", "payload_type", "site"),
        ("start", "end", "value", "unit", "modified_at"),
        "start",
    ),
    "plans.state": (("hour",), ("state", "written_by"), None),
    "forecasts.carbon": (
        ("issued_at", "target_time", "series", "model"),
        ("p10", "p50", "p90", "degraded", "degraded_reason"),
        None,
    ),
    "forecasts.load": (
        ("issued_at", "target_time", "series", "model"),
        ("p10", "p50", "p90", "degraded", "degraded_reason"),
        None,
    ),
}
FORECAST_TABLES = {"carbon": "forecasts.carbon", "load": "forecasts.load"}
#: fields of a plans.audit row covered by record_hash (everything but the two hashes it makes)
RECORD_FIELDS = (
    "plan_hour",
    "decided_at",
    "dagster_run_id",
    "code_version",
    "git_commit",
    "fleet_hash",
    "solver",
    "status",
    "termination",
    "mip_gap",
    "inputs_hash",
    "received_at_cutoff",
    "staging_hash",
    "inputs",
    "forecast_hash",
    "forecast",
    "decision_hash",
    "decision",
    "chain_start",
    "prev_chain_hash",
)
JSON_FIELDS = ("solver", "inputs", "forecast", "decision")
SEP, ROW = "\x1f", "\x1e"
_US_PER_DAY = 86_400_000_000


class AuditError(RuntimeError):
    """An audit that cannot be read (no warehouse, no plans.audit table, no such hour)."""


# ----------------------------------------------------------------------------------------------
# canonical hashing


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _floats(values) -> np.ndarray:
    v = np.round(np.asarray(values, dtype=float), 9) + 0.0  # -0.0 -> 0.0
    out = v.astype(str).astype(object)
    out[np.isnan(v)] = "null"
    return out


def _micros(values) -> np.ndarray:
    """Integer microseconds since the epoch of naive-UTC ``datetime64`` values, as text."""
    v = np.asarray(values).astype("datetime64[us]")
    out = v.astype("int64").astype(str).astype(object)
    out[np.isnat(v)] = "null"
    return out


def _value(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, str):
        return v
    if isinstance(v, bool | np.bool_):
        return "true" if v else "false"
    if isinstance(v, int | float | np.integer | np.floating):
        return _floats([v])[0]
    if isinstance(v, pd.Timestamp | np.datetime64) or hasattr(v, "tzinfo"):
        t = pd.Timestamp(v)
        if pd.isna(t):
            return "null"
        return str((t.tz_convert("UTC") if t.tzinfo else t.tz_localize("UTC")).value // 1000)
    if isinstance(v, list | tuple | np.ndarray):
        return "[" + ",".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return json.dumps(v, sort_keys=True, default=str)
    try:
        if pd.isna(v):
            return "null"
    except (TypeError, ValueError):
        pass
    return str(v)


def canonical(values: np.ndarray) -> np.ndarray:
    """One column (a numpy or masked array, as ``fetchnumpy`` or :func:`columnar` give) as canonical
    texts (see the module docstring)."""
    mask = np.ma.getmaskarray(values) if np.ma.isMaskedArray(values) else None
    d = np.ma.getdata(values)
    kind = d.dtype.kind
    if kind == "b":
        out = np.where(d, "true", "false").astype(object)
    elif kind == "M":
        out = _micros(d)
    elif kind in "iuf":
        out = _floats(d)
    else:
        out = np.array([x if type(x) is str else _value(x) for x in d], dtype=object)
    if mask is not None and mask.any():
        out[mask] = "null"
    return out


Rows = dict  # column -> numpy array (masked where NULL), as DuckDB's fetchnumpy() returns


def columnar(frame: pd.DataFrame, columns: Sequence[str]) -> Rows:
    """``frame[columns]`` as :data:`Rows` (timestamps as naive-UTC ``datetime64[us]``), so a frame
    about to be written hashes like the rows read back."""
    out = {}
    for c in columns:
        s = frame[c]
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            out[c] = s.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[us]")
        elif pd.api.types.is_datetime64_dtype(s.dtype):
            out[c] = s.to_numpy("datetime64[us]")
        else:
            out[c] = s.to_numpy()
    return out


def _n(rows: Rows) -> int:
    return len(next(iter(rows.values()))) if rows else 0


def _take(rows: Rows, mask: np.ndarray) -> Rows:
    return {k: v[mask] for k, v in rows.items()}


def _days(values) -> np.ndarray:
    return np.asarray(np.ma.getdata(values)).astype("datetime64[D]")


def digest(rows: Rows, columns: Sequence[str], day_column: str | None = None) -> dict:
    """``{"rows", "hash"[, "days"]}`` of ``rows[columns]``, independent of row order; ``days``:
    ``{"YYYY-MM-DD": [rows, hash16]}`` per UTC day of ``day_column``."""
    columns = list(columns)
    n = _n(rows)
    head = SEP.join(columns)
    if n == 0:
        out = {"rows": 0, "hash": sha256(head + "\n")}
        if day_column:
            out["days"] = {}
        return out
    parts = [canonical(rows[c]) for c in columns]
    lines = parts[0]
    for part in parts[1:]:
        lines = lines + SEP + part
    text = lines.astype(str)
    order = np.argsort(text, kind="stable")
    out = {"rows": n, "hash": sha256(head + "\n" + ROW.join(text[order]))}
    if not day_column:
        return out
    day = _days(rows[day_column]).astype("int64")
    order = np.lexsort((text, day))
    text, day = text[order], day[order]
    cuts = np.flatnonzero(np.diff(day)) + 1
    out["days"] = {
        str(np.datetime64(int(day[lo]), "D")): [
            int(hi - lo),
            sha256(head + "\n" + ROW.join(text[lo:hi]))[:16],
        ]
        for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, n], strict=True)
    }
    return out


def canonical_json(doc) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str)


def fleet_hash(fleet_json: Mapping) -> str:
    """sha256 of the validated fleet (``Fleet.model_dump(mode="json")``) as JSON with sorted keys."""
    return sha256(canonical_json(fleet_json))


@functools.lru_cache(maxsize=1)
def code_version() -> tuple[str | None, str | None]:
    """(``importlib.metadata.version('gridflex')``, ``git rev-parse HEAD`` of the checkout this code
    runs from, when it runs from one); either is None when unknown."""
    from importlib import metadata

    try:
        version = metadata.version("gridflex")
    except metadata.PackageNotFoundError:
        version = None
    root = Path(__file__).resolve().parents[1]
    commit = None
    if (root / ".git").exists() and (root / "pyproject.toml").exists():
        try:
            out = subprocess.run(
                ["git", "-C", str(root), "rev-parse", "HEAD"],
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            )
            commit = out.stdout.strip() or None if out.returncode == 0 else None
        except (OSError, subprocess.SubprocessError):
            commit = None
    return version, commit


_CHECKPOINTS: dict[tuple, str] = {}


def checkpoint_hash(path: str | None) -> dict:
    """``{"checkpoint_path", "sha256", "files"}`` of a model directory (or file): sha256 over the
    sorted relative paths and contents of its files; ``sha256: None`` with ``why`` when not found."""
    if not path:
        return {"checkpoint_path": None, "sha256": None, "why": "no checkpoint recorded"}
    p = Path(path)
    if not p.exists():
        return {"checkpoint_path": path, "sha256": None, "why": "not found"}
    files = sorted(f for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file())
    stamp = tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    if stamp not in _CHECKPOINTS:
        h = hashlib.sha256()
        for f in files:
            h.update((f.relative_to(p).as_posix() if p.is_dir() else f.name).encode() + b"\0")
            h.update(f.read_bytes())
            h.update(b"\0")
        _CHECKPOINTS[stamp] = h.hexdigest()
    return {"checkpoint_path": path, "sha256": _CHECKPOINTS[stamp], "files": len(files)}


# ----------------------------------------------------------------------------------------------
# what the planner reads


def _iso(t) -> str | None:
    if t is None or (not isinstance(t, str) and pd.isna(t)):
        return None
    return pd.Timestamp(t).tz_convert("UTC").isoformat()


def _ts(s: str | None) -> pd.Timestamp | None:
    return None if s is None else pd.Timestamp(s).tz_convert("UTC")


def _py(t):
    return pd.Timestamp(t).to_pydatetime()


def plan_inputs(
    t0,
    horizon_h: int,
    *,
    carbon: Mapping[str, str],
    prices: Mapping[str, str],
    classes: Sequence[str],
    running: Sequence[str] = (),
    grid_sites: Sequence[str] = (),
) -> list[dict]:
    """The inputs ``plan_hour`` reads at ``t0`` (see the module docstring), as specs for
    :func:`read_inputs`. ``carbon``: site -> carbon series; ``prices``: site -> price zone;
    ``classes``: inference classes; ``running``: jobs running at ``t0``; ``grid_sites``: the
    sites whose grid events (``staging.grid_events`` intervals overlapping the window) it read
    (none when the fleet has no grid-event source)."""
    t0 = pd.Timestamp(t0)
    end, nxt = t0 + horizon_h * HOUR, t0 + HOUR

    def spec(kind, name, table, match, start=None, stop=None, **extra):
        s = {"input": kind, "name": name, "table": table, "match": match, **extra}
        if start is not None:
            s |= {"from": _iso(start), "to": _iso(stop)}
        return s

    out = []
    for site, series in carbon.items():
        out.append(
            spec(
                "carbon",
                f"carbon series {site} / {series}",
                "staging.carbon_intensity",
                {"series": series},
                t0 - FORECAST_HISTORY,
                nxt,
            )
        )
    for k in classes:
        out.append(
            spec(
                "load",
                f"load series {k}",
                "staging.load",
                {"series": k},
                t0 - FORECAST_HISTORY,
                nxt,
            )
        )
    for zone in sorted(set(prices.values())):
        users = ", ".join(s for s, z in prices.items() if z == zone)
        out.append(
            spec(
                "prices",
                f"prices zone {zone} ({users})",
                "staging.prices",
                {"zone": zone},
                t0 - PRICE_HISTORY,
                end,
            )
        )
    for site in carbon:
        out.append(
            spec(
                "weather_forecast",
                f"weather forecast {site}",
                "staging.weather_forecast",
                {"location": site},
                t0,
                end,
                issued_by=_iso(t0),
            )
        )
        out.append(
            spec(
                "weather_observed",
                f"weather observed {site}",
                "staging.weather_observed",
                {"location": site},
                t0 - WEATHER_HISTORY,
                nxt,
            )
        )
        out.append(
            spec("generation", f"generation {site}", "staging.generation", {"site": site}, t0, nxt)
        )
    for site in grid_sites:
        out.append(
            spec(
                "grid_events",
                f"grid events {site}",
                "staging.grid_events",
                {"site": site},
                t0,
                end,
                overlap=True,
            )
        )
    out.append(
        spec(
            "jobs",
            "job queue",
            "staging.jobs",
            {},
            jobs={
                "release_before": _iso(end),
                "deadline_from": _iso(t0),
                "running": sorted(running),
            },
        )
    )
    out.append(
        spec("state", f"plan state at {t0:%Y-%m-%d %H:%M}", "plans.state", {"hour": _iso(t0)})
    )
    return out


def _columns(con, table: str) -> list[str]:
    return [d[0] for d in con.execute(f"select * from {table} limit 0").description]


#: match columns that hold timestamps (their values are stored in the manifest as ISO text)
_TIME_COLUMNS = frozenset({"hour", "ts", "issued_at", "plan_hour"})


def _param(col: str, v):
    return _py(v) if col in _TIME_COLUMNS and v is not None else v


def _t(t) -> str:
    return "none" if t is None or pd.isna(t) else f"{pd.Timestamp(t):%Y-%m-%d %H:%M:%S} UTC"


def _fetch_group(con, specs: list[dict]) -> list[Rows]:
    """Rows of several specs that differ only in their match values (one query)."""
    first = specs[0]
    table, match, columns = first["table"], first["match"], list(first["columns"])
    conds, params = [], []
    split = None
    if len(match) == 1 and len(specs) > 1:
        (split,) = match
        conds.append(f"{split} in ?")
        params.append([_param(split, s["match"][split]) for s in specs])
    else:
        for col, val in match.items():
            conds.append(f"{col} = ?")
            params.append(_param(col, val))
    ts = TABLES[table][2]
    if "from" in first and first.get("overlap"):  # intervals [start, end) overlapping the range
        conds += ["start < ?", '"end" > ?']
        params += [_py(first["to"]), _py(first["from"])]
    elif "from" in first:
        conds += [f"{ts} >= ?", f"{ts} < ?"]
        params += [_py(first["from"]), _py(first["to"])]
    if first.get("issued_by"):
        conds.append("issued_at <= ?")
        params.append(_py(first["issued_by"]))
    if "jobs" in first:
        j = first["jobs"]
        conds.append("((release < ? and deadline >= ?) or job_id in ?)")
        params += [_py(j["release_before"]), _py(j["deadline_from"]), list(j["running"]) or [""]]
    cols = list(dict.fromkeys(c for c in (*columns, split, ts) if c))
    cols += ["received_at"] if table.startswith("staging.") else []
    names = ", ".join(f'"{c}"' for c in cols)  # quoted: staging.grid_events has an "end"
    sql = f"select {names} from {table} where {' and '.join(conds) or 'true'}"
    rows = con.execute(sql, params).fetchnumpy()
    if split is None:
        return [rows]
    keys = np.ma.getdata(rows[split])
    return [_take(rows, keys == s["match"][split]) for s in specs]


def _read(con, specs: list[dict]) -> list[Rows]:
    """The rows of each spec (its recorded ``columns`` and, in ``staging``, ``received_at``), one
    query per table and range."""
    out: list[Rows | None] = [None] * len(specs)
    groups: dict[tuple, list[int]] = {}
    for i, s in enumerate(specs):
        key = (
            s["table"],
            tuple(sorted(s["match"])),
            s.get("from"),
            s.get("to"),
            s.get("issued_by"),
            json.dumps(s.get("jobs"), sort_keys=True),
            tuple(s["columns"]),
        )
        groups.setdefault(key, []).append(i)
    for idx in groups.values():
        for i, rows in zip(idx, _fetch_group(con, [specs[i] for i in idx]), strict=True):
            out[i] = rows
    return out  # type: ignore[return-value]


def _day_column(spec: dict) -> str | None:
    return TABLES[spec["table"]][2] if "from" in spec else None


def _max_time(values) -> str | None:
    v = np.asarray(np.ma.getdata(values)).astype("datetime64[us]")
    v = v[~np.isnat(v)]
    return _iso(pd.Timestamp(v.max()).tz_localize("UTC")) if len(v) else None


def read_inputs(con, specs: list[dict]) -> list[dict]:
    """Each spec with what was read: ``columns``, ``rows``, ``hash``, ``days`` (per UTC day) and,
    in ``staging``, ``received_at_max`` (the cut-off)."""
    done = [{**s, "columns": list(TABLES[s["table"]][0] + TABLES[s["table"]][1])} for s in specs]
    for s, rows in zip(done, _read(con, done), strict=True):
        s |= digest(rows, s["columns"], _day_column(s))
        if "received_at" in rows:
            s["received_at_max"] = _max_time(rows["received_at"])
    return done


def _forecast_rows(con, t0, pending: Sequence = ()) -> dict[str, Rows]:
    """The rows of the forecast issued at ``t0`` per target, as they stand once the plan is written:
    a pending write of the issue (the persistence forecast a plan makes itself) replaces them."""
    out = {}
    for target, table in FORECAST_TABLES.items():
        cols = [*TABLES[table][0], *TABLES[table][1]]
        write = next((w for w in pending if getattr(w, "table", None) == table), None)
        if write is not None:
            out[target] = columnar(write.frame, [c for c in cols if c in write.frame.columns])
        else:
            out[target] = con.execute(
                f"select {', '.join(cols)} from {table} where issued_at = ?", [_py(t0)]
            ).fetchnumpy()
    return out


def _forecast_doc(con, t0, frames: dict[str, Rows], policy: str | None) -> dict:
    doc = {"issued_at": _iso(t0), "policy": policy, "targets": {}, "models": {}}
    for target, rows in frames.items():
        table = FORECAST_TABLES[target]
        cols = [c for c in (*TABLES[table][0], *TABLES[table][1]) if c in rows]
        models = sorted({str(m) for m in np.ma.getdata(rows.get("model", np.array([])))})
        doc["targets"][target] = {"table": table, "columns": cols, "models": models}
        doc["targets"][target] |= digest(rows, cols)
        for m in models:
            if m == "persistence" or m in doc["models"]:
                continue
            row = con.execute(
                "select checkpoint_path from forecasts.models where model_id = ?", [m]
            ).fetchone()
            doc["models"][m] = checkpoint_hash(row[0] if row else None)
    return doc


def _forecast_hash(doc: dict) -> str:
    parts = [f"{t}:{v['hash']}" for t, v in sorted(doc["targets"].items())]
    parts += [f"{m}:{v.get('sha256')}" for m, v in sorted(doc["models"].items())]
    return sha256("|".join(parts))


def _staging_hash(inputs: list[dict]) -> str:
    return sha256("|".join(sorted(f"{s['name']}:{s['hash']}" for s in inputs)))


def _by_site(rows: Rows, columns: list[str]) -> dict[str, str]:
    """Per site, the first 16 hex digits of the digest of its rows (names the site that changed)."""
    if "site" not in rows or not _n(rows):
        return {}
    sites = np.ma.getdata(rows["site"]).astype(str)
    return {str(s): digest(_take(rows, sites == s), columns)["hash"][:16] for s in np.unique(sites)}


def _decision(dispatch: Rows, routing: Rows, starts, columns: dict) -> dict:
    d = {
        "dispatch": {"table": "plans.dispatch", "columns": columns["dispatch"]},
        "routing": {"table": "plans.dispatch_routing", "columns": columns["routing"]},
    }
    d["dispatch"] |= digest(dispatch, columns["dispatch"])
    d["dispatch"]["sites"] = _by_site(dispatch, columns["dispatch"])
    d["routing"] |= digest(routing, columns["routing"])
    d["jobs_started"] = sorted(str(j) for j in starts)
    return d


def _decision_hash(d: dict) -> str:
    return sha256(
        f"dispatch:{d['dispatch']['hash']}|routing:{d['routing']['hash']}|"
        f"starts:{','.join(d['jobs_started'])}"
    )


def _norm(name: str, v):
    if name in JSON_FIELDS:
        return json.loads(v) if isinstance(v, str) else v
    if name in ("plan_hour", "decided_at", "received_at_cutoff"):
        return _iso(v)
    if name == "mip_gap":
        return None if v is None or pd.isna(v) else _floats([v])[0]
    if name == "chain_start":
        return bool(v)
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return None
    return str(v)


def record_hash(row: Mapping) -> str:
    """sha256 of an audit row's :data:`RECORD_FIELDS` as canonical JSON (JSON columns parsed)."""
    return sha256(canonical_json({f: _norm(f, row.get(f)) for f in RECORD_FIELDS}))


def chain_hash(prev: str, record: str) -> str:
    return sha256((prev or "") + record)


def plan_audit_row(
    wh,
    t0,
    specs: list[dict],
    *,
    dispatch: pd.DataFrame,
    routing: pd.DataFrame,
    jobs_started: Sequence[str],
    fleet_json: Mapping,
    solver: Mapping,
    status: str,
    termination: str | None,
    gap: float | None,
    inputs_hash: str,
    forecast_policy: str | None,
    pending: Sequence = (),
    fresh_start: bool = False,
    run_id: str | None = None,
) -> pd.DataFrame:
    """The ``plans.audit`` row of the plan made at ``t0`` (one read-only connection): ``specs`` from
    :func:`plan_inputs`; ``dispatch``/``routing``: the committed frames as they are about to be written
    to ``plans.dispatch``/``plans.dispatch_routing``; ``pending``: the plan's other writes (a
    persistence forecast it issues itself is hashed as written). A plan that starts from the state the
    previous hour left continues that hour's chain; ``fresh_start`` (or no audited previous hour)
    starts a new one."""
    t0 = pd.Timestamp(t0)
    with wh.reader() as con:
        inputs = read_inputs(con, specs)
        fdoc = _forecast_doc(con, t0, _forecast_rows(con, t0, pending), forecast_policy)
        cols = {
            "dispatch": [c for c in _columns(con, "plans.dispatch") if c in dispatch.columns],
            "routing": [c for c in _columns(con, "plans.dispatch_routing") if c in routing.columns],
        }
        has_state = con.execute(
            "select count(*) from plans.state where hour = ?", [_py(t0)]
        ).fetchone()[0]
        prev = con.execute(
            "select chain_hash from plans.audit where plan_hour = ?", [_py(t0 - HOUR)]
        ).fetchone()
    decision = _decision(
        columnar(dispatch, cols["dispatch"]), columnar(routing, cols["routing"]), jobs_started, cols
    )
    chain_start = bool(fresh_start or not has_state or prev is None)
    version, commit = code_version()
    cutoffs = [s["received_at_max"] for s in inputs if s.get("received_at_max")]
    row = {
        "plan_hour": t0,
        "decided_at": pd.Timestamp.now(tz="UTC").floor("us"),
        "dagster_run_id": run_id,
        "code_version": version,
        "git_commit": commit,
        "fleet_hash": fleet_hash(fleet_json),
        "solver": canonical_json(dict(solver)),
        "status": status,
        "termination": termination,
        "mip_gap": None if gap is None or not math.isfinite(float(gap)) else float(gap),
        "inputs_hash": inputs_hash,
        "received_at_cutoff": max(_ts(c) for c in cutoffs) if cutoffs else None,
        "staging_hash": _staging_hash(inputs),
        "inputs": canonical_json(inputs),
        "forecast_hash": _forecast_hash(fdoc),
        "forecast": canonical_json(fdoc),
        "decision_hash": _decision_hash(decision),
        "decision": canonical_json(decision),
        "chain_start": chain_start,
        "prev_chain_hash": "" if chain_start else prev[0],
    }
    row["record_hash"] = record_hash(row)
    row["chain_hash"] = chain_hash(row["prev_chain_hash"], row["record_hash"])
    return pd.DataFrame([row])


# ----------------------------------------------------------------------------------------------
# verify


@dataclass
class Finding:
    hour: pd.Timestamp
    what: str  # inputs | forecast | decision | state | record | chain | missing
    message: str
    #: for notes: arrived | revised | deleted | not_audited | unchecked
    kind: str = "failure"

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H:%M} UTC: {self.what}: {self.message}"


@dataclass
class VerifyReport:
    hours: list[pd.Timestamp] = field(default_factory=list)
    failures: list[Finding] = field(default_factory=list)
    notes: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def first_failure(self) -> Finding | None:
        return min(self.failures, key=lambda f: f.hour) if self.failures else None

    @property
    def failed_hours(self) -> list[pd.Timestamp]:
        return sorted({f.hour for f in self.failures})


def _ingest_entries(con, table: str, since, day: str | None) -> pd.DataFrame:
    df = con.execute(
        "select source, finished_at, inserted, updated, deleted, window_start, window_end "
        "from raw.ingest_log where target_table = ? and finished_at >= ? "
        "and (inserted > 0 or updated > 0 or deleted > 0) order by finished_at",
        [table, _py(since)],
    ).df()
    if day is not None and len(df):
        lo = pd.Timestamp(day, tz="UTC")
        ws, we = df.window_start, df.window_end
        overlap = (ws.isna() | (ws < lo + DAY)) & (we.isna() | (we > lo))
        df = df[overlap.to_numpy()]
    return df


def _log_text(entries: pd.DataFrame, what: str) -> str:
    if entries.empty:
        return "no raw.ingest_log entry after the decision records it"
    e = entries.iloc[0]
    more = f" (+{len(entries) - 1} more)" if len(entries) > 1 else ""
    return (
        f"raw.ingest_log: {e.source!r} finished {pd.Timestamp(e.finished_at):%Y-%m-%d %H:%M:%S} "
        f"UTC, {int(e[what])} {what}{more}"
    )


def _check_input(con, hour, spec: dict, now: Rows, decided_at, report: VerifyReport):
    """Compare one recorded input with its rows now (see the module docstring)."""
    name, table = spec["name"], spec["table"]
    cols, day_col = spec["columns"], _day_column(spec)
    cut = _ts(spec.get("received_at_max"))
    later_mask = np.zeros(_n(now), bool)
    if "received_at" in now:
        rec = np.asarray(np.ma.getdata(now["received_at"])).astype("datetime64[us]")
        if cut is None:
            later_mask = ~np.isnat(rec)
        else:
            later_mask = rec > np.datetime64(cut.tz_convert("UTC").tz_localize(None), "us")
    before, later = _take(now, ~later_mask), _take(now, later_mask)
    n_later_all = int(later_mask.sum())
    d = digest(before, cols, day_col)
    if d["hash"] == spec["hash"]:
        if n_later_all:
            report.notes.append(
                Finding(
                    hour,
                    "inputs",
                    f"{name}: {n_later_all} row(s) arrived after the decision (received up to "
                    f"{_t(_ts(_max_time(later['received_at'])))}); the rows planned on are "
                    "unchanged",
                    "arrived",
                )
            )
        return
    # a spec split by day keeps its (maybe empty: every row revised later) day map; "all" only
    # for specs without days
    rec_days = spec["days"] if "days" in spec else {"all": [spec["rows"], spec["hash"][:16]]}
    now_days = d["days"] if "days" in d else {"all": [d["rows"], d["hash"][:16]]}
    later_days: dict[str, int] = {}
    later_max: dict[str, str | None] = {}
    if n_later_all:
        labels = _days(later[day_col]).astype(str) if day_col else np.full(n_later_all, "all")
        for label in np.unique(labels):
            m = labels == label
            later_days[str(label)] = int(m.sum())
            later_max[str(label)] = _max_time(np.ma.getdata(later["received_at"])[m])
    for day in sorted(set(rec_days) | set(now_days)):
        (n_rec, h_rec), (n_now, h_now) = rec_days.get(day, [0, None]), now_days.get(day, [0, None])
        if h_rec == h_now:
            continue
        n_later = later_days.get(day, 0)
        where = f"rows of {day}" if day != "all" else "rows"
        log = _ingest_entries(con, table, decided_at, day if day != "all" else None)
        if n_now > n_rec:
            report.failures.append(
                Finding(
                    hour,
                    "inputs",
                    f"{name}: {n_now - n_rec} of the {where} carry a received_at at or before the "
                    f"cut-off {_t(cut)} but were not there at the decision — an unrecorded "
                    "alteration (inserted with a back-dated received_at)",
                )
            )
        elif n_now == n_rec:
            upd = log[log.updated > 0]
            extra = (
                f"; note {_log_text(upd, 'updated')} without moving received_at" if len(upd) else ""
            )
            report.failures.append(
                Finding(
                    hour,
                    "inputs",
                    f"{name}: the {where} ({n_rec} row(s), received at or before the cut-off "
                    f"{_t(cut)}) no longer hash as recorded and none of them was received later — "
                    f"an unrecorded alteration (a value changed in place){extra}",
                )
            )
        elif n_later >= n_rec - n_now:
            report.notes.append(
                Finding(
                    hour,
                    "inputs",
                    f"{name}: revised after the decision by ingest at {_t(_ts(later_max[day]))} "
                    f"({n_rec - n_now} of the {where} now received after the cut-off {_t(cut)}; "
                    f"{_log_text(log[log.updated > 0], 'updated')}). Informational: staging keeps "
                    "only the latest value, so the value planned on cannot be restored",
                    "revised",
                )
            )
        else:
            gone = n_rec - n_now - n_later
            dele = log[log.deleted > 0]
            msg = f"{name}: {gone} of the {where} planned on are no longer stored"
            if len(dele):
                report.notes.append(
                    Finding(
                        hour,
                        "inputs",
                        f"{msg}: deleted after the decision ({_log_text(dele, 'deleted')})",
                        "deleted",
                    )
                )
            else:
                report.failures.append(
                    Finding(
                        hour,
                        "inputs",
                        f"{msg} and no ingest recorded a deletion — an unrecorded alteration",
                    )
                )


def _check_forecast(con, hour, doc: dict, report: VerifyReport) -> None:
    frames = _forecast_rows(con, hour)
    for target, rec in doc["targets"].items():
        d = digest(frames[target], rec["columns"])
        if d["hash"] != rec["hash"]:
            report.failures.append(
                Finding(
                    hour,
                    "forecast",
                    f"{target} forecast issued at {hour:%Y-%m-%d %H:%M} (model "
                    f"{', '.join(rec['models']) or '-'}): {rec['table']} now holds {d['rows']} "
                    f"row(s) that differ from the {rec['rows']} planned on",
                )
            )
    for model, rec in doc["models"].items():
        if rec.get("sha256") is None:
            continue
        now = checkpoint_hash(rec["checkpoint_path"])
        if now["sha256"] is None:
            report.notes.append(
                Finding(
                    hour,
                    "forecast",
                    f"model {model}: checkpoint {rec['checkpoint_path']} not found from here: "
                    "not checked",
                    "unchecked",
                )
            )
        elif now["sha256"] != rec["sha256"]:
            report.failures.append(
                Finding(
                    hour,
                    "forecast",
                    f"model {model}: the checkpoint files in {rec['checkpoint_path']} changed "
                    "since the decision",
                )
            )


def _check_decision(con, hour, row: Mapping, decision: dict, report: VerifyReport) -> None:
    runs = con.execute(
        "select inputs_hash, jobs_started, status from plans.runs where plan_hour = ?", [_py(hour)]
    ).df()
    if runs.empty:
        report.failures.append(
            Finding(hour, "decision", "plans.runs has no plan for this hour any more")
        )
        return
    if runs.inputs_hash[0] != row["inputs_hash"]:
        report.failures.append(
            Finding(
                hour,
                "decision",
                "plans.runs.inputs_hash differs from the audited one: the plan stored is not the "
                "plan audited",
            )
        )
    now = {}
    for part, table in (("dispatch", "plans.dispatch"), ("routing", "plans.dispatch_routing")):
        cols = decision[part]["columns"]
        rows = con.execute(
            f"select {', '.join(cols)} from {table} where hour = ?", [_py(hour)]
        ).fetchnumpy()
        now[part] = digest(rows, cols)
        if now[part]["hash"] != decision[part]["hash"]:
            was, got = decision[part].get("sites") or {}, _by_site(rows, cols)
            sites = sorted(k for k in set(was) | set(got) if was.get(k) != got.get(k))
            report.failures.append(
                Finding(
                    hour,
                    "decision",
                    f"{table}: the committed rows of this hour ({now[part]['rows']} now, "
                    f"{decision[part]['rows']} committed) differ from what was committed"
                    + (f" (site {', '.join(sites)})" if sites else ""),
                )
            )
    started = sorted(
        str(j) for j in (runs.jobs_started[0] if runs.jobs_started[0] is not None else [])
    )
    if started != decision["jobs_started"]:
        report.failures.append(
            Finding(
                hour,
                "decision",
                f"plans.runs.jobs_started is {started}, the plan committed {decision['jobs_started']}",
            )
        )


def verify(wh, first=None, last=None) -> VerifyReport:
    """Re-check every audited hour in ``[first, last]`` (inclusive; default: all) against the
    warehouse as it now is: inputs, forecasts, checkpoints, state, decision, record and chain."""
    report = VerifyReport()
    if not Path(wh.path).exists():
        raise AuditError(f"{wh.path}: no warehouse")
    with wh.reader() as con:
        if not con.execute(
            "select count(*) from duckdb_tables() where schema_name = 'plans' "
            "and table_name = 'audit'"
        ).fetchone()[0]:
            raise AuditError(
                f"{wh.path}: no plans.audit table — this warehouse was never planned by a gridflex "
                "that records audits (plan an hour first)"
            )
        lo = _py(first) if first is not None else _py("1900-01-01T00:00:00+00:00")
        hi = _py(last) if last is not None else _py("2200-01-01T00:00:00+00:00")
        rows = con.execute(
            "select * from plans.audit where plan_hour >= ? and plan_hour <= ? order by plan_hour",
            [lo, hi],
        ).df()
        earliest = con.execute("select min(plan_hour) from plans.audit").fetchone()[0]
        planned = con.execute(
            "select plan_hour from plans.runs where plan_hour >= ? and plan_hour <= ? "
            "order by plan_hour",
            [lo, hi],
        ).df()
        audited = {pd.Timestamp(t) for t in rows.plan_hour}
        for t in (pd.Timestamp(x) for x in planned.plan_hour):
            if t in audited:
                continue
            if earliest is not None and t > pd.Timestamp(earliest):
                report.failures.append(
                    Finding(t, "chain", "planned (plans.runs) but its plans.audit row is missing")
                )
            else:
                report.notes.append(
                    Finding(
                        t, "missing", "planned before auditing began: not audited", "not_audited"
                    )
                )
        prev_rows = {}
        if len(rows):
            before = con.execute(
                "select plan_hour, chain_hash from plans.audit where plan_hour = ?",
                [_py(pd.Timestamp(rows.plan_hour.iloc[0]) - HOUR)],
            ).fetchall()
            prev_rows = {pd.Timestamp(h): c for h, c in before}
        for r in rows.to_dict("records"):
            hour = pd.Timestamp(r["plan_hour"])
            report.hours.append(hour)
            _check_row(con, hour, r, prev_rows, report)
            prev_rows[hour] = r["chain_hash"]
    return report


def _check_row(con, hour, r: dict, prev_rows: dict, report: VerifyReport) -> None:
    if record_hash(r) != r["record_hash"]:
        report.failures.append(
            Finding(
                hour, "record", "the plans.audit row was edited: its record_hash no longer matches"
            )
        )
    if chain_hash(r["prev_chain_hash"], r["record_hash"]) != r["chain_hash"]:
        report.failures.append(
            Finding(hour, "chain", "chain_hash is not sha256(prev_chain_hash + record_hash)")
        )
    if r["chain_start"]:
        if r["prev_chain_hash"]:
            report.failures.append(
                Finding(hour, "chain", "a chain start with a non-empty prev_chain_hash")
            )
    elif hour - HOUR not in prev_rows:
        report.failures.append(
            Finding(
                hour,
                "chain",
                f"chain broken: the audit row of the previous hour {hour - HOUR:%Y-%m-%d %H:%M} "
                "UTC, which this hour continues, is missing",
            )
        )
    elif prev_rows[hour - HOUR] != r["prev_chain_hash"]:
        report.failures.append(
            Finding(
                hour,
                "chain",
                f"chain broken: prev_chain_hash differs from the chain_hash of "
                f"{hour - HOUR:%Y-%m-%d %H:%M} UTC",
            )
        )
    decided = pd.Timestamp(r["decided_at"])
    specs = json.loads(r["inputs"])
    for spec, now in zip(specs, _read(con, specs), strict=True):
        if spec["input"] == "state":
            if digest(now, spec["columns"])["hash"] != spec["hash"]:
                report.failures.append(
                    Finding(
                        hour,
                        "state",
                        f"{spec['name']}: plans.state differs from the state planned from",
                    )
                )
            continue
        _check_input(con, hour, spec, now, decided, report)
    _check_forecast(con, hour, json.loads(r["forecast"]), report)
    _check_decision(con, hour, r, json.loads(r["decision"]), report)


# ----------------------------------------------------------------------------------------------
# explain
