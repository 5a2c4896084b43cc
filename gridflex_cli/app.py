"""The ``gridflex`` command-line tool: one Typer app, sub-apps per area.

Command modules import the sub-apps from here and register commands on them; ``main.py`` imports every
command module so ``gridflex --help`` lists them. Keep heavy imports (torch, pyomo, dagster) inside the
command functions so ``gridflex --help`` stays fast.
"""

import typer

app = typer.Typer(
    help="gridflex: carbon-aware compute-power scheduling for AI data centres.",
    no_args_is_help=True,
    add_completion=False,
)
bench_app = typer.Typer(help="Benchmarks that print a table (or --json).", no_args_is_help=True)
import_app = typer.Typer(help="Import files into the warehouse.", no_args_is_help=True)
fleet_app = typer.Typer(help="Fleet configuration files.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
app.add_typer(import_app, name="import")
app.add_typer(fleet_app, name="fleet")
