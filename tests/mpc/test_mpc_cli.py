"""The bench commands print what the lead's scripts parse."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from gridflex_cli.main import app


def test_bench_mpc_paper_json():
    out = CliRunner().invoke(app, ["bench", "mpc-paper", "--json"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)
    assert [r["method"] for r in rows] == [
        "joint",
        "compute_only",
        "energy_only",
        "no_battery",
        "no_routing",
        "no_carbon",
        "carbon_agnostic",
    ]
    for r in rows:
        assert {"method", "objective", "emissions", "solve_s", "gap"} <= set(r)


def test_bench_mpc_scale_json():
    out = CliRunner().invoke(
        app,
        [
            "bench",
            "mpc-scale",
            "--sites",
            "2",
            "--hours",
            "6",
            "--jobs",
            "3",
            "--classes",
            "1",
            "--json",
        ],
    )
    assert out.exit_code == 0, out.output
    row = json.loads(out.output)[0]
    assert {"build_s", "solve_s", "gap", "variables", "binaries"} <= set(row)
