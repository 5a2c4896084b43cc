"""Revisions of the hour in progress hold what is in force: an LP re-dispatch after a full re-plan
keeps the jobs the re-plan paused paused (it read the hourly plan's decisions before and restarted
them), and the next hour starts from the revision's state. The demo grid's hourly plans through the
library (pipelines.lib.plan), an emergency stored as the VTN would push it."""

import pandas as pd
import pytest

from mpc.fleet import load_fleet
from pipelines.demo import PLAN_START
from pipelines.lib import grid_response as gr
from pipelines.lib import plan as pl
from pipelines.lib.grid_events import fleet_targets
from pipelines.lib.ingest import ingest_window
from sources.openadr import parse_events
from warehouse import Warehouse
from warehouse.grid_events import store_events

H = pd.Timedelta(hours=1)
T = PLAN_START + 19 * H  # the demo runs two checkpointable batch jobs at sanjose then


@pytest.fixture(scope="module")
def planned(tmp_path_factory):
    wh = Warehouse(tmp_path_factory.mktemp("rev") / "gf.duckdb")
    fleet = load_fleet()
    ingest_window(wh, fleet, PLAN_START - pd.Timedelta(days=3), T + 26 * H)
    for h in range(20):
        pl.plan_hour(wh, fleet, PLAN_START + h * H, fresh_start=(h == 0))
    return wh, fleet


def test_an_lp_revision_after_a_full_one_keeps_the_paused_jobs_paused(planned):
    wh, fleet = planned
    running = wh.query(
        "select jobs_running from plans.dispatch where hour = ? and site = 'sanjose'",
        [T.to_pydatetime()],
    ).jobs_running[0]
    batch = [j for j in running if fleet.jobs.response(j).get("checkpointable")]
    assert batch, running  # the instance this test needs: checkpointable jobs running at sanjose
    sos = {
        "id": "sos-1",
        "objectType": "EVENT",
        "createdDateTime": f"{T:%Y-%m-%dT%H}:10:00Z",
        "modificationDateTime": f"{T:%Y-%m-%dT%H}:10:00Z",
        "programID": "p",
        "eventName": "emergency",
        "targets": [{"type": "RESOURCE_NAME", "values": ["sanjose"]}],
        "payloadDescriptors": [{"payloadType": "ALERT_GRID_EMERGENCY"}],
        "intervalPeriod": {"start": f"{T:%Y-%m-%dT%H}:00:00Z", "duration": "PT1H"},
        "intervals": [
            {"id": i, "payloads": [{"type": "ALERT_GRID_EMERGENCY", "values": ["EEA3"]}]}
            for i in range(2)
        ],
    }
    parsed = parse_events(
        [sos],
        received_at=pd.Timestamp.now(tz="UTC"),
        as_of=T,
        site_of_target=fleet_targets(fleet),
        all_sites=list(fleet.sites),
        via="push",
    )
    assert store_events(wh, parsed).new == 1
    full = gr.revise_hour(wh, fleet, kind="full", trigger_events=["sos-1"])
    assert full.jobs_paused and set(full.jobs_paused) <= set(batch)
    after_full = set(full.dispatch.set_index("site").jobs_running["sanjose"])
    assert not after_full & set(full.jobs_paused)
    lp = gr.revise_hour(wh, fleet, kind="lp", trigger_events=["sos-1"])
    assert set(lp.dispatch.set_index("site").jobs_running["sanjose"]) == after_full
    assert lp.import_before_mw["sanjose"] == pytest.approx(
        float(full.dispatch.set_index("site").import_mw["sanjose"])
    )  # "before" is what was in force: the full revision's, not the hourly dispatch
    state = pl.load_state(wh, fleet, T + H)
    assert set(full.jobs_paused) <= set(state.suspended)
    assert (
        wh.query(
            "select max(revision) r from plans.dispatch_current where hour = ?", [T.to_pydatetime()]
        ).r[0]
        == 2
    )
