"""The paper's default instance: 3 sites, 24 hourly periods, 6 training jobs, 3 inference classes.

The published instance data were not released (milp.md), so this is a documented, deterministic,
*plausible* reconstruction at the same scale, using the demo fleet's names (``sanjose`` on the
US-CAL-CISO grid, ``frankfurt`` on DE, ``london`` on GB; classes ``chat``, ``vision``, ``code``).
All static parameters (sites, batteries, classes, latencies, jobs) live in the constants below —
the one place to mirror into a TOML fleet file. Time series are closed-form daily profiles of the
site's *local* clock hour (no randomness), for the UTC day starting at :data:`DAY`.

Sites (MW, MWh, $/MWh):

==========  ======  =====  ======  ======  ===========  ====================  =============
site        IT cap  base   import  export  local gen.   battery E/Pc=Pd        grid
==========  ======  =====  ======  ======  ===========  ====================  =============
sanjose     60      18     90      40      PV 45 MWp    80 MWh / 20 MW        CISO 110–310 g
frankfurt   50      15     80      30      PV 30 + wind 15  40 MWh / 10 MW    DE 330–560 g
london      45      12     70      20      wind 18      40 MWh / 10 MW        GB 120–260 g
==========  ======  =====  ======  ======  ===========  ====================  =============

Batteries: ηc = ηd = 0.95, soc0 = 50 %, σ ∈ [10 %, 90 %], throughput cost ψ = 2 $/MWh (so the
mode binaries can be LP-relaxed, see :mod:`mpc.model`). Cooling κ = 0.12 + 0.012·max(0, T − 18 °C)
with a sinusoidal local temperature (San Jose 14–30 °C, Frankfurt 12–24, London 11–20).
Prices: export = 0.85 × import. Carbon price 120 $/t; budget 400 t for the day (slack: the
joint optimum stays well below it, so no-carbon ≈ joint as in the paper).

Inference (units = requests; demand = requests/h, peaking ~14:00 home-local time):

======  =========  =========  ==========  =========  =====================================
class   home       MWh/req    $/req       limit ms   latency ms sanjose/frankfurt/london
======  =========  =========  ==========  =========  =====================================
chat    london     1.2e-5     0.0050      200        140 / 15 / 5
vision  frankfurt  2.0e-5     0.0080      40         150 / 5 / 15
code    sanjose    1.5e-5     0.0060      200        5 / 150 / 140
======  =========  =========  ==========  =========  =====================================

Jobs: see :data:`PAPER_JOBS` (release/deadline as hours of the day, home site for the
carbon-agnostic and energy-only baselines).

Result (``gridflex bench mpc-paper``, 1 % gap; deterministic):

===============  ===========  ===========  =============================================
method           objective $  emissions t  vs joint
===============  ===========  ===========  =============================================
joint            199 934      256.9        reference
no_carbon        200 018      255.3        ≈ joint: budget 400 t slack; both within 1 %
no_battery       191 203      273.8        −4 %
no_routing       188 437      301.2        −6 %
compute_only     180 404      298.5        −10 %
energy_only      155 925      401.3        −22 %
carbon_agnostic  147 618      415.0        −26 %
===============  ===========  ===========  =============================================

The published order puts no-routing last; here it is above energy-only *by construction*: the
energy-only workload (jobs at release at home, inference at home) is feasible for no-routing, which
also optimises the jobs, so no-routing can never be worse than energy-only on the same accounting.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from mpc.instance import Battery, InferenceClass, Instance, Job, Signals, Site

#: The UTC day of the default instance (a June day: long PV days, mild European weather).
DAY = pd.Timestamp("2024-06-12 00:00", tz="UTC")
HOURS = 24
CARBON_PRICE = 120.0  # $/t
CARBON_BUDGET = 400.0  # t for the 24 h horizon

_BATT = dict(eta_c=0.95, eta_d=0.95, soc0=0.5, soc_min=0.1, soc_max=0.9, throughput_cost=2.0)

#: Sites: static parameters.
PAPER_SITES: tuple[Site, ...] = (
    Site(
        "sanjose",
        it_capacity_mw=60,
        base_load_mw=18,
        import_limit_mw=90,
        export_limit_mw=40,
        battery=Battery(energy_mwh=80, charge_mw=20, discharge_mw=20, **_BATT),
    ),
    Site(
        "frankfurt",
        it_capacity_mw=50,
        base_load_mw=15,
        import_limit_mw=80,
        export_limit_mw=30,
        battery=Battery(energy_mwh=40, charge_mw=10, discharge_mw=10, **_BATT),
    ),
    Site(
        "london",
        it_capacity_mw=45,
        base_load_mw=12,
        import_limit_mw=70,
        export_limit_mw=20,
        battery=Battery(energy_mwh=40, charge_mw=10, discharge_mw=10, **_BATT),
    ),
)

#: Per-site profile parameters: UTC offset (h, summer), PV MWp, wind MW (mean availability),
#: carbon (night/base, solar dip, evening peak) g/kWh, price (base, solar dip, evening peak) $/MWh,
#: temperature (mean, half-range) °C.
SITE_PROFILES = {
    "sanjose": dict(
        utc_offset=-7,
        pv_mw=45.0,
        wind_mw=0.0,
        ci=(250.0, 140.0, 60.0),
        price=(70.0, 50.0, 55.0),
        temp=(22.0, 8.0),
    ),
    "frankfurt": dict(
        utc_offset=2,
        pv_mw=30.0,
        wind_mw=15.0,
        ci=(470.0, 110.0, 90.0),
        price=(105.0, 30.0, 45.0),
        temp=(18.0, 6.0),
    ),
    "london": dict(
        utc_offset=1,
        pv_mw=0.0,
        wind_mw=18.0,
        ci=(190.0, 40.0, 70.0),
        price=(90.0, 15.0, 50.0),
        temp=(15.5, 4.5),
    ),
}

#: Inference classes: static parameters.
PAPER_CLASSES: tuple[InferenceClass, ...] = (
    InferenceClass(
        "chat",
        home_site="london",
        energy_mwh=1.2e-5,
        revenue=0.005,
        latency_ms={"sanjose": 140, "frankfurt": 15, "london": 5},
        latency_limit_ms=200,
    ),
    InferenceClass(
        "vision",
        home_site="frankfurt",
        energy_mwh=2.0e-5,
        revenue=0.008,
        latency_ms={"sanjose": 150, "frankfurt": 5, "london": 15},
        latency_limit_ms=40,
    ),
    InferenceClass(
        "code",
        home_site="sanjose",
        energy_mwh=1.5e-5,
        revenue=0.006,
        latency_ms={"sanjose": 5, "frankfurt": 150, "london": 140},
        latency_limit_ms=200,
    ),
)

#: Demand shape per class: (night requests/h, 14:00-local peak requests/h).
CLASS_DEMAND = {"chat": (3.0e5, 9.5e5), "vision": (2.5e5, 6.0e5), "code": (3.0e5, 8.5e5)}

#: Jobs: (id, MW, hours, release hour, deadline hour (last hour it may run), $ value,
#: eligible sites, home site). Hours are UTC hours of :data:`DAY`. All mandatory.
PAPER_JOBS = (
    ("llm-pretrain-a", 20.0, 8, 0, 23, 40_000.0, ("sanjose", "frankfurt", "london"), "frankfurt"),
    ("llm-finetune-b", 12.0, 4, 2, 17, 14_000.0, ("sanjose", "london"), "london"),
    ("vision-train-c", 15.0, 6, 0, 23, 24_000.0, ("frankfurt", "london"), "frankfurt"),
    ("rl-sweep-d", 8.0, 3, 6, 20, 7_000.0, ("sanjose", "frankfurt", "london"), "sanjose"),
    ("embed-e", 10.0, 5, 4, 23, 13_000.0, ("sanjose", "frankfurt"), "frankfurt"),
    ("eval-f", 6.0, 2, 10, 21, 3_500.0, ("sanjose", "frankfurt", "london"), "london"),
)


def _bump(h: np.ndarray, mu: float, sigma: float) -> np.ndarray:
    d = (h - mu + 12) % 24 - 12
    return np.exp(-0.5 * (d / sigma) ** 2)


def _solar(h: np.ndarray) -> np.ndarray:
    """Clear-sky-like PV shape of the local hour (mid-hour), 0 at night, 1 at solar noon."""
    x = np.cos(np.pi * (h + 0.5 - 13.0) / 15.0)
    return np.clip(x, 0, None) ** 1.5


def paper_signals(start: pd.Timestamp = DAY, hours: int = HOURS) -> Signals:
    """The default instance's time series (deterministic; any start/length, same daily shapes)."""
    idx = pd.date_range(start, periods=hours, freq="h", tz="UTC")
    utc_h = idx.hour.to_numpy() + 0.0
    cols: dict[str, dict[str, np.ndarray]] = {n: {} for n in ("carbon", "pi", "gen", "kappa")}
    for site, p in SITE_PROFILES.items():
        h = (utc_h + p["utc_offset"]) % 24
        sol = _solar(h)
        eve = _bump(h, 19.0, 2.5)
        wind = 0.55 + 0.25 * np.cos(2 * np.pi * (h - 3) / 24)  # windier at night
        cols["carbon"][site] = p["ci"][0] - p["ci"][1] * sol + p["ci"][2] * eve
        cols["pi"][site] = p["price"][0] - p["price"][1] * sol + p["price"][2] * eve
        cols["gen"][site] = p["pv_mw"] * sol + p["wind_mw"] * wind
        temp = p["temp"][0] + p["temp"][1] * np.cos(2 * np.pi * (h - 15) / 24)
        cols["kappa"][site] = 0.12 + 0.012 * np.maximum(0.0, temp - 18.0)
    demand = {}
    for k in PAPER_CLASSES:
        off = SITE_PROFILES[k.home_site]["utc_offset"]
        h = (utc_h + off) % 24
        lo, hi = CLASS_DEMAND[k.name]
        demand[k.name] = lo + (hi - lo) * _bump(h, 14.0, 4.0)
    frame = lambda d: pd.DataFrame(d, index=idx)  # noqa: E731
    pi = frame(cols["pi"])
    return Signals(
        carbon=frame(cols["carbon"]),
        price_import=pi,
        price_export=0.85 * pi,
        generation=frame(cols["gen"]),
        kappa=frame(cols["kappa"]),
        demand=frame(demand),
    )


def paper_jobs(day: pd.Timestamp = DAY) -> tuple[Job, ...]:
    h = pd.Timedelta(hours=1)
    return tuple(
        Job(jid, mw, dur, day + rel * h, day + dl * h, val, sites, home)
        for jid, mw, dur, rel, dl, val, sites, home in PAPER_JOBS
    )


def default_instance() -> Instance:
    """The paper's default instance (3 sites × 24 h × 6 jobs × 3 classes), deterministic."""
    return Instance(
        sites=PAPER_SITES,
        classes=PAPER_CLASSES,
        jobs=paper_jobs(),
        signals=paper_signals(),
        carbon_budget_t=CARBON_BUDGET,
        carbon_price=CARBON_PRICE,
        name="paper-default",
    )


def multi_day_jobs(days: int, start: pd.Timestamp = DAY) -> tuple[Job, ...]:
    """:data:`PAPER_JOBS` repeated every day for ``days`` days (ids suffixed ``-d<n>``): the job
    queue of the multi-day closed-loop benchmark."""
    out = []
    for d in range(days):
        day = start + pd.Timedelta(days=d)
        out += [replace(j, job_id=f"{j.job_id}-d{d}") for j in paper_jobs(day)]
    return tuple(out)
