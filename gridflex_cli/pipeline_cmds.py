"""Commands that touch the warehouse and the Dagster pipeline: ``import``, ``fleet check``, ``demo``,
``backtest``, ``tick``, ``bootstrap`` (queries: :mod:`gridflex_cli.query_cmds`). Heavy imports stay
inside the functions."""

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


FLEET_OPTION = typer.Option(
    None, "--fleet", help="fleet TOML (env GRIDFLEX_FLEET; default: the built-in demo fleet)"
)
DELETE_OPTION = typer.Option(
    False,
    "--delete-missing",
    help="also DELETE stored hours of each series, inside the span the file covers, that the file "
    "lacks (reported in the 'deleted' column). Without it nothing stored is ever deleted.",
)


def _fleet_path(fleet: Path | None) -> str | None:
    value = fleet or os.environ.get("GRIDFLEX_FLEET") or None
    return str(value) if value else None


def _run_import(kind: str, files: list[Path], db: Path, delete_missing: bool, **options) -> None:
    """Shared by every `gridflex import` command: one transaction per file, a table per file and
    series, and a clear error naming the file, line and problem."""
    from tabulate import tabulate

    from pipelines.lib.ingest import import_files
    from sources.frames import SourceError
    from warehouse import Warehouse, WarehouseError

    t0 = time.perf_counter()
    try:
        table = import_files(Warehouse(db), kind, files, delete_missing=delete_missing, **options)
    except (SourceError, WarehouseError, OSError) as exc:
        _fail(str(exc))
    elapsed = time.perf_counter() - t0
    cols = [
        "file",
        "series",
        "rows",
        "first",
        "last",
        "estimated",
        "repaired",
        "inserted",
        "updated",
        "unchanged",
        "deleted",
    ]
    show = table[[c for c in cols if c in table]].copy()
    for c in ("first", "last"):
        show[c] = show[c].dt.strftime("%Y-%m-%d %H:%M")
    typer.echo(tabulate(show, headers="keys", tablefmt="github", showindex=False))
    for f, what in table.drop_duplicates("file")[["file", "what"]].itertuples(index=False):
        typer.echo(f"{f}: {what}")
    n_del = int(table["deleted"].sum()) if len(table) else 0
    typer.echo(
        f"\n{len(files)} file(s) into {db} in {elapsed:.1f} s: "
        f"{int(table.inserted.sum())} inserted, {int(table.updated.sum())} updated, "
        f"{int(table.unchanged.sum())} unchanged, {n_del} deleted"
        + ("" if delete_missing else " (nothing stored is deleted without --delete-missing)")
    )


@import_app.command("em-csv")
def import_em_csv(
    files: list[Path] = typer.Argument(..., help="Electricity Maps data-portal CSV exports"),
    db: Path = DB_OPTION,
    delete_missing: bool = DELETE_OPTION,
) -> None:
    """Load Electricity Maps CSV exports into staging.carbon_intensity (direct and lifecycle series).

    Idempotent: a second import changes nothing. A revised file updates the hours that changed; hours
    the file lacks stay as they are. Each file is one transaction; a bad file stops the import with a
    message naming it, the line and the problem, and files before it stay imported."""
    _run_import("em-csv", files, db, delete_missing)


@import_app.command("prices")
def import_prices(
    files: list[Path] = typer.Argument(..., help="price CSVs: Datetime, Price (<CUR>/MWh)"),
    zone: str | None = typer.Option(
        None,
        help="price zone (default: the file name's prefix, e.g. GB_electricity_prices_2022.csv)",
    ),
    tz: str | None = typer.Option(
        None,
        help="IANA zone of naive wall-clock times (e.g. Europe/Berlin), or UTC; default: known for "
        "the shared exports by file prefix, else UTC",
    ),
    db: Path = DB_OPTION,
    delete_missing: bool = DELETE_OPTION,
) -> None:
    """Load day-ahead price files into staging.prices (for fleets with sources.prices = "csv").
    DST glitches of wall-clock files are repaired and counted."""
    _run_import("prices", files, db, delete_missing, zone=zone, tz=tz)


@import_app.command("weather")
def import_weather(
    files: list[Path] = typer.Argument(
        ..., help="Open-Meteo historical CSVs (time, temperature_2m, ...)"
    ),
    site: str = typer.Option(..., help="the fleet site this weather is for"),
    utc_offset: float | None = typer.Option(
        None, help="the file's fixed UTC offset in hours (default: known for the shared exports)"
    ),
    db: Path = DB_OPTION,
    delete_missing: bool = DELETE_OPTION,
) -> None:
    """Load observed weather into staging.weather_observed (for fleets with sources.weather = "csv").
    These are observations: the carbon model then trains without weather inputs."""
    _run_import("weather", files, db, delete_missing, site=site, utc_offset=utc_offset)


@import_app.command("load")
def import_load(
    files: list[Path] = typer.Argument(..., help="telemetry CSVs"),
    site: str = typer.Option(..., help="the fleet site of this load"),
    series: str | None = typer.Option(None, help="inference class (one series per file)"),
    series_column: str | None = typer.Option(None, help="column naming each row's class"),
    value_column: str = typer.Option("value", help="value column"),
    time_column: str = typer.Option("timestamp", help="time column (naive = UTC unless --tz)"),
    unit: str = typer.Option("requests/h", help="what the value counts"),
    agg: str = typer.Option(
        "sum", help="sub-hourly samples to the hour: sum (counts) | mean (levels)"
    ),
    tz: str | None = typer.Option(None, help="IANA zone of naive wall-clock times"),
    fmt: str = typer.Option("telemetry", "--format", help="telemetry | helios | alibaba"),
    db: Path = DB_OPTION,
    delete_missing: bool = DELETE_OPTION,
) -> None:
    """Load inference demand into staging.load (for fleets with sources.load = "csv")."""
    _run_import(
        "load",
        files,
        db,
        delete_missing,
        site=site,
        series=series,
        series_col=series_column,
        value_col=value_column,
        time_col=time_column,
        unit=unit,
        agg=agg,
        tz=tz,
        format=fmt,
    )


@import_app.command("jobs")
def import_jobs(
    files: list[Path] = typer.Argument(
        ..., help="job-queue CSVs (job_id, power_mw, duration_h, ...)"
    ),
    fleet: Path | None = FLEET_OPTION,
    db: Path = DB_OPTION,
    delete_missing: bool = DELETE_OPTION,
) -> None:
    """Load a training-job queue into staging.jobs (for fleets with jobs.source = "table"); eligible
    sites must be the fleet's."""
    from mpc.fleet import FleetError, load_fleet

    try:
        known = list(load_fleet(_fleet_path(fleet)).sites)
    except FleetError as exc:
        _fail(str(exc))
    _run_import("jobs", files, db, delete_missing, known_sites=known)


@fleet_app.command("check")
def fleet_check(
    file: Path = typer.Argument(..., help="fleet TOML file"),
    db: Path | None = typer.Option(
        None, "--db", help="also check what the warehouse holds for the fleet's file sources"
    ),
    resolve_regions: bool = typer.Option(
        False,
        "--resolve-regions",
        help="look up each site's WattTime region from its lat/lon (needs WATTTIME_* credentials)",
    ),
) -> None:
    """Validate a fleet file; errors name the field and the bad value. With --db, also that the
    warehouse has what the fleet's file sources need (imported series, the planned emission factor)."""
    from mpc.fleet import FleetError, load_fleet

    if resolve_regions:
        _resolve_regions(file)
        return
    try:
        fleet = load_fleet(file)
    except FleetError as exc:
        _fail(str(exc))
    problems = []
    if db is not None:
        from pipelines.lib.fleet_check import warehouse_problems
        from warehouse import Warehouse

        problems = warehouse_problems(Warehouse(db), fleet)
    if problems:
        _fail(
            f"{file}: the warehouse {db} lacks what the fleet needs\n"
            + "\n".join(f"  {p}" for p in problems)
        )
    typer.echo(
        f"{file}: ok — fleet {fleet.name!r}: {len(fleet.sites)} sites ({', '.join(fleet.sites)}), "
        f"{len(fleet.classes)} inference classes ({', '.join(fleet.classes)}), jobs from "
        f"{fleet.jobs.source}, carbon from {fleet.sources.carbon} ({fleet.planning.carbon_signal}), "
        f"weather from {fleet.sources.weather}, prices from {fleet.sources.prices}, load from "
        f"{fleet.sources.load}" + (f"; warehouse {db} has what it needs" if db else "")
    )


def _resolve_regions(file: Path) -> None:
    import tomllib

    from sources.http import HttpError
    from sources.watttime import WattTimeClient

    try:
        data = tomllib.loads(Path(file).read_text(encoding="utf-8"))
        sites = data.get("sites") or {}
        with WattTimeClient.from_env() as client:
            typer.echo(f"# WattTime regions for {file} (paste into the site sections):")
            for name, s in sites.items():
                r = client.region_from_loc(float(s["lat"]), float(s["lon"]))
                typer.echo(
                    f"[sites.{name}]\nwatttime_region = {r['region']!r}   # {r['region_full_name']}"
                )
    except (HttpError, ValueError, KeyError, OSError, tomllib.TOMLDecodeError) as exc:
        _fail(str(exc))


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


MODELS_OPTION = typer.Option(
    Path(os.environ.get("GRIDFLEX_MODELS", ".gridflex/models")),
    "--models",
    help="checkpoint folder (env GRIDFLEX_MODELS)",
)
PROFILE_OPTION = typer.Option("fast", help="TFT training profile: tiny | fast | full")
VERBOSE_OPTION = typer.Option(False, "--verbose", help="show Dagster's own event stream too")


def _hour(value: str | None, name: str):
    import pandas as pd

    if value is None:
        return pd.Timestamp.now(tz="UTC").floor("h")
    try:
        t = pd.Timestamp(value)
    except ValueError:
        _fail(f"{name} {value!r} is not a time (e.g. '2022-04-01 10:00', UTC)")
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    if t != t.floor("h"):
        _fail(f"{name} {value!r} is not an hour start")
    return t


def _runner(db: Path, fleet: Path | None, models: Path, profile: str, verbose: bool):
    from pipelines.runner import Runner

    _dagster_home()
    return Runner(
        db=db,
        fleet_path=_fleet_path(fleet),
        models_dir=models,
        profile=profile,
        echo=typer.echo,
        log_level="DEBUG" if verbose else "CRITICAL",
    )


def _plans_table(db: Path, first, last) -> None:
    from tabulate import tabulate

    from warehouse import Warehouse

    runs = Warehouse(db).query(
        """select plan_hour, status, round(objective) as objective_usd, round(100 * mip_gap, 2) as gap_pct,
                  round(solve_s, 2) as solve_s, degraded, coalesce(degraded_reason, '-') as why,
                  array_to_string(jobs_started, ', ') as started
           from plans.runs where plan_hour >= ? and plan_hour <= ? order by plan_hour""",
        [first.to_pydatetime(), last.to_pydatetime()],
    )
    runs["plan_hour"] = runs.plan_hour.dt.strftime("%Y-%m-%d %H:%M")
    typer.echo(tabulate(runs, headers="keys", tablefmt="github", showindex=False, maxcolwidths=70))


@app.command("tick")
def tick(
    hour: str | None = typer.Option(None, help="the hour to plan (UTC; default: the current hour)"),
    first: str | None = typer.Option(None, "--from", help="first hour of a range (with --to)"),
    last: str | None = typer.Option(None, "--to", help="last hour of a range, planned in order"),
    restate: bool = typer.Option(
        False, help="re-plan hours later plans build on, removing those later plans"
    ),
    fresh_start: bool = typer.Option(
        False, help="start a new plan chain at the (first) hour from the fleet's initial state"
    ),
    fleet: Path | None = FLEET_OPTION,
    db: Path = DB_OPTION,
    models: Path = MODELS_OPTION,
    verbose: bool = VERBOSE_OPTION,
) -> None:
    """Run the hourly_tick job (ingest -> forecast -> plan -> dispatch) in process for one hour or a
    range — the job the hourly schedule runs, with the same checks and run records."""
    from pipelines.runner import RunFailed

    if (first is None) != (last is None):
        _fail("give both --from and --to, or --hour")
    a = _hour(first if first is not None else hour, "--from" if first else "--hour")
    b = _hour(last, "--to") if last is not None else a
    r = _runner(db, fleet, models, "fast", verbose)
    t0 = time.perf_counter()
    mds, run_ids = [], []

    def on_hour(t, result):
        mds.append(result.asset_materializations_for_node("mpc_plan")[0].metadata)
        run_ids.append(result.run_id[:8])

    try:
        r.tick(a, b, restate=restate, fresh_start=fresh_start, on_hour=on_hour)
    except (RunFailed, ValueError) as exc:
        _fail(str(exc))
    _plans_table(db, a, b)
    n = sum(md["hours_planned"].value for md in mds)
    same = sum(md["hours_unchanged"].value for md in mds)
    removed = sum(md["restated_later_plans"].value for md in mds)
    runs = run_ids[0] if len(run_ids) == 1 else f"{run_ids[0]} .. {run_ids[-1]}"
    typer.echo(
        f"\n{n} hour(s) in {time.perf_counter() - t0:.1f} s ({len(run_ids)} Dagster run(s) of "
        f"hourly_tick, one per hour: {runs}): {n - same} planned, {same} already planned from the "
        "same inputs (unchanged)"
        + (f"; {removed} later plan(s) removed by the restatement" if removed else "")
    )


@app.command("bootstrap")
def bootstrap(
    days: int = typer.Option(30, help="days of history to fetch before the hour"),
    hour: str | None = typer.Option(None, help="the first live hour (UTC; default: now)"),
    fleet: Path | None = FLEET_OPTION,
    db: Path = DB_OPTION,
    models: Path = MODELS_OPTION,
    profile: str = PROFILE_OPTION,
    verbose: bool = VERBOSE_OPTION,
) -> None:
    """A first live start: fetch `days` of history from the fleet's sources (the ingest assets over
    the range, one run), train the forecasters on it, then plan the hour with a fresh plan chain.
    After it, the hourly schedule carries on from the state it left."""
    from pipelines.runner import RunFailed

    t = _hour(hour, "--hour")
    r = _runner(db, fleet, models, profile, verbose)
    import pandas as pd

    start = t - pd.Timedelta(days=days)
    steps = [
        (
            f"[1/3] history {start:%Y-%m-%d %H:%M} .. {t:%Y-%m-%d %H:%M} UTC from the fleet's sources",
            lambda: r.ingest(start, t - pd.Timedelta(hours=1)),
        ),
        (
            f"[2/3] train the carbon and load forecasters on it ({profile} profile)",
            lambda: r.train(t),
        ),
        (
            f"[3/3] plan {t:%Y-%m-%d %H:%M} UTC, starting a new plan chain",
            lambda: r.tick(t, fresh_start=True),
        ),
    ]
    for title, fn in steps:
        typer.echo(title)
        tic = time.perf_counter()
        try:
            fn()
        except (RunFailed, ValueError) as exc:
            _fail(str(exc))
        typer.echo(f"      done in {time.perf_counter() - tic:.1f} s")
    _plans_table(db, t, t)
    typer.echo(
        "Now turn on hourly_tick_schedule (make dev -> Automation), or run `gridflex tick` "
        "every hour."
    )


@app.command("demo")
def demo(
    db: Path = DB_OPTION,
    hours: int = typer.Option(24, help="hourly plans to make, in sequence"),
    profile: str = PROFILE_OPTION,
    models_dir: Path = typer.Option(Path(".gridflex/models"), "--models", help="checkpoint folder"),
    verbose: bool = VERBOSE_OPTION,
    grid_stress: bool = typer.Option(
        False,
        "--grid-stress",
        help="instead: the grid-stress scenario (a grid operator's VTN on 127.0.0.1 caps a site's "
        "import and raises an emergency; the day planned with and without; `bench grid-event`)",
    ),
) -> None:
    """Run the main job on the built-in demo: ingest 3 weeks of the demo grid, train the carbon and load
    forecasters on it, then make `hours` hourly receding-horizon plans in sequence (one Dagster run of
    hourly_tick per hour: ingest -> forecast -> plan -> dispatch), refresh the marts, and show example queries.
    No network, no keys."""
    from pipelines.demo import run_demo
    from pipelines.runner import RunFailed

    _dagster_home()
    if grid_stress:
        from gridflex_cli.grid_cmds import print_report
        from pipelines.lib.grid_scenario import run_scenario

        where = Path(db).parent / "grid-stress"
        try:
            print_report(run_scenario(where, profile=profile, echo=typer.echo))
        except (RunFailed, RuntimeError) as exc:
            _fail(str(exc))
        typer.echo(f"\nWarehouses: {where}/stress.duckdb (with the events), {where}/calm.duckdb")
        return
    try:
        run_demo(
            db=db,
            hours=hours,
            profile=profile,
            models_dir=models_dir,
            echo=typer.echo,
            verbose=verbose,
        )
    except (RunFailed, RuntimeError) as exc:
        _fail(str(exc))


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
        "oracle,persistence,tft,static",
        help="comma-separated: oracle, persistence, tft, static (carbon_agnostic always runs); "
        "persistence@p90, tft@p90 plan the daily budget against the forecast's p90",
    ),
    profile: str = typer.Option("fast", help="TFT training profile: tiny | fast | full"),
    db: Path | None = typer.Option(
        None,
        "--db",
        help="a warehouse to store the results in (plans.backtests) and, for a fleet with "
        "jobs.source = 'table' or sources.load = 'csv', to read its job queue or demand from",
    ),
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
        from warehouse import Warehouse

        data = load_data(
            fleet,
            em_csv,
            t0,
            days,
            weather_files=weather,
            price_files=prices,
            wh=Warehouse(db) if db is not None else None,
        )
    except (FleetError, SourceError, ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
    for n in data.notes:
        echo(f"note: {n}")
    wanted = [p.strip() for p in policies.split(",") if p.strip()]
    bad = set(wanted) - {"oracle", "persistence", "tft", "static", "persistence@p90", "tft@p90"}
    if bad:
        _fail(f"unknown policies {sorted(bad)} (oracle, persistence, tft, static)")
    table, hourly, extras = run_backtest(
        fleet, data, policies=[*wanted, "carbon_agnostic"], profile=profile, echo=echo
    )
    keys = [
        "policy",
        "emissions",
        "cost",
        "missed_deadlines",
        "jobs_completed",
        "training_mwh",
        "g_per_useful_kwh",
        "savings_vs_agnostic_pct",
        "like_for_like_saving_pct",
        "share_of_oracle_savings",
        "budget_days_over",
        "budget_realised_over_t",
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
            table[keys + ["objective", "unserved_units"]].rename(
                columns={"like_for_like_saving_pct": "saving_per_useful_kwh_pct"}
            ),
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
            f"; served carbon forecaster ({extras['tft']['served']}) MAE "
            f"{extras['tft']['carbon_mae']:.1f} g/kWh (persistence "
            f"{extras['tft']['carbon_mae_persistence']:.1f}), train {extras['tft']['train_s']} s"
            if "tft" in extras
            else ""
        )
    )


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

    from pipelines.bench_tick import bench_tick as run

    echo = (lambda m: typer.echo(m, err=True)) if as_json else typer.echo
    result = run(db, models_dir, hours, profile, echo)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        for k, v in result.items():
            typer.echo(f"{k:28s} {v}")
