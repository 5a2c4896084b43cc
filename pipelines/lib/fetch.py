"""Fetch a window of every signal the fleet needs, from the sources its fleet file names.

Each ``fetch_*`` returns ``(frame, RepairReport)`` shaped per :mod:`sources.frames`, for hours
``[start, end)``. The demo source needs nothing; API sources read their tokens from environment variables
inside the clients (never here, never logged). API windows are widened backwards by
:data:`REVISION_WINDOW` because sources revise recent values; the upsert makes that idempotent.
"""

from __future__ import annotations

import pandas as pd

from mpc.fleet import Fleet
from pipelines.lib.demo_source import demo_window
from sources.frames import RepairReport

REVISION_WINDOW = pd.Timedelta(hours=24)


def _demo(start, end, name: str) -> pd.DataFrame:
    return demo_window(start, end)[name]


def fetch_carbon(fleet: Fleet, start: pd.Timestamp, end: pd.Timestamp):
    src = fleet.sources.carbon
    zones = sorted({s.zone for s in fleet.sites.values()})
    if src == "demo":
        frame = _demo(start, end, "carbon")
        frame = frame[frame["zone"].isin(zones)]
        return frame.reset_index(drop=True), RepairReport("demo")
    if src == "electricitymaps_api":
        from sources.electricitymaps_api import ElectricityMapsClient

        parts, report = [], RepairReport("electricitymaps_api")
        with ElectricityMapsClient.from_env() as client:
            for z in zones:
                f, r = client.past_range(z, start - REVISION_WINDOW, end)
                parts.append(f)
                report = report.merge(r)
        return pd.concat(parts, ignore_index=True), report
    if src == "watttime":
        from sources.watttime import WattTimeClient

        parts, report = [], RepairReport("watttime")
        with WattTimeClient.from_env() as client:
            for name, s in fleet.sites.items():
                if not s.watttime_region:
                    raise ValueError(
                        f"sources.carbon = 'watttime' but sites.{name}.watttime_region is unset"
                    )
                f, r = client.historical(s.watttime_region, start - REVISION_WINDOW, end)
                parts.append(f)
                report = report.merge(r)
        return pd.concat(parts, ignore_index=True), report
    raise ValueError(
        f"sources.carbon = {src!r} is a bulk file source: load it with `gridflex import em-csv FILE...`"
    )


def fetch_weather(fleet: Fleet, start: pd.Timestamp, end: pd.Timestamp):
    """Observed weather for the window and the forecasts *issued* in it (``kind`` tells them apart)."""
    if fleet.sources.weather == "demo":
        w = demo_window(start, end)
        obs = w["weather"][w["weather"]["location"].isin(list(fleet.sites))]
        fc = w["weather_forecast"][w["weather_forecast"]["location"].isin(list(fleet.sites))]
        return obs.reset_index(drop=True), fc.reset_index(drop=True), RepairReport("demo")
    from sources.openmeteo import OpenMeteoClient

    obs_parts, fc_parts, report = [], [], RepairReport("openmeteo")
    with OpenMeteoClient.from_env() as client:
        for name, s in fleet.sites.items():
            f, r = client.archive(
                s.lat, s.lon, (start - REVISION_WINDOW).date(), end.date(), location=name
            )
            obs_parts.append(f[(f.ts >= start - REVISION_WINDOW) & (f.ts < end)])
            report = report.merge(r)
            f, r = client.forecast(s.lat, s.lon, days=3, location=name)
            fc_parts.append(f)
            report = report.merge(r)
    return pd.concat(obs_parts, ignore_index=True), pd.concat(fc_parts, ignore_index=True), report


def fetch_prices(fleet: Fleet, start, end):
    if fleet.sources.prices != "demo":
        raise ValueError(
            "sources.prices = 'csv': load price files with `gridflex import prices FILE...`"
        )
    zones = sorted({s.price_zone or s.zone for s in fleet.sites.values()})
    frame = _demo(start, end, "prices")
    return frame[frame["zone"].isin(zones)].reset_index(drop=True), RepairReport("demo")


def fetch_generation(fleet: Fleet, start, end):
    frame = _demo(start, end, "generation")
    frame = frame[frame["site"].isin(list(fleet.sites))].assign(source="demo")
    frame["received_at"] = frame["ts"] + pd.Timedelta(hours=1)
    return frame.reset_index(drop=True), RepairReport("demo")


def fetch_inference(fleet: Fleet, start, end):
    if fleet.sources.load != "demo":
        raise ValueError(
            "sources.load = 'csv': load telemetry with `gridflex import telemetry FILE...`"
        )
    frame = _demo(start, end, "inference")
    return frame[frame["series"].isin(list(fleet.classes))].reset_index(drop=True), RepairReport(
        "demo"
    )


def fetch_jobs(fleet: Fleet, start, end):
    if fleet.jobs.source == "demo":
        jobs = _demo(start, end, "jobs")
        known = set(fleet.sites)
        jobs = jobs.assign(
            eligible_sites=[[s for s in e if s in known] for e in jobs["eligible_sites"]]
        )
        return jobs.reset_index(drop=True), RepairReport("demo")
    if fleet.jobs.source == "csv":
        from sources.jobs import read_job_queue_csv

        return read_job_queue_csv(fleet.jobs.path)
    raise ValueError(
        "jobs.source = 'table': jobs are read from staging.jobs as they are; nothing to fetch"
    )
