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
    learning_rate: Annotated[
        float | None, typer.Option(help="Override the TFT learning rate.")
    ] = None,
    max_minutes: Annotated[
        float | None, typer.Option(help="TFT training budget in minutes (wall clock).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
    out: Annotated[Path | None, typer.Option(help="Output folder (default: temp).")] = None,
    horizon: Annotated[
        int, typer.Option(help="Forecast horizon in hours: 24 = the published protocol, 96: D1-D4.")
    ] = 24,
    encoder_length: Annotated[int, typer.Option(help="TFT encoder length in hours.")] = 168,
    profile_days: Annotated[
        int, typer.Option(help="TFT: days of the same-hour profile input (0: none).")
    ] = 7,
    tft_seeds: Annotated[
        int, typer.Option(help="TFTs trained with successive seeds and averaged (one member).")
    ] = 1,
    reuse: Annotated[
        bool,
        typer.Option(
            help="Reuse the TFT an earlier run left in --out/tft (re-score, no training)."
        ),
    ] = False,
    target_transform: Annotated[
        str, typer.Option(help="TFT target transformation: log1p or none.")
    ] = "log1p",
) -> None:
    """DACF day-ahead carbon-intensity protocol: train to 2021-06-30, forecast each day of 2021-H2
    (issued 00:00 UTC from data up to 23:00 the day before; D1 = the published protocol, D2-D4 with
    --horizon 96), against the published model, persistence and seasonal naive. One global TFT over
    the regions given; per region the served forecaster (the TFT with the ridge/GBM regressions the
    last 30 days before the test chose, conformal intervals) and every member alone."""
    from forecasting.bench import dacf_config, run_dacf

    kw: dict = {"seed": seed}
    if max_epochs is not None:
        kw["max_epochs"] = max_epochs
    if hidden_size is not None:
        kw["hidden_size"] = hidden_size
    if learning_rate is not None:
        kw["learning_rate"] = learning_rate
    if max_minutes is not None:
        kw["max_time_s"] = 60 * max_minutes
    with contextlib.redirect_stdout(sys.stderr):
        results = run_dacf(
            data,
            region,
            config=dacf_config(**kw),
            out_dir=out,
            profile_days=profile_days,
            target_transform=None if target_transform == "none" else target_transform,
            horizon=horizon,
            encoder_length=encoder_length,
            reuse=reuse,
            tft_seeds=tft_seeds,
        )
    if as_json:
        print(json.dumps(results[0] if len(results) == 1 else results, indent=2, default=str))
        return
    print(dacf_table(results))


MEMBERS = ("tft", "ridge", "gbm", "published", "persistence", "seasonal_naive")


def dacf_table(results: list[dict]) -> str:
    """One row per region and forecaster: D1 MAPE (the published protocol), D2-D4 MAPE where
    forecast, p10-p90 coverage, rank correlation and window regret of D1; then what is served and
    its validation score next to persistence's and each member's."""
    rows = []
    days = sorted({d for x in results for f in x.get("mape_by_day", {}).values() for d in f})
    for x in results:
        ens = x.get("ensemble", {})
        label = (
            "served ("
            + "+".join(ens.get("weights", {"tft": 1}))
            + (f", corr {ens['strength']:g})" if ens.get("strength") else ")")
        )
        for name in ("served", *MEMBERS):
            pre = "" if name == "served" else f"{name}_"
            if f"{pre}mape_mean" not in x:
                continue
            dec = x.get("decision", {}).get(name, {})
            by_day = x.get("mape_by_day", {}).get(name, {})
            rows.append(
                [
                    x["region"],
                    label if name == "served" else name,
                    x[f"{pre}mape_mean"],
                    x[f"{pre}mape_median"],
                    x[f"{pre}mape_p90"],
                    *[by_day.get(d) for d in days[1:]],
                    x.get(f"{pre}coverage_p10_p90"),
                    dec.get("rank_corr"),
                    dec.get("window_regret"),
                    dec.get("window_regret_pct"),
                    x.get("train_seconds") if name in ("served", "tft") else None,
                    x.get("epochs") if name in ("served", "tft") else None,
                ]
            )
    k = next((d.get("window_h") for x in results for d in x.get("decision", {}).values()), 4)
    table = _table(
        rows,
        [
            "region",
            "model",
            "D1 MAPE",
            "median",
            "p90",
            *[f"{d} MAPE" for d in days[1:]],
            "p10-p90 cov",
            "rank corr",
            f"{k}h regret g/kWh",
            "regret %",
            "train s",
            "epochs",
        ],
    )
    return table + "\n" + "\n".join(served_lines(results))


def served_lines(results: list[dict]) -> list[str]:
    """What is served per region and its validation score next to persistence's and each
    member's, in the same metric (MAPE, all leads, the validation days)."""
    out = []
    for x in results:
        v = x.get("validation", {}).get("scores", {})
        if not v:
            continue
        others = ", ".join(
            f"{n} {s['mape']:.2f}" for n, s in v.items() if n not in ("served", "persistence")
        )
        out.append(
            f"{x['region']}: serves {x.get('served', '?')}; "
            f"validation MAPE {v['served']['mape']:.2f} % "
            f"vs persistence {v['persistence']['mape']:.2f} % (members alone: {others}); "
            f"validation p10-p90 coverage {v['served']['coverage_p10_p90']:.2f}"
            + (
                f"; test p10-p90 coverage {x['coverage_p10_p90']:.2f} refreshed as actuals "
                f"arrive, {x['coverage_p10_p90_static']:.2f} on validation residuals only"
                if "coverage_p10_p90_static" in x
                else ""
            )
        )
    return out


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
        for name in ("tft", "persistence", "seasonal_naive", "ridge")
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
