"""Answer the grid within seconds: re-plan the hour in progress when a grid event arrives.

The hourly plan (:func:`pipelines.lib.plan.plan_hour`) stays the record of each hour. When a new or
changed event reaches gridflex during the hour (pushed by the VTN, or seen by the Dagster sensor's
poll), :func:`revise_hour` re-plans that hour from the state it started in, with the events now
stored, and commits the result as a new *revision* (``plans.revisions``,
``plans.dispatch_revisions``, ``plans.state_revisions``; never overwriting the hourly plan):

- ``kind="lp"``, the fast path: every job decision of the hourly plan is held (its starts fixed,
  running jobs continue), so the window is a linear programme — batteries, on-site generation,
  import/export and inference routing (and deferral of flexible and batch inference) re-dispatched
  against the new limits, prices and alerts.
- ``kind="full"``: the window re-planned as a MILP with only the jobs already running held: jobs
  not started may move, checkpointable batch jobs running now may be paused.

The next hour's plan starts from the newest revision's state (``load_state``), and the marts read
``plans.dispatch_current`` (the newest revision of each hour, else its hourly dispatch).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field

import pandas as pd

from mpc.fleet import Fleet
from pipelines.lib.plan import (
    HOUR,
    PlanError,
    _h,
    _py,
    committed_unserved,
    realised_signals,
    state_to_json,
    window_problem,
)
from warehouse.db import Warehouse, Write

log = logging.getLogger(__name__)

KINDS = ("lp", "full")


@dataclass
class Revision:
    """What one :func:`revise_hour` did (also the row of ``plans.revisions``)."""

    hour: pd.Timestamp
    revision: int
    kind: str
    status: str
    trigger_events: list[str]
    event_received_at: pd.Timestamp | None
    created_at: pd.Timestamp
    response_s: float | None
    solve_s: float
    total_s: float
    objective: float
    jobs_paused: list[str]
    jobs_resumed: list[str]
    import_over_cap_mwh: float
    problems: list[str] = field(default_factory=list)
    dispatch: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: the import per site (MW) in force before the revision (the hourly dispatch or the newest
    #: revision), for the message
    import_before_mw: dict[str, float] = field(default_factory=dict)

    def line(self) -> str:
        after = self.dispatch.set_index("site")["import_mw"].to_dict() if len(self.dispatch) else {}
        moves = ", ".join(
            f"{s} {self.import_before_mw.get(s, float('nan')):.1f} -> {after[s]:.1f} MW"
            for s in sorted(after)
            if abs(after[s] - self.import_before_mw.get(s, after[s])) > 0.05
        )
        took = f"{self.response_s:.2f} s after the event" if self.response_s is not None else ""
        return (
            f"{_h(self.hour)} UTC revision {self.revision} ({self.kind}, {self.status}, "
            f"{self.total_s:.2f} s{'; ' + took if took else ''}): import {moves or 'unchanged'}"
            + (f"; paused {', '.join(self.jobs_paused)}" if self.jobs_paused else "")
            + (f"; {'; '.join(self.problems)}" if self.problems else "")
        )


def hour_in_progress(wh: Warehouse) -> pd.Timestamp:
    """The newest planned hour (the one a revision applies to)."""
    h = wh.query("select max(plan_hour) h from plans.runs").h[0]
    if h is None or pd.isna(h):
        raise PlanError("no hour has been planned yet: there is nothing to revise")
    return pd.Timestamp(h)


def _commitment(wh: Warehouse, hour) -> tuple[dict, dict, dict, set]:
    """What is in force for the hour: the hourly plan's job starts over its window (job -> (site,
    period >= 1)) and the jobs it started in the hour (job -> site); the import per site (MW) and the
    jobs running in the hour as committed now (its newest revision, else the hourly dispatch)."""
    runs = wh.query(
        "select job_id, arg_min(site, target_time) site, min(target_time) first from plans.job_runs "
        "where plan_hour = ? group by job_id",
        [_py(hour)],
    )
    started = wh.query("select jobs_started from plans.runs where plan_hour = ?", [_py(hour)])
    started_now = set(started.jobs_started[0]) if len(started) else set()
    starts, now = {}, {}
    for r in runs.itertuples():
        p = int((pd.Timestamp(r.first) - pd.Timestamp(hour)) / HOUR)
        if r.job_id in started_now:
            now[r.job_id] = r.site
        elif p >= 1:
            starts[r.job_id] = (r.site, p)
    cur = wh.query(
        "select site, import_mw, jobs_running from plans.dispatch_current where hour = ?",
        [_py(hour)],
    )
    running_now = {j for js in cur.jobs_running for j in (js if js is not None else [])}
    return starts, now, dict(zip(cur.site, cur.import_mw, strict=True)), running_now


def revise_hour(
    wh: Warehouse,
    fleet: Fleet,
    *,
    hour=None,
    kind: str = "lp",
    trigger_events: list[str] | None = None,
    event_received_at=None,
) -> Revision:
    """Re-plan the hour in progress (``hour``; default the newest planned one) with the grid events
    stored now and commit it as a new revision (see the module docstring). ``event_received_at``:
    when the triggering event reached gridflex (the response time is measured from it). Refuses an
    hour that a later hourly plan already built on."""
    from mpc.options import ModelOptions
    from mpc.receding import step
    from mpc.results import energy_cost, throughput_costs

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    tic = time.perf_counter()
    latest = hour_in_progress(wh)
    hour = latest if hour is None else pd.Timestamp(hour)
    if hour != latest:
        raise PlanError(
            f"cannot revise {_h(hour)} UTC: {_h(latest)} UTC is planned already (only the hour in "
            "progress is revised; later hours plan the event themselves)"
        )
    state, inst, used = window_problem(wh, fleet, hour)
    starts, started_now, before, running_now = _commitment(wh, hour)
    jobs = {j.job_id: j for j in inst.jobs}
    # the jobs the hourly plan started (or resumed) in this hour are running now: held like the
    # others (a resume's redo included; its suspension counted, as the hourly plan counted it)
    running, suspended = dict(state.running), dict(state.suspended)
    counts = dict(state.suspensions)
    for jid, site in started_now.items():
        if jid in suspended:
            _, left = suspended.pop(jid)
            running[jid] = (site, left + jobs[jid].lost_h if jid in jobs else left)
            counts[jid] = counts.get(jid, 0) + 1
        elif jid in jobs:
            running[jid] = (site, jobs[jid].duration_h)
    state = dataclasses.replace(state, running=running, suspended=suspended, suspensions=counts)
    opts = ModelOptions()
    if kind == "lp":
        fixed: dict[str, tuple[str, int] | None] = {j: None for j in jobs}
        fixed.update(starts)
        for jid, (site, _) in running.items():
            # what runs in the hour as committed now continues; a job paused by the hourly plan or
            # an earlier revision stays paused (the LP pauses nothing and resumes nothing)
            if jid in running_now:
                fixed[jid] = (site, 0)
            elif jid not in starts:
                fixed[jid] = None
        opts = ModelOptions(fixed_starts=fixed)
    sr = step(
        state,
        inst,
        realised=realised_signals(wh, fleet, hour, hour + HOUR),  # as the hourly plan commits
        time_limit=fleet.planning.time_limit_s,
        mip_gap=fleet.planning.mip_gap,
        options=opts,
        budget=fleet.budget_policy(),
    )
    plan, com = sr.plan, sr.committed
    psi = throughput_costs(fleet.mpc_sites())
    prev = wh.query("select max(revision) n from plans.revisions where hour = ?", [_py(hour)]).n[0]
    n = 1 if prev is None or pd.isna(prev) else int(prev) + 1
    created = pd.Timestamp.now(tz="UTC")
    received = pd.Timestamp(event_received_at) if event_received_at is not None else None
    disp = com.site_hours.rename(columns={"time": "hour"})
    disp = disp.assign(cost=energy_cost(disp, psi), revision=n)
    running_now = (
        com.runs.groupby("site")["job"].apply(lambda s: sorted(s)).to_dict()
        if len(com.runs)
        else {}
    )
    disp["jobs_running"] = [running_now.get(s, []) for s in disp.site]
    routing = com.routing.rename(columns={"time": "hour", "cls": "class"}).assign(revision=n)
    triggers = sorted(set(trigger_events or used.grid_events))
    rev = Revision(
        hour=hour,
        revision=n,
        kind=kind,
        status=plan.status,
        trigger_events=triggers,
        event_received_at=received,
        created_at=created,
        response_s=None,
        solve_s=plan.solve_s,
        total_s=0.0,
        objective=plan.objective,
        jobs_paused=list(sr.paused),
        jobs_resumed=list(sr.resumed),
        import_over_cap_mwh=float(com.totals.get("import_over_cap_mwh", 0.0)),
        problems=list(sr.problems),
        dispatch=disp,
        import_before_mw=before,
    )
    one = (hour, hour + HOUR)

    def row():
        return pd.DataFrame(
            [
                {
                    "hour": hour,
                    "revision": n,
                    "kind": kind,
                    "trigger_events": triggers,
                    "event_received_at": received,
                    "created_at": rev.created_at,
                    "response_s": rev.response_s,
                    "solve_s": rev.solve_s,
                    "total_s": rev.total_s,
                    "status": rev.status,
                    "objective": rev.objective,
                    "jobs_paused": rev.jobs_paused,
                    "jobs_resumed": rev.jobs_resumed,
                    "import_over_cap_mwh": rev.import_over_cap_mwh,
                    "problems": "; ".join(rev.problems) or None,
                }
            ]
        )

    rev.created_at = pd.Timestamp.now(tz="UTC")
    rev.total_s = time.perf_counter() - tic
    if received is not None:
        rev.response_s = (rev.created_at - received).total_seconds()
    state_row = pd.DataFrame(
        [
            {
                "hour": hour + HOUR,
                "revision": n,
                "state": state_to_json(sr.next_state),
                "created_at": rev.created_at,
            }
        ]
    )
    scope = {"revision": n}
    wh.replace_windows(
        [
            Write("plans.revisions", row(), scope=scope, window=one, ts_column="hour"),
            Write("plans.dispatch_revisions", disp, scope=scope, window=one, ts_column="hour"),
            Write(
                "plans.dispatch_routing_revisions",
                routing,
                scope=scope,
                window=one,
                ts_column="hour",
            ),
            # its re-statement on actuals (if any) was of the hourly dispatch: redone next tick
            Write("plans.dispatch_realised", None, window=one, ts_column="hour", mode="delete"),
            Write(
                "plans.dispatch_unserved",
                committed_unserved(com, fleet, revision=n),
                scope=scope,
                window=one,
                ts_column="hour",
            ),
            Write(
                "plans.state_revisions",
                state_row,
                scope=scope,
                window=(hour + HOUR, hour + 2 * HOUR),
                ts_column="hour",
            ),
        ]
    )
    log.info("%s", rev.line())
    return rev


@dataclass
class NewEvents:
    """Events stored since the hour's plan or its latest revision (the revision's trigger)."""

    event_ids: list[str]
    received_at: pd.Timestamp | None


def unrevised_events(wh: Warehouse, fleet: Fleet, hour) -> NewEvents:
    """The fleet's grid events received after the hour's hourly plan and after its newest revision
    (cancellations included: a cancelled event changes the plan too)."""
    hour = pd.Timestamp(hour)
    df = wh.query(
        """with since as (
               select greatest(
                   (select max(created_at) from plans.runs where plan_hour = ?),
                   coalesce((select max(created_at) from plans.revisions where hour = ?),
                            '1970-01-01'::timestamptz)) t)
           select event_id, min(received_at) received_at from staging.grid_events, since
           where site in (select unnest(?::VARCHAR[])) and received_at > since.t
           group by event_id order by event_id""",
        [_py(hour), _py(hour), list(fleet.sites)],
    )
    if df.empty:
        return NewEvents([], None)
    return NewEvents(df.event_id.tolist(), pd.Timestamp(df.received_at.min()))


@dataclass
class VtnVersions:
    """What the VTN holds now (for the sensor): a key over every event's id and modification time."""

    key: str = ""
    count: int = 0
    error: str | None = None


def vtn_versions(fleet: Fleet) -> VtnVersions:
    """One ``GET /events`` (all pages) from the fleet's VTN, nothing stored; errors are returned
    (never raised, never with a secret)."""
    import hashlib

    from pipelines.lib.grid_events import client_for
    from sources.frames import SourceError
    from sources.http import HttpError

    try:
        with client_for(fleet) as client:
            events = client.events()
    except (HttpError, SourceError) as exc:
        return VtnVersions(error=str(exc))
    versions = sorted(
        f"{e.get('id')}@{e.get('modificationDateTime')}" for e in events if isinstance(e, dict)
    )
    return VtnVersions(
        key=hashlib.sha256("|".join(versions).encode()).hexdigest(), count=len(versions)
    )


def revision_metadata(rev: Revision) -> dict:
    """Dagster metadata of a revision, rounded, with units in the names."""
    after = rev.dispatch.set_index("site") if len(rev.dispatch) else pd.DataFrame()
    rows = [
        {
            "site": s,
            "import_before_mw": round(rev.import_before_mw.get(s, float("nan")), 2),
            "import_after_mw": round(float(after.loc[s, "import_mw"]), 2),
            "limit_mw": (
                f"{float(after.loc[s, 'import_cap_mw']):.1f}"
                if "import_cap_mw" in after and pd.notna(after.loc[s, "import_cap_mw"])
                else "-"
            ),
            "stability_first": bool(after.loc[s, "stability"]) if "stability" in after else False,
            "discharge_mw": round(float(after.loc[s, "discharge_mw"]), 2),
        }
        for s in after.index
    ]
    return {
        "hour": str(rev.hour),
        "revision": rev.revision,
        "kind": rev.kind,
        "status": rev.status,
        "trigger_events": ", ".join(rev.trigger_events) or "-",
        "response_s": None if rev.response_s is None else round(rev.response_s, 2),
        "revision_s": round(rev.total_s, 2),
        "solve_s": round(rev.solve_s, 3),
        "jobs_paused": ", ".join(rev.jobs_paused) or "-",
        "jobs_resumed": ", ".join(rev.jobs_resumed) or "-",
        "import_over_limit_mwh": round(rev.import_over_cap_mwh, 2),
        "problems": "; ".join(rev.problems) or "-",
        "import_per_site": pd.DataFrame(rows),
    }


def push_responder(
    wh: Warehouse,
    fleet: Fleet,
    *,
    kinds: tuple[str, ...] = ("lp", "full"),
    echo=None,
):
    """``on_events`` for :class:`sources.openadr_push.PushReceiver`: store what the VTN pushed, then
    revise the hour in progress at once — the LP re-dispatch first (seconds), then the full re-plan
    — each a revision of its own. Returns the callback; the revisions it made are in
    ``callback.revisions``."""
    from pipelines.lib.grid_events import push_handler

    store = push_handler(wh, fleet)
    made: list[Revision] = []

    def on_events(parsed):
        received = pd.Timestamp.now(tz="UTC")
        if getattr(parsed, "received_at", None) is not None:
            received = min(received, pd.Timestamp(parsed.received_at))
        stats = store(parsed)
        ids = sorted(set(parsed.versions["event_id"])) if len(parsed.versions) else []
        if stats.new + stats.modified + stats.cancelled == 0:
            return stats  # a repeat of what is stored: nothing to revise
        for kind in kinds:
            try:
                rev = revise_hour(
                    wh, fleet, kind=kind, trigger_events=ids, event_received_at=received
                )
            except PlanError as exc:
                log.warning("grid event %s: not revised: %s", ", ".join(ids), exc)
                if echo:
                    echo(f"grid event {', '.join(ids)}: not revised: {exc}")
                break
            made.append(rev)
            if echo:
                echo(rev.line())
        return stats

    on_events.revisions = made  # type: ignore[attr-defined]
    return on_events
