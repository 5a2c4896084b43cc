"""The benchmark commands: registered, fast to import, and (slow, real data) end to end with a tiny
TFT."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from forecasting.spec import TrainConfig


def test_cli_import_is_light():
    code = (
        "import sys, gridflex_cli.main; "
        "print(any(m in sys.modules for m in ('torch', 'pytorch_forecasting', 'lightning')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_forecast_commands_registered():
    from gridflex_cli.main import app

    r = CliRunner().invoke(app, ["bench", "--help"])
    assert r.exit_code == 0
    assert "forecast-dacf" in r.output and "forecast-load" in r.output


@pytest.mark.slow
@pytest.mark.shared_data
def test_forecast_dacf_json_tiny(shared_data, monkeypatch, tmp_path):
    import forecasting.bench as bench
    from gridflex_cli.main import app

    monkeypatch.setattr(bench, "dacf_config", lambda **kw: TrainConfig.tiny(val_hours=24 * 7, **kw))
    args = [
        "bench",
        "forecast-dacf",
        "--data",
        str(shared_data / "dacf"),
        "--region",
        "PJM",
        "--json",
        "--out",
        str(tmp_path),
        "--horizon",
        "48",
        "--encoder-length",
        "48",
    ]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout[r.stdout.index("{") :])
    for k in (
        "region",
        "mape_mean",
        "mape_median",
        "mape_p90",
        "mape_p95",
        "published_mape_mean",
        "persistence_mape_mean",
        "seasonal_naive_mape_mean",
        "train_seconds",
        "epochs",
        "tft_mape_mean",
        "ridge_mape_mean",
        "gbm_mape_mean",
        "coverage_p10_p90",
        "served",
    ):
        assert k in res
    assert res["published_mape_mean"] == pytest.approx(3.30, abs=0.01)
    assert res["persistence_mape_mean"] == pytest.approx(4.56, abs=0.06)  # DATA.md
    assert 0 < res["mape_mean"] < 100
    # D1 is the published protocol; D2 from the same 00:00 issues, for every forecaster
    by_day = res["mape_by_day"]
    assert set(by_day) == {"served", "tft", "ridge", "gbm", "persistence", "seasonal_naive"}
    assert all(set(v) == {"D1", "D2"} for v in by_day.values())
    assert by_day["served"]["D1"] == pytest.approx(res["mape_mean"])
    dec = res["decision"]
    assert -1 <= dec["served"]["rank_corr"] <= 1 and dec["served"]["window_regret"] >= 0
    assert dec["published"]["days"] == 184 and dec["served"]["window_h"] == 4
    ens = res["ensemble"]
    assert "tft" in ens["weights"] and sum(ens["weights"].values()) == pytest.approx(1.0)
    assert ens["strength"] in (0.0, 0.25, 0.5, 0.75, 1.0)
    # the choice is the validation optimum of the candidates it lists; scores side by side
    val = res["validation"]
    cands = val["candidates_mape"]
    chosen = "+".join(ens["weights"]) + f"@{ens['strength']:g}"
    assert cands[chosen] == pytest.approx(min(cands.values()))
    assert {"served", "persistence", "tft", "ridge", "gbm"} <= set(val["scores"])
    assert (tmp_path / "PJM" / "forecaster.json").exists()
    # --reuse re-scores the saved TFT without training: the same figures
    r2 = CliRunner().invoke(app, [*args, "--reuse"])
    assert r2.exit_code == 0, r2.output
    assert "reusing the TFT" in r2.stderr
    res2 = json.loads(r2.stdout[r2.stdout.index("{") :])
    assert res2["tft_mape_mean"] == pytest.approx(res["tft_mape_mean"], rel=1e-9)
    assert res2["mape_mean"] == pytest.approx(res["mape_mean"], rel=1e-9)


def test_tables_format():
    from gridflex_cli.bench_forecast import dacf_table, load_table

    d = {
        "region": "PJM",
        "mape_mean": 3.1,
        "mape_median": 2.4,
        "mape_p90": 6.6,
        "mape_p95": 8.4,
        "coverage_p10_p90": 0.8,
        "train_seconds": 100.0,
        "epochs": 5,
    }
    for name in ("published", "persistence", "ridge"):
        d.update({f"{name}_mape_{k}": 1.0 for k in ("mean", "median", "p90", "p95")})
    t = dacf_table([d])
    assert "served (tft)" in t and "published" in t and "3.10" in t
    d["ensemble"] = {"weights": {"tft": 0.5, "gbm": 0.5}, "strength": 0.5}
    d.update({f"tft_mape_{k}": 2.0 for k in ("mean", "median", "p90", "p95")})
    d["mape_by_day"] = {"served": {"D1": 3.1, "D2": 4.25}}
    d["decision"] = {"served": {"rank_corr": 0.71, "window_regret": 3.5, "window_h": 4}}
    d["served"] = "tft+gbm"
    d["validation"] = {
        "scores": {
            "served": {"mape": 5.5, "coverage_p10_p90": 0.8},
            "persistence": {"mape": 7.25},
            "tft": {"mape": 6.5},
        }
    }
    t = dacf_table([d])
    assert "served (tft+gbm, corr 0.5)" in t and "2.00" in t and "D2 MAPE" in t and "4.25" in t
    assert "0.71" in t and "4h regret" in t
    assert "validation MAPE 5.50 % vs persistence 7.25 %" in t and "tft 6.50" in t
    r = {
        "mae_reduction_vs_best_naive": 0.3,
        "train_seconds": 1.0,
        "epochs": 2,
        "test_days": 5,
        "mape_defined_hours": 100,
    }
    for name in ("tft", "persistence", "seasonal_naive", "ridge"):
        r.update(
            {
                f"{name}_{k}": 1.0
                for k in ("mae", "mape", "mape_median", "coverage_p10_p90", "pinball")
            }
        )
    assert "30.0 %" in load_table(r)
