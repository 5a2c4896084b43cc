"""``gridflex bench mpc-paper`` / ``mpc-scale`` / ``mpc-closedloop``: the MILP benchmarks.

Pyomo and the model are imported inside the commands so ``gridflex --help`` stays fast.
"""

from __future__ import annotations

import json
import math
import time

import typer

from gridflex_cli.app import bench_app


def _num(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


@bench_app.command("mpc-paper")
def mpc_paper(
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list instead of a table."),
    time_limit: float = typer.Option(60.0, help="Solver time limit per method (s)."),
    mip_gap: float = typer.Option(0.01, help="Relative MIP gap."),
) -> None:
    """Solve the paper's default instance (3 sites × 24 h × 6 jobs × 3 classes) with every
    method."""
    from tabulate import tabulate

    from mpc.baselines import METHODS, solve
    from mpc.paper import default_instance

    inst = default_instance()
    rows = []
    for method in METHODS:
        t0 = time.perf_counter()
        r = solve(inst, method=method, time_limit=time_limit, mip_gap=mip_gap)
        wall = time.perf_counter() - t0
        rows.append(
            {
                "method": method,
                "status": r.status,
                "objective": _num(r.objective),
                "emissions": _num(r.emissions_t),
                "cost": _num(r.energy_cost),
                "build_s": r.build_s,
                "translate_s": r.translate_s,
                "solve_s": r.solve_s,
                "wall_s": wall,
                "gap": _num(r.gap),
            }
        )
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    typer.echo(
        f"{inst.name}: {len(inst.sites)} sites x {len(inst.index)} h x {len(inst.jobs)} jobs"
        f" x {len(inst.classes)} classes; carbon price {inst.carbon_price} $/t, budget "
        f"{inst.carbon_budget_t} t; gap {mip_gap:.0%}"
    )
    typer.echo(
        tabulate(
            [
                [
                    r["method"],
                    r["status"],
                    r["objective"],
                    r["emissions"],
                    r["cost"],
                    r["solve_s"],
                    r["build_s"] + r["translate_s"],
                    r["gap"],
                ]
                for r in rows
            ],
            headers=[
                "method",
                "status",
                "objective $",
                "emissions t",
                "energy cost $",
                "solve s",
                "build+transl s",
                "gap",
            ],
            floatfmt=(".0f", "", ".0f", ".1f", ".0f", ".3f", ".3f", ".4f"),
        )
    )


@bench_app.command("mpc-scale")
def mpc_scale(
    sites: int = typer.Option(10, "--sites"),
    hours: int = typer.Option(48, "--hours"),
    jobs: int = typer.Option(50, "--jobs"),
    classes: int = typer.Option(5, "--classes"),
    seed: int = typer.Option(0, "--seed"),
    repeat: int = typer.Option(1, "--repeat"),
    time_limit: float = typer.Option(120.0, help="Solver time limit (s)."),
    mip_gap: float = typer.Option(0.01, help="Relative MIP gap."),
    warm: bool = typer.Option(
        False,
        "--warm",
        help="also solve the next hour's window (one hour on) cold and warm-started from this "
        "window's job starts, as the receding horizon does every tick",
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Solve seeded random instances of the paper's family (joint model) and print the timings."""
    from tabulate import tabulate

    from mpc.baselines import solve
    from mpc.generator import random_instance
    from mpc.options import ModelOptions
    from mpc.receding import shifted_starts
    from mpc.solve import solve_model

    def row(name, r, total):
        return {
            "instance": name,
            "status": r.status,
            "objective": _num(r.objective),
            "build_s": r.build_s,
            "translate_s": r.translate_s,
            "solve_s": r.solve_s,
            "total_s": total,
            "gap": _num(r.gap),
            "variables": r.n_variables,
            "binaries": r.n_binaries,
            "constraints": r.n_constraints,
        }

    rows = []
    for i in range(repeat):
        inst = full = random_instance(sites, hours, jobs, classes, seed=seed + i)
        t0 = time.perf_counter()
        r = solve(inst, time_limit=time_limit, mip_gap=mip_gap)
        rows.append(row(inst.name, r, time.perf_counter() - t0))
        if warm:  # the next tick's window: one hour on (H - 1 h left of the same signals)
            t1 = full.index[1]
            nxt = full.replace(
                signals=full.signals.window(t1, hours - 1),
                jobs=tuple(
                    j
                    for j in full.jobs
                    if j.job_id not in {k for k, (_, p) in r.decisions.starts.items() if p == 0}
                ),
            )
            nxt = nxt.replace(
                jobs=tuple(
                    j if j.release >= t1 else j.__class__(**{**j.__dict__, "release": t1})
                    for j in nxt.jobs
                    if j.latest_start >= t1
                )
            )
            for label, ws in (
                ("next hour, cold", None),
                ("next hour, warm", shifted_starts(r, t1)),
            ):
                t2 = time.perf_counter()
                rr = solve_model(
                    nxt, ModelOptions(), time_limit=time_limit, mip_gap=mip_gap, warm_starts=ws
                )
                rows.append(row(f"{inst.name} {label}", rr, time.perf_counter() - t2))
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    typer.echo(tabulate(rows, headers="keys", floatfmt=".3f"))


def demo_problem(days: int = 7, start: str = "2026-01-05", seed: int = 7):
    """The demo grid (``sources.demo``) as MPC inputs on the paper fleet: (signals, jobs).

    Carbon and prices by zone → site; local generation = PV MWp · pv_cf + wind MW · wind_cf with the
    paper's per-site capacities; κ = 0.12 + 0.012 · max(0, T − 18 °C) from observed temperature;
    inference demand (requests/h) per class."""
    import pandas as pd

    from mpc.instance import Signals, jobs_from_frame
    from mpc.paper import PAPER_CLASSES, PAPER_SITES, SITE_PROFILES
    from sources.demo import DEMO_SITES, generate_demo

    g = generate_demo(start=start, days=days, seed=seed)
    zone_site = {d.zone: d.name for d in DEMO_SITES}
    sites = [s.name for s in PAPER_SITES]
    carbon = g.carbon.assign(site=g.carbon["zone"].map(zone_site)).pivot(
        index="ts", columns="site", values="value"
    )[sites]
    price = g.prices.assign(site=g.prices["zone"].map(zone_site)).pivot(
        index="ts", columns="site", values="price"
    )[sites]
    gen = g.generation.pivot(index="ts", columns="site", values=["pv_cf", "wind_cf"])
    avail = pd.DataFrame(
        {
            s: SITE_PROFILES[s]["pv_mw"] * gen["pv_cf"][s]
            + SITE_PROFILES[s]["wind_mw"] * gen["wind_cf"][s]
            for s in sites
        }
    )
    temp = g.weather[g.weather["kind"] == "observed"].pivot(
        index="ts", columns="location", values="temperature_2m"
    )[sites]
    kappa = 0.12 + 0.012 * (temp - 18.0).clip(lower=0.0)
    demand = g.inference.pivot(index="ts", columns="series", values="value")[
        [k.name for k in PAPER_CLASSES]
    ]
    sig = Signals(
        carbon=carbon,
        price_import=price,
        price_export=0.85 * price,
        generation=avail,
        kappa=kappa,
        demand=demand,
    )
    sig = Signals(
        **{
            n: f.rename_axis(index=None, columns=None).astype(float)
            for n, f in sig.frames().items()
        }
    )
    return sig, jobs_from_frame(g.jobs)


@bench_app.command("mpc-closedloop")
def mpc_closedloop(
    days: int = typer.Option(7, "--days"),
    horizon: int = typer.Option(36, "--horizon"),
    forecast: str = typer.Option("perfect", help="perfect | persistence | perfect,persistence"),
    data: str = typer.Option("demo", help="demo (sources.demo grid) | paper (repeating days)"),
    full: bool = typer.Option(True, help="Also solve one full-horizon MILP for comparison."),
    mip_gap: float = typer.Option(0.01, help="Relative MIP gap of every solve."),
    long_job: int = typer.Option(
        0,
        "--long-job",
        help="add one training job of this many hours (10 MW, any site, released at the start, "
        "deadline 24 h after its duration) and report where and when each policy ran it",
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Closed loop over ``days`` days on the paper fleet vs one full-horizon solve and the
    carbon-agnostic policy (perfect foresight: the two should agree within the gap). Every row
    states the work done (training MWh, jobs completed), so savings read like for like."""
    import pandas as pd
    from tabulate import tabulate

    from mpc.baselines import solve
    from mpc.instance import Instance, Job
    from mpc.paper import CARBON_PRICE, PAPER_CLASSES, PAPER_SITES, multi_day_jobs, paper_signals
    from mpc.receding import savings, simulate, work_done

    if data == "demo":
        sig, jobs = demo_problem(days)
    else:
        sig, jobs = paper_signals(hours=24 * days), multi_day_jobs(days)
    if long_job:
        t0 = sig.index[0]
        jobs = (
            *jobs,
            Job(
                "long",
                10.0,
                long_job,
                t0,
                t0 + pd.Timedelta(hours=long_job + 23),
                value=50_000.0,
                eligible_sites=tuple(s.name for s in PAPER_SITES),
            ),
        )
    rows, reports = [], {}

    def work(rep) -> dict:
        w = work_done(rep)
        out = {"training_mwh": w["training_mwh"], "jobs_done": w["jobs_completed"]}
        if long_job:
            runs = rep.runs[rep.runs.job == "long"].sort_values("time")
            out["long_job"] = (
                f"{runs.site.iloc[0]} {runs.time.iloc[0]:%d %H:%M}..{runs.time.iloc[-1]:%d %H:%M}"
                f" ({len(runs)} h, {runs.site.nunique()} site)"
                if len(runs)
                else "never ran"
            )
        return out

    ag = simulate(
        sig, PAPER_SITES, PAPER_CLASSES, jobs, forecast="carbon_agnostic", carbon_price=CARBON_PRICE
    )
    for fc in forecast.split(","):
        t0 = time.perf_counter()
        rep = reports[fc] = simulate(
            sig,
            PAPER_SITES,
            PAPER_CLASSES,
            jobs,
            horizon=horizon,
            forecast=fc,
            carbon_price=CARBON_PRICE,
            mip_gap=mip_gap,
        )
        st = rep.steps
        sv = savings(rep, ag, reports.get("perfect"))
        rows.append(
            {
                "policy": f"{rep.policy} H={horizon}",
                **_tot(rep.totals),
                "wall_s": time.perf_counter() - t0,
                "solver_s": float(
                    st["build_s"].sum() + st["translate_s"].sum() + st["solve_s"].sum()
                ),
                "saved_t": sv["emissions_saved_t"],
                "like_for_like_pct": sv.get("like_for_like_pct"),
                "share_of_oracle": sv.get("share_of_oracle_emissions"),
                **work(rep),
            }
        )
    rows.append(
        {"policy": ag.policy, **_tot(ag.totals), "wall_s": 0.0, "solver_s": 0.0, **work(ag)}
    )
    if full:
        t0 = time.perf_counter()
        r = solve(
            Instance(
                sites=PAPER_SITES,
                classes=PAPER_CLASSES,
                jobs=jobs,
                signals=sig,
                carbon_price=CARBON_PRICE,
            ),
            time_limit=300,
            mip_gap=mip_gap,
        )
        rows.append(
            {
                "policy": f"full-horizon {len(sig.index)} h ({r.status}, gap {r.gap:.2%})",
                **_tot(r.totals),
                "wall_s": time.perf_counter() - t0,
                "solver_s": r.build_s + r.translate_s + r.solve_s,
            }
        )
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    typer.echo(tabulate(rows, headers="keys", floatfmt=".2f"))


def _tot(t: dict) -> dict:
    return {
        "objective": t["objective"],
        "emissions_t": t["emissions_t"],
        "energy_cost": t["energy_cost"],
        "missed": t.get("missed_deadlines", t.get("mandatory_missed", 0.0)),
        "unserved": t.get("unserved_units", 0.0),
    }
