"""The grid-stress scenario (``gridflex bench grid-event``, ``gridflex demo --grid-stress``): the demo
fleet over the demo's day, planned twice from the same bootstrapped warehouse and models — once
without grid events, once with a grid operator's VTN on 127.0.0.1 publishing, in the course of the
day:

1. an **evening import cap** at one site: 50 % of the import the plan in force expects there, for
   4 hours, published 2 hours ahead; gridflex receives it by push (an OpenADR 3 subscription served
   by :class:`sources.openadr_push.PushReceiver`) and revises the hour in progress at once;
2. a **grid emergency alert** at the same site, for 2 hours from the hour it is published in (push
   again: the hour in progress is re-planned stability-first within seconds);
3. a **modification** extending the cap by one hour while the push receiver is down: the VTN's
   notification fails, and the ``grid_response`` job (what the grid-event sensor launches) polls
   the VTN and revises the hour — the Dagster path.

Every tick is the ``hourly_tick`` job the schedule runs (its ``grid_events`` asset polls the VTN
too). The report compares the two runs hour by hour at the stressed site (import against the limit),
the critical inference served, the flexible and batch work moved or paused and whether every job
still finished by its deadline, emissions and cost, and the response times (event received →
revised dispatch stored; and from the VTN's publication). Plain library (no CLI); the
runs are Dagster's (:class:`pipelines.runner.Runner`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import pandas as pd

HOUR = pd.Timedelta(hours=1)
PUSH_TOKEN = "gridflex-scenario-push-token"  # a local test VTN's; never a real secret
VTN_TOKEN = "gridflex-scenario-vtn-token"


@dataclass
class Scenario:
    """When and what the operator sends (hours are UTC hours of the demo's planned day; the
    defaults put the cap on the fleet's largest site in the hours it runs the most training)."""

    hours: int = 38  # ticks from the first planned hour: past the deadlines of the jobs hit
    first_h: int = 0  # the first planned hour, from the demo's (a shorter run for tests)
    site: str = "sanjose"
    cap_fraction: float = 0.5  # of the site's highest planned import in the cap window
    cap_start_h: int = 18
    cap_hours: int = 4
    notice_h: int = 1  # the cap is published this long before it starts
    alert_h: int = 19  # a grid emergency from this hour (published in it, no notice)
    alert_hours: int = 2
    extend_h: int | None = (
        21  # the cap is extended by one hour in this hour (None: no modification)
    )


@dataclass
class ScenarioReport:
    site: str
    cap_mw: float
    hourly: pd.DataFrame
    summary: dict
    responses: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def _event(program_id, name, site, start, hours, payload, value, units=None):
    desc = {"payloadType": payload}
    if units:
        desc["units"] = units
    return {
        "programID": program_id,
        "eventName": name,
        "priority": 0,
        "targets": [{"type": "RESOURCE_NAME", "values": [site]}],
        "payloadDescriptors": [desc],
        "intervalPeriod": {
            "start": f"{pd.Timestamp(start):%Y-%m-%dT%H:%M:%SZ}",
            "duration": "PT1H",
        },
        "intervals": [
            {"id": i, "payloads": [{"type": payload, "values": [value]}]} for i in range(hours)
        ],
    }


@contextlib.contextmanager
def _env(**values):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _fleet_text(vtn_url: str | None = None, callback: str | None = None) -> str:
    text = (resources.files("mpc") / "fleets" / "demo.toml").read_text(encoding="utf-8")
    if vtn_url:
        text += (
            "\n[grid_events]\n"
            'source = "openadr3"\n'
            f'vtn_url = "{vtn_url}"\n'
            'ven_name = "gridflex-scenario"\n'
            + (f'push_callback_url = "{callback}"\n' if callback else "")
        )
    return text


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _committed(wh, first, last) -> pd.DataFrame:
    return wh.query(
        "select hour, site, import_mw, import_cap_mw, stability, training_mw, inference_mw, "
        "discharge_mw, emissions_t, cost, revision from plans.dispatch_current "
        "where hour >= ? and hour <= ? order by hour, site",
        [pd.Timestamp(first).to_pydatetime(), pd.Timestamp(last).to_pydatetime()],
    )


def run_scenario(
    workdir: Path,
    *,
    scenario: Scenario | None = None,
    profile: str = "tiny",
    echo: Callable[[str], None] = print,
) -> ScenarioReport:
    """Run the scenario (see the module docstring) in ``workdir`` (two warehouses, the models, the
    fleet files) and report it."""
    from pipelines.demo import PLAN_START, plan_line
    from pipelines.lib import grid_response as gr
    from pipelines.lib.demo_source import DEMO_EPOCH
    from pipelines.lib.grid_events import fleet_targets
    from pipelines.runner import Runner
    from sources.openadr_push import PushReceiver
    from sources.vtn import VtnServer
    from warehouse import Warehouse

    sc = scenario or Scenario()
    workdir = Path(workdir)
    day = PLAN_START.floor("D")
    first = PLAN_START + sc.first_h * HOUR
    last = first + (sc.hours - 1) * HOUR
    cap_start = day + sc.cap_start_h * HOUR
    publish_cap_at = cap_start - sc.notice_h * HOUR
    alert_start = day + sc.alert_h * HOUR
    extend_at = day + sc.extend_h * HOUR if sc.extend_h is not None else None
    base_db, calm_db, stress_db = (
        workdir / n for n in ("base.duckdb", "calm.duckdb", "stress.duckdb")
    )
    for p in (base_db, calm_db, stress_db):
        p.unlink(missing_ok=True)
    models = workdir / "models"
    calm_fleet = _write(workdir / "calm.toml", _fleet_text())

    echo(f"[1/4] bootstrap and train on the demo grid before {first:%Y-%m-%d %H:%M} UTC")

    def runner(db: Path, fleet: Path) -> Runner:  # one models folder, trained once, for all three
        return Runner(
            db=db, fleet_path=str(fleet), models_dir=models, profile=profile, echo=lambda s: None
        )

    base = runner(base_db, calm_fleet)
    base.ingest(DEMO_EPOCH, first - HOUR)
    base.train(first)
    shutil.copy(base_db, calm_db)
    shutil.copy(base_db, stress_db)

    echo(f"[2/4] {sc.hours} hourly ticks without grid events (the reference)")
    calm = runner(calm_db, calm_fleet)
    t = time.perf_counter()
    calm.tick(first, last, tags={"gridflex/scenario": "without-events"})
    calm_s = time.perf_counter() - t

    echo(f"[3/4] the same {sc.hours} ticks with a VTN on 127.0.0.1 sending events")
    wh = Warehouse(stress_db)
    clock = {"now": first}
    vtn = VtnServer(tokens=[VTN_TOKEN]).start()
    responses: list[dict] = []
    with _env(GRIDFLEX_OPENADR_TOKEN=VTN_TOKEN, GRIDFLEX_OPENADR_PUSH_TOKEN=PUSH_TOKEN):
        # the receiver first (its URL goes into the fleet file), its callback bound to the fleet
        holder: dict = {}

        def on_events(parsed):
            return holder["respond"](parsed)

        from mpc.fleet import load_fleet

        probe = load_fleet(str(calm_fleet))
        receiver = PushReceiver(
            on_events,
            bearer_token=PUSH_TOKEN,
            site_of_target=fleet_targets(probe),
            all_sites=list(probe.sites),
            ven_name="gridflex-scenario",
            as_of_clock=lambda: clock["now"],
        ).start()
        stress_fleet = workdir / "stress.toml"
        stress_fleet.write_text(_fleet_text(vtn.url, receiver.callback_url), encoding="utf-8")
        fleet = load_fleet(str(stress_fleet))
        respond = gr.push_responder(wh, fleet, echo=lambda s: echo("      " + s))
        holder["respond"] = respond
        program = vtn.add_program({"programName": "evening-flex"})
        stress = runner(stress_db, stress_fleet)
        site, cap = sc.site, None
        runs_sql = (
            "select plan_hour, status, objective, mip_gap, solve_s, degraded, jobs_started, "
            "jobs_missed, window_budget_t, budget_planned_t, budget_over_t, degraded_reason "
            "from plans.runs where plan_hour = ?"
        )
        cap_event = None
        t = time.perf_counter()
        for h in pd.date_range(first, last, freq="h"):
            clock["now"] = h
            stress.tick(h, tags={"gridflex/scenario": "with-events"})
            for row in wh.query(runs_sql, [h.to_pydatetime()]).itertuples():
                line = plan_line(row)
                ev = wh.query(
                    "select grid_events, jobs_paused, jobs_resumed from plans.runs where plan_hour = ?",
                    [h.to_pydatetime()],
                ).iloc[0]
                extra = ""
                if ev.grid_events is not None and len(ev.grid_events):
                    extra += f"  grid events: {', '.join(ev.grid_events)}"
                if ev.jobs_paused is not None and len(ev.jobs_paused):
                    extra += f"  PAUSED: {', '.join(ev.jobs_paused)}"
                if ev.jobs_resumed is not None and len(ev.jobs_resumed):
                    extra += f"  resumed: {', '.join(ev.jobs_resumed)}"
                echo("      " + line + extra)
            n_handled = receiver.handled
            if h == publish_cap_at:
                plan = wh.query(
                    "select site, max(import_mw) peak from plans.site_hours where plan_hour = ? "
                    "and target_time >= ? and target_time < ? group by site order by peak desc",
                    [
                        h.to_pydatetime(),
                        cap_start.to_pydatetime(),
                        (cap_start + sc.cap_hours * HOUR).to_pydatetime(),
                    ],
                )
                peak = float(plan.set_index("site").peak[site])
                cap = round(sc.cap_fraction * peak, 1)
                echo(
                    f"      VTN publishes an import cap at {site}: {cap:.1f} MW ({sc.cap_fraction:.0%} "
                    f"of the {peak:.1f} MW planned) {cap_start:%H:%M}..{cap_start + sc.cap_hours * HOUR:%H:%M}"
                )
                published = time.time()
                cap_event = vtn.publish(
                    _event(
                        program["id"],
                        "evening import cap",
                        site,
                        cap_start,
                        sc.cap_hours,
                        "IMPORT_CAPACITY_LIMIT",
                        cap * 1000.0,
                        "KW",
                    )
                )
                receiver.wait_handled(n_handled + 1, timeout=60)
                responses += _responses(respond.revisions, "cap (push)", published)
            if h == alert_start and site is not None:
                echo(
                    f"      VTN publishes a grid emergency at {site} {h:%H:%M}..{h + sc.alert_hours * HOUR:%H:%M}"
                )
                published = time.time()
                vtn.publish(
                    _event(
                        program["id"],
                        "grid emergency",
                        site,
                        h,
                        sc.alert_hours,
                        "ALERT_GRID_EMERGENCY",
                        "EEA2: conserve",
                    )
                )
                receiver.wait_handled(n_handled + 1, timeout=60)
                responses += _responses(respond.revisions, "emergency (push)", published)
            if extend_at is not None and h == extend_at and cap_event is not None:
                echo(
                    "      push receiver down; VTN extends the cap by 1 h; the grid_response job "
                    "(what the sensor launches) polls and revises"
                )
                receiver.stop()
                published = time.time()
                vtn.modify(
                    cap_event["id"],
                    {
                        "intervals": [
                            {
                                "id": i,
                                "payloads": [
                                    {"type": "IMPORT_CAPACITY_LIMIT", "values": [cap * 1000.0]}
                                ],
                            }
                            for i in range(sc.cap_hours + 1)
                        ]
                    },
                )
                t0 = time.perf_counter()
                stress.respond(h, tags={"gridflex/scenario": "with-events"})
                job_s = time.perf_counter() - t0
                v = wh.query(
                    "select * from plans.revisions where hour = ? order by revision desc limit 1",
                    [h.to_pydatetime()],
                )
                if len(v):
                    r = v.iloc[0]
                    responses.append(
                        {
                            "event": "cap extended (Dagster grid_response job, poll)",
                            "kind": r.kind,
                            "revision": int(r.revision),
                            "received_to_stored_s": r.response_s,
                            "published_to_stored_s": pd.Timestamp(r.created_at).timestamp()
                            - published,
                            "revision_s": r.total_s,
                            "job_run_s": job_s,
                        }
                    )
                receiver.start()
        stress_s = time.perf_counter() - t
    vtn.close()
    receiver.stop()

    echo("[4/4] compare")
    calm.marts(tags={"gridflex/scenario": "without-events"})
    stress.marts(tags={"gridflex/scenario": "with-events"})  # the latest marts record: with them
    report = compare(wh, Warehouse(calm_db), site, cap, first, last, pd.DataFrame(responses))
    report.summary.update({"calm_ticks_s": round(calm_s, 1), "stress_ticks_s": round(stress_s, 1)})
    return report


def _responses(revisions, what: str, published: float) -> list[dict]:
    out = []
    for r in revisions:
        if getattr(r, "_reported", False):
            continue
        r._reported = True
        out.append(
            {
                "event": what,
                "kind": r.kind,
                "revision": r.revision,
                "received_to_stored_s": r.response_s,
                "published_to_stored_s": r.created_at.timestamp() - published,
                "revision_s": r.total_s,
                "job_run_s": None,
            }
        )
    return out


def _ids(v) -> list[str]:
    return [] if v is None else [str(x) for x in v]


def compare(wh, calm_wh, site, cap, first, last, responses: pd.DataFrame) -> ScenarioReport:
    """The scenario's tables from the two warehouses."""
    s = _committed(wh, first, last)
    c = _committed(calm_wh, first, last)
    at = s[s.site == site].set_index("hour")
    ref = c[c.site == site].set_index("hour")
    limited = at[at.import_cap_mw.notna() | at.stability.fillna(False).astype(bool)]
    hourly = pd.DataFrame(
        {
            "hour": limited.index.strftime("%m-%d %H:%M"),
            "limit_mw": limited.import_cap_mw.round(1).to_numpy(),
            "stability_first": limited.stability.fillna(False).astype(bool).to_numpy(),
            "import_mw": limited.import_mw.round(2).to_numpy(),
            "import_without_event_mw": ref.reindex(limited.index).import_mw.round(2).to_numpy(),
            "battery_discharge_mw": limited.discharge_mw.round(1).to_numpy(),
            "training_mw": limited.training_mw.round(1).to_numpy(),
            "training_without_event_mw": ref.reindex(limited.index).training_mw.round(1).to_numpy(),
            "inference_mw": limited.inference_mw.round(2).to_numpy(),
            "inference_without_event_mw": ref.reindex(limited.index)
            .inference_mw.round(2)
            .to_numpy(),
            "revision": limited.revision.to_numpy(),
        }
    )
    over = (limited.import_mw - limited.import_cap_mw).clip(lower=0).fillna(0)
    dl = wh.query("select * from marts.grid_event_delivery order by first_hour")
    crit = wh.query(
        "select sum(critical_served_requests) s, sum(critical_unserved_requests) u from "
        "(select distinct hour, critical_served_requests, critical_unserved_requests from "
        "marts.grid_event_hours)"
    ).iloc[0]

    def jobs(w):
        r = w.query(
            "select list_distinct(flatten(list(coalesce(jobs_missed, [])))) missed, "
            "list_distinct(flatten(list(coalesce(jobs_paused, [])))) paused, "
            "list_distinct(flatten(list(coalesce(jobs_resumed, [])))) resumed from plans.runs "
            "where plan_hour >= ? and plan_hour <= ?",
            [pd.Timestamp(first).to_pydatetime(), pd.Timestamp(last).to_pydatetime()],
        ).iloc[0]
        done = w.query(
            "select count(distinct j) n from (select unnest(jobs_completed) j from plans.dispatch "
            "where hour >= ? and hour <= ?)",
            [pd.Timestamp(first).to_pydatetime(), pd.Timestamp(last).to_pydatetime()],
        ).n[0]
        return _ids(r.missed), _ids(r.paused), _ids(r.resumed), int(done)

    s_missed, s_paused, s_resumed, s_done = jobs(wh)
    c_missed, _, _, c_done = jobs(calm_wh)
    rev_paused = wh.query(
        "select list_distinct(flatten(list(coalesce(jobs_paused, [])))) p from plans.revisions"
    ).p[0]
    paused = sorted(set(s_paused) | set(_ids(rev_paused)))
    finished = wh.query(
        "select j, min(hour) done_at from (select hour, unnest(jobs_completed) j from "
        "plans.dispatch) group by j"
    )
    finished = dict(zip(finished.j, finished.done_at, strict=True))
    deadlines = wh.query("select job_id, max(deadline) d from staging.jobs group by job_id")
    deadlines = dict(zip(deadlines.job_id, deadlines.d, strict=True))
    em, ce = float(s.emissions_t.sum()), float(c.emissions_t.sum())
    cost, cc = float(s.cost.sum()), float(c.cost.sum())
    summary = {
        "site": site,
        "import_limit_mw": cap,
        "limited_hours": int(limited.import_cap_mw.notna().sum()),
        "stability_first_hours": int(limited.stability.fillna(False).astype(bool).sum()),
        "hours_over_limit": int((over > 1e-6).sum()),
        "max_over_limit_mw": round(float(over.max()) if len(over) else 0.0, 2),
        "critical_served_pct": round(100 * float(crit.s) / max(float(crit.s + crit.u), 1e-9), 2)
        if crit.s is not None and not pd.isna(crit.s)
        else None,
        "energy_reduced_vs_plan_in_force_mwh": round(float(dl.energy_reduced_mwh.sum()), 1)
        if len(dl)
        else None,
        "import_reduced_vs_no_event_mwh": round(
            float((ref.reindex(limited.index).import_mw - limited.import_mw).sum()), 1
        ),
        "training_moved_mwh": round(
            float((ref.reindex(limited.index).training_mw - limited.training_mw).sum()), 1
        ),
        "inference_moved_mwh": round(
            float((ref.reindex(limited.index).inference_mw - limited.inference_mw).sum()), 2
        ),
        "jobs_paused": paused,
        "jobs_resumed": sorted(set(s_resumed)),
        "paused_jobs_finished": {
            j: (
                f"{pd.Timestamp(finished[j]):%m-%d %H:%M}, deadline {pd.Timestamp(deadlines[j]):%m-%d %H:%M}"
                if j in finished
                else "not finished within the run"
            )
            for j in paused
        },
        "jobs_completed": s_done,
        "jobs_completed_without_event": c_done,
        "jobs_missed": s_missed,
        "jobs_missed_without_event": c_missed,
        "emissions_t": round(em, 1),
        "emissions_without_event_t": round(ce, 1),
        "emissions_change_pct": round(100 * (em / ce - 1), 2) if ce else None,
        "cost_usd": round(cost),
        "cost_without_event_usd": round(cc),
        "cost_change_pct": round(100 * (cost / cc - 1), 2) if cc else None,
    }
    if len(responses):
        summary["response_s_max_lp"] = round(
            float(responses[responses.kind == "lp"].received_to_stored_s.max()), 2
        )
        summary["response_s_max_full"] = round(
            float(responses[responses.kind == "full"].received_to_stored_s.max()), 2
        )
    return ScenarioReport(
        site=site,
        cap_mw=cap,
        hourly=hourly,
        summary=summary,
        responses=responses.round(3) if len(responses) else responses,
    )
