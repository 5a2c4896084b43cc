"""The ``grid_events`` ingest asset materialized through Dagster against the test VTN on
127.0.0.1, for a fleet whose sites are not named like the demo's: rows and metadata; a VTN that is
down, refuses the credentials or fails does not fail the hour and loses nothing; no secret reaches
Dagster's storage or the warehouse. And the push path into the warehouse."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from mpc.fleet import load_fleet
from pipelines.defs.ingest.assets import grid_events
from pipelines.defs.resources import FleetResource, WarehouseResource
from pipelines.lib.grid_events import fleet_targets, ingest_grid_events, push_handler
from sources.openadr_push import PushReceiver
from sources.vtn import VtnServer
from tests.pipelines.realsource import fleet_toml
from warehouse import Warehouse

CLIENT_ID = "ven-client-not-demo-42"
CLIENT_SECRET = "vtn-client-SECRET-value-9f8e7d"
PUSH_TOKEN = "push-TOKEN-for-the-vtn-1234abcd"
SECRETS = (CLIENT_ID, CLIENT_SECRET, PUSH_TOKEN)
HOUR = "2026-03-02-10:00"
AS_OF = pd.Timestamp("2026-03-02T10:00Z")


def cap_event(program_id: str, resource: str, mw: float, **kw) -> dict:
    ev = {
        "programID": program_id,
        "eventName": f"cap {resource}",
        "targets": [{"type": "RESOURCE_NAME", "values": [resource]}],
        "payloadDescriptors": [{"payloadType": "IMPORT_CAPACITY_LIMIT", "units": "KW"}],
        "intervalPeriod": {"start": "2026-03-02T12:00:00Z", "duration": "PT1H"},
        "intervals": [
            {"id": 0, "payloads": [{"type": "IMPORT_CAPACITY_LIMIT", "values": [mw * 1000]}]},
            {"id": 1, "payloads": [{"type": "IMPORT_CAPACITY_LIMIT", "values": [mw * 500]}]},
        ],
    }
    ev.update(kw)
    return ev


@pytest.fixture
def vtn():
    server = VtnServer(clients={CLIENT_ID: CLIENT_SECRET}).start()
    yield server
    server.close()


@pytest.fixture
def setup(tmp_path, vtn, monkeypatch):
    monkeypatch.setenv("GRIDFLEX_OPENADR_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("GRIDFLEX_OPENADR_CLIENT_SECRET", CLIENT_SECRET)
    path = fleet_toml(tmp_path / "fleet.toml")
    text = path.read_text().replace(
        "[sites.hamburg]\n", '[sites.hamburg]\nopenadr_resource = "HAM-DC-01"\n'
    )
    text += f'\n[grid_events]\nsource = "openadr3"\nvtn_url = "{vtn.url}"\nven_name = "gf-test"\n'
    path.write_text(text)
    resources = {
        "warehouse": WarehouseResource(path=str(tmp_path / "gf.duckdb")),
        "fleet": FleetResource(path=str(path)),
    }
    prog = vtn.add_program({"programName": "capacity"})
    return resources, prog, load_fleet(path)


def materialize(resources, instance=None):
    return dg.materialize([grid_events], resources=resources, partition_key=HOUR, instance=instance)


def stored(resources) -> pd.DataFrame:
    return (
        resources["warehouse"]
        .get()
        .query(
            'select site, payload_type, start, "end", value, unit, event_id, cancelled '
            "from staging.grid_events order by site, start"
        )
    )


def md(result) -> dict:
    (m,) = result.asset_materializations_for_node("grid_events")
    return {k: getattr(v, "value", v) for k, v in m.metadata.items()}


def test_materialize_polls_the_vtn_and_stores_the_fleets_events(setup, vtn):
    resources, prog, fleet = setup
    vtn.publish(cap_event(prog["id"], "HAM-DC-01", 30))
    vtn.publish(cap_event(prog["id"], "oakland", 20))
    vtn.publish(cap_event(prog["id"], "someone-else", 5))
    instance = dg.DagsterInstance.ephemeral()
    res = materialize(resources, instance)
    assert res.success
    got = stored(resources)
    assert sorted(set(got.site)) == ["hamburg", "oakland"]
    ham = got[got.site == "hamburg"]
    assert ham.value.tolist() == [30.0, 15.0] and set(ham.unit) == {"MW"}
    assert ham.start.tolist() == [
        pd.Timestamp("2026-03-02T12:00Z"),
        pd.Timestamp("2026-03-02T13:00Z"),
    ]
    meta = md(res)
    assert (meta["events_seen"], meta["new"], meta["modified"], meta["cancelled"]) == (3, 3, 0, 0)
    assert meta["problems"] == 1  # the event for someone else names no fleet site
    assert meta["active_intervals"] == 4 and meta["dagster/row_count"] == 4
    assert "hamburg" in meta["active"] and "IMPORT_CAPACITY_LIMIT" in meta["active"]
    assert "someone-else" in meta["notes"]
    # the same hour again: nothing changes
    again = materialize(resources, instance)
    assert md(again)["unchanged"] == 3 and md(again)["new"] == 0
    assert stored(resources).equals(got)
    # a modification and a cancellation, polled
    ham_id = next(e["id"] for e in vtn.events if e["eventName"] == "cap HAM-DC-01")
    vtn.modify(ham_id, {"intervals": cap_event(prog["id"], "HAM-DC-01", 25)["intervals"][:1]})
    third = materialize(resources, instance)
    assert md(third)["modified"] == 1
    live = stored(resources)[lambda d: ~d.cancelled]
    assert live[live.site == "hamburg"].value.tolist() == [25.0]
    # no secret anywhere Dagster keeps things
    logs = "\n".join(str(e) for e in instance.all_logs(third.run_id))
    text = logs + str(third.all_events) + str(res.all_events)
    for s in SECRETS:
        assert s not in text


FAULTS = {  # what the hour's error says
    "down": "is the VTN",
    "401": "GRIDFLEX_OPENADR_CLIENT_ID",
    "5xx": "503",
    "429": "429 rate limited",
    "timeout": "timeout (ReadTimeout)",
    "redirect": "302 redirect not followed",
    "html": "JSONDecodeError",  # an HTML page with status 200, at the token endpoint first
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_failing_vtn_does_not_fail_the_hour_and_loses_nothing(setup, vtn, fault):
    resources, prog, _ = setup
    vtn.publish(cap_event(prog["id"], "oakland", 20))
    assert materialize(resources).success
    before = stored(resources)
    url = vtn.url
    if fault == "timeout":  # the fleet file's timeout, 2 attempts
        path = resources["fleet"].path
        Path(path).write_text(
            Path(path).read_text() + "timeout_s = 0.5\nmax_attempts = 2\n", encoding="utf-8"
        )
    elsewhere = VtnServer(tokens=[]).start() if fault == "redirect" else None
    knobs = {
        "down": {},
        "401": {"unauthorized": True},
        "5xx": {"status_burst": (503,) * 20},
        "429": {"status_burst": (429,) * 20, "retry_after": "0"},
        "timeout": {"slow_burst": 20, "slow_s": 1.5},
        "redirect": {"redirect_to": elsewhere.url if elsewhere else None},
        "html": {"not_json_burst": 20},
    }[fault]
    if fault == "down":
        vtn.stop()
    else:
        vtn.set_faults(echo_secrets_on_error=True, **knobs)
    res = materialize(resources)
    assert res.success  # the hour is not failed: the planner keeps the stored events
    meta = md(res)
    assert url in meta["error"]
    assert FAULTS[fault] in meta["error"], meta["error"]
    if elsewhere is not None:
        assert elsewhere.requests == []  # the credentials went nowhere else
        elsewhere.close()
    assert meta["active_intervals"] == 2  # the events already stored
    assert stored(resources).equals(before)
    wh = resources["warehouse"].get()
    log = wh.query(
        "select notes from raw.ingest_log where notes like 'VTN poll failed%' order by finished_at"
    )
    assert len(log) == 1 and url in log.notes[0]  # a stored record of the failure
    dump = "\n".join(
        wh.query(f"select * from {t}").to_csv()
        for t in (
            "raw.ingest_log",
            "raw.openadr_events",
            "staging.grid_events",
            "staging.grid_event_problems",
        )
    )
    for s in SECRETS:
        assert s not in dump and s not in meta["error"]


def test_no_grid_event_source_configured(tmp_path):
    resources = {
        "warehouse": WarehouseResource(path=str(tmp_path / "gf.duckdb")),
        "fleet": FleetResource(path=str(fleet_toml(tmp_path / "fleet.toml"))),
    }
    res = materialize(resources)
    assert res.success and md(res)["notes"] == "no grid-event source configured"


def test_hourly_tick_runs_the_grid_events_asset():
    from pipelines.definitions import defs

    job = defs.resolve_job_def("hourly_tick")
    keys = {k.to_user_string() for k in job.asset_layer.asset_graph.get_all_asset_keys()}
    assert "grid_events" in keys


def test_pushed_events_are_stored_like_polled_ones(setup, vtn, monkeypatch):
    resources, prog, fleet = setup
    wh: Warehouse = resources["warehouse"].get()
    with PushReceiver(
        push_handler(wh, fleet),
        bearer_token=PUSH_TOKEN,
        site_of_target=fleet_targets(fleet),
        all_sites=list(fleet.sites),
        ven_name=fleet.grid_events.ven_name,
    ) as rec:
        monkeypatch.setenv("GRIDFLEX_OPENADR_PUSH_TOKEN", PUSH_TOKEN)
        fleet2 = fleet.model_copy(
            update={
                "grid_events": fleet.grid_events.model_copy(
                    update={"push_callback_url": rec.callback_url}
                )
            }
        )
        got = ingest_grid_events(wh, fleet2, AS_OF)  # polls and subscribes
        assert got.ok and got.subscription_id
        ev = vtn.publish(cap_event(prog["id"], "HAM-DC-01", 30))
        vtn.cancel(ev["id"])
        rec.wait_handled(2)
        assert not rec.errors
    rows = wh.query("select site, cancelled, cancel_reason from staging.grid_events")
    assert set(rows.site) == {"hamburg"} and rows.cancelled.all()
    raw = wh.query("select operation, via from raw.openadr_events order by operation")
    assert raw.to_dict("records") == [
        {"operation": "DELETE", "via": "push"},
        {"operation": "POST", "via": "push"},
    ]
