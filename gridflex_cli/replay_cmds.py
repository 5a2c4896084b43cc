"""``gridflex replay-server``: serve recorded data as the Electricity Maps, WattTime and Open-Meteo
APIs on 127.0.0.1, at a replay clock, until Ctrl-C (see :mod:`sources.replay`).

Heavy imports (pandas, uvicorn, the replay package) stay inside the command so ``gridflex --help``
stays fast.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import typer

from gridflex_cli.app import app

#: Flags that take several values each (``--em-csv a.csv b.csv``), like ``gridflex backtest``.
MULTI = ("--em-csv", "--weather", "--watttime")

EPILOG = """\
Recordings (each flag takes one or more values, up to the next flag):

  --em-csv FILE...            Electricity Maps data-portal exports (zone = the file's Zone Id)

  --weather NAME=LAT,LON[,OFFSET]:FILE[,FILE...] ...
                              Open-Meteo historical CSVs for one location; OFFSET is the files'
                              fixed UTC offset in hours (UTC = time - offset); omitted, it is taken
                              from the folder name (US-CAL-CISO -7, DE-LU +1, GB 0)

  --watttime REGION=LAT,LON:FILE ...
                              MOER CSV in lbs_co2_per_mwh: a time column (point_time, datetime, ts
                              or time; UTC) and a value column (value or moer)

Example:

  gridflex replay-server --clock 2022-04-01T00:05Z
      --em-csv ../shared/data/electricitymaps/GB_2022_hourly.csv
      --weather london=51.51,-0.13,0:../shared/data/weather/GB/2022.csv

Drive it while it runs: POST /replay/clock {"now": "..."}, POST /replay/faults {...},
GET /replay/status.
"""


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _fail(msg: str) -> None:
    typer.secho(f"error: {msg}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


def split_multi(args: list[str], flags: tuple[str, ...] = MULTI) -> dict[str, list[str]]:
    """``--em-csv a.csv b.csv --weather spec``: each flag takes the values up to the next flag."""
    out: dict[str, list[str]] = {f: [] for f in flags}
    current = None
    for a in args:
        if a in flags:
            current = a
        elif a.startswith("--"):
            raise ValueError(f"unknown option {a}")
        elif current is None:
            raise ValueError(f"{a}: put it after one of {', '.join(flags)}")
        else:
            out[current].append(a)
    return out


def _floats(text: str, spec: str, n: tuple[int, ...]) -> list[float]:
    try:
        values = [float(x) for x in text.split(",")]
    except ValueError:
        raise ValueError(f"{spec!r}: {text!r} are not numbers") from None
    if len(values) not in n:
        raise ValueError(f"{spec!r}: expected {' or '.join(map(str, n))} numbers before ':'")
    return values


def parse_weather_spec(spec: str) -> tuple[str, tuple[float, float, list[Path], float]]:
    """``NAME=LAT,LON[,OFFSET]:FILE[,FILE...]`` → ``(name, (lat, lon, files, offset))``."""
    from sources.weather_csv import SHARED_WEATHER_OFFSETS

    name, eq, rest = spec.partition("=")
    coords, colon, files_text = rest.partition(":")
    if not eq or not colon or not name or not files_text:
        raise ValueError(f"{spec!r}: expected NAME=LAT,LON[,OFFSET]:FILE[,FILE...]")
    values = _floats(coords, spec, (2, 3))
    files = [Path(f) for f in files_text.split(",") if f]
    if len(values) == 3:
        offset = values[2]
    else:
        folder = files[0].parent.name
        if folder not in SHARED_WEATHER_OFFSETS:
            raise ValueError(
                f"{spec!r}: give the UTC offset (NAME=LAT,LON,OFFSET:...); folder {folder!r} is not "
                f"one of {sorted(SHARED_WEATHER_OFFSETS)}"
            )
        offset = SHARED_WEATHER_OFFSETS[folder]
    return name, (values[0], values[1], files, offset)


def parse_watttime_spec(spec: str) -> tuple[str, tuple[float, float, Path]]:
    """``REGION=LAT,LON:FILE`` → ``(region, (lat, lon, file))``."""
    region, eq, rest = spec.partition("=")
    coords, colon, file = rest.partition(":")
    if not eq or not colon or not region or not file:
        raise ValueError(f"{spec!r}: expected REGION=LAT,LON:FILE")
    lat, lon = _floats(coords, spec, (2,))
    return region, (lat, lon, Path(file))


@app.command(
    "replay-server",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    epilog=EPILOG,
)
def replay_server(
    ctx: typer.Context,
    clock: str = typer.Option(..., help="replay 'now' (UTC ISO, e.g. 2022-04-01T00:05Z)"),
    follow_wall_clock: bool = typer.Option(
        False, "--follow-wall-clock", help="advance the clock with wall time from the start"
    ),
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8765, help="port (0: any free port)"),
    em_tier: str = typer.Option("paid", help="Electricity Maps plan to imitate: free | paid"),
    wt_subscription: bool = typer.Option(
        True, help="WattTime subscription (without: only CAISO_NORTH answers data)"
    ),
    seed: int = typer.Option(0, help="seed of forecast errors, estimates and random nulls"),
    em_token: str = typer.Option(
        "replay-token", envvar="GRIDFLEX_REPLAY_EM_TOKEN", help="EM token the replay accepts"
    ),
    wt_username: str = typer.Option(
        "replay", envvar="GRIDFLEX_REPLAY_WT_USERNAME", help="WattTime user the replay accepts"
    ),
    wt_password: str = typer.Option(
        "replay-password",
        envvar="GRIDFLEX_REPLAY_WT_PASSWORD",
        help="WattTime password the replay accepts",
    ),
) -> None:
    """Serve recorded data as the Electricity Maps v3, WattTime v3 and Open-Meteo APIs at a replay
    clock (no network), until Ctrl-C. Prints the base URLs and the environment to export."""
    from sources.frames import SourceError
    from sources.http import to_utc
    from sources.replay import ReplayData, ReplayServer

    if em_tier not in ("free", "paid"):
        _fail(f"--em-tier must be free or paid, got {em_tier!r}")
    try:
        to_utc(clock, "--clock")
        multi = split_multi(list(ctx.args))
        weather = dict(parse_weather_spec(s) for s in multi["--weather"])
        watttime = dict(parse_watttime_spec(s) for s in multi["--watttime"])
    except ValueError as exc:
        _fail(str(exc))
    em_csv = [Path(p) for p in multi["--em-csv"]]
    if not (em_csv or weather or watttime):
        _fail("nothing to serve: give --em-csv, --weather and/or --watttime")
    missing = [
        str(p)
        for p in [
            *em_csv,
            *(f for w in weather.values() for f in w[2]),
            *(w[2] for w in watttime.values()),
        ]
        if not Path(p).is_file()
    ]
    if missing:
        _fail(f"file(s) not found: {', '.join(missing)}")
    t0 = time.perf_counter()
    try:
        data = ReplayData.from_files(em_csv=em_csv, weather=weather, watttime=watttime)
    except (SourceError, ValueError) as exc:
        _fail(str(exc))
    server = ReplayServer(
        data,
        clock,
        em_token=em_token,
        em_tier=em_tier,
        wt_username=wt_username,
        wt_password=wt_password,
        wt_subscription=wt_subscription,
        seed=seed,
        host=host,
        port=port,
        follow_wall_clock=follow_wall_clock,
    )
    try:
        server.start()
    except RuntimeError as exc:
        _fail(f"{exc} (is port {port} in use? try --port 0)")
    spans = data.spans()
    typer.echo(f"replay server on {server.url} (loaded in {time.perf_counter() - t0:.1f} s)")
    typer.echo(
        f"clock {server.clock.isoformat()}"
        + (" (following wall time)" if follow_wall_clock else "")
    )
    for api, items in spans.items():
        if items:
            typer.echo(f"  {api}: {', '.join(items)}")
    typer.echo(f"Electricity Maps base URL: {server.em_base_url}")
    typer.echo(f"WattTime base URL:         {server.wt_base_url}")
    for k, v in server.openmeteo_urls.items():
        typer.echo(f"Open-Meteo {k}: {v}")
    typer.echo("\nexport these (the token and password are the replay's own, valid only here):")
    for k, v in server.env().items():
        typer.echo(f"export {k}={v}")
    typer.echo(
        f'\ncontrol: POST {server.url}/replay/clock {{"now": "..."}}, '
        f"GET {server.url}/replay/status. Ctrl-C to stop."
    )
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops it as cleanly as Ctrl-C
    try:
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        typer.echo("stopping")
    finally:
        server.stop()


REPLAY_MULTI = ("--em-csv", "--weather", "--prices", "--watttime")


@app.command(
    "replay",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def replay(
    ctx: typer.Context,
    fleet: Path = typer.Option(
        ...,
        "--fleet",
        help="fleet TOML with API sources (Electricity Maps "
        "or WattTime, Open-Meteo); prices may be csv (--prices)",
    ),
    start: str = typer.Option(..., help="first live hour (UTC), e.g. 2022-04-01"),
    days: float = typer.Option(7, help="days to run hour by hour"),
    history_days: int = typer.Option(30, help="history fetched at the first live start"),
    db: Path = typer.Option(
        Path(".gridflex/replay.duckdb"), "--db", help="the replay's own warehouse (recreated)"
    ),
    models: Path = typer.Option(Path(".gridflex/replay-models"), "--models"),
    profile: str = typer.Option("fast", help="TFT training profile: tiny | fast | full"),
    retrain: str = typer.Option("daily", help="daily (as retrain_schedule) | never"),
    em_plan: str | None = typer.Option(
        None, help="replay the Electricity Maps free or paid plan (default: the fleet's)"
    ),
    seed: int = typer.Option(0, help="seed of the replayed forecasts' errors"),
    as_json: bool = typer.Option(False, "--json", help="print JSON only"),
    verbose: bool = typer.Option(False, "--verbose", help="show Dagster's own event stream"),
) -> None:
    """Run the real hourly path through Dagster over recorded data: the fleet's API sources answered
    by a replay server (recorded exports, a clock moved hour by hour), history bootstrapped as a first
    live start would, then the hourly_tick job every hour; reports realised emissions and cost vs
    carbon-agnostic, missed deadlines and the share of the oracle's savings (computed offline on the
    same data). Files: --em-csv FILE... --weather FILE... (<ZONE>/<YEAR>.csv) --prices FILE...
    [--watttime REGION=FILE]."""
    import json

    import pandas as pd
    from tabulate import tabulate

    from gridflex_cli.pipeline_cmds import _dagster_home
    from mpc.fleet import FleetError
    from pipelines.replay import run_replay
    from pipelines.runner import RunFailed
    from sources.frames import SourceError

    echo = (lambda m: typer.echo(m, err=True)) if as_json else typer.echo
    files = split_multi(list(ctx.args), REPLAY_MULTI)
    if not files["--em-csv"] and not files["--watttime"]:
        _fail("--em-csv FILE... (or --watttime REGION=FILE) is required: the recorded carbon data")
    wt = {}
    for spec in files["--watttime"]:
        region, _, path = spec.partition("=")
        if not path:
            _fail(f"--watttime {spec!r}: expected REGION=FILE")
        wt[region] = Path(path)
    t0 = pd.Timestamp(start)
    t0 = (t0.tz_localize("UTC") if t0.tzinfo is None else t0.tz_convert("UTC")).floor("h")
    _dagster_home()
    try:
        table, extras = run_replay(
            fleet_path=str(fleet),
            start=t0,
            hours=int(round(days * 24)),
            em_files=[Path(p) for p in files["--em-csv"]],
            weather_files=[Path(p) for p in files["--weather"]],
            price_files=[Path(p) for p in files["--prices"]],
            watttime=wt,
            db=db,
            models_dir=models,
            profile=profile,
            history_days=history_days,
            retrain=retrain,
            em_plan=em_plan,
            seed=seed,
            echo=echo,
            verbose=verbose,
        )
    except (FleetError, SourceError, RunFailed, ValueError, OSError) as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(
            json.dumps({"results": table.to_dict("records"), **extras}, indent=2, default=str)
        )
        return
    typer.echo(tabulate(table, headers="keys", tablefmt="github", showindex=False, floatfmt=".2f"))
    typer.echo(
        f"\n{extras['hours']} h from {t0:%Y-%m-%d %H:%M} UTC, {extras['jobs']} jobs; "
        f"{extras['degraded_hours']} of {extras['plans']} plans degraded; hourly tick median "
        f"{extras['tick_median_s']} s (max {extras['tick_max_s']} s); bootstrap "
        f"{extras['bootstrap_s']} s; total {extras['total_s']} s. Warehouse: {db}"
    )
