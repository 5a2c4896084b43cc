"""Commands that touch the warehouse and the Dagster pipeline: ``import``, ``fleet check``, ``demo``,
``backtest``. Heavy imports stay inside the functions."""

from __future__ import annotations

import os
import time
from pathlib import Path

import typer

from gridflex_cli.app import app, fleet_app, import_app

DB_OPTION = typer.Option(
    Path(os.environ.get("GRIDFLEX_DB", ".gridflex/gridflex.duckdb")), "--db",
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
    show = table[["file", "series", "hours", "estimated", "repaired", "inserted", "updated", "unchanged"]]
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
