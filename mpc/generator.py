"""Seeded random instances of the paper's family (scaling benchmark, invariant tests).

Sites sit in three regions (latency 5 ms on site, 10–25 ms within a region, 70–160 ms across);
signals are daily profiles (solar dip, evening peak) with per-site phase, level and AR(1)-like
noise; jobs take ~35 % of the spare IT capacity so mandatory jobs almost always fit. Same
arguments and seed → identical instance.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mpc.instance import Battery, InferenceClass, Instance, Job, Signals, Site

START = pd.Timestamp("2024-06-10 00:00", tz="UTC")


def random_instance(
    n_sites: int = 3,
    hours: int = 24,
    n_jobs: int = 6,
    n_classes: int = 3,
    *,
    seed: int = 0,
    carbon_price: float = 100.0,
    budget_slack: float | None = 1.5,
    start: pd.Timestamp = START,
) -> Instance:
    """A random instance with ``n_sites`` sites, ``hours`` periods, ``n_jobs`` jobs, ``n_classes``
    classes. ``budget_slack``: carbon budget as a multiple of a rough emission estimate (None: no
    budget)."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range(start, periods=hours, freq="h", tz="UTC")
    names = [f"site{i:02d}" for i in range(n_sites)]
    region = {s: i % 3 for i, s in enumerate(names)}
    offset = {0: -7, 1: 1, 2: 8}
    sites, carbon, price, gen, kappa = [], {}, {}, {}, {}
    utc_h = idx.hour.to_numpy() + 0.0
    for s in names:
        cap = float(rng.uniform(30, 80))
        base = float(rng.uniform(0.2, 0.35) * cap)
        e = float(rng.choice([0.0, 20.0, 40.0, 80.0]))
        p = e / 4
        sites.append(
            Site(
                s,
                it_capacity_mw=round(cap, 1),
                base_load_mw=round(base, 1),
                import_limit_mw=round(1.6 * cap, 1),
                export_limit_mw=round(0.3 * cap, 1),
                battery=Battery(energy_mwh=e, charge_mw=p, discharge_mw=p, throughput_cost=2.0),
            )
        )
        h = (utc_h + offset[region[s]] + rng.integers(-1, 2)) % 24
        sol = np.clip(np.cos(np.pi * (h + 0.5 - 13) / 15), 0, None) ** 1.5
        eve = np.exp(-0.5 * (((h - 19 + 12) % 24 - 12) / 2.5) ** 2)
        noise = np.cumsum(rng.normal(0, 0.04, hours))
        lvl = rng.uniform(150, 500)
        carbon[s] = np.clip(lvl * (1 - 0.45 * sol + 0.2 * eve + noise), 20, None)
        price[s] = np.clip(rng.uniform(60, 110) * (1 - 0.5 * sol + 0.5 * eve + noise), 5, None)
        pv = rng.uniform(0, 0.8) * cap
        gen[s] = pv * sol * rng.uniform(0.7, 1.0, hours)
        kappa[s] = 0.1 + 0.1 * rng.uniform(0, 1) * (0.5 + 0.5 * sol)
    classes, demand = [], {}
    spare = {s.name: s.it_capacity_mw - s.base_load_mw for s in sites}
    for k in range(n_classes):
        home = names[int(rng.integers(n_sites))]
        lat = {}
        for s in names:
            if s == home:
                lat[s] = 5.0
            elif region[s] == region[home]:
                lat[s] = float(rng.uniform(10, 25))
            else:
                lat[s] = float(rng.uniform(70, 160))
        limit = float(rng.choice([40.0, 120.0, 200.0]))
        e_k = float(rng.uniform(1e-5, 2e-5))
        rho = float(e_k * rng.uniform(250, 450))
        classes.append(InferenceClass(f"class{k:02d}", home, e_k, rho, lat, limit))
        peak_mw = 0.25 * spare[home]
        h = (utc_h + offset[region[home]]) % 24
        shape = 0.4 + 0.6 * np.exp(-0.5 * (((h - 14 + 12) % 24 - 12) / 4) ** 2)
        demand[f"class{k:02d}"] = peak_mw * shape / e_k
    job_budget = 0.35 * sum(spare.values()) * hours * 0.5
    mean_energy = 8.5 * 5
    n_fit = max(1, int(job_budget / mean_energy))
    jobs = []
    for j in range(n_jobs):
        dur = int(rng.integers(2, min(9, hours) + 1))
        dur = min(dur, hours)
        slack = int(rng.integers(2, 25))
        rel = int(rng.integers(0, max(1, hours - dur)))
        dl = min(hours - 1, rel + dur - 1 + slack)
        rel = min(rel, dl - dur + 1)
        k = int(rng.integers(1, n_sites + 1))
        elig = tuple(
            sorted(rng.choice(names, size=min(k, max(1, n_sites // 2 + 1)), replace=False).tolist())
        )
        pw = float(round(rng.uniform(2, 15), 1))
        jobs.append(
            Job(
                f"job{j:03d}",
                pw,
                dur,
                idx[rel],
                idx[dl],
                float(round(pw * dur * rng.uniform(150, 400), 0)),
                elig,
                mandatory=bool(j < n_fit and rng.uniform() < 0.8),
            )
        )
    frame = lambda d: pd.DataFrame(d, index=idx)  # noqa: E731
    pi = frame(price)
    sig = Signals(
        carbon=frame(carbon),
        price_import=pi,
        price_export=0.8 * pi,
        generation=frame(gen),
        kappa=frame(kappa),
        demand=frame(demand),
    )
    budget = None
    if budget_slack is not None:
        load = sum(s.base_load_mw for s in sites) * hours * 1.15 + 0.5 * sum(
            j.power_mw * j.duration_h for j in jobs
        )
        mean_ci = float(np.mean([carbon[s].mean() for s in names])) * 1e-3
        budget = budget_slack * load * mean_ci
    return Instance(
        sites=tuple(sites),
        classes=tuple(classes),
        jobs=tuple(jobs),
        signals=sig,
        carbon_budget_t=budget,
        carbon_price=carbon_price,
        name=f"random-{n_sites}x{hours}x{n_jobs}x{n_classes}-s{seed}",
    )
