"""The fleet file: validation messages name the field; the demo fleet mirrors the paper instance."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from mpc.fleet import FleetError, load_fleet, parse_fleet
from mpc.paper import PAPER_CLASSES, PAPER_SITES

REPO = Path(__file__).resolve().parents[2]


def test_demo_fleet_is_the_paper_instance():
    fleet = load_fleet()
    assert fleet.mpc_sites() == PAPER_SITES
    assert [
        (c.name, c.home_site, c.energy_mwh, c.revenue, dict(c.latency_ms), c.latency_limit_ms)
        for c in fleet.mpc_classes()
    ] == [
        (c.name, c.home_site, c.energy_mwh, c.revenue, dict(c.latency_ms), c.latency_limit_ms)
        for c in PAPER_CLASSES
    ]


def _site(**over):
    return {
        "zone": "DE",
        "lat": 50.0,
        "lon": 8.0,
        "it_capacity_mw": 10.0,
        "import_limit_mw": 20.0,
        **over,
    }


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"sites": {"a": _site(it_capacity_mw=-1)}}, "sites.a.it_capacity_mw"),
        ({"sites": {"a": _site(battery={"energy_mwh": 10, "soc0": 0.95})}}, "sites.a.battery"),
        ({"sites": {"a": _site(base_load_mw=50)}}, "base_load_mw exceeds it_capacity_mw"),
        ({"sites": {"a": _site(lat=123)}}, "sites.a.lat"),
        (
            {
                "sites": {"a": _site()},
                "classes": {
                    "c": {
                        "home": "b",
                        "latency_ms": {"a": 5},
                        "latency_limit_ms": 10,
                        "energy_mwh_per_unit": 1e-5,
                        "revenue_per_unit": 0.01,
                    }
                },
            },
            "classes.c.home: unknown site 'b'",
        ),
        (
            {
                "sites": {"a": _site()},
                "classes": {
                    "c": {
                        "home": "a",
                        "latency_ms": {"a": 50},
                        "latency_limit_ms": 10,
                        "energy_mwh_per_unit": 1e-5,
                        "revenue_per_unit": 0.01,
                    }
                },
            },
            "classes.c: no site within latency_limit_ms",
        ),
        ({"sites": {"a": _site()}, "jobs": {"source": "csv"}}, "jobs.path"),
        ({"sites": {"a": _site(colour="red")}}, "sites.a.colour"),
        # what `fleet check` said "ok" to and failed later
        (
            {"sites": {"a": _site(it_capacity_mw="40")}},
            "sites.a.it_capacity_mw: Input should be a valid number (got '40')",
        ),
        (
            {"sites": {"a": _site(import_limit_mw=float("inf"))}},
            "sites.a.import_limit_mw: Input should be a finite number (got inf)",
        ),
        (
            {"sites": {"a": _site(battery={"energy_mwh": float("nan")})}},
            "sites.a.battery.energy_mwh: Input should be a finite number",
        ),
        (
            {"sites": {"a": _site()}, "planning": {"carbon_signal": "avg-direct"}},
            "carbon_signal 'avg-direct' is not one of",
        ),
        (
            {
                "sites": {"a": _site()},
                "sources": {"carbon": "watttime"},
                "planning": {"carbon_signal": "marginal:co2_moer"},
            },
            "sites.a.watttime_region: required when sources.carbon = 'watttime'",
        ),
        (
            {"sites": {"a": _site(watttime_region="DE")}, "sources": {"carbon": "watttime"}},
            "planning.carbon_signal 'average:direct' cannot come from sources.carbon = 'watttime'",
        ),
        (
            {
                "sites": {
                    "a": _site(watttime_region="X"),
                    "b": _site(watttime_region="X"),
                    "c": _site(),
                },
                "sources": {"carbon": "watttime"},
                "planning": {"carbon_signal": "marginal:co2_moer"},
            },
            "sites.c.watttime_region",
        ),
        (
            {
                "sites": {"a": _site(watttime_region="X"), "b": _site(watttime_region="Y")},
                "sources": {"carbon": "watttime"},
                "planning": {"carbon_signal": "marginal:co2_moer"},
            },
            "sites in zone 'DE' name different WattTime regions",
        ),
        (
            {
                "sites": {"a": _site(zone="US-NW-PACW")},
                "sources": {
                    "carbon": "electricitymaps_csv",
                    "weather": "openmeteo",
                    "prices": "demo",
                },
            },
            "sources.prices = 'demo' but the demo grid has no zone 'US-NW-PACW'",
        ),
        (
            {
                "sites": {"a": _site()},
                "sources": {"carbon": "demo"},
                "planning": {"carbon_signal": "average:lifecycle"},
            },
            "cannot come from sources.carbon = 'demo'",
        ),
    ],
)
def test_invalid_fleets_name_the_field(data, message):
    with pytest.raises(FleetError, match=re.escape(message)):
        parse_fleet(data, "test.toml")


def test_fleet_check_cli(tmp_path):
    good = subprocess.run(
        [sys.executable, "-m", "gridflex_cli.main", "fleet", "check", "mpc/fleets/demo.toml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert good.returncode == 0 and "3 sites" in good.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[sites.x]\nzone = "DE"\nlat = 1\nlon = 2\nit_capacity_mw = 0\nimport_limit_mw = 1\n'
    )
    out = subprocess.run(
        [sys.executable, "-m", "gridflex_cli.main", "fleet", "check", str(bad)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1 and "sites.x.it_capacity_mw" in out.stderr
    broken = tmp_path / "broken.toml"
    broken.write_text("[sites\n")
    out = subprocess.run(
        [sys.executable, "-m", "gridflex_cli.main", "fleet", "check", str(broken)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1 and "not valid TOML" in out.stderr


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "gridflex_cli.main", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_fleet_check_catches_a_missing_job_file(tmp_path):
    from tests.pipelines import realsource as rs

    fleet = rs.fleet_toml(tmp_path / "f.toml", jobs="csv", jobs_path="queue.csv")
    out = _cli("fleet", "check", str(fleet))
    assert out.returncode == 1 and "jobs.path: no such file" in out.stderr
    rs.jobs_csv(tmp_path / "queue.csv")  # relative to the fleet file
    assert _cli("fleet", "check", str(fleet)).returncode == 0


def test_fleet_check_with_db_names_what_the_file_sources_lack(tmp_path):
    """Before: `fleet check` said "ok" to CSV-sourced fleets whose hourly assets then always failed."""
    from pipelines.lib.ingest import import_files
    from tests.pipelines import realsource as rs
    from warehouse import Warehouse

    fleet = rs.fleet_toml(
        tmp_path / "f.toml", carbon="electricitymaps_csv", prices="csv", load="csv", jobs="table"
    )
    db = tmp_path / "gf.duckdb"
    out = _cli("fleet", "check", str(fleet), "--db", str(db))
    assert out.returncode == 1
    for need in (
        "no carbon intensity stored for GB:average:direct: `gridflex import em-csv",
        "no prices stored for zone DE",
        "no inference demand stored for class assistant",
        "staging.jobs is empty",
    ):
        assert need in out.stderr, need
    # a warehouse holding another signal for the zone: the mismatch names both series
    grid = rs.recordings()["grid"]
    wt = rs.fleet_toml(tmp_path / "wt.toml", carbon="watttime", signal="marginal:co2_moer")
    import_files(Warehouse(db), "em-csv", [rs.em_export(tmp_path / "gb.csv", grid, "GB")])
    out = _cli("fleet", "check", str(wt), "--db", str(db))
    assert out.returncode == 1
    assert (
        "the fleet plans on GB:marginal:co2_moer but the warehouse has only GB:average:direct, "
        "GB:average:lifecycle for zone GB"
    ) in out.stderr
