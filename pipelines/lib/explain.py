"""``gridflex explain``: why the plan at an hour did what it did — the hour's summary, and a job's
(site, start) alternatives priced one at a time on the plan's own forecasts
(:func:`mpc.best_window.job_alternatives`) next to what the plan chose. Reads the warehouse only."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pandas as pd

from mpc.best_window import job_alternatives
from warehouse.audit import AuditError

HOUR = pd.Timedelta(hours=1)


def _py(t):
    return pd.Timestamp(t).to_pydatetime()


@dataclass
class JobExplanation:
    hour: pd.Timestamp
    job: dict
    alternatives: pd.DataFrame
    chosen: dict | None  # site, start, committed (starts in the hour planned)
    status: str  # scheduled | started | running | finished | missed | not_scheduled
    notes: list[str] = field(default_factory=list)

    @property
    def chosen_row(self) -> dict | None:
        hit = self.alternatives[self.alternatives.chosen]
        return hit.iloc[0].to_dict() if len(hit) else None

    @property
    def best_row(self) -> dict | None:
        return self.alternatives.iloc[0].to_dict() if len(self.alternatives) else None


def _strs(values) -> list[str]:
    """A list column's value (a numpy array, a list or None) as a list of strings."""
    return [] if values is None else [str(v) for v in values]


def _plan_run(con, hour) -> dict:
    df = con.execute("select * from plans.runs where plan_hour = ?", [_py(hour)]).df()
    if df.empty:
        last = con.execute("select max(plan_hour) from plans.runs").fetchone()[0]
        raise AuditError(
            f"no plan for {pd.Timestamp(hour):%Y-%m-%d %H:%M} UTC"
            + (f" (the latest is {pd.Timestamp(last):%Y-%m-%d %H:%M} UTC)" if last else "")
        )
    return df.iloc[0].to_dict()


def planned_signals(con, hour) -> tuple[pd.DatetimeIndex, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(window, carbon g/kWh, price $/MWh, overhead) the plan at ``hour`` used: the p50 of the carbon
    forecast issued at ``hour`` (the plan's own site-hours where it has none), the import prices and
    the facility/IT ratio (1 + κ) of ``plans.site_hours``."""
    sh = con.execute(
        "select target_time, site, carbon_g_kwh, price_import, facility_mw, it_mw "
        "from plans.site_hours where plan_hour = ? order by target_time, site",
        [_py(hour)],
    ).df()
    window = pd.DatetimeIndex(sorted(pd.to_datetime(sh.target_time.unique(), utc=True)))
    sh["target_time"] = pd.to_datetime(sh.target_time, utc=True)
    fc = con.execute(
        "select target_time, series, p50 from forecasts.carbon where issued_at = ?", [_py(hour)]
    ).df()
    fc["target_time"] = pd.to_datetime(fc.target_time, utc=True)
    carbon = sh.pivot(index="target_time", columns="site", values="carbon_g_kwh")
    if len(fc):
        f = fc.pivot_table(index="target_time", columns="series", values="p50", aggfunc="first")
        f = f.clip(lower=0).reindex(index=carbon.index)
        carbon = f.reindex(columns=carbon.columns).fillna(carbon)
    price = sh.pivot(index="target_time", columns="site", values="price_import")
    ratio = (sh.facility_mw / sh.it_mw).where(sh.it_mw > 0)
    overhead = sh.assign(k=ratio).pivot(index="target_time", columns="site", values="k")
    return window, carbon, price, overhead


def explain_job(wh, hour, job_id: str, *, carbon_price: float | None = None) -> JobExplanation:
    """Why the plan at ``hour`` did what it did with ``job_id``: its alternatives in the plan's window
    (:func:`job_alternatives` on :func:`planned_signals`) next to what the plan chose
    (``plans.job_runs``; committed when it starts in ``hour``, ``plans.runs.jobs_started``)."""
    hour = pd.Timestamp(hour)
    with wh.reader() as con:
        run = _plan_run(con, hour)
        jobs = con.execute(
            "select job_id, power_mw, duration_h, release, deadline, value, eligible_sites, "
            "received_at from staging.jobs where job_id = ? order by received_at desc",
            [job_id],
        ).df()
        if jobs.empty:
            raise AuditError(f"no job {job_id!r} in staging.jobs")
        job = jobs.iloc[0].to_dict()
        job["eligible_sites"] = [str(s) for s in job["eligible_sites"]]
        for c in ("release", "deadline", "received_at"):
            job[c] = pd.Timestamp(job[c]).tz_convert("UTC")
        runs = con.execute(
            "select target_time, site from plans.job_runs where plan_hour = ? and job_id = ? "
            "order by target_time",
            [_py(hour), job_id],
        ).df()
        st = con.execute("select state from plans.state where hour = ?", [_py(hour)]).fetchone()
        window, carbon, price, overhead = planned_signals(con, hour)
    state = json.loads(st[0]) if st else {"running": {}, "finished": [], "missed": []}
    notes = []
    chosen = None
    if job_id in (state.get("running") or {}):
        site, left = state["running"][job_id]
        status = "running"
        notes.append(
            f"{job_id} was already running at {site} ({left} h left) when this hour was planned: "
            "started by an earlier plan, not re-decided here"
        )
        chosen = {"site": site, "start": None, "committed": True}
    elif job_id in (state.get("finished") or []):
        status = "finished"
        notes.append(f"{job_id} had finished before this hour")
    elif job_id in (state.get("missed") or []) or job_id in _strs(run.get("jobs_missed")):
        status = "missed"
        notes.append(f"{job_id} can no longer meet its deadline: missed")
    elif len(runs):
        start = pd.Timestamp(runs.target_time.iloc[0]).tz_convert("UTC")
        committed = job_id in _strs(run.get("jobs_started"))
        status = "started" if committed else "scheduled"
        chosen = {"site": str(runs.site.iloc[0]), "start": start, "committed": committed}
        if not committed:
            notes.append(
                f"the plan schedules {job_id} to start at {start:%Y-%m-%d %H:%M} UTC; only the "
                "committed hour is binding, the next hour's plan may move it"
            )
    else:
        status = "not_scheduled"
        notes.append(
            f"the plan does not start {job_id} in its window (it waits: its deadline "
            f"{job['deadline']:%Y-%m-%d %H:%M} UTC allows a later start)"
        )
    alt = job_alternatives(
        job,
        window,
        carbon,
        price,
        overhead,
        (chosen["site"], chosen["start"]) if chosen and chosen["start"] is not None else None,
        carbon_price,
    )
    if len(alt) and (alt.hours_priced < int(job["duration_h"])).any():
        notes.append(
            f"{job_id} runs {int(job['duration_h'])} h and not every start fits in the plan's "
            f"{len(window)} h window: those are priced over their hours in the window only"
        )
    latest = job["deadline"] - (int(job["duration_h"]) - 1) * HOUR
    if latest > window[-1] - (int(job["duration_h"]) - 1) * HOUR:
        notes.append(
            f"starts after the window (up to {latest:%Y-%m-%d %H:%M} UTC) are possible but not "
            "priced: the plan had no forecast for them"
        )
    if job["received_at"] > pd.Timestamp(run["created_at"]).tz_convert("UTC"):
        notes.append(f"{job_id}'s queue entry was revised after this plan was made")
    return JobExplanation(hour, job, alt, chosen, status, notes)


def explain_hour(wh, hour) -> dict:
    """A summary of the plan at ``hour``: the ``plans.runs`` row, the committed hour per site
    (``plans.dispatch``), the jobs running, and its audit row when there is one."""
    hour = pd.Timestamp(hour)
    with wh.reader() as con:
        run = _plan_run(con, hour)
        disp = con.execute(
            "select site, import_mw, export_mw, facility_mw, carbon_g_kwh, emissions_t, cost, "
            "jobs_running from plans.dispatch where hour = ? order by site",
            [_py(hour)],
        ).df()
        audit = (
            con.execute(
                "select decided_at, dagster_run_id, code_version, git_commit, chain_hash, chain_start "
                "from plans.audit where plan_hour = ?",
                [_py(hour)],
            ).df()
            if con.execute(
                "select count(*) from duckdb_tables() where schema_name = 'plans' "
                "and table_name = 'audit'"
            ).fetchone()[0]
            else pd.DataFrame()
        )
    running = sorted({str(j) for js in disp.jobs_running for j in (js if js is not None else [])})
    return {
        "hour": hour,
        "run": run,
        "sites": disp.drop(columns=["jobs_running"]),
        "jobs_started": _strs(run.get("jobs_started")),
        "jobs_running": running,
        "jobs_missed": _strs(run.get("jobs_missed")),
        "audit": audit.iloc[0].to_dict() if len(audit) else None,
    }
