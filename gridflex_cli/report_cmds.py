"""``gridflex report``: the monthly location-based Scope 2 statement (:mod:`warehouse.reports`)."""

from __future__ import annotations

from pathlib import Path

import typer

from gridflex_cli.app import app
from gridflex_cli.pipeline_cmds import DB_OPTION, _fail


@app.command("report")
def report(
    month: str = typer.Option(..., "--month", help="the month, YYYY-MM (UTC)"),
    fmt: str = typer.Option("md", "--format", help="md (Markdown) or csv (one row per site)"),
    out: Path | None = typer.Option(None, "--out", help="write to this file instead of stdout"),
    db: Path = DB_OPTION,
) -> None:
    """Location-based Scope 2 for a month: per site the grid electricity, the hourly average emission
    factor used and the t CO2, the fleet total and its carbon efficiency (GHG Protocol; market-based
    is not computed and the report says so)."""
    from warehouse import Warehouse
    from warehouse.reports import scope2_markdown, scope2_month

    if fmt not in ("md", "csv"):
        _fail(f"--format {fmt!r}: use md or csv")
    if not Path(db).exists():
        _fail(f"{db}: no warehouse there (run `gridflex demo` or `gridflex bootstrap` first)")
    try:
        sites, totals = scope2_month(Warehouse(db), month)
    except ValueError as exc:
        _fail(str(exc))
    text = scope2_markdown(sites, totals) if fmt == "md" else sites.to_csv(index=False)
    if out is None:
        typer.echo(text, nl=False)
    else:
        Path(out).write_text(text)
        typer.echo(f"wrote {out}: {totals['scope2_location_t']:,.1f} t CO2 location-based Scope 2")
