"""Entry point of the ``gridflex`` console script."""

from gridflex_cli import (  # noqa: F401  (imported for their command registrations)
    audit_cmds,
    bench_forecast,
    bench_mpc,
    grid_cmds,
    pipeline_cmds,
    query_cmds,
    replay_cmds,
    report_cmds,
)
from gridflex_cli.app import app

__all__ = ["app"]

if __name__ == "__main__":
    app()
