"""Helpers for the real-source tests: a fleet whose sites are *not* named like the demo's, and
recordings for the replay server drawn from the project's own synthetic generator (so the tests run on
a fresh clone without ../shared; the shared-data replay is a separate, skipping test).

The recordings are what the real APIs would answer for the fleet's zones: Electricity Maps average
intensity (direct = the demo grid's value, lifecycle = 1.25 × it), a WattTime-style marginal series
(lbs/MWh, 2.2 × the direct value plus a daily swing) and Open-Meteo-style reanalysis weather at each
site's coordinates.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

from sources.demo import DEMO_SITES, generate_demo

#: non-demo sites in the demo's zones (so carbon recordings exist for them), at their own coordinates
SITES = {
    "oakland": ("US-CAL-CISO", "CAISO_NORTH", 37.80, -122.27),
    "hamburg": ("DE", "DE", 53.55, 9.99),
    "manchester": ("GB", "UK", 53.48, -2.24),
}
START = pd.Timestamp("2026-03-02", tz="UTC")


def recordings(
    start: pd.Timestamp = START, days: int = 16, seed: int = 11
) -> dict[str, pd.DataFrame]:
    """Carbon (both factors), MOER and weather frames for the replay server, for the fleet's sites."""
    grid = generate_demo(start=start, days=days, seed=seed)
    zone_site = {s.zone: s.name for s in DEMO_SITES}
    direct = grid.carbon.copy()
    life = direct.assign(
        series=direct.zone + ":average:lifecycle",
        factor="lifecycle",
        value=(direct.value * 1.25).round(2),
    )
    carbon = pd.concat([direct, life], ignore_index=True)
    weather, moer = [], []
    for site, (zone, region, lat, lon) in SITES.items():
        w = grid.weather[grid.weather.location == zone_site[zone]].assign(
            location=site, latitude=lat, longitude=lon
        )
        weather.append(w)
        c = direct[direct.zone == zone]
        hour = c.ts.dt.hour.to_numpy()
        moer.append(
            pd.DataFrame(
                {
                    "region": region,
                    "point_time": c.ts.to_numpy(),
                    "value": (2.2 * c.value.to_numpy() + 40 * np.sin(2 * np.pi * hour / 24)).round(
                        1
                    ),
                    "latitude": lat,
                    "longitude": lon,
                }
            )
        )
    return {
        "carbon": carbon,
        "weather": pd.concat(weather, ignore_index=True),
        "moer": pd.concat(moer, ignore_index=True),
        "grid": grid,
    }


def fleet_toml(
    path: Path,
    *,
    carbon: str = "electricitymaps_api",
    signal: str = "average:direct",
    weather: str = "openmeteo",
    prices: str = "demo",
    load: str = "demo",
    jobs: str = "demo",
    jobs_path: str | None = None,
    plan: str = "paid",
    horizon: int = 12,
    regions: bool = True,
) -> Path:
    """A fleet of three sites named unlike the demo's (and two inference classes), written as TOML."""
    site_blocks = []
    for name, (zone, region, lat, lon) in SITES.items():
        region_line = f'watttime_region = "{region}"\n' if regions else ""
        site_blocks.append(
            textwrap.dedent(f"""
            [sites.{name}]
            zone = "{zone}"
            {region_line}lat = {lat}
            lon = {lon}
            it_capacity_mw = 40.0
            base_load_mw = 12.0
            import_limit_mw = 70.0
            export_limit_mw = 20.0
            pv_mw = 20.0
            wind_mw = 10.0
            battery = {{ energy_mwh = 30.0, charge_mw = 8.0, discharge_mw = 8.0, soc0 = 0.5 }}
        """)
        )
    jobs_block = f'source = "{jobs}"\n' + (f'path = "{jobs_path}"\n' if jobs_path else "")
    text = (
        textwrap.dedent(f"""
        name = "not-the-demo"

        [sources]
        carbon = "{carbon}"
        weather = "{weather}"
        prices = "{prices}"
        load = "{load}"
        electricitymaps_plan = "{plan}"

        [planning]
        horizon_h = {horizon}
        carbon_signal = "{signal}"
        carbon_price = 100.0
        time_limit_s = 20.0

        [jobs]
    """)
        + jobs_block
        + "".join(site_blocks)
        + textwrap.dedent("""
        [classes.assistant]
        home = "manchester"
        latency_ms = { oakland = 140.0, hamburg = 12.0, manchester = 4.0 }
        latency_limit_ms = 200.0
        energy_mwh_per_unit = 1.0e-5
        revenue_per_unit = 0.004

        [classes.search]
        home = "hamburg"
        latency_ms = { oakland = 150.0, hamburg = 4.0, manchester = 12.0 }
        latency_limit_ms = 40.0
        energy_mwh_per_unit = 1.5e-5
        revenue_per_unit = 0.006
    """)
    )
    path.write_text(text, encoding="utf-8")
    return path


def jobs_csv(path: Path, start: pd.Timestamp = START, days: int = 16) -> Path:
    """A job queue for the fleet's sites: a few jobs a day, one of them 36 h long."""
    rng = np.random.default_rng(3)
    rows = ["job_id,power_mw,duration_h,release,deadline,value,eligible_sites"]
    names = list(SITES)
    for d in range(days):
        for k in range(3):
            rel = start + pd.Timedelta(days=d, hours=int(rng.integers(0, 20)))
            dur = int(rng.integers(2, 7))
            dl = rel + pd.Timedelta(hours=dur + int(rng.integers(4, 18)))
            sites = ";".join(sorted(rng.choice(names, size=2, replace=False)))
            rows.append(
                f"d{d:02d}-{k},{rng.uniform(2, 8):.1f},{dur},{rel:%Y-%m-%dT%H:%MZ},"
                f"{dl:%Y-%m-%dT%H:%MZ},{rng.uniform(500, 3000):.0f},{sites}"
            )
    path.write_text("\n".join(rows) + "\n")
    return path


def prices_csv(path: Path, grid, zone: str) -> Path:
    p = grid.prices[grid.prices.zone == zone]
    lines = ["Datetime,Price (USD/MWh)"] + [
        f"{t:%Y-%m-%d %H:%M:%S},{v:.2f}" for t, v in zip(p.ts, p.price, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def load_csv(path: Path, grid, demo_class: str) -> Path:
    d = grid.inference[grid.inference.series == demo_class]
    lines = ["timestamp,value"] + [
        f"{t:%Y-%m-%dT%H:%M:%SZ},{v:.0f}" for t, v in zip(d.ts, d.value, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def em_export(path: Path, grid, zone: str) -> Path:
    """An Electricity Maps data-portal export of the recordings for one zone."""
    c = grid.carbon[grid.carbon.zone == zone]
    header = (
        "Datetime (UTC),Country,Zone Name,Zone Id,Carbon Intensity gCO₂eq/kWh (direct),"
        "Carbon Intensity gCO₂eq/kWh (LCA),Low Carbon Percentage,Renewable Percentage,"
        "Data Source,Data Estimated,Data Estimation Method"
    )
    lines = [header] + [
        f"{t:%Y-%m-%d %H:%M:%S},X,X,{zone},{v:.2f},{1.25 * v:.2f},50,40,replay,false,"
        for t, v in zip(c.ts, c.value, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
