"""The fleet file: validation messages name the field; the demo fleet mirrors the paper instance."""

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
    ],
)
def test_invalid_fleets_name_the_field(data, message):
    with pytest.raises(FleetError, match=message.replace(".", r"\.").replace("(", r"\(")):
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
