"""Fetch a window of one signal from the source the fleet file names, ready to upsert.

:func:`fetch` returns a :class:`Fetched`: the frames to write (table → frame, written by
:func:`pipelines.lib.ingest.ingest_signal` in one transaction, never deleting), what the source
repaired, and notes a person should read. Per source kind:

- ``demo``: the built-in demo grid for the window, keyed to the fleet's names
  (:func:`pipelines.lib.demo_source.demo_for_fleet`).
- ``electricitymaps_api``: the fleet's emission factor is always asked for (the API's default is
  lifecycle) and the answer must say it is that factor. ``electricitymaps_plan = "free"`` polls
  ``history`` (last 24 h) and ``latest``; ``"paid"`` asks ``past-range`` for the window widened by
  :data:`REVISION_WINDOW` (sources revise recent hours).
- ``watttime``: ``historical`` per WattTime region, stored under each site's zone series
  (``<zone>:marginal:<signal type>``) with the region in the ``region`` column.
- ``openmeteo``: the archive (reanalysis; lags days behind), the current forecast (its past hours are
  the model's *analysis*, stored as observations of lower quality; the rest as a forecast issued at
  the answer's time) and, for a window in the past with no forecast issued before it, the
  historical-forecast endpoint (short-lead forecasts as issued: training covariates).
- generation: always computed here, for every fleet, from the best weather observation stored
  (:mod:`mpc.physics`, ``staging.weather_best``), over the trailing :data:`WEATHER_REVISION` so it is
  restated when better weather arrives.
- file sources (``electricitymaps_csv``, ``csv``, jobs ``table``): nothing to fetch; the assets read
  what ``gridflex import …`` stored, and the notes say how far it reaches in the window.

API tokens are read by the clients from environment variables (never here, never logged).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from mpc.fleet import Fleet
from pipelines.lib.demo_source import demo_for_fleet
from sources.frames import RepairReport, SourceError
from warehouse import Warehouse

HOUR = pd.Timedelta(hours=1)
#: carbon APIs revise recent hours: each fetch re-reads this much before the window
REVISION_WINDOW = pd.Timedelta(hours=24)
#: the Open-Meteo archive lags real time by days: weather (and generation from it) is re-read and
#: restated over this trailing window
WEATHER_REVISION = pd.Timedelta(days=7)


@dataclass
class Fetched:
    """What one fetch brought: frames to upsert (table → frame), repairs and notes."""

    signal: str
    source: str
    writes: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    report: RepairReport = field(default_factory=lambda: RepairReport("?"))
    notes: list[str] = field(default_factory=list)
    #: rows a person would like to see (the main frame, or the coverage of a file source)
    preview: pd.DataFrame = field(default_factory=pd.DataFrame)

    def frame(self, table: str) -> pd.DataFrame:
        parts = [f for t, f in self.writes if t == table]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _py(t) -> object:
    return pd.Timestamp(t).to_pydatetime()


# ----------------------------------------------------------------------------------------------
# file sources: report what was imported


def coverage(
    wh: Warehouse, table: str, key: str, keys: list[str], start, end, ts_col: str = "ts"
) -> pd.DataFrame:
    """Per key: hours stored in ``[start, end)``, hours expected, and the latest stored hour."""
    df = wh.query(
        f"""select k.key, count(distinct t.{ts_col}) filter (where t.{ts_col} >= ? and t.{ts_col} < ?)
                   as hours, max(t.{ts_col}) as latest
            from (select unnest(?::varchar[]) as key) k
            left join {table} t on t.{key} = k.key group by k.key order by k.key""",
        [_py(start), _py(end), keys],
    )
    df["expected"] = int((pd.Timestamp(end) - pd.Timestamp(start)) / HOUR)
    return df[["key", "hours", "expected", "latest"]]


def _file_source(
    wh: Warehouse, signal: str, label: str, table: str, key: str, keys, start, end, command: str
) -> Fetched:
    cov = coverage(wh, table, key, sorted(set(keys)), start, end)
    out = Fetched(signal, label, report=RepairReport(label), preview=cov)
    for r in cov.itertuples():
        if pd.isna(r.latest):
            out.notes.append(f"{r.key}: nothing imported yet: run `{command}`")
        elif r.hours < r.expected:
            out.notes.append(
                f"{r.key}: {r.hours} of {r.expected} hour(s) of the window imported "
                f"(latest stored {pd.Timestamp(r.latest):%Y-%m-%d %H:%M} UTC)"
            )
    return out


# ----------------------------------------------------------------------------------------------
# carbon


def fetch_carbon(wh: Warehouse, fleet: Fleet, start, end) -> Fetched:
    src = fleet.sources.carbon
    zones = sorted({s.zone for s in fleet.sites.values()})
    if src == "demo":
        frame = demo_for_fleet(fleet, start, end)["carbon"]
        return Fetched(
            "carbon",
            "demo",
            [("staging.carbon_intensity", frame)],
            RepairReport("demo"),
            preview=frame,
        )
    if src == "electricitymaps_csv":
        series = [fleet.carbon_series(s) for s in fleet.sites]
        return _file_source(
            wh,
            "carbon",
            "electricitymaps_csv",
            "staging.carbon_intensity",
            "series",
            series,
            start,
            end,
            "gridflex import em-csv FILE...",
        )
    if src == "electricitymaps_api":
        return _electricitymaps(fleet, zones, start, end)
    if src == "watttime":
        return _watttime(fleet, start, end)
    raise ValueError(f"unknown sources.carbon {src!r}")


def _electricitymaps(fleet: Fleet, zones: list[str], start, end) -> Fetched:
    from sources.electricitymaps_api import ElectricityMapsClient

    factor = fleet.carbon_factor
    plan = fleet.sources.electricitymaps_plan
    out = Fetched(
        "carbon", f"electricitymaps_api ({plan} plan)", report=RepairReport("electricitymaps_api")
    )
    parts = []
    with ElectricityMapsClient.from_env(emission_factor=factor) as client:
        for z in zones:
            if plan == "paid":
                got = [client.past_range(z, start - REVISION_WINDOW, end)]
            else:  # free plan: the last 24 h, and the hour in progress
                got = [client.history(z), client.latest(z)]
            for frame, rep in got:
                out.report = out.report.merge(rep)
                wrong = sorted(set(frame["factor"]) - {factor})
                if wrong:
                    raise SourceError(
                        f"electricitymaps_api zone {z}",
                        f"asked for emissionFactorType={factor!r} but the answer is {wrong[0]!r}: "
                        f"the fleet plans on {z}:average:{factor}, which this answer would not "
                        f"fill (it would be stored as {z}:average:{wrong[0]})",
                    )
                parts.append(frame)
        now = client.http.server_time
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if not frame.empty:  # `latest` repeats history's last hour: keep one row per (series, ts)
        frame = frame.drop_duplicates(["series", "ts", "source"], keep="first")
    if plan == "free" and now is not None and start < now.floor("h") - 23 * HOUR:
        out.notes.append(
            f"free plan: `history` covers the 24 h before {now:%Y-%m-%d %H:%M} UTC only; hours of "
            f"the window before {now.floor('h') - 23 * HOUR:%Y-%m-%d %H:%M} cannot be fetched "
            "(backfill them with a paid plan, or `gridflex import em-csv`)"
        )
    out.writes = [("staging.carbon_intensity", frame)] if not frame.empty else []
    out.preview = frame
    return out


def _watttime(fleet: Fleet, start, end) -> Fetched:
    from sources.watttime import WattTimeClient

    signal_type = fleet.carbon_factor
    out = Fetched("carbon", "watttime", report=RepairReport("watttime"))
    zones_of: dict[str, set[str]] = {}
    for s in fleet.sites.values():
        zones_of.setdefault(s.watttime_region, set()).add(s.zone)
    parts = []
    # WattTime answers at most about a month of 5-minute points per request: chunk long backfills
    with WattTimeClient.from_env(max_days_per_call=30) as client:
        for region in sorted(zones_of):
            frame, rep = client.historical(region, start - REVISION_WINDOW, end, signal_type)
            out.report = out.report.merge(rep)
            for zone in sorted(zones_of[region]):
                parts.append(
                    frame.assign(series=f"{zone}:marginal:{signal_type}", zone=zone, region=region)
                )
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    out.writes = [("staging.carbon_intensity", frame)] if not frame.empty else []
    out.preview = frame
    return out


# ----------------------------------------------------------------------------------------------
# weather and generation


def fetch_weather(wh: Warehouse, fleet: Fleet, start, end) -> Fetched:
    """Observed weather for the window (and, for Open-Meteo, the trailing archive window) and the
    forecasts issued in it."""
    src = fleet.sources.weather
    if src == "demo":
        d = demo_for_fleet(fleet, start, end)
        return Fetched(
            "weather",
            "demo",
            [
                ("staging.weather_observed", d["weather"]),
                ("staging.weather_forecast", d["weather_forecast"]),
            ],
            RepairReport("demo"),
            preview=d["weather"],
        )
    if src == "csv":
        return _file_source(
            wh,
            "weather",
            "weather csv",
            "staging.weather_observed",
            "location",
            list(fleet.sites),
            start,
            end,
            "gridflex import weather FILE --site NAME",
        )
    return _openmeteo(wh, fleet, start, end)


def _drop_empty(frame: pd.DataFrame, report: RepairReport, what: str) -> pd.DataFrame:
    """Rows with no value at all (an archive's days it does not have yet) say nothing: not stored."""
    from sources.openmeteo import HOURLY

    empty = frame[HOURLY].isna().all(axis=1)
    report.add(
        "empty_row_dropped",
        int(empty.sum()),
        f"{what}: {int(empty.sum())} hour(s) without any value (not available yet)",
    )
    return frame[~empty]


def _openmeteo(wh: Warehouse, fleet: Fleet, start, end) -> Fetched:
    from sources.openmeteo import OpenMeteoClient

    H = fleet.planning.horizon_h
    days = min(16, math.ceil((H + 24) / 24) + 1)
    out = Fetched("weather", "openmeteo", report=RepairReport("openmeteo"))
    obs, fcs = [], []
    issued_by = _latest_forecast_issue(wh, list(fleet.sites), start)
    with OpenMeteoClient.from_env() as client:
        for site, s in fleet.sites.items():
            a, rep = client.archive(
                s.lat, s.lon, (start - WEATHER_REVISION).date(), (end - HOUR).date(), location=site
            )
            out.report = out.report.merge(rep)
            a = a[(a.ts >= start - WEATHER_REVISION) & (a.ts < end)]
            obs.append(_drop_empty(a, out.report, f"archive {site}"))
            f, rep = client.forecast(s.lat, s.lon, days=days, location=site)
            out.report = out.report.merge(rep)
            obs.append(_drop_empty(f[f.kind == "analysis"], out.report, f"analysis {site}"))
            fc = f[f.kind == "forecast"]
            fcs.append(fc)
            issued = fc["issued_at"].min() if len(fc) else None
            if issued is not None and issued > start and issued_by.get(site) is None:
                # a window in the past with no forecast stored from before it: the
                # historical-forecast endpoint gives what short-lead forecasts said (training
                # covariates; a plan for a past hour says when it had to use them)
                h, rep = client.historical_forecast(
                    s.lat,
                    s.lon,
                    (start - pd.Timedelta(days=1)).date(),
                    (end - HOUR).date(),
                    location=site,
                )
                out.report = out.report.merge(rep)
                h = h[h.ts < min(end, issued)]
                fcs.append(_drop_empty(h, out.report, f"historical forecast {site}"))
                out.notes.append(
                    f"{site}: no forecast stored from before {start:%Y-%m-%d %H:%M}; stored the "
                    "historical-forecast endpoint's short-lead values for the window"
                )
    obs_f = pd.concat(obs, ignore_index=True)
    fc_f = pd.concat(fcs, ignore_index=True)
    out.writes = [
        (t, f)
        for t, f in (("staging.weather_observed", obs_f), ("staging.weather_forecast", fc_f))
        if not f.empty
    ]
    out.preview = obs_f
    return out


def _latest_forecast_issue(wh: Warehouse, sites: list[str], at) -> dict[str, pd.Timestamp]:
    df = wh.query(
        "select location, max(issued_at) t from staging.weather_forecast where location in ? "
        "and issued_at <= ? group by location",
        [sites, _py(at)],
    )
    return {r.location: pd.Timestamp(r.t) for r in df.itertuples()}


def best_weather(wh: Warehouse, sites: list[str], start, end) -> pd.DataFrame:
    """The best weather observation stored per (site, hour) in ``[start, end)``:
    ``staging.weather_best`` (archive/recorded > forecast analysis > latest forecast), with its
    ``quality`` (``observed`` / ``analysis`` / ``forecast``)."""
    return wh.query(
        "select * from staging.weather_best where location in ? and ts >= ? and ts < ? "
        "order by location, ts",
        [list(sites), _py(start), _py(end)],
    )


def fetch_generation(wh: Warehouse, fleet: Fleet, start, end) -> Fetched:
    """On-site PV/wind availability (capacity factors) from the best weather observation stored, by
    :mod:`mpc.physics` — for every fleet and every weather source. Recomputed over the trailing
    :data:`WEATHER_REVISION` so a better observation (the archive catching up) restates it."""
    from mpc.physics import capacity_factors

    lo = start - WEATHER_REVISION
    w = best_weather(wh, list(fleet.sites), lo, end)
    out = Fetched("generation", "physics", report=RepairReport("physics"))
    # derived now: a row whose value changes (a better weather row became the best) is received
    # now, so its received_at moves forward (the weather row's own can be older than the stored
    # one: the audit would take the change for an edit, and the restatement would miss it)
    derived_at = pd.Timestamp.now(tz="UTC")
    parts = []
    for site, s in fleet.sites.items():
        ws = w[w.location == site]
        if ws.empty:
            continue
        cf = capacity_factors(ws, s.lat, s.lon)
        parts.append(
            pd.DataFrame(
                {
                    "site": site,
                    "ts": cf.ts,
                    "pv_cf": cf.pv_cf,
                    "wind_cf": cf.wind_cf,
                    "weather_quality": ws["quality"].to_numpy(),
                    "derived": cf.derived.to_numpy(),
                    "source": "physics",
                    "received_at": derived_at,
                }
            )
        )
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    have = set(frame.site[(frame.ts >= start) & (frame.ts < end)]) if len(frame) else set()
    missing = sorted(set(fleet.sites) - have)
    if missing:
        out.notes.append(f"no weather stored for {', '.join(missing)} in the window: no generation")
    if len(frame):
        frame = frame[frame[["pv_cf", "wind_cf"]].notna().all(axis=1)]
        est = frame[(frame.ts >= start) & (frame.weather_quality != "observed")]
        if len(est):
            out.notes.append(
                f"{len(est)} site-hour(s) of the window computed from a forecast or analysis "
                "(the archive has not caught up yet); restated when it does"
            )
    out.writes = [("staging.generation", frame)] if len(frame) else []
    out.preview = frame[(frame.ts >= start)] if len(frame) else frame
    return out


# ----------------------------------------------------------------------------------------------
# prices, load, jobs


def fetch_prices(wh: Warehouse, fleet: Fleet, start, end) -> Fetched:
    """Day-ahead prices for ``[start, end)`` (callers pass the end of the planning horizon)."""
    zones = sorted({s.price_zone or s.zone for s in fleet.sites.values()})
    if fleet.sources.prices == "csv":
        return _file_source(
            wh,
            "prices",
            "prices csv",
            "staging.prices",
            "zone",
            zones,
            start,
            end,
            "gridflex import prices FILE --zone ZONE",
        )
    frame = demo_for_fleet(fleet, start, end)["prices"]
    return Fetched(
        "prices", "demo", [("staging.prices", frame)], RepairReport("demo"), preview=frame
    )


def fetch_inference(wh: Warehouse, fleet: Fleet, start, end) -> Fetched:
    if fleet.sources.load == "csv":
        return _file_source(
            wh,
            "inference",
            "load csv",
            "staging.load",
            "series",
            list(fleet.classes),
            start,
            end,
            "gridflex import load FILE --site SITE --series CLASS",
        )
    frame = demo_for_fleet(fleet, start, end)["inference"]
    return Fetched(
        "inference", "demo", [("staging.load", frame)], RepairReport("demo"), preview=frame
    )


def fetch_jobs(wh: Warehouse, fleet: Fleet, start, end) -> Fetched:
    """Jobs released in ``[start, end)`` (callers pass the end of the planning horizon)."""
    src = fleet.jobs.source
    if src == "table":
        n = wh.query(
            "select count(*) n from staging.jobs where release >= ? and release < ?",
            [_py(start), _py(end)],
        ).n[0]
        out = Fetched("jobs", "staging.jobs", report=RepairReport("staging.jobs"))
        out.notes.append(f"jobs.source = 'table': {int(n)} imported job(s) released in the window")
        return out
    if src == "csv":
        from sources.jobs import read_job_queue_csv

        jobs, report = read_job_queue_csv(fleet.jobs.path, known_sites=list(fleet.sites))
        jobs = jobs[(jobs.release >= start) & (jobs.release < end)]
        label = "csv"
    else:
        jobs, report, label = (
            demo_for_fleet(fleet, start, end)["jobs"],
            RepairReport("demo"),
            "demo",
        )
    received = jobs["release"] if label == "demo" else pd.Timestamp.now(tz="UTC")
    jobs = jobs.assign(source=label, received_at=received)
    return Fetched(
        "jobs", label, [("staging.jobs", jobs)] if len(jobs) else [], report, preview=jobs
    )


FETCHERS = {
    "carbon": fetch_carbon,
    "weather": fetch_weather,
    "prices": fetch_prices,
    "generation": fetch_generation,
    "inference": fetch_inference,
    "jobs": fetch_jobs,
}
