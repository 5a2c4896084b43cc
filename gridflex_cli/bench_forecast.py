"""``gridflex bench forecast-dacf`` and ``gridflex bench forecast-load``: TFT forecasts against
published and naive baselines on real data. Heavy imports stay inside the commands; progress goes to
stderr so ``--json`` output on stdout stays machine-readable."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from gridflex_cli.app import bench_app


def _table(rows: list[list], headers: list[str]) -> str:
    from tabulate import tabulate

    return tabulate(rows, headers=headers, floatfmt=".2f")


@bench_app.command("forecast-dacf")
def forecast_dacf(
    data: Annotated[Path, typer.Option("--data", help="DACF folder (<R>_direct_emissions.csv)")],
    region: Annotated[list[str], typer.Option("--region", help="CISO, PJM or ERCO (repeatable)")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    max_epochs: Annotated[int | None, typer.Option(help="Override max epochs.")] = None,
    hidden_size: Annotated[int | None, typer.Option(help="Override the TFT hidden size.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
    out: Annotated[Path | None, typer.Option(help="Checkpoint folder (default: temp).")] = None,
    profile_days: Annotated[
        int, typer.Option(help="TFT: days of the same-hour profile input (0: none).")
    ] = 7,
    tft_seeds: Annotated[
        int, typer.Option(help="TFTs trained with successive seeds and averaged (one member).")
    ] = 2,
    reuse: Annotated[
        bool,
        typer.Option(
            help="Reuse the TFT an earlier run left in --out/<R> (re-score without retraining)."
        ),
    ] = False,
    target_transform: Annotated[
        str, typer.Option(help="TFT target transformation: log1p or none.")
    ] = "log1p",
) -> None:
    """DACF day-ahead carbon-intensity protocol: train to 2021-06-30, forecast each day of 2021-H2
    (issued 00:00 UTC from data up to 23:00 the day before), hourly MAPE vs published and
    persistence. gridflex's forecast: the TFT, or the ensemble with the ridge/GBM regressions
    that the validation period (last 30 days before the test) chose; every member is scored
    alone too."""
    from forecasting.bench import dacf_config, run_dacf

    kw: dict = {"seed": seed}
    if max_epochs is not None:
        kw["max_epochs"] = max_epochs
    if hidden_size is not None:
        kw["hidden_size"] = hidden_size
    results = []
    for r in region:
        with contextlib.redirect_stdout(sys.stderr):
            res = run_dacf(
                data,
                r,
                config=dacf_config(**kw),
                out_dir=(out / r) if out else None,
                profile_days=profile_days,
                target_transform=None if target_transform == "none" else target_transform,
                reuse=reuse,
                tft_seeds=tft_seeds,
            )
        results.append(res)
    if as_json:
        print(json.dumps(results[0] if len(results) == 1 else results, indent=2))
        return
    print(dacf_table(results))


def dacf_table(results: list[dict]) -> str:
    rows = []
    for x in results:
        ens = x.get("ensemble", {})
        label = (
            "gridflex ("
            + "+".join(ens.get("weights", {"tft": 1}))
            + (f", corr {ens['strength']:g})" if ens.get("strength") else ")")
        )
        rows.append(
            [
                x["region"],
                label,
                x["mape_mean"],
                x["mape_median"],
                x["mape_p90"],
                x["mape_p95"],
                x["coverage_p10_p90"],
                x["train_seconds"],
                x["epochs"],
            ]
        )
        for name in ("tft", "regression", "gbm", "published", "persistence"):
            if f"{name}_mape_mean" not in x:
                continue
            cov = x.get("tft_coverage_p10_p90") if name == "tft" else None
            rows.append(
                [
                    x["region"],
                    name,
                    x[f"{name}_mape_mean"],
                    x[f"{name}_mape_median"],
                    x[f"{name}_mape_p90"],
                    x[f"{name}_mape_p95"],
                    cov,
                    None,
                    None,
                ]
            )
    return _table(
        rows,
        [
            "region",
            "model",
            "MAPE mean",
            "median",
            "p90",
            "p95",
            "p10-p90 cov",
            "train s",
            "epochs",
        ],
    )


@bench_app.command("forecast-load")
def forecast_load(
    data: Annotated[Path, typer.Option("--data", help="Helios cluster_throughput.csv or folder")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    max_epochs: Annotated[int | None, typer.Option(help="Override max epochs.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
    out: Annotated[Path | None, typer.Option(help="Checkpoint folder (default: temp).")] = None,
) -> None:
    """Helios GPU demand (GPUs requested per hour): TFT vs persistence and seasonal naive, day-ahead
    forecasts for each of the last 8 weeks."""
    from forecasting.bench import load_config, run_load

    kw: dict = {"seed": seed}
    if max_epochs is not None:
        kw["max_epochs"] = max_epochs
    with contextlib.redirect_stdout(sys.stderr):
        res = run_load(data, config=load_config(**kw), out_dir=out)
    if as_json:
        print(json.dumps(res, indent=2))
        return
    print(load_table(res))


def load_table(res: dict) -> str:
    rows = [
        [
            name,
            res[f"{name}_mae"],
            res[f"{name}_mape"],
            res[f"{name}_mape_median"],
            res[f"{name}_coverage_p10_p90"],
            res[f"{name}_pinball"],
        ]
        for name in ("tft", "persistence", "seasonal_naive", "regression")
    ]
    table = _table(
        rows, ["model", "MAE (GPUs)", "MAPE mean", "MAPE median", "p10-p90 cov", "pinball"]
    )
    red = 100 * res["mae_reduction_vs_best_naive"]
    note = (
        f"TFT MAE reduction vs best naive: {red:.1f} %  (train {res['train_seconds']:.0f} s, "
        f"{res['epochs']} epochs, {res['test_days']} test days; MAPE over "
        f"{res['mape_defined_hours']} hours with non-zero demand)"
    )
    return table + "\n" + note
