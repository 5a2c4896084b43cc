"""``gridflex verify`` and ``gridflex explain``: read-only commands over ``plans.audit`` and the stored
plans. The logic is in :mod:`warehouse.audit` (verify) and :mod:`pipelines.lib.explain`; these commands parse
options and print."""

from __future__ import annotations

from pathlib import Path

import typer

from gridflex_cli.app import app
from gridflex_cli.pipeline_cmds import DB_OPTION as DB
from gridflex_cli.pipeline_cmds import _fail, _fleet_path
from gridflex_cli.pipeline_cmds import _hour as _hour_or_now


def _hour(value: str | None, name: str):
    """An hour start in UTC, or None when not given (no default of 'now' here)."""
    return None if value is None else _hour_or_now(value, name)


def _h(t) -> str:
    return f"{t:%Y-%m-%d %H:%M}"


def _warehouse(db: Path):
    from warehouse import Warehouse

    if not Path(db).exists():
        _fail(f"{db}: no warehouse (run `make demo` or pass --db)")
    return Warehouse(db)


@app.command("verify")
def verify(
    first: str | None = typer.Option(None, "--from", help="first audited hour to check (UTC)"),
    last: str | None = typer.Option(None, "--to", help="last audited hour to check (UTC)"),
    db: Path = DB,
) -> None:
    """Re-check each audited hour against the warehouse as it now is: the staging rows it was
    decided from (at its received_at cut-off), the forecasts and model checkpoints, the committed
    decision and the hash chain. Prints OK and the number of hours checked, or the first hour that no
    longer matches and what (exit code 1). Revisions made by a later ingest are reported, not failed."""
    from warehouse.audit import AuditError
    from warehouse.audit import verify as run

    lo, hi = _hour(first, "--from"), _hour(last, "--to")
    try:
        report = run(_warehouse(db), lo, hi)
    except AuditError as exc:
        _fail(str(exc))
    span = f"{_h(report.hours[0])} .. {_h(report.hours[-1])} UTC" if report.hours else ""
    notes = report.notes
    for n in (n for n in notes if n.kind in ("revised", "deleted", "unchecked")):
        typer.echo(f"note: {n}")
    arrived = [n for n in notes if n.kind == "arrived"]
    if arrived:
        typer.echo(
            f"note: {len(arrived)} input(s) of {len({n.hour for n in arrived})} hour(s) have rows "
            "that arrived after the decision (the rows planned on are unchanged)"
        )
    unaudited = [n for n in notes if n.kind == "not_audited"]
    if unaudited:
        typer.echo(
            f"note: {len(unaudited)} hour(s) planned before auditing began are not audited "
            f"({_h(unaudited[0].hour)} .. {_h(unaudited[-1].hour)} UTC)"
        )
    if not report.ok:
        bad = report.first_failure
        typer.secho(f"FAILED at {_h(bad.hour)} UTC", fg=typer.colors.RED, bold=True)
        for f in (f for f in report.failures if f.hour == bad.hour):
            typer.echo(f"  {f.what}: {f.message}")
        failed = report.failed_hours
        typer.echo(
            f"{len(report.hours)} audited hour(s) checked ({span}); {len(failed)} hour(s) do not "
            "match" + (f" (up to {_h(failed[-1])} UTC)" if len(failed) > 1 else "")
        )
        raise typer.Exit(code=1)
    if not report.hours:
        _fail("no audited hour in the range: nothing verified")
    revised = sum(n.kind in ("revised", "deleted") for n in notes)
    typer.secho(
        f"OK: {len(report.hours)} audited hour(s) checked ({span}): their inputs, forecasts and "
        "decisions are stored as decided and the hash chain holds"
        + (f" ({revised} later ingest revision(s) noted above)" if revised else ""),
        fg=typer.colors.GREEN,
    )


def _fmt(v, digits: int = 3) -> str:
    import math

    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:,.{digits}f}"


@app.command("explain")
def explain(
    hour: str = typer.Option(..., "--hour", help="the planned hour (UTC)"),
    job: str | None = typer.Option(None, "--job", help="a job id: its alternatives and the choice"),
    db: Path = DB,
    fleet: Path | None = typer.Option(
        None,
        "--fleet",
        help="fleet TOML (env GRIDFLEX_FLEET): adds the alternatives' cost with the fleet's carbon "
        "price",
    ),
    top: int = typer.Option(12, help="alternatives to list (the chosen one is always shown)"),
) -> None:
    """Why the plan at --hour did what it did. With --job: where and when the job could have run in
    that plan's window, each alternative priced one at a time (carbon and energy cost on the plan's
    own forecasts), next to what the plan chose. Without: a summary of the hour."""
    from tabulate import tabulate

    from pipelines.lib.explain import explain_hour, explain_job
    from warehouse.audit import AuditError

    t = _hour(hour, "--hour")
    wh = _warehouse(db)
    carbon_price = None
    path = _fleet_path(fleet)
    if path:
        from mpc.fleet import FleetError, load_fleet

        try:
            carbon_price = load_fleet(path).planning.carbon_price
        except FleetError as exc:
            _fail(str(exc))
    try:
        if job is None:
            _print_hour(explain_hour(wh, t), tabulate)
            return
        ex = explain_job(wh, t, job, carbon_price=carbon_price)
    except AuditError as exc:
        _fail(str(exc))
    j = ex.job
    typer.echo(
        f"job {job} in the plan of {_h(t)} UTC: {j['power_mw']:g} MW for {int(j['duration_h'])} h, "
        f"release {_h(j['release'])}, deadline {_h(j['deadline'])} UTC (must end by the end of "
        f"that hour), eligible sites {', '.join(j['eligible_sites'])}"
    )
    c = ex.chosen
    if c and c["start"] is not None:
        when = "committed: it starts in this hour" if c["committed"] else "planned, not committed"
        typer.echo(f"the plan chose: {c['site']} from {_h(c['start'])} UTC ({when})")
    elif ex.status == "running":
        typer.echo(f"the plan chose: nothing new — it was already running at {c['site']}")
    else:
        typer.echo(f"the plan chose: no start in this window ({ex.status.replace('_', ' ')})")
    alt = ex.alternatives
    if len(alt):
        typer.echo(
            f"\n{len(alt)} alternative(s) in the plan's window, each priced one at a time on the "
            "plan's own forecasts (carbon: the p50 issued at the hour; prices: the import prices "
            "the plan used; x the facility/IT overhead the plan had) — not re-optimised:"
        )
        shown = alt.head(top)
        if alt.chosen.any() and not shown.chosen.any():
            shown = alt[alt.index.isin(shown.index) | alt.chosen]
        rows = []
        for i, r in shown.iterrows():
            row = {
                "#": i + 1,
                "": "<- chosen" if r.chosen else ("best" if i == 0 else ""),
                "site": r.site,
                "start": _h(r.start),
                "end": _h(r.end),
                "h priced": int(r.hours_priced),
                "t CO2": _fmt(r.carbon_t),
                "$ energy": _fmt(r.cost_usd, 0),
            }
            if "cost_with_carbon_usd" in alt:
                row["$ + carbon price"] = _fmt(r.cost_with_carbon_usd, 0)
            row["t CO2/h"] = _fmt(r.carbon_t_per_h)
            row |= (
                {"Δ t": f"{r.d_carbon_t:+.3f}", "Δ $": f"{r.d_cost_usd:+,.0f}"}
                if r.complete
                else {"Δ t": "partial", "Δ $": "partial"}
            )
            rows.append(row)
        typer.echo(tabulate(rows, headers="keys", tablefmt="github", disable_numparse=True))
        if len(alt) > len(shown):
            typer.echo(f"... {len(alt) - len(shown)} more")
        ch, best = ex.chosen_row, ex.best_row
        if ch is not None and not ch["complete"]:
            typer.echo(
                f"\nthe chosen start runs past the plan's window: {int(ch['hours_priced'])} of its "
                f"{int(j['duration_h'])} h could be priced, so compare per hour: "
                f"{ch['carbon_t_per_h']:.3f} t CO2/h chosen vs {best['carbon_t_per_h']:.3f} t CO2/h "
                f"for the best {'complete ' if best['complete'] else ''}alternative ({best['site']} "
                f"from {_h(best['start'])}); the plan also charges what the job will still need "
                "after the window at the window's mean cost (terminal reservation)"
            )
        elif ch is not None:
            if ch["site"] == best["site"] and ch["start"] == best["start"]:
                typer.echo("\nthe chosen start is the lowest-carbon alternative")
            else:
                typer.echo(
                    f"\nchosen vs the lowest-carbon alternative ({best['site']} from "
                    f"{_h(best['start'])}): {ch['carbon_t'] - best['carbon_t']:+.3f} t CO2, "
                    f"{ch['cost_usd'] - best['cost_usd']:+,.0f} $ energy — the plan weighs energy "
                    "cost, the carbon price and budget, on-site generation, batteries, capacity and "
                    "the other jobs together, which pricing one job alone does not"
                )
    for n in ex.notes:
        typer.echo(f"note: {n}")


def _print_hour(s: dict, tabulate) -> None:
    r = s["run"]
    typer.echo(
        f"plan of {_h(s['hour'])} UTC: {r['status']} (gap {100 * (r['mip_gap'] or 0):.2f} %), "
        f"net benefit {_fmt(r['objective'], 0)} $ over its {int(r['horizon_h'])} h window, "
        f"expected {_fmt(r['expected_emissions_t'], 2)} t CO2 and {_fmt(r['expected_cost'], 0)} $ "
        "energy over the window"
    )
    typer.echo(f"forecasts: {r['forecast_policy']}")
    typer.echo("degraded: " + (f"yes — {r['degraded_reason']}" if r["degraded"] else "no"))
    if r.get("daily_budget_t") is not None or r.get("budget_left_t") is not None:
        typer.echo(
            f"carbon budget: daily {_fmt(r.get('daily_budget_t'), 1)} t, left at the hour "
            f"{_fmt(r.get('budget_left_t'), 2)} t, this window {_fmt(r.get('window_budget_t'), 2)} t,"
            f" planned {_fmt(r.get('budget_planned_t'), 2)} t, over {_fmt(r.get('budget_over_t'), 2)} t"
        )
    else:
        typer.echo("carbon budget: none")
    typer.echo(
        f"jobs started: {', '.join(s['jobs_started']) or '-'}; running: "
        f"{', '.join(s['jobs_running']) or '-'}; missed: {', '.join(s['jobs_missed']) or '-'}"
    )
    sites = s["sites"].rename(
        columns={
            "import_mw": "import MW",
            "export_mw": "export MW",
            "facility_mw": "facility MW",
            "carbon_g_kwh": "g/kWh",
            "emissions_t": "t CO2",
            "cost": "$",
        }
    )
    typer.echo("\ncommitted hour per site:")
    typer.echo(tabulate(sites, headers="keys", tablefmt="github", showindex=False, floatfmt=".3f"))
    a = s["audit"]
    if a:
        typer.echo(
            f"\naudit: decided {a['decided_at']:%Y-%m-%d %H:%M:%S} UTC, chain {a['chain_hash'][:16]}…"
            + (" (chain start)" if a["chain_start"] else "")
            + f", gridflex {a['code_version'] or '?'}"
            + (f" @ {a['git_commit'][:10]}" if a["git_commit"] else "")
            + (f", Dagster run {a['dagster_run_id']}" if a["dagster_run_id"] else "")
            + " — `gridflex verify` re-checks it"
        )
    else:
        typer.echo("\naudit: none for this hour (planned before auditing began)")
