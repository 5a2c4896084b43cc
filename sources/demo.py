"""The built-in demo grid: a **synthetic**, deterministic fleet of three data-centre sites.

Nothing here is measured data. :func:`generate_demo` draws every series from simple
physical/statistical formulas and a seeded random generator, so the whole system (warehouse,
forecasting, MPC, CLI) runs with no configuration, no network and no files. Same ``seed`` (and
arguments) → identical frames.

Sites (:data:`DEMO_SITES`), one per grid zone:

=========  ===========  ==============  ===================  ==================================
site       zone         lat, lon        local tz             grid (direct gCO2eq/kWh)
=========  ===========  ==============  ===================  ==================================
sanjose    US-CAL-CISO  37.34, -121.89  America/Los_Angeles  solar-heavy, deep midday dip, ~120–300
frankfurt  DE           50.11, 8.68     Europe/Berlin        coal/gas + wind spells, ~150–600
london     GB           51.51, -0.13    Europe/London        wind-driven, ~50–300
=========  ===========  ==============  ===================  ==================================

All frames are hourly, hour-start, UTC (``datetime64[ns, UTC]``), ``days × 24`` hours per site, no
gaps. ``received_at`` is deterministic: ``ts + 1 h`` for observed values (the hour has ended),
``issued_at`` for forecasts. Let ``t`` be the hour start, ``h`` the local clock hour of the site,
``doy`` the day of year and ``AR1(τ)`` a stationary Gaussian AR(1) process with unit variance and
e-folding time ``τ`` hours (``x[t] = φ x[t-1] + sqrt(1-φ²) ε``, ``φ = exp(-1/τ)``).

Weather (``weather``, WEATHER_COLUMNS, ``kind="observed"``, ``source="demo"``), per site:

- clear-sky irradiance at mid-hour: solar elevation ``e`` from latitude, declination ``δ = 23.44°
  sin(2π(284+doy)/365)`` and hour angle ``15°·(UTC hour + 0.5 + lon/15 − 12)``; ``GHI_clear = 1098
  · sin e · exp(−0.057 / sin e)`` (0 when the sun is down).
- ``cloud_cover = 100 · sigmoid(1.6 · AR1(18 h) + cloud_bias)`` %.
- ``shortwave_radiation = GHI_clear · (1 − 0.75 (cloud/100)^3.4)`` W/m² (Kasten–Czeplak).
- ``wind_speed_100m = wind_mean · exp(0.55 · AR1(30 h) − 0.15)`` km/h: the 30 h memory gives wind
  spells that last 1–3 days; ``wind_speed_10m = 0.72 · wind_speed_100m`` (power law, α = 0.14).
- ``temperature_2m = T_annual − T_season · cos(2π(doy − 20)/365) + T_diurnal · cos(2π(h − 15)/24) +
  1.5 · AR1(48 h) − 2 · cloud/100`` °C with ``T_annual = 32 − 0.42·|lat| + t_offset`` (warmer San
  Jose; ``t_offset`` = +1.5 °C for maritime London, 0 elsewhere).
- ``relative_humidity_2m = clip(55 + 0.3 · cloud − 2 · (T − T_daymean) + 4 · AR1(12 h), 15, 100)``
  %.

Weather forecasts (``weather_forecast``, ``kind="forecast"``): issued once a day at 00:00 UTC, for
the next 72 hours (leads 0..71, only targets inside the demo period). Forecast = observed + an
error that is a random walk over lead time (so its spread grows like ``sqrt(lead + 1)``), drawn
from the seed: temperature sd ``0.35 °C·sqrt(lead+1)``, cloud ``4 %·sqrt(lead+1)``, humidity ``1.5
%·sqrt(lead+1)``, wind multiplicative ``exp(0.035·sqrt(lead+1)·z)``. Shortwave radiation is
recomputed from the forecast cloud cover through the same formula. Every forecast row has
``issued_at ≤ ts``: forecasts are honest forecasts, not the future.

Renewable generation (``generation``: ``site, ts, pv_cf, wind_cf``, capacity factors 0..1):

- ``pv_cf = clip(0.9 · shortwave/1000 · (1 − 0.004 · (T − 25)), 0, 1)``.
- ``wind_cf`` from the 100 m wind ``v`` (m/s) through a generic turbine power curve: 0 below 3 m/s
  (cut-in) and above 25 m/s (cut-out), ``(v³ − 3³)/(12³ − 3³)`` between, 1 from 12 m/s (rated).

Grid demand index (dimensionless, ~0.7–1.2): ``L = 0.8 + 0.12·g(h, 9, 2.5) + 0.2·g(h, 18.5, 2.5) +
0.1·day(h) + 0.006·|T − 18|`` times ``0.88`` at weekends (local), where ``g(h, μ, σ)`` is a
circular Gaussian bump over the 24-hour clock and ``day(h)`` a smooth 7–22 h plateau.

Carbon intensity (``carbon``, CARBON_COLUMNS, series ``"<zone>:average:direct"``,
``signal="average"``, ``factor="direct"``, ``source="demo"``, not estimated): with the grid's
renewable share proxy ``s = solar_w · pv_cf + wind_w · wind_cf`` (site weather stands for the
zone's), ``x = exp(−k·s) · (L / 1.1) · (0.92 at weekends) + 0.04 · AR1(6 h)`` and ``value = ci_low
+ (ci_high − ci_low) · clip(x, 0, 1)`` gCO2eq/kWh. More sun/wind → lower, more demand (weekdays,
peaks) → higher.

Prices (``prices``, PRICE_COLUMNS, ``currency="USD"``): ``price = 20 + 230 · clip(0.55 · x_ci +
0.45 · (L − 0.7)/0.5 + 0.05 · AR1(4 h), 0, 1)`` $/MWh, with ``x_ci`` the intensity normalised to
0..1: correlated with intensity and demand, bounded to 20–250 $/MWh.

Inference (``inference``, LOAD_COLUMNS, unit ``requests/h``, ``source="demo"``): classes
(:data:`DEMO_CLASSES`) ``chat`` (home london), ``vision`` (home frankfurt), ``code`` (home
sanjose); ``site`` is the class's home site, ``series`` the class name. ``value = (base + (peak −
base) · g(h_home, 14, 4)) · (0.7 at local weekends) · exp(0.04 · N(0,1))``, clipped to ``[2e5,
1e6]``: daytime peaks around 14:00 home-local time, weekend dips.

Jobs (``jobs``, JOB_COLUMNS): ``jobs_per_day · days`` training jobs ``job-0001``…, power uniform
2–12 MW (0.1 MW steps), duration 2–8 h, release uniform over the period, slack uniform 4–24 h,
``deadline = release + duration + slack`` hours (clamped to the last hour of the period; the job
may run from the release hour to the end of the deadline hour), value = energy (MWh) × uniform
150–400 $/MWh, eligible sites all three (p = 0.5) or a random two."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mpc.physics import (  # noqa: F401  (wind_power_curve, pv_capacity_factor: re-exported)
    clear_sky_ghi,
    pv_capacity_factor,
    shortwave_from_cloud,
    wind_power_curve,
)
from sources.frames import CARBON_COLUMNS, JOB_COLUMNS, LOAD_COLUMNS, PRICE_COLUMNS, WEATHER_COLUMNS

SOURCE = "demo"


@dataclass(frozen=True)
class DemoSite:
    """One synthetic site and the parameters of its synthetic grid and climate."""

    name: str
    zone: str
    lat: float
    lon: float
    tz: str
    ci_low: float  # gCO2eq/kWh at full renewables
    ci_high: float  # gCO2eq/kWh with none
    solar_w: float  # weight of pv_cf in the renewable share proxy
    wind_w: float  # weight of wind_cf
    k: float  # saturation of the renewable share
    wind_mean: float  # km/h at 100 m
    cloud_bias: float  # logit offset of cloud cover
    t_season: float  # °C half-range of the annual cycle
    t_diurnal: float  # °C half-range of the daily cycle
    t_offset: float = 0.0  # °C added to the latitude rule (maritime climate)


@dataclass(frozen=True)
class DemoClass:
    """One synthetic inference class: requests/h peaking in its home site's local daytime."""

    name: str
    home: str
    base: float  # requests/h at night (weekday)
    peak: float  # requests/h at the ~14:00 local peak (weekday)


DEMO_SITES: tuple[DemoSite, ...] = (
    DemoSite(
        "sanjose",
        "US-CAL-CISO",
        37.34,
        -121.89,
        "America/Los_Angeles",
        ci_low=120.0,
        ci_high=300.0,
        solar_w=1.6,
        wind_w=0.2,
        k=2.2,
        wind_mean=14.0,
        cloud_bias=-1.2,
        t_season=5.5,
        t_diurnal=5.5,
    ),
    DemoSite(
        "frankfurt",
        "DE",
        50.11,
        8.68,
        "Europe/Berlin",
        ci_low=150.0,
        ci_high=600.0,
        solar_w=0.5,
        wind_w=1.1,
        k=2.0,
        wind_mean=24.0,
        cloud_bias=0.8,
        t_season=9.5,
        t_diurnal=4.0,
    ),
    DemoSite(
        "london",
        "GB",
        51.51,
        -0.13,
        "Europe/London",
        ci_low=50.0,
        ci_high=300.0,
        solar_w=0.3,
        wind_w=1.3,
        k=2.0,
        wind_mean=30.0,
        cloud_bias=0.7,
        t_season=6.5,
        t_diurnal=3.5,
        t_offset=1.5,
    ),
)

DEMO_CLASSES: tuple[DemoClass, ...] = (
    DemoClass("chat", "london", base=3.0e5, peak=9.5e5),
    DemoClass("vision", "frankfurt", base=2.9e5, peak=6.5e5),
    DemoClass("code", "sanjose", base=3.0e5, peak=8.5e5),
)


@dataclass(frozen=True, eq=False)
class DemoGrid:
    """The demo data set. Frames follow the contracts in :mod:`sources.frames`."""

    carbon: pd.DataFrame
    weather: pd.DataFrame
    weather_forecast: pd.DataFrame
    prices: pd.DataFrame
    generation: pd.DataFrame
    inference: pd.DataFrame
    jobs: pd.DataFrame
    sites: tuple[DemoSite, ...] = DEMO_SITES
    classes: tuple[DemoClass, ...] = DEMO_CLASSES
    start: pd.Timestamp | None = None
    days: int = 0
    seed: int = 0


# --------------------------------------------------------------------------- helpers


def _rng(seed: int, *key: int) -> np.random.Generator:
    """An independent, reproducible stream per (seed, component): adding a site or a series does
    not shift the draws of the others."""
    return np.random.default_rng([int(seed), *key])


def _ar1(rng: np.random.Generator, n: int, tau_h: float) -> np.ndarray:
    phi = float(np.exp(-1.0 / tau_h))
    eps = rng.standard_normal(n)
    x = np.empty(n)
    x[0] = eps[0]
    s = np.sqrt(1.0 - phi * phi)
    for i in range(1, n):  # n is small (hours); plain loop is ~1 ms per thousand
        x[i] = phi * x[i - 1] + s * eps[i]
    return x


def _bump(h: np.ndarray, mu: float, sigma: float) -> np.ndarray:
    """Circular Gaussian bump on the 24-hour clock, 1 at ``mu``."""
    d = (h - mu + 12.0) % 24.0 - 12.0
    return np.exp(-0.5 * (d / sigma) ** 2)


def _day_plateau(h: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(h - 7.0) * 1.5)) * 1.0 / (1.0 + np.exp((h - 22.0) * 1.5))


# The irradiance, PV and wind formulas are the project's one power-physics module (mpc.physics): the
# demo grid, the planner, the backtest and realised generation all use them.
_clear_sky = clear_sky_ghi
_shortwave = shortwave_from_cloud
_pv_cf = pv_capacity_factor


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


# --------------------------------------------------------------------------- generator


def generate_demo(
    start: str | pd.Timestamp = "2026-01-05",
    days: int = 28,
    seed: int = 7,
    sites: tuple[DemoSite, ...] = DEMO_SITES,
    classes: tuple[DemoClass, ...] = DEMO_CLASSES,
    jobs_per_day: int = 6,
    forecast_horizon_h: int = 72,
) -> DemoGrid:
    """Generate the synthetic demo grid (see the module docstring for every formula).

    ``start`` is a UTC date (or hour); the period is ``days × 24`` hours from it."""
    if days < 1:
        raise ValueError("days must be >= 1")
    t0 = pd.Timestamp(start)
    t0 = t0.tz_localize("UTC") if t0.tzinfo is None else t0.tz_convert("UTC")
    t0 = t0.floor("h")
    n = days * 24
    ts = pd.date_range(t0, periods=n, freq="h", tz="UTC").as_unit("ns")
    one_h = pd.Timedelta(hours=1)
    doy = ts.dayofyear.to_numpy(dtype=float)

    weather_rows, fc_rows, carbon_rows, price_rows, gen_rows = [], [], [], [], []
    site_by_name = {s.name: s for s in sites}

    for si, site in enumerate(sites):
        local = ts.tz_convert(site.tz)
        h = local.hour.to_numpy(dtype=float)
        weekend = local.dayofweek.to_numpy() >= 5
        r = _rng(seed, 1, si)

        # weather (observed)
        clear = _clear_sky(ts, site.lat, site.lon)
        cloud = 100.0 * _sigmoid(1.6 * _ar1(r, n, 18.0) + site.cloud_bias)
        sw = _shortwave(clear, cloud)
        w100 = site.wind_mean * np.exp(0.55 * _ar1(r, n, 30.0) - 0.15)
        w10 = 0.72 * w100
        t_annual = 32.0 - 0.42 * abs(site.lat) + site.t_offset
        temp = (
            t_annual
            - site.t_season * np.cos(2 * np.pi * (doy - 20.0) / 365.0)
            + site.t_diurnal * np.cos(2 * np.pi * (h - 15.0) / 24.0)
            + 1.5 * _ar1(r, n, 48.0)
            - 2.0 * cloud / 100.0
        )
        day_key = local.normalize()
        t_daymean = pd.Series(temp).groupby(np.asarray(day_key)).transform("mean").to_numpy()
        rh = np.clip(
            55.0 + 0.3 * cloud - 2.0 * (temp - t_daymean) + 4.0 * _ar1(r, n, 12.0), 15.0, 100.0
        )

        weather_rows.append(
            pd.DataFrame(
                {
                    "location": site.name,
                    "ts": ts,
                    "temperature_2m": temp.round(2),
                    "relative_humidity_2m": rh.round(1),
                    "cloud_cover": cloud.round(1),
                    "wind_speed_10m": w10.round(2),
                    "wind_speed_100m": w100.round(2),
                    "shortwave_radiation": sw.round(1),
                    "kind": "observed",
                    "issued_at": pd.NaT,
                    "source": SOURCE,
                    "received_at": ts + one_h,
                }
            )
        )

        # weather forecasts: daily at 00:00 UTC, leads 0..horizon-1, random-walk error over lead
        rf = _rng(seed, 2, si)
        issues = ts[ts.hour == 0]
        lead = np.arange(forecast_horizon_h)
        for issued in issues:
            i0 = ts.get_loc(issued)
            m = min(forecast_horizon_h, n - i0)
            sl = slice(i0, i0 + m)
            e = rf.standard_normal((4, forecast_horizon_h)).cumsum(axis=1)[
                :, :m
            ]  # sd = sqrt(lead+1)
            f_temp = temp[sl] + 0.35 * e[0]
            f_cloud = np.clip(cloud[sl] + 4.0 * e[1], 0.0, 100.0)
            f_rh = np.clip(rh[sl] + 1.5 * e[2], 0.0, 100.0)
            f_w100 = w100[sl] * np.exp(0.035 * e[3])
            f_sw = _shortwave(clear[sl], f_cloud)
            fc_rows.append(
                pd.DataFrame(
                    {
                        "location": site.name,
                        "ts": ts[sl],
                        "temperature_2m": f_temp.round(2),
                        "relative_humidity_2m": f_rh.round(1),
                        "cloud_cover": f_cloud.round(1),
                        "wind_speed_10m": (0.72 * f_w100).round(2),
                        "wind_speed_100m": f_w100.round(2),
                        "shortwave_radiation": f_sw.round(1),
                        "kind": "forecast",
                        "issued_at": issued,
                        "source": SOURCE,
                        "received_at": issued,
                    }
                )
            )
        del lead

        # generation
        pv = _pv_cf(sw, temp)
        wcf = wind_power_curve(w100 / 3.6)
        gen_rows.append(
            pd.DataFrame(
                {"site": site.name, "ts": ts, "pv_cf": pv.round(4), "wind_cf": wcf.round(4)}
            )
        )

        # grid demand, carbon intensity, price
        L = (
            0.8
            + 0.12 * _bump(h, 9.0, 2.5)
            + 0.2 * _bump(h, 18.5, 2.5)
            + 0.1 * _day_plateau(h)
            + 0.006 * np.abs(temp - 18.0)
        )
        L = np.where(weekend, 0.88 * L, L)
        s = site.solar_w * pv + site.wind_w * wcf
        rc = _rng(seed, 3, si)
        wk_factor = np.where(weekend, 0.92, 1.0)  # less fossil dispatch at weekends
        x = np.exp(-site.k * s) * (L / 1.1) * wk_factor + 0.04 * _ar1(rc, n, 6.0)
        x = np.clip(x, 0.0, 1.0)
        ci = site.ci_low + (site.ci_high - site.ci_low) * x
        carbon_rows.append(
            pd.DataFrame(
                {
                    "series": f"{site.zone}:average:direct",
                    "zone": site.zone,
                    "ts": ts,
                    "value": ci.round(2),
                    "signal": "average",
                    "factor": "direct",
                    "source": SOURCE,
                    "is_estimated": False,
                    "estimation_method": None,
                    "received_at": ts + one_h,
                }
            )
        )
        p = 20.0 + 230.0 * np.clip(
            0.55 * x + 0.45 * (L - 0.7) / 0.5 + 0.05 * _ar1(rc, n, 4.0), 0.0, 1.0
        )
        price_rows.append(
            pd.DataFrame(
                {
                    "zone": site.zone,
                    "ts": ts,
                    "price": p.round(2),
                    "currency": "USD",
                    "source": SOURCE,
                    "received_at": ts + one_h,
                }
            )
        )

    # inference
    inf_rows = []
    for ci_, cls in enumerate(classes):
        home = site_by_name.get(cls.home)
        if home is None:
            raise ValueError(
                f"inference class {cls.name!r}: home site {cls.home!r} is not a demo site"
            )
        local = ts.tz_convert(home.tz)
        h = local.hour.to_numpy(dtype=float)
        weekend = local.dayofweek.to_numpy() >= 5
        ri = _rng(seed, 4, ci_)
        v = (cls.base + (cls.peak - cls.base) * _bump(h, 14.0, 4.0)) * np.where(weekend, 0.7, 1.0)
        v = np.clip(v * np.exp(0.04 * ri.standard_normal(n)), 2e5, 1e6)
        inf_rows.append(
            pd.DataFrame(
                {
                    "site": home.name,
                    "series": cls.name,
                    "ts": ts,
                    "value": v.round(0),
                    "unit": "requests/h",
                    "source": SOURCE,
                    "received_at": ts + one_h,
                }
            )
        )

    jobs = _demo_jobs(ts, seed, [s.name for s in sites], jobs_per_day * days)

    def cat(rows, cols):
        f = pd.concat(rows, ignore_index=True)
        for c in ("ts", "issued_at", "received_at"):
            if c in f.columns:
                f[c] = pd.to_datetime(f[c], utc=True).dt.as_unit("ns")
        return f[cols]

    return DemoGrid(
        carbon=cat(carbon_rows, CARBON_COLUMNS),
        weather=cat(weather_rows, WEATHER_COLUMNS),
        weather_forecast=cat(fc_rows, WEATHER_COLUMNS),
        prices=cat(price_rows, PRICE_COLUMNS),
        generation=cat(gen_rows, ["site", "ts", "pv_cf", "wind_cf"]),
        inference=cat(inf_rows, LOAD_COLUMNS),
        jobs=jobs,
        sites=tuple(sites),
        classes=tuple(classes),
        start=t0,
        days=days,
        seed=seed,
    )


def _demo_jobs(ts: pd.DatetimeIndex, seed: int, site_names: list[str], n_jobs: int) -> pd.DataFrame:
    rj = _rng(seed, 5)
    n = len(ts)
    power = np.round(rj.uniform(2.0, 12.0, n_jobs), 1)
    dur = rj.integers(2, 9, n_jobs)
    slack = rj.integers(4, 25, n_jobs)
    latest_release = np.maximum(n - dur, 1)  # a job must fit before the end of the period
    rel_i = np.minimum(
        (rj.uniform(0.0, 1.0, n_jobs) * latest_release).astype(int), latest_release - 1
    )
    dl_i = np.minimum(rel_i + dur + slack, n - 1)
    value = np.round(power * dur * rj.uniform(150.0, 400.0, n_jobs), 2)
    all3 = rj.uniform(size=n_jobs) < 0.5
    eligible = []
    for j in range(n_jobs):
        if all3[j] or len(site_names) <= 2:
            eligible.append(list(site_names))
        else:
            pick = sorted(rj.choice(len(site_names), size=2, replace=False))
            eligible.append([site_names[k] for k in pick])
    order = np.argsort(rel_i, kind="stable")
    f = pd.DataFrame(
        {
            "job_id": [f"job-{i + 1:04d}" for i in range(n_jobs)],
            "power_mw": power[order].astype(float),
            "duration_h": dur[order].astype(int),
            "release": ts[rel_i[order]],
            "deadline": ts[dl_i[order]],
            "value": value[order].astype(float),
            "eligible_sites": [eligible[k] for k in order],
        }
    )
    return f[JOB_COLUMNS]
