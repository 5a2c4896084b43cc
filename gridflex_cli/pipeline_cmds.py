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
