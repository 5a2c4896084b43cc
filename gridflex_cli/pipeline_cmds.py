"""Commands that touch the warehouse and the Dagster pipeline: ``import``, ``fleet check``, ``demo``,
``backtest``. Heavy imports stay inside the functions."""

from __future__ import annotations

import os
import time
from pathlib import Path

import typer

from gridflex_cli.app import app, bench_app, fleet_app, import_app

DB_OPTION = typer.Option(
    Path(os.environ.get("GRIDFLEX_DB", ".gridflex/gridflex.duckdb")),
    "--db",
    help="DuckDB warehouse file (env GRIDFLEX_DB)",
)


def _fail(msg: str) -> None:
    typer.secho(f"error: {msg}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


@import_app.command("em-csv")
def import_em_csv(
    files: list[Path] = typer.Argument(..., help="Electricity Maps data-portal CSV exports"),
    db: Path = DB_OPTION,
) -> None:
    """Load Electricity Maps CSV exports into staging.carbon_intensity (idempotent).

    Prints hours stored per zone and series, and what was repaired. A bad file stops the import with a
    message naming it; files imported before it stay imported."""
    from tabulate import tabulate

    from pipelines.lib.ingest import import_em_csv as run_import
    from sources.frames import SourceError
    from warehouse import Warehouse, WarehouseError

    t0 = time.perf_counter()
    wh = Warehouse(db)
    try:
        table = run_import(wh, files)
    except (SourceError, WarehouseError, FileNotFoundError) as exc:
        _fail(str(exc))
    elapsed = time.perf_counter() - t0
    show = table[
        ["file", "series", "hours", "estimated", "repaired", "inserted", "updated", "unchanged"]
    ]
    typer.echo(tabulate(show, headers="keys", tablefmt="github", showindex=False))
    per_zone = table.groupby(["zone", "series"]).hours.sum().reset_index()
    typer.echo("\nhours stored per zone and series:")
    typer.echo(tabulate(per_zone, headers="keys", tablefmt="github", showindex=False))
    typer.echo(f"\n{len(files)} file(s) into {db} in {elapsed:.1f} s")


@fleet_app.command("check")
def fleet_check(file: Path = typer.Argument(..., help="fleet TOML file")) -> None:
    """Validate a fleet file; errors name the field."""
    from mpc.fleet import FleetError, load_fleet

    try:
        fleet = load_fleet(file)
    except FleetError as exc:
        _fail(str(exc))
    typer.echo(
        f"{file}: ok — fleet {fleet.name!r}: {len(fleet.sites)} sites ({', '.join(fleet.sites)}), "
        f"{len(fleet.classes)} inference classes ({', '.join(fleet.classes)}), jobs from {fleet.jobs.source}, "
        f"carbon from {fleet.sources.carbon} ({fleet.planning.carbon_signal})"
    )


def _dagster_home() -> Path:
    """A persistent Dagster instance (so `make dev` shows the demo's runs): $DAGSTER_HOME or
    ./.dagster_home with the repo's dagster.yaml."""
    home = Path(os.environ.get("DAGSTER_HOME") or Path.cwd() / ".dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    cfg = Path(__file__).resolve().parents[1] / "dagster.yaml"
    if cfg.exists() and not (home / "dagster.yaml").exists():
        (home / "dagster.yaml").write_text(cfg.read_text())
    os.environ["DAGSTER_HOME"] = str(home)
    return home


@app.command("demo")
def demo(
    db: Path = DB_OPTION,
    hours: int = typer.Option(24, help="hourly plans to make, in sequence"),
    profile: str = typer.Option("fast", help="TFT training profile: tiny | fast | full"),
    models_dir: Path = typer.Option(Path(".gridflex/models"), "--models", help="checkpoint folder"),
) -> None:
    """Run the main job on the built-in demo: ingest 3 weeks of the demo grid, train the carbon and load
    forecasters on it, then make `hours` hourly receding-horizon plans in sequence (each a real Dagster
    run: forecast -> plan -> dispatch), refresh the marts, and show example queries. No network, no keys."""
    from pipelines.lib.demo_cli import run_demo

    _dagster_home()
    run_demo(db=db, hours=hours, profile=profile, models_dir=models_dir, echo=typer.echo)


MULTI = ("--em-csv", "--weather", "--prices")


def _multi_value(args: list[str], flags=MULTI) -> dict[str, list[Path]]:
    """``--em-csv a.csv b.csv --weather x.csv``: each flag takes the values up to the next flag."""
    out: dict[str, list[Path]] = {f: [] for f in flags}
    current = None
    for a in args:
        if a in flags:
            current = a
        elif a.startswith("-"):
            _fail(f"unknown option {a}")
        elif current is None:
            _fail(f"{a}: put files after --em-csv, --weather or --prices")
        else:
            out[current].append(Path(a))
    return out


@app.command(
    "backtest", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def backtest(
    ctx: typer.Context,
    start: str | None = typer.Option(
        None, help="first hour (UTC); default: 90 days after the data start"
    ),
    days: int = typer.Option(14, help="days to run hour by hour"),
    fleet_file: Path | None = typer.Option(
        None, "--fleet", help="fleet TOML (default: the demo fleet)"
    ),
    policies: str = typer.Option(
        "oracle,persistence,tft", help="comma-separated: oracle, persistence, tft"
    ),
    profile: str = typer.Option("fast", help="TFT training profile: tiny | fast | full"),
    db: Path | None = typer.Option(None, "--db", help="also store the results in plans.backtests"),
    as_json: bool = typer.Option(False, "--json", help="print JSON only"),
) -> None:
    """Closed-loop backtest over real Electricity Maps exports: oracle, persistence and TFT forecasts vs
    the carbon-agnostic policy. Reports realised emissions, cost, missed deadlines, savings vs
    carbon-agnostic and the share of the oracle's savings each policy achieves.

    Files: --em-csv FILE... (Electricity Maps exports, one zone per fleet site, required),
    --weather FILE... (Open-Meteo historical CSVs as <ZONE>/<YEAR>.csv), --prices FILE...
    (<ZONE>_electricity_prices_<YEAR>.csv)."""
    import json
    import uuid

    import pandas as pd
    from tabulate import tabulate

    from mpc.fleet import FleetError, load_fleet
    from pipelines.lib.backtest import load_data, run_backtest
    from sources.frames import SourceError

    echo = (lambda m: typer.echo(m, err=True)) if as_json else typer.echo
    files = _multi_value(list(ctx.args))
    em_csv, weather, prices = files["--em-csv"], files["--weather"], files["--prices"]
    if not em_csv:
        _fail("--em-csv FILE... is required")
    try:
        fleet = load_fleet(fleet_file)
        if start is None:
            from sources.em_csv import read_em_csv

            first = max(read_em_csv(p)[0].ts.min() for p in em_csv)
            t0 = (first + pd.Timedelta(days=90)).floor("D")
        else:
            t0 = pd.Timestamp(start)
            t0 = t0.tz_localize("UTC") if t0.tzinfo is None else t0.tz_convert("UTC")
        data = load_data(fleet, em_csv, t0, days, weather_files=weather, price_files=prices)
    except (FleetError, SourceError, ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
    for n in data.notes:
        echo(f"note: {n}")
    wanted = [p.strip() for p in policies.split(",") if p.strip()]
    bad = set(wanted) - {"oracle", "persistence", "tft"}
    if bad:
        _fail(f"unknown policies {sorted(bad)} (oracle, persistence, tft)")
    table, hourly, extras = run_backtest(
        fleet, data, policies=[*wanted, "carbon_agnostic"], profile=profile, echo=echo
    )
    keys = [
        "policy",
        "emissions",
        "cost",
        "missed_deadlines",
        "savings_vs_agnostic_pct",
        "share_of_oracle_savings",
    ]
    if db is not None:
        from warehouse import Warehouse

        bid = f"backtest-{t0:%Y%m%d}-{days}d-{uuid.uuid4().hex[:6]}"
        rows = table.assign(
            backtest_id=bid, hours=data.hours, created_at=pd.Timestamp.now(tz="UTC")
        )
        Warehouse(db).replace_window("plans.backtests", rows)
        echo(f"stored as {bid} in {db} (plans.backtests)")
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {k: (r[k] if k == "policy" else float(r[k])) for k in keys}
                    for r in table.to_dict("records")
                ],
                indent=2,
            )
        )
        return
    typer.echo(
        tabulate(
            table[keys + ["objective", "unserved_units"]],
            headers="keys",
            tablefmt="github",
            showindex=False,
            floatfmt=".2f",
        )
    )
    typer.echo(
        f"\n{data.hours} h from {t0:%Y-%m-%d} UTC; timings: "
        + ", ".join(f"{k} {v}" for k, v in extras.items() if not isinstance(v, dict))
        + (
            f"; TFT carbon MAE {extras['tft']['carbon_mae']:.1f} g/kWh (persistence "
            f"{extras['tft']['carbon_mae_persistence']:.1f}), train {extras['tft']['train_s']} s"
            if "tft" in extras
            else ""
        )
    )


@app.command("sql")
def sql(
    query: str = typer.Argument(
        ..., help="SQL to run read-only, e.g. 'select * from marts.decisions'"
    ),
    db: Path = DB_OPTION,
    limit: int = typer.Option(50, help="rows to print"),
) -> None:
    """Query the warehouse read-only and print a table (waits politely while a writer holds the lock)."""
    from tabulate import tabulate

    from warehouse import Warehouse

    if not Path(db).exists():
        _fail(f"{db}: no warehouse yet (run `make demo` or pass --db)")
    try:
        df = Warehouse(db).query(query)
    except Exception as exc:  # noqa: BLE001 - show DuckDB's own message
        _fail(str(exc))
    typer.echo(
        tabulate(df.head(limit), headers="keys", tablefmt="github", showindex=False, floatfmt=".3f")
    )
    if len(df) > limit:
        typer.echo(f"... {len(df) - limit} more rows")


@bench_app.command("tick")
def bench_tick(
    db: Path = typer.Option(Path(".gridflex/bench-tick.duckdb"), "--db", help="scratch warehouse"),
    models_dir: Path = typer.Option(Path(".gridflex/bench-models"), "--models"),
    hours: int = typer.Option(6, help="ticks to time (then as many Dagster runs)"),
    profile: str = typer.Option("fast", help="training profile if no model exists yet"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Time one hourly tick (forecast inference + plan + writes) for the demo fleet, and Dagster's
    per-run overhead on top of it."""
    import json

    from pipelines.lib.bench_tick import bench_tick as run

    echo = (lambda m: typer.echo(m, err=True)) if as_json else typer.echo
    result = run(db, models_dir, hours, profile, echo)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        for k, v in result.items():
            typer.echo(f"{k:28s} {v}")
