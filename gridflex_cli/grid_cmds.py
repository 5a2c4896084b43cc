"""Grid events: ``gridflex bench grid-event`` (the grid-stress scenario) and ``gridflex ven serve``
(receive a VTN's pushed events and revise the hour in progress within seconds)."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import typer

from gridflex_cli.app import app, bench_app

ven_app = typer.Typer(
    help="The OpenADR 3 VEN: gridflex's side of a grid operator's VTN.", no_args_is_help=True
)
app.add_typer(ven_app, name="ven")


def print_report(report, echo=typer.echo) -> None:
    """The scenario's tables as the terminal shows them."""
    from tabulate import tabulate

    s = report.summary
    echo(
        f"\nimport at {report.site} against the operator's limit ({report.cap_mw} MW), with and "
        "without the events (committed hours, newest revision):"
    )
    echo(tabulate(report.hourly, headers="keys", tablefmt="github", showindex=False))
    echo(
        "\nresponse times (event received -> revised dispatch stored; and from the VTN's publication):"
    )
    echo(
        tabulate(
            report.responses, headers="keys", tablefmt="github", showindex=False, floatfmt=".2f"
        )
    )
    echo(
        f"\nlimit met in {s['limited_hours'] - s['hours_over_limit']} of {s['limited_hours']} hours"
        f" (max {s['max_over_limit_mw']} MW over); critical inference served "
        f"{s['critical_served_pct']} %; import reduced {s['import_reduced_vs_no_event_mwh']} MWh vs "
        f"the same hours without the events ({s['energy_reduced_vs_plan_in_force_mwh']} MWh vs the "
        f"plan in force before each event); training moved off the site "
        f"{s['training_moved_mwh']} MWh, inference {s['inference_moved_mwh']} MWh"
    )
    paused = (
        ", ".join(f"{j} (finished {v})" for j, v in s["paused_jobs_finished"].items()) or "none"
    )
    echo(
        f"batch jobs paused: {paused}; jobs completed {s['jobs_completed']} vs "
        f"{s['jobs_completed_without_event']} without the events, missed "
        f"{len(s['jobs_missed'])} vs {len(s['jobs_missed_without_event'])}"
    )
    echo(
        f"emissions {s['emissions_t']} vs {s['emissions_without_event_t']} t CO2 "
        f"({s['emissions_change_pct']:+} %), cost {s['cost_usd']:,} vs {s['cost_without_event_usd']:,} $ "
        f"({s['cost_change_pct']:+} %)"
    )


@bench_app.command("grid-event")
def grid_event(
    workdir: Path = typer.Option(None, help="where the two warehouses go (default: a temp dir)"),
    hours: int = typer.Option(38, help="hourly ticks from the demo's first planned hour"),
    site: str = typer.Option("sanjose", help="the site the operator caps"),
    profile: str = typer.Option("tiny", help="forecaster training profile (tiny | fast | full)"),
    out: Path = typer.Option(None, "--json", help="also write the report as JSON here"),
) -> None:
    """The grid-stress scenario on the demo fleet: an import cap at 50 % of the planned import for
    4 h at one site (published 1 h ahead), a grid emergency alert in it, and the cap extended while
    the push receiver is down — planned through the same Dagster jobs with and without the events.
    Prints import against the limit per hour, critical inference served, work moved and paused,
    emissions and cost against the same hours without the events, and the response times."""
    from pipelines.lib.grid_scenario import Scenario, run_scenario

    t = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gridflex-grid-event-") as tmp:
        report = run_scenario(
            workdir or Path(tmp),
            scenario=Scenario(hours=hours, site=site),
            profile=profile,
            echo=typer.echo,
        )
    print_report(report)
    typer.echo(f"\ndone in {time.perf_counter() - t:.0f} s")
    if out:
        out.write_text(
            json.dumps(
                {
                    "summary": report.summary,
                    "hourly": report.hourly.to_dict("records"),
                    "responses": report.responses.to_dict("records"),
                },
                indent=2,
                default=str,
            )
        )


@ven_app.command("serve")
def ven_serve(
    fleet: Path = typer.Option(..., help="fleet file with [grid_events] source = 'openadr3'"),
    db: Path = typer.Option(Path(".gridflex/gridflex.duckdb"), help="the warehouse"),
    port: int = typer.Option(8765, help="port of the push endpoint on 127.0.0.1"),
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    lp_only: bool = typer.Option(False, help="only the fast LP re-dispatch, no full re-plan"),
) -> None:
    """Receive the VTN's pushed event notifications at http://HOST:PORT/openadr/notifications
    (subscribe it with the fleet's grid_events.push_callback_url; the VTN must send the token in
    GRIDFLEX_OPENADR_PUSH_TOKEN), store them, and revise the hour in progress at once: the LP
    re-dispatch first, then the full re-plan. Ctrl-C stops."""
    import os

    from mpc.fleet import FleetError, load_fleet
    from pipelines.lib import grid_response as gr
    from pipelines.lib.grid_events import fleet_targets
    from sources.openadr import PUSH_TOKEN_ENV
    from sources.openadr_push import PushReceiver
    from warehouse import Warehouse

    try:
        f = load_fleet(fleet)
    except FleetError as exc:
        raise typer.BadParameter(str(exc)) from None
    if f.grid_events.source != "openadr3":
        raise typer.BadParameter(f"{fleet}: grid_events.source is not 'openadr3'")
    token = os.environ.get(PUSH_TOKEN_ENV, "")
    if len(token) < 8:
        typer.echo(
            f"error: set {PUSH_TOKEN_ENV} (at least 8 characters): the token the VTN sends",
            err=True,
        )
        raise typer.Exit(2)
    wh = Warehouse(db)
    respond = gr.push_responder(
        wh, f, kinds=("lp",) if lp_only else ("lp", "full"), echo=typer.echo
    )
    rec = PushReceiver(
        respond,
        bearer_token=token,
        site_of_target=fleet_targets(f),
        all_sites=list(f.sites),
        ven_name=f.grid_events.ven_name,
        host=host,
        port=port,
    ).start()
    typer.echo(f"listening at {rec.callback_url} (Ctrl-C stops)")
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        rec.stop()
