"""Questions a person asks the warehouse, read-only: ``sql``, ``forecast``, ``best-window``.

Each opens one short read-only connection (:meth:`warehouse.Warehouse.reader`: waits politely while a
writer holds the lock) and prints a table, or CSV / JSON for programs (:mod:`gridflex_cli.tables`).
The reads are :mod:`pipelines.lib.queries`; the best-window logic is :mod:`mpc.best_window`.
"""

from __future__ import annotations

from pathlib import Path

import typer

from gridflex_cli.app import app
from gridflex_cli.pipeline_cmds import DB_OPTION, FLEET_OPTION, _fail, _fleet_path

FORMATS = ("table", "csv", "json")
JSON_OPTION = typer.Option(False, "--json", help="print JSON records only (notes go to stderr)")


def _need_db(db: Path) -> None:
    if not Path(db).exists():
        _fail(f"{db}: no warehouse yet (run `make demo` or pass --db)")


def _first_line(statement: str) -> str:
    line = next((ln.strip() for ln in statement.splitlines() if ln.strip()), "")
    return line.rstrip(";").rstrip()


@app.command("sql")
def sql(
    query: str = typer.Argument(
        ...,
        help="SQL to run read-only, e.g. 'select * from marts.decisions'; several statements "
        "separated by ';' run in order on one connection",
    ),
    db: Path = DB_OPTION,
    fmt: str = typer.Option(
        "table",
        "--format",
        help="table (for reading) | csv | json (records with native types; csv and json print "
        "only the last statement's result)",
    ),
    limit: int = typer.Option(
        50, help="rows to print per result in table format (csv and json print every row)"
    ),
) -> None:
    """Query the warehouse read-only and print the result (waits politely while a writer holds the
    lock).

    Several statements run in order on one read-only connection (so `SET ...; SELECT ...` works):
    in table format each result follows the statement's first line, results separated by a blank
    line; csv and json print the last statement's result only, so their shape does not depend on
    how many statements came before. Lists print as lists, timestamps as ISO 8601 in UTC; JSON is
    a list of records with native types (NULL and NaN as null). What a marts column means:
    `gridflex sql "select table_name, column_name, comment from duckdb_columns() where
    schema_name = 'marts'"`."""
    import duckdb

    from gridflex_cli.tables import Result, format_csv, format_json, format_table
    from warehouse import Warehouse, WarehouseError

    if fmt not in FORMATS:
        _fail(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    _need_db(db)
    last = None
    try:
        with Warehouse(db).reader() as con:
            statements = con.extract_statements(query)
            if not statements:
                _fail("no SQL statement given")
            for i, st in enumerate(statements):
                try:
                    last = Result.from_cursor(con.execute(st.query))
                except duckdb.Error as exc:
                    where = (
                        f"statement {i + 1} of {len(statements)} ({_first_line(st.query)}): "
                        if len(statements) > 1
                        else ""
                    )
                    _fail(f"{where}{exc}")
                if fmt == "table":
                    if len(statements) > 1:
                        typer.echo(("\n" if i else "") + _first_line(st.query))
                    typer.echo("(no result)" if last is None else format_table(last, limit))
    except (duckdb.Error, WarehouseError) as exc:  # a statement that does not parse; the lock
        _fail(str(exc))
    if fmt == "csv":
        if last is not None:
            typer.echo(format_csv(last))
    elif fmt == "json":
        typer.echo(format_json(last))


@app.command("forecast")
def forecast(
    site: str = typer.Option(
        ...,
        "--site",
        help="the series: a site (--target carbon) or an inference class (--target load)",
    ),
    target: str = typer.Option("carbon", help="carbon (grid intensity) | load (inference demand)"),
    as_json: bool = JSON_OPTION,
    db: Path = DB_OPTION,
) -> None:
    """The latest served forecast of a site's grid carbon intensity (or of an inference class's
    demand): each hour's p50 with its p10-p90 band, the model that issued it and whether it is
    degraded (persistence), from forecasts.carbon / forecasts.load."""
    import pandas as pd

    from gridflex_cli.tables import Result, format_json, format_table
    from pipelines.lib.queries import UNIT, forecast_series, latest_forecasts
    from warehouse import Warehouse

    if target not in UNIT:
        _fail(f"--target {target!r}: use carbon or load")
    _need_db(db)
    wh = Warehouse(db)
    df = latest_forecasts(wh, target, [site])
    what, whats = ("site", "sites") if target == "carbon" else ("inference class", "classes")
    if df.empty:
        known = forecast_series(wh, target)
        _fail(
            f"no {target} forecast for {what} {site!r} in {db}; "
            + (
                f"{whats} with a {target} forecast: {', '.join(known)}"
                if known
                else f"no {target} forecast at all yet (run `gridflex demo` or `gridflex tick`)"
            )
        )
    df["lead_h"] = ((df["target_time"] - df["issued_at"]) / pd.Timedelta(hours=1)).astype(int)
    df["band"] = df["p90"] - df["p10"]
    if as_json:
        typer.echo(format_json(Result.from_frame(df.assign(target=target, unit=UNIT[target]))))
        return
    first = df.iloc[0]
    state = (
        f"degraded: {first.degraded_reason or 'persistence'}"
        if bool(df["degraded"].any())
        else "not degraded"
    )
    typer.echo(
        f"{target} forecast for {what} {site}, issued {first.issued_at:%Y-%m-%d %H:%M} UTC by "
        f"{first.model} ({state}); {len(df)} h, {UNIT[target]}"
    )
    show = df[["target_time", "lead_h", "p10", "p50", "p90", "band"]].rename(
        columns={"target_time": "hour", "band": "p90-p10"}
    )
    typer.echo(format_table(Result.from_frame(show)))


@app.command("best-window")
def best_window(
    hours: int = typer.Option(..., help="length of the block of load (h)"),
    mw: float = typer.Option(..., help="IT power of the block (MW)"),
    sites: str | None = typer.Option(
        None, help="comma-separated sites to consider (default: every fleet site with a forecast)"
    ),
    by: str = typer.Option("carbon", help="rank by carbon (least t CO2) | cost (least $)"),
    quantile: str = typer.Option(
        "p50", help="carbon-intensity quantile: p50 (expected) | p90 (a dirty-grid case)"
    ),
    as_json: bool = typer.Option(
        False, "--json", help="print every window (ranked, then the infeasible) as JSON records"
    ),
    db: Path = DB_OPTION,
    fleet: Path | None = FLEET_OPTION,
) -> None:
    """When and where to run MW for HOURS hours: every start hour in each site's latest carbon
    forecast, with the expected emissions (IT power x cooling overhead x intensity), the expected
    cost at stored prices, and whether the current plan leaves the IT headroom for it. Prints the
    best window and the next five (see mpc/best_window.py for the equation and what is included)."""
    from gridflex_cli.tables import Result, format_json, format_table
    from mpc.best_window import rank_windows, site_limits
    from mpc.fleet import FleetError, load_fleet
    from pipelines.lib.queries import best_window_inputs, forecast_series
    from warehouse import Warehouse

    _need_db(db)
    try:
        fl = load_fleet(_fleet_path(fleet))
    except FleetError as exc:
        _fail(str(exc))
    wanted = [s.strip() for s in sites.split(",") if s.strip()] if sites else None
    unknown = [s for s in wanted or [] if s not in fl.sites]
    if unknown:
        _fail(
            f"unknown site(s) {', '.join(unknown)}: the fleet {fl.name!r} has "
            f"{', '.join(fl.sites)} (pass --fleet for another fleet file)"
        )
    wh = Warehouse(db)
    have = forecast_series(wh, "carbon")
    names = [s for s in (wanted or list(fl.sites)) if s in have]
    notes = []
    if not names:
        _fail(
            f"no carbon forecast in {db} for {', '.join(wanted or fl.sites)}; "
            + (f"sites with one: {', '.join(have)}" if have else "none at all yet (run a tick)")
        )
    if wanted and len(names) < len(wanted):
        notes.append(f"no carbon forecast for {', '.join(sorted(set(wanted) - set(names)))}")
    inputs = best_window_inputs(wh, fl, names)
    if inputs["planned"].empty:
        notes.append("no plan in the warehouse: headroom = IT capacity - base load")
    try:
        ranked = rank_windows(
            inputs["carbon"],
            site_limits(fl, names),
            hours=hours,
            mw=mw,
            by=by,
            quantile=quantile,
            planned=inputs["planned"],
            prices=inputs["prices"],
        )
    except ValueError as exc:
        _fail(str(exc))
    notes += ranked.notes
    if as_json:
        typer.echo(format_json(Result.from_frame(ranked.windows)))
        for n in notes:
            typer.echo(f"note: {n}", err=True)
        return
    w = ranked.windows
    if w.empty:
        _fail(
            f"no window of {hours} h fits in the latest carbon forecasts of {', '.join(names)} "
            f"(their horizon: {inputs['carbon'].groupby('site').size().max()} h)"
        )
    best = ranked.best
    head = f"{mw:g} MW for {hours} h, by {by} on the {quantile} carbon forecast"
    if best is None:
        _fail(
            f"{head}: every window is over the headroom the current plan leaves; e.g. "
            f"{w.site[0]} from {w.start[0]:%Y-%m-%d %H:%M} UTC: {w.reason[0]}"
        )
    plan = inputs["planned"]
    typer.echo(
        f"Best window for {head} (forecasts issued {best.issued_at:%Y-%m-%d %H:%M} UTC"
        + (f", plan of {plan.plan_hour.iloc[0]:%Y-%m-%d %H:%M} UTC" if not plan.empty else "")
        + "):"
    )
    cost = "no stored price" if best.cost != best.cost else f"${best.cost:,.0f}"
    typer.echo(
        f"  {best.site} {best.start:%Y-%m-%d %H:%M} .. {best.end:%Y-%m-%d %H:%M} UTC: "
        f"{best.emissions_t:.2f} t CO2, {cost}, mean {best.carbon_g_kwh:.0f} g CO2/kWh x PUE "
        f"{best.pue:.2f}, headroom >= {best.min_headroom_mw:.1f} MW"
    )
    here = ranked.feasible[ranked.feasible.site == best.site].sort_values("start").iloc[0]
    if here.start != best.start:  # what waiting buys, in the quantity ranked by
        key, unit = ("emissions_t", "t CO2") if by == "carbon" else ("cost", "$")
        saved = here[key] - best[key]
        typer.echo(
            f"  vs the earliest feasible start there, {here.start:%Y-%m-%d %H:%M} UTC: "
            f"{here[key]:,.2f} {unit}; waiting saves {saved:,.2f} {unit} "
            f"({100 * saved / here[key]:.0f} %)"
        )
    cols = ["rank", "site", "start", "end", "emissions_t", "cost", "carbon_g_kwh", "pue"]
    cols.append("min_headroom_mw")
    typer.echo("\nBest and the next 5:")
    typer.echo(format_table(Result.from_frame(ranked.feasible.head(6)[cols])))
    if notes:
        typer.echo("")
    for n in notes:
        typer.echo(f"note: {n}")
    bad = w[~w.feasible]
    if not bad.empty:
        typer.echo(
            f"  excluded, e.g. {bad.site.iloc[0]} from {bad.start.iloc[0]:%Y-%m-%d %H:%M} UTC: "
            f"{bad.reason.iloc[0]}"
        )
