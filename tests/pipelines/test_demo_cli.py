"""`gridflex demo` (what `make demo` runs) end to end on a few hours: the Quickstart's first command
must print each hour as it is planned, the fleet-wide line and the example queries — a demo
regression (a list column printed with `or`) once broke it with a stack trace and no test noticed."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from gridflex_cli.main import app


@pytest.mark.slow
def test_demo_prints_each_hour_the_fleet_line_and_the_queries(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir()
    args = ["demo", "--hours", "3", "--profile", "tiny", "--db", str(tmp_path / "gf.duckdb")]
    out = CliRunner().invoke(app, [*args, "--models", str(tmp_path / "models")])
    assert out.exit_code == 0, out.output[-3000:]
    hours = re.findall(
        r"^\s+2026-01-26 0[0-2]:00\s+(optimal|feasible)\s+net benefit", out.output, re.M
    )
    assert len(hours) == 3, out.output[-3000:]
    # training shows its progress: what is trained, and each epoch as it ends
    assert (
        "training the carbon model on" in out.output and "training the load model on" in out.output
    )
    assert re.search(r"epoch 1 of at most \d+: validation loss", out.output)
    # what is served, its validation score next to persistence's, and each member's alone
    # (the tiny models may lose to persistence on validation: then persistence is served, said)
    served = re.findall(
        r"(carbon|load) model \S+ .*: serves (tft\S*|persistence \(fallback: tft\S* lost to "
        r"persistence on validation, MAPE [\d.]+ vs [\d.]+ %\)).*; validation MAE [\d.,]+ vs "
        r"persistence [\d.,]+ \(members alone: tft [\d.,]+",
        out.output,
    )
    assert {t for t, _ in served} == {"carbon", "load"}, out.output[-3000:]
    assert "[4/4] refresh marts" in out.output
    assert re.search(r"fleet-wide .*(CO2 saved|no hour compared)", out.output)
    assert "-- The fleet per day" in out.output and "Traceback" not in out.output
    assert "demo done in" in out.output and "(one run each)" in out.output
