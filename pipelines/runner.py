"""Run the code location's own jobs in process: what `gridflex tick`, `bootstrap`, `replay` and `demo`
use, so a command-line run is the same Dagster job (same assets, same checks, same run records in the
instance `dagster dev` shows) as a scheduled tick — only without the multiprocess executor's
per-step subprocesses.

- :meth:`Runner.tick`: the ``hourly_tick`` job for one hour or a range (one run per hour, in order).
- :meth:`Runner.ingest`: the ingest assets over a range (a first live start's history backfill).
- :meth:`Runner.train`: the ``retrain_models`` job (carbon and load models on data before an hour).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import pandas as pd

from pipelines.definitions import build_defs
from pipelines.defs.ingest.assets import INGEST_ASSETS
from pipelines.defs.resources import FleetResource, ModelStoreResource, WarehouseResource

HOUR = pd.Timedelta(hours=1)


def partition_key(t: pd.Timestamp) -> str:
    return pd.Timestamp(t).strftime("%Y-%m-%d-%H:%M")


class RunFailed(RuntimeError):
    """A run that did not succeed; the message is the failing step's own description."""


@dataclass
class Runner:
    """In-process runs against one warehouse, fleet and model store."""

    db: Path
    fleet_path: str | None = None
    models_dir: Path = Path(".gridflex/models")
    profile: str = "fast"
    max_model_age_hours: int = 24 * 8
    instance: dg.DagsterInstance | None = None
    #: Dagster's console log level for these runs: the CLI prints its own progress and errors, so
    #: only CRITICAL by default (its DEBUG stream is for `--verbose`)
    log_level: str = "CRITICAL"
    echo: Callable[[str], None] = print
    resources: dict = field(init=False)

    def __post_init__(self) -> None:
        self.resources = {
            "warehouse": WarehouseResource(path=str(self.db)),
            "fleet": FleetResource(path=self.fleet_path),
            "models": ModelStoreResource(
                directory=str(self.models_dir),
                profile=self.profile,
                max_model_age_hours=self.max_model_age_hours,
            ),
        }
        self.defs = build_defs(self.resources)
        if self.instance is None:
            self.instance = (
                dg.DagsterInstance.get()
                if os.environ.get("DAGSTER_HOME")
                else dg.DagsterInstance.ephemeral()
            )

    @property
    def fleet(self):
        return self.resources["fleet"].load()

    def _config(self, ops: dict | None = None) -> dict:
        cfg: dict = {"loggers": {"console": {"config": {"log_level": self.log_level}}}}
        if ops:
            cfg["ops"] = ops
        return cfg

    def _range_tags(self, first: pd.Timestamp, last: pd.Timestamp) -> dict:
        return {
            "dagster/asset_partition_range_start": partition_key(first),
            "dagster/asset_partition_range_end": partition_key(last),
        }

    def _check(self, result, what: str):
        failed = [
            e
            for e in result.get_asset_check_evaluations()
            if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR
        ]
        if failed:
            why = "; ".join(
                f"{e.check_name}"
                + (f" ({e.metadata['problem'].value})" if "problem" in e.metadata else "")
                for e in failed
            )
            raise RunFailed(f"{what}: blocking check(s) failed: {why}")
        if not result.success:
            raise RunFailed(f"{what}: {failure_message(result)}")
        return result

    def tick(
        self,
        first: pd.Timestamp,
        last: pd.Timestamp | None = None,
        *,
        restate: bool = False,
        fresh_start: bool = False,
        tags: dict | None = None,
        raise_on_error: bool = True,
        on_hour: Callable[[pd.Timestamp, object], None] | None = None,
    ):
        """The ``hourly_tick`` job (ingest → forecast → plan → dispatch) for ``first`` or, with
        ``last``, for every hour ``first..last`` in order — one single-partition run per hour, so each
        hourly partition carries its own metadata, plot and check results in Dagster (a ranged run
        would give every partition the last hour's). ``restate``/``fresh_start`` apply to the first
        hour; ``on_hour(t, result)`` is called after each hour. Returns the last hour's result; a
        failing hour stops the range (later hours build on it)."""
        job = self.defs.resolve_job_def("hourly_tick")
        hours = pd.date_range(
            pd.Timestamp(first), pd.Timestamp(last if last is not None else first), freq="h"
        )
        if len(hours) == 0:
            raise ValueError(f"empty range: {first} .. {last}")
        result = None
        for i, t in enumerate(hours):
            ops = {
                "mpc_plan": {
                    "config": {"restate": restate and i == 0, "fresh_start": fresh_start and i == 0}
                }
            }
            run_tags = {"gridflex/command": "tick", **(tags or {})}
            if len(hours) > 1:
                run_tags["gridflex/range"] = (
                    f"{partition_key(hours[0])}..{partition_key(hours[-1])}"
                )
            result = job.execute_in_process(
                run_config=self._config(ops),
                instance=self.instance,
                tags=run_tags,
                raise_on_error=False,
                partition_key=partition_key(t),
            )
            if raise_on_error:
                self._check(result, f"hourly_tick {partition_key(t)}")
            if on_hour is not None:
                on_hour(t, result)
            if not result.success:
                break
        return result

    def respond(self, hour: pd.Timestamp, *, kind: str = "full", tags: dict | None = None):
        """The ``grid_response`` job for ``hour`` (what the grid-event sensor launches): poll the VTN,
        store its events, revise the hour with them (``kind``: ``full`` or ``lp``)."""
        job = self.defs.resolve_job_def("grid_response")
        result = job.execute_in_process(
            run_config=self._config({"dispatch_revision": {"config": {"kind": kind}}}),
            instance=self.instance,
            tags={"gridflex/command": "respond", **(tags or {})},
            raise_on_error=False,
            partition_key=partition_key(hour),
        )
        return self._check(result, f"grid_response {partition_key(hour)}")

    def ingest(self, first: pd.Timestamp, last: pd.Timestamp, tags: dict | None = None):
        """The ingest assets over the hours ``first..last`` in one run (a history backfill)."""
        result = dg.materialize(
            INGEST_ASSETS,
            resources=self.resources,
            instance=self.instance,
            tags={"gridflex/command": "ingest", **self._range_tags(first, last), **(tags or {})},
            run_config=self._config(),
            raise_on_error=False,
        )
        return self._check(result, f"ingest {partition_key(first)} .. {partition_key(last)}")

    def restate(self, hour: pd.Timestamp, tags: dict | None = None):
        """Materialize ``dispatch`` for ``hour`` again: it re-states the committed hours whose actuals
        have arrived since (:func:`pipelines.lib.plan.restate_dispatch`) and advances the
        carbon-agnostic counterfactual over them — what the next tick would do, without planning."""
        from pipelines.defs.plan.assets import dispatch

        result = dg.materialize(
            [dispatch],
            partition_key=partition_key(hour),
            resources=self.resources,
            instance=self.instance,
            run_config=self._config(),
            tags={"gridflex/command": "restate", **(tags or {})},
            raise_on_error=False,
        )
        return self._check(result, f"dispatch {partition_key(hour)} (restatement)")

    def marts(self, tags: dict | None = None):
        """Refresh the ``marts`` views asset."""
        from pipelines.defs.plan.assets import marts

        result = dg.materialize(
            [marts],
            resources=self.resources,
            instance=self.instance,
            run_config=self._config(),
            tags={"gridflex/command": "marts", **(tags or {})},
            raise_on_error=False,
        )
        return self._check(result, "marts")

    def train(self, train_end: pd.Timestamp, history_days: int = 90, tags: dict | None = None):
        """The ``retrain_models`` job on data before ``train_end``; its progress (what is trained, each
        epoch's validation loss) goes to :attr:`echo` while it runs."""
        job = self.defs.resolve_job_def("retrain_models")
        cfg = {"train_end": pd.Timestamp(train_end).isoformat(), "history_days": history_days}
        with _progress_to(self.echo, "pipelines.lib.forecast", "forecasting.tft"):
            result = job.execute_in_process(
                run_config=self._config(
                    {"carbon_model": {"config": cfg}, "load_model": {"config": cfg}}
                ),
                instance=self.instance,
                tags={"gridflex/command": "train", **(tags or {})},
                raise_on_error=False,
            )
        return self._check(result, f"retrain_models on data before {partition_key(train_end)}")


class _Echo(logging.Handler):
    def __init__(self, echo: Callable[[str], None]):
        super().__init__(logging.INFO)
        self.echo = echo

    def emit(self, record: logging.LogRecord) -> None:
        self.echo("      " + record.getMessage())


@contextlib.contextmanager
def _progress_to(echo: Callable[[str], None], *loggers: str):
    """While the block runs, INFO messages of ``loggers`` (our own libraries' progress, not Dagster's
    stream) go to ``echo``."""
    handler = _Echo(echo)
    saved = []
    for name in loggers:
        lg = logging.getLogger(name)
        saved.append((lg, lg.level))
        lg.setLevel(logging.INFO)
        lg.addHandler(handler)
    try:
        yield
    finally:
        for lg, level in saved:
            lg.removeHandler(handler)
            lg.setLevel(level)


def failure_message(result) -> str:
    """Each failing step's own message (a dg.Failure's description, an error's text), joined."""
    out = []
    for event in result.all_events:
        if not event.is_step_failure:
            continue
        data = event.step_failure_data
        if data.user_failure_data is not None and data.user_failure_data.description:
            msg = data.user_failure_data.description
        elif data.error is not None:
            cause = data.error
            while cause.cause is not None:
                cause = cause.cause
            msg = f"{cause.cls_name}: {cause.message.strip()}"
        else:
            continue
        out.append(f"[{event.step_key}] {msg}")
    return " | ".join(out) or "the run failed (see the Dagster run's events)"
