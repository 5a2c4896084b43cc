"""Grid events on the real source path: a fleet not named like the demo's, its carbon and weather from
the replay server and its grid events from an OpenADR 3 VTN, both on 127.0.0.1, planned by the
``hourly_tick`` job the schedule runs. A pushed event revises the hour in progress at once (LP then
full re-plan), the next tick plans with it, the ``grid_response`` job (what the sensor launches)
polls and revises when nothing is pushed, a cancellation lifts the limit, and an event the fleet
cannot meet is met as far as it can be and said."""

from __future__ import annotations

import json
import shutil

import dagster as dg
import pandas as pd
import pytest

from mpc.fleet import load_fleet
from pipelines.defs.grid.sensors import grid_event_sensor
from pipelines.defs.resources import FleetResource, WarehouseResource
from pipelines.lib import grid_response as gr
from pipelines.lib.grid_events import fleet_targets
from pipelines.runner import Runner
from sources.openadr_push import PushReceiver
from sources.replay import Faults, ReplayData, ReplayServer
from sources.vtn import VtnServer
from tests.pipelines import realsource as rs
from warehouse import Warehouse

HOUR = pd.Timedelta(hours=1)
T0 = rs.START + pd.Timedelta(days=8)
VTN_TOKEN = "vtn-static-TOKEN-not-demo-77aa"
PUSH_TOKEN = "push-TOKEN-not-demo-5544ee"
SITE = "hamburg"


def at(t):
    return t + pd.Timedelta(minutes=5)


def event(program_id, payload, start, hours, value, units=None, site=SITE, name="ev"):
    desc = {"payloadType": payload, **({"units": units} if units else {})}
    return {
        "programID": program_id,
        "eventName": name,
        "targets": [{"type": "RESOURCE_NAME", "values": [site]}],
        "payloadDescriptors": [desc],
        "intervalPeriod": {"start": f"{start:%Y-%m-%dT%H:%M:%SZ}", "duration": "PT1H"},
        "intervals": [
            {"id": i, "payloads": [{"type": payload, "values": [value]}]} for i in range(hours)
        ],
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Replay server + VTN + push receiver (its callback bound per test), and a fleet live for two
    hours (T0, T0+1): the warehouse each test copies."""
    rec = rs.recordings()
    data = ReplayData(carbon=rec["carbon"], weather=rec["weather"], moer=rec["moer"])
    mp = pytest.MonkeyPatch()
    path = tmp_path_factory.mktemp("grid")
    holder: dict = {"clock": T0 + HOUR}
    with ReplayServer(data, clock=at(T0)) as srv:
        for k, v in srv.env().items():
            mp.setenv(k, v)
        mp.setenv("GRIDFLEX_OPENADR_TOKEN", VTN_TOKEN)
        mp.setenv("GRIDFLEX_OPENADR_PUSH_TOKEN", PUSH_TOKEN)
        vtn = VtnServer(tokens=[VTN_TOKEN]).start()
        fleet_path = rs.fleet_toml(path / "fleet.toml")
        probe = load_fleet(fleet_path)
        receiver = PushReceiver(
            lambda parsed: holder["respond"](parsed),
            bearer_token=PUSH_TOKEN,
            site_of_target=fleet_targets(probe),
            all_sites=list(probe.sites),
            as_of_clock=lambda: holder["clock"],
        ).start()
        text = fleet_path.read_text().replace(
            "[classes.search]\n", '[classes.search]\npriority = "flexible"\n'
        )
        text += (
            f'\n[grid_events]\nsource = "openadr3"\nvtn_url = "{vtn.url}"\n'
            f'push_callback_url = "{receiver.callback_url}"\npayment_usd_per_mwh = 150.0\n'
            '\n[[jobs.rules]]\nmatch = "*"\npriority = "batch"\ncheckpointable = true\n'
        )
        fleet_path.write_text(text)
        program = vtn.add_program({"programName": "flex"})
        r = Runner(
            db=path / "gf.duckdb",
            fleet_path=str(fleet_path),
            models_dir=path / "models",
            profile="tiny",
            instance=dg.DagsterInstance.ephemeral(),
        )
        r.ingest(T0 - pd.Timedelta(days=7), T0 - HOUR)
        for h in range(2):
            srv.set_clock(at(T0 + h * HOUR))
            r.tick(T0 + h * HOUR, fresh_start=(h == 0))
        yield {
            "srv": srv,
            "vtn": vtn,
            "receiver": receiver,
            "holder": holder,
            "path": path,
            "fleet": fleet_path,
            "program": program,
        }
        receiver.stop()
        vtn.close()
    mp.undo()


@pytest.fixture
def live(world, tmp_path, monkeypatch):
    """A copy of the live warehouse, the push receiver revising it, the VTN emptied."""
    for k, v in world["srv"].env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("GRIDFLEX_OPENADR_TOKEN", VTN_TOKEN)
    monkeypatch.setenv("GRIDFLEX_OPENADR_PUSH_TOKEN", PUSH_TOKEN)
    world["srv"].set_clock(at(T0 + HOUR))
    world["srv"].set_faults(Faults())
    vtn, rec = world["vtn"], world["receiver"]
    for ev in vtn.events:  # the previous test's events go, handled against its own warehouse
        vtn.cancel(ev["id"])
    vtn.wait_notifications(len(vtn.notifications), timeout=10)
    rec.wait_handled(
        sum(r.status == 200 and r.object_type == "EVENT" for r in rec.received), timeout=30
    )
    shutil.copy(world["path"] / "gf.duckdb", tmp_path / "gf.duckdb")
    wh = Warehouse(tmp_path / "gf.duckdb")
    fleet = load_fleet(world["fleet"])
    respond = gr.push_responder(wh, fleet)
    world["holder"]["respond"] = respond
    world["holder"]["clock"] = T0 + HOUR
    r = Runner(
        db=tmp_path / "gf.duckdb",
        fleet_path=str(world["fleet"]),
        models_dir=world["path"] / "models",
        profile="tiny",
        instance=dg.DagsterInstance.ephemeral(),
    )
    return {**world, "wh": wh, "fleet_cfg": fleet, "respond": respond, "runner": r, "tmp": tmp_path}


def publish_and_wait(live, ev) -> dict:
    rec = live["receiver"]
    n = rec.handled
    out = live["vtn"].publish(ev)
    assert rec.wait_handled(n + 1, timeout=30) >= n + 1
    assert not rec.errors, rec.errors
    return out


def tick(live, t):
    live["srv"].set_clock(at(t))
    live["holder"]["clock"] = t
    return live["runner"].tick(t)


def planned_import(wh, plan_hour, site=SITE) -> pd.DataFrame:
    return wh.query(
        "select target_time, import_mw, import_cap_mw, stability from plans.site_hours "
        "where plan_hour = ? and site = ? order by target_time",
        [plan_hour.to_pydatetime(), site],
    )


def test_a_pushed_cap_revises_the_hour_at_once_and_the_next_tick_plans_under_it(live):
    wh = live["wh"]
    # 50 % of what the plan in force expects at the site over T0+2 .. T0+5
    before = planned_import(wh, T0 + HOUR)
    window = before[(before.target_time >= T0 + 2 * HOUR) & (before.target_time < T0 + 6 * HOUR)]
    cap = round(0.5 * float(window.import_mw.max()), 1)
    assert cap > 0
    ev = publish_and_wait(
        live,
        event(
            live["program"]["id"],
            "IMPORT_CAPACITY_LIMIT",
            T0 + 2 * HOUR,
            4,
            cap * 1000,
            "KW",
            name="evening cap",
        ),
    )
    revs = wh.query("select * from plans.revisions order by revision")
    assert revs.kind.tolist() == ["lp", "full"]  # the fast path first, then the full re-plan
    assert (revs.hour == T0 + HOUR).all() and all(ev["id"] in t for t in revs.trigger_events)
    assert revs.response_s.notna().all() and (revs.status.isin(["optimal", "feasible"])).all()
    # the revised plan's state is what the next hour starts from; the hourly plan is kept
    assert (
        wh.query(
            "select count(*) n from plans.runs where plan_hour = ?", [(T0 + HOUR).to_pydatetime()]
        ).n[0]
        == 1
    )
    assert (
        wh.query(
            "select max(revision) r from plans.dispatch_current where hour = ?",
            [(T0 + HOUR).to_pydatetime()],
        ).r[0]
        == 2
    )
    tick(live, T0 + 2 * HOUR)
    run = wh.query(
        "select grid_events, degraded, degraded_reason from plans.runs where plan_hour = ?",
        [(T0 + 2 * HOUR).to_pydatetime()],
    ).iloc[0]
    assert ev["id"] in list(run.grid_events)
    sh = planned_import(wh, T0 + 2 * HOUR)
    capped = sh[sh.import_cap_mw.notna()]
    assert len(capped) == 4 and capped.import_cap_mw.tolist() == pytest.approx([cap] * 4, abs=0.01)
    over = (capped.import_mw - capped.import_cap_mw).clip(lower=0)
    if (over > 1e-6).any():  # only when the load that may not be shed is above it, and said
        assert run.degraded and "grid import limit not met" in run.degraded_reason
    disp = wh.query(
        "select import_mw, import_cap_mw from plans.dispatch_current where hour = ? and site = ?",
        [(T0 + 2 * HOUR).to_pydatetime(), SITE],
    ).iloc[0]
    assert disp.import_cap_mw == pytest.approx(cap, abs=0.01)
    assert disp.import_mw <= cap + 1e-6 or run.degraded
    d = wh.query("select * from marts.grid_event_delivery where event_id = ?", [ev["id"]]).iloc[0]
    assert d.site == SITE and d.import_limit_mw == pytest.approx(cap, abs=0.01)
    assert d.hours_committed == 1 and d.critical_served_pct == pytest.approx(100.0)
    assert d.lp_response_s is not None and d.full_response_s is not None
    assert d.revenue_usd == pytest.approx(max(d.energy_reduced_mwh, 0) * 150.0)
    # the plan's audit record holds the grid events it read: verify passes, then fails on an edit
    from warehouse import audit

    rec = wh.query(
        "select inputs from plans.audit where plan_hour = ?", [(T0 + 2 * HOUR).to_pydatetime()]
    )
    grid = [i for i in json.loads(rec.inputs[0]) if i["input"] == "grid_events"]
    assert {i["name"] for i in grid} == {f"grid events {s}" for s in live["fleet_cfg"].sites}
    assert next(i for i in grid if i["name"] == f"grid events {SITE}")["rows"] == 4
    rep = audit.verify(wh)
    assert rep.ok, "\n".join(map(str, rep.failures))
    with wh.writer() as con:
        con.execute(
            "update staging.grid_events set value = value * 2 where event_id = ?", [ev["id"]]
        )
    rep = audit.verify(wh)
    assert not rep.ok and rep.first_failure.hour == T0 + 2 * HOUR
    assert f"grid events {SITE}" in rep.first_failure.message
    assert "unrecorded alteration" in rep.first_failure.message


def test_an_emergency_alert_switches_the_hour_in_progress_to_stability_first(live):
    wh = live["wh"]
    before = (
        wh.query(
            "select site, import_mw from plans.dispatch where hour = ?",
            [(T0 + HOUR).to_pydatetime()],
        )
        .set_index("site")
        .import_mw
    )
    publish_and_wait(
        live,
        event(
            live["program"]["id"], "ALERT_GRID_EMERGENCY", T0 + HOUR, 2, "EEA2", name="emergency"
        ),
    )
    after = wh.query(
        "select site, import_mw, stability, revision from plans.dispatch_current where hour = ?",
        [(T0 + HOUR).to_pydatetime()],
    ).set_index("site")
    assert after.loc[SITE, "stability"] and after.loc[SITE, "revision"] == 2
    assert not after.drop(SITE).stability.fillna(False).any()
    assert after.loc[SITE, "import_mw"] <= before[SITE] + 1e-6  # never more import in a stress hour
    # the hourly plan is kept as it was made (the revision is a record of its own)
    hourly = wh.query(
        "select stability from plans.dispatch where hour = ? and site = ?",
        [(T0 + HOUR).to_pydatetime(), SITE],
    ).stability[0]
    assert hourly is None or pd.isna(hourly) or not hourly
    tick(live, T0 + 2 * HOUR)
    sh = planned_import(live["wh"], T0 + 2 * HOUR)
    assert sh.stability.tolist()[:2] == [True, False]  # 2 h from T0+1: T0+1 and T0+2


def test_a_cancelled_event_lifts_the_limit_and_nothing_received_is_lost(live):
    wh = live["wh"]
    ev = publish_and_wait(
        live, event(live["program"]["id"], "IMPORT_CAPACITY_LIMIT", T0 + 2 * HOUR, 3, 5000, "KW")
    )
    raw_before = wh.query("select count(*) n from raw.openadr_events").n[0]
    rec = live["receiver"]
    n = rec.handled
    live["vtn"].cancel(ev["id"])
    rec.wait_handled(n + 1, timeout=30)
    rows = wh.query(
        "select cancelled, cancel_reason from staging.grid_events where event_id = ?", [ev["id"]]
    )
    assert len(rows) == 3 and rows.cancelled.all() and set(rows.cancel_reason) == {"deleted"}
    assert wh.query("select count(*) n from raw.openadr_events").n[0] > raw_before
    tick(live, T0 + 2 * HOUR)
    sh = planned_import(wh, T0 + 2 * HOUR)
    assert sh.import_cap_mw.isna().all()
    run = wh.query(
        "select grid_events from plans.runs where plan_hour = ?", [(T0 + 2 * HOUR).to_pydatetime()]
    ).iloc[0]
    assert ev["id"] not in (list(run.grid_events) if run.grid_events is not None else [])


def test_without_push_the_sensor_launches_grid_response_which_polls_and_revises(live):
    wh, rec = live["wh"], live["receiver"]
    resources = {
        "warehouse": WarehouseResource(path=str(live["tmp"] / "gf.duckdb")),
        "fleet": FleetResource(path=str(live["fleet"])),
    }
    ctx = dg.build_sensor_context(cursor=None, resources=resources)
    first = grid_event_sensor(ctx)
    assert isinstance(first, dg.RunRequest)  # the VTN's state is new to this cursor
    cursor = ctx.cursor
    ctx2 = dg.build_sensor_context(cursor=cursor, resources=resources)
    assert isinstance(grid_event_sensor(ctx2), dg.SkipReason)  # nothing new: no run
    rec.stop()  # the push endpoint down: the VTN's notification fails, polling still works
    try:
        ev = live["vtn"].publish(
            event(live["program"]["id"], "PRICE", T0 + HOUR, 3, 0.9, "KWH", name="price spike")
            | {"payloadDescriptors": [{"payloadType": "PRICE", "units": "KWH", "currency": "USD"}]}
        )
        ctx3 = dg.build_sensor_context(cursor=cursor, resources=resources)
        req = grid_event_sensor(ctx3)
        assert isinstance(req, dg.RunRequest) and req.partition_key == "2026-03-10-01:00"
        assert wh.query("select count(*) n from plans.revisions").n[0] == 0
        result = live["runner"].respond(T0 + HOUR)
    finally:
        rec.start()
    rev = wh.query("select * from plans.revisions").iloc[0]
    assert rev.kind == "full" and ev["id"] in list(rev.trigger_events)
    (m,) = result.asset_materializations_for_node("dispatch_revision")
    md = {k: getattr(v, "value", v) for k, v in m.metadata.items()}
    assert md["revision"] == 1 and ev["id"] in md["trigger_events"]
    text = repr(md) + repr(wh.query("select * from plans.revisions").to_dict("records"))
    assert VTN_TOKEN not in text and PUSH_TOKEN not in text
    # the price payload ($0.9/kWh = 900 $/MWh) replaced the forecast price of its hours
    price = wh.query(
        "select price_import from plans.dispatch_revisions where site = ?", [SITE]
    ).price_import[0]
    assert price == pytest.approx(900.0)
    # run again: nothing new since this revision -> no second revision
    live["runner"].respond(T0 + HOUR)
    assert wh.query("select count(*) n from plans.revisions").n[0] == 1


def test_a_cap_below_what_may_not_be_shed_is_met_as_far_as_possible_and_said(live):
    wh = live["wh"]
    publish_and_wait(
        live, event(live["program"]["id"], "IMPORT_CAPACITY_LIMIT", T0 + 2 * HOUR, 2, 500, "KW")
    )  # 0.5 MW under a 12 MW base load
    tick(live, T0 + 2 * HOUR)  # the hour is planned, not failed
    run = wh.query(
        "select status, degraded, degraded_reason, import_over_cap_mwh from plans.runs "
        "where plan_hour = ?",
        [(T0 + 2 * HOUR).to_pydatetime()],
    ).iloc[0]
    assert run.status in ("optimal", "feasible")
    assert run.degraded and "grid import limit not met" in run.degraded_reason
    assert SITE in run.degraded_reason and run.import_over_cap_mwh > 0
    d = wh.query(
        "select hours_over_limit, max_over_limit_mw, critical_served_pct from "
        "marts.grid_event_delivery"
    ).iloc[0]
    assert d.hours_over_limit == 1 and d.max_over_limit_mw > 0
    assert d.critical_served_pct == pytest.approx(100.0)  # critical inference kept first


def test_only_the_hour_in_progress_is_revised(live):
    fleet = live["fleet_cfg"]
    with pytest.raises(gr.PlanError, match="only the hour in progress is revised"):
        gr.revise_hour(live["wh"], fleet, hour=T0)
