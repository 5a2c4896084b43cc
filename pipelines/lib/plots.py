"""Plots a person reads in the Dagster UI (PNG via matplotlib's Agg backend; no display needed).

- :func:`plan_figure`: one plan (``plans.site_hours`` of one ``plan_hour``), per site: power, the
  training jobs as a Gantt chart, the battery and the carbon intensity with its forecast band.
  :func:`plan_plot_inputs` reads what it needs besides the site hours from the warehouse.
- :func:`fleet_figure`: the fleet's cumulative realised emissions against the carbon-agnostic
  counterfactual (:func:`fleet_emissions_frame` reads them).
- :func:`backtest_figure`: cumulative emissions per policy of a backtest.

Times are drawn in UTC; every axis says its unit.
"""

from __future__ import annotations

import logging

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

log = logging.getLogger(__name__)

HOUR = pd.Timedelta(hours=1)

#: axis labels (the tests read them)
POWER_LABEL = "power\n(MW)"
SOC_LABEL = "battery SoC\n(MWh)"
CARBON_LABEL = "carbon\n(gCO₂/kWh)"
JOBS_LABEL = "training\njobs"
FLEET_LABEL = "cumulative emissions (t CO₂)"
#: the plan figure's legend, in this order (what a figure does not draw is left out)
LEGEND_ORDER = (
    "IT load",
    "grid import",
    "grid import, carbon-agnostic",
    "on-site gen used",
    "on-site gen available",
    "grid export (−)",
    "battery charge (+) / discharge (−)",
    "battery SoC (end of hour)",
    "carbon, plan (p50)",
    "carbon forecast p10–p90",
    "committed hour (t0)",
)
#: height of the plan figure's title-and-legend strip (inches)
HEADER_IN = 0.75
#: the text marking the committed hour
COMMITTED = "committed"
#: job ids longer than this are cut (with "…") in the Gantt bars
JOB_ID_CHARS = 16

_C = {
    "it": "tab:blue",
    "import": "tab:red",
    "gen": "tab:green",
    "battery": "tab:purple",
    "export": "tab:orange",
    "agnostic": "0.2",
    "carbon": "tab:brown",
    "committed": "gold",
}


# ------------------------------------------------------------------------------------------ helpers
def _naive_utc(values) -> pd.DatetimeIndex:
    """Times as naive UTC (what matplotlib's date axis draws); naive input is taken as UTC."""
    idx = pd.DatetimeIndex(pd.to_datetime(pd.Series(values), utc=True))
    return idx.tz_localize(None)


def _on_grid(frame: pd.DataFrame, time_col: str, grid: pd.DatetimeIndex, col: str) -> np.ndarray:
    """``frame[col]`` on the hourly ``grid`` (NaN where the frame has no row for the hour)."""
    if frame is None or frame.empty or col not in frame:
        return np.full(len(grid), np.nan)
    s = pd.Series(frame[col].to_numpy(float), index=_naive_utc(frame[time_col]))
    s = s[~s.index.duplicated(keep="last")]
    return s.reindex(grid).to_numpy(float)


def _edges(grid: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """The hour starts of ``grid`` plus the end of its last hour (so the last hour is drawn)."""
    return grid.append(pd.DatetimeIndex([grid[-1] + HOUR]))


def _step(ax, grid, values, **kw):
    """A value held over each hour ``[t, t+1h)`` as a step line that also draws the last hour."""
    v = np.asarray(values, float)
    return ax.step(_edges(grid), np.append(v, v[-1:]), where="post", **kw)[0]


def _hour_locator(hours: int):
    step = 1 if hours <= 8 else 2 if hours <= 16 else 3 if hours <= 30 else 6 if hours <= 72 else 12
    return mdates.HourLocator(byhour=range(0, 24, step))


def _blocks(times: pd.DatetimeIndex) -> list[tuple[pd.Timestamp, int]]:
    """Consecutive hours as (first hour, length in hours) blocks."""
    out: list[tuple[pd.Timestamp, int]] = []
    for t in times.sort_values().unique():
        if out and out[-1][0] + out[-1][1] * HOUR == t:
            out[-1] = (out[-1][0], out[-1][1] + 1)
        else:
            out.append((t, 1))
    return out


def _short(job_id: str, n: int = JOB_ID_CHARS) -> str:
    return job_id if len(job_id) <= n else job_id[: n - 1] + "…"


# -------------------------------------------------------------------------------- the plan figure
def plan_figure(
    site_hours: pd.DataFrame,
    title: str,
    job_runs: pd.DataFrame | None = None,
    carbon_band: pd.DataFrame | None = None,
    agnostic: pd.DataFrame | None = None,
):
    """One plan, per site a block of panels on a shared UTC time axis:

    - power (MW): IT load, grid import, on-site generation used (solid) and available (dashed),
      battery charge (+) / discharge (−) as bars, grid export (−) where there is any, and the
      carbon-agnostic import where ``agnostic`` gives it;
    - the training jobs running at the site as Gantt bars (one per run of consecutive hours),
      labelled with the job id (cut to :data:`JOB_ID_CHARS`) and its power;
    - battery state of charge (MWh) at the end of each hour;
    - carbon intensity (gCO₂/kWh) the plan used (p50) and the forecast's p10–p90 band.

    The committed hour (the first, ``plan_hour``) is shaded on every panel and labelled
    "committed". One legend for the figure, above the panels.

    ``site_hours``: ``plans.site_hours`` of one plan (``plan_hour, target_time, site, it_mw,
    import_mw, …``). ``job_runs``: ``plans.job_runs`` of the plan (``target_time, job_id, site,
    power_mw``). ``carbon_band``: ``forecasts.carbon`` issued at the plan hour (``target_time,
    series`` = site, ``p10, p90``). ``agnostic``: ``target_time, site, import_mw`` of the
    carbon-agnostic policy (:func:`plan_plot_inputs`). Each is optional: what is missing is not
    drawn. Returns a :class:`matplotlib.figure.Figure` (not held by pyplot), 11 in wide and about
    5 in tall per site (taller with more jobs at a site)."""
    sh = site_hours.copy()
    sites = list(dict.fromkeys(sh["site"]))
    times = _naive_utc(sh["target_time"])
    t0 = _naive_utc(sh["plan_hour"]).min() if "plan_hour" in sh else times.min()
    grid = pd.date_range(min(t0, times.min()), times.max(), freq="h")
    hours = len(grid)
    jr = job_runs if job_runs is not None and not job_runs.empty else None
    band = carbon_band if carbon_band is not None and not carbon_band.empty else None
    agn = agnostic if agnostic is not None and not agnostic.empty else None
    band_col = "series" if band is not None and "series" in band else "site"
    if jr is not None:
        jr = jr.assign(_t=_naive_utc(jr["target_time"]).to_numpy())
    all_jobs = sorted(jr["job_id"].unique()) if jr is not None else []
    job_color = {j: matplotlib.colormaps["tab10"](i % 10) for i, j in enumerate(all_jobs)}
    lanes = {  # the jobs at each site, in the order they first run
        s: list(jr[jr["site"] == s].groupby("job_id")["_t"].min().sort_values().index)
        if jr is not None
        else []
        for s in sites
    }

    # a header (title, legend), then one block of panels per site: power, jobs, SoC, carbon
    heights = {s: [2.0, 0.35 + 0.3 * max(1, len(lanes[s])), 0.85, 1.1] for s in sites}  # inches
    block_h = [HEADER_IN] + [sum(heights[s]) + 0.45 for s in sites]
    fig = Figure(figsize=(11, sum(block_h) + 0.3), layout="constrained")
    header, *subs = fig.subfigures(len(sites) + 1, 1, height_ratios=block_h)
    panels = {}
    for sub, site in zip(subs, sites, strict=True):
        # x shared within a site; across sites the same limits are set (axes shared across
        # subfigures redraw the whole figure on every change of limits)
        axs = sub.subplots(4, 1, sharex=True, height_ratios=heights[site])
        panels[site] = axs
        sub.suptitle(site, x=0.01, ha="left", fontsize=11, fontweight="bold")
        _site_panels(axs, site, sh, grid, jr, band, band_col, agn, lanes[site], job_color)
        sub.align_ylabels(axs)

    for axs in panels.values():
        for a in axs:
            a.axvspan(
                t0, t0 + HOUR, color=_C["committed"], alpha=0.3, lw=0, zorder=0, gid=COMMITTED
            )
            a.grid(axis="x", color="0.85", lw=0.6)
            a.tick_params(labelbottom=False, labelsize=8)
            a.set_xlim(grid[0], grid[-1] + HOUR)
        axs[0].text(
            t0 + HOUR / 2,
            0.97,
            COMMITTED,
            transform=axs[0].get_xaxis_transform(),
            rotation=90,
            ha="center",
            va="top",
            fontsize=7,
            color="0.3",
            bbox={"boxstyle": "square,pad=0.15", "fc": "white", "alpha": 0.6, "lw": 0},
        )
        bottom = axs[-1]
        bottom.tick_params(labelbottom=True)
        bottom.xaxis.set_major_locator(_hour_locator(hours))
        bottom.xaxis.set_major_formatter(
            mdates.ConciseDateFormatter(bottom.xaxis.get_major_locator(), show_offset=False)
        )
    panels[sites[-1]][-1].set_xlabel("time (UTC)", fontsize=9)

    # one legend: every line, bar, band and the committed-hour span, once, in reading order
    found: dict[str, object] = {}
    for axs in panels.values():
        for a in axs:
            for h, lab in zip(*a.get_legend_handles_labels(), strict=True):
                found.setdefault(lab, h)
    found[f"{COMMITTED} hour (t0)"] = Rectangle(
        (0, 0), 1, 1, color=_C["committed"], alpha=0.3, lw=0
    )
    order = {lab: i for i, lab in enumerate(LEGEND_ORDER)}
    labels = sorted(found, key=lambda lab: order.get(lab, len(order)))
    header.legend(
        [found[lab] for lab in labels], labels, loc="center", ncol=4, fontsize=8, frameon=False
    )
    fig.suptitle(f"{title} — horizon {hours} h, {len(sites)} site(s), times in UTC", fontsize=12)
    return fig


def _site_panels(axs, site, sh, grid, jr, band, band_col, agn, lanes, job_color) -> None:
    ax_p, ax_j, ax_s, ax_c = axs
    d = sh[sh["site"] == site]

    def col(c):
        return _on_grid(d, "target_time", grid, c)

    # power
    batt = np.nan_to_num(col("charge_mw")) - np.nan_to_num(col("discharge_mw"))
    if np.any(np.abs(batt) > 1e-9):
        ax_p.bar(
            grid,
            batt,
            width=1 / 24,
            align="edge",
            color=_C["battery"],
            alpha=0.45,
            label="battery charge (+) / discharge (−)",
            gid="battery",
        )
    _step(ax_p, grid, col("it_mw"), color=_C["it"], lw=1.8, label="IT load")
    _step(ax_p, grid, col("import_mw"), color=_C["import"], lw=1.8, label="grid import")
    if agn is not None:
        a = agn[agn["site"] == site]
        if not a.empty:
            _step(
                ax_p,
                grid,
                _on_grid(a, "target_time", grid, "import_mw"),
                color=_C["agnostic"],
                lw=1.4,
                ls=(0, (2, 1.5)),
                label="grid import, carbon-agnostic",
            )
    _step(ax_p, grid, col("gen_used_mw"), color=_C["gen"], lw=1.5, label="on-site gen used")
    if "gen_available_mw" in d:
        _step(
            ax_p,
            grid,
            col("gen_available_mw"),
            color=_C["gen"],
            lw=1.0,
            ls="--",
            alpha=0.8,
            label="on-site gen available",
        )
    exp = np.nan_to_num(col("export_mw"))
    if np.any(exp > 1e-9):
        _step(ax_p, grid, -exp, color=_C["export"], lw=1.2, label="grid export (−)")
    ax_p.axhline(0, color="0.5", lw=0.6)
    ax_p.set_ylabel(POWER_LABEL, fontsize=9)
    ax_p.margins(y=0.08)

    # training jobs (Gantt)
    ax_j.set_ylabel(JOBS_LABEL, fontsize=9)
    ax_j.set_yticks([])
    ax_j.set_ylim(-0.6, max(1, len(lanes)) - 0.4)
    ax_j.invert_yaxis()
    if not lanes:
        ax_j.text(
            0.5,
            0.5,
            "no training job planned here",
            transform=ax_j.transAxes,
            ha="center",
            va="center",
            fontsize=8,
            color="0.4",
        )
    hours_per_char = len(grid) / 8.8 * (7 * 0.62 / 72)  # 7 pt text on a ~8.8 in wide axis
    end = grid[-1] + HOUR
    for lane, job in enumerate(lanes):
        r = jr[(jr["site"] == site) & (jr["job_id"] == job)]
        t = pd.DatetimeIndex(r["_t"])
        mw = float(r["power_mw"].max())
        label = f"{_short(job)} · {mw:.3g} MW"
        for start, n in _blocks(t):
            ax_j.barh(
                lane,
                n / 24,
                left=start,
                height=0.7,
                color=job_color[job],
                alpha=0.85,
                edgecolor="white",
                gid=f"job:{job}",
            )
            need = len(label) * hours_per_char
            if n >= need + 0.3:  # inside the bar
                x, ha, c = start + n * HOUR / 2, "center", "white"
            elif (end - (start + n * HOUR)) / HOUR >= need + 0.3:  # after it
                x, ha, c = start + n * HOUR + 0.15 * HOUR, "left", "0.1"
            else:  # before it
                x, ha, c = start - 0.15 * HOUR, "right", "0.1"
            ax_j.text(x, lane, label, ha=ha, va="center", fontsize=7, color=c, clip_on=True)

    # battery state of charge, at the end of each hour
    soc = col("soc_mwh")
    ax_s.plot(
        grid + HOUR,
        soc,
        color=_C["battery"],
        lw=1.4,
        marker=".",
        ms=3,
        label="battery SoC (end of hour)",
    )
    ax_s.set_ylabel(SOC_LABEL, fontsize=9)
    top = np.nanmax(soc) if np.isfinite(soc).any() else 1.0
    ax_s.set_ylim(0, max(top, 1e-3) * 1.15)

    # carbon intensity: the plan's p50 and the forecast's band
    if band is not None:
        b = band[band[band_col] == site]
        lo = _on_grid(b, "target_time", grid, "p10")
        hi = _on_grid(b, "target_time", grid, "p90")
        ok = np.isfinite(lo) & np.isfinite(hi)
        if ok.any():
            ax_c.fill_between(
                _edges(grid),
                np.append(lo, lo[-1:]),
                np.append(hi, hi[-1:]),
                where=np.append(ok, ok[-1:]),
                step="post",
                color=_C["carbon"],
                alpha=0.22,
                lw=0,
                label="carbon forecast p10–p90",
            )
    _step(ax_c, grid, col("carbon_g_kwh"), color=_C["carbon"], lw=1.6, label="carbon, plan (p50)")
    ax_c.set_ylabel(CARBON_LABEL, fontsize=9)
    ax_c.set_ylim(bottom=0)


# ------------------------------------------------------------------------ what the plan plot reads
def plan_plot_inputs(wh, fleet, t0) -> dict[str, pd.DataFrame | None]:
    """What :func:`plan_figure` draws besides the site hours, for the plan made at ``t0``:
    ``job_runs`` (``plans.job_runs``), ``carbon_band`` (``forecasts.carbon`` issued at ``t0``;
    where several models issued at ``t0``, the one the plan's ``forecast_policy`` names) and
    ``agnostic``.

    ``agnostic`` is the carbon-agnostic policy's import over the whole window, evaluated
    heuristically (:func:`mpc.baselines.carbon_agnostic`: jobs as soon as possible at their home
    site, inference at home, passive energy; no solver, well under a second) on the same window the
    plan solved: the forecasts issued at ``t0``, the jobs and the state (running jobs, batteries)
    the plan started from. It is a like-for-like "what if we did not plan" for this window, not
    the recorded counterfactual (``plans.agnostic``, which runs from its own state on realised
    signals once they are known). Where that evaluation cannot be made (e.g. the plan's state is
    gone), the recorded counterfactual's hours that overlap the window are drawn instead (often
    none)."""
    t0 = pd.Timestamp(t0)
    p = [t0.to_pydatetime()]
    runs = wh.query(
        "select target_time, job_id, site, power_mw from plans.job_runs where plan_hour = ? "
        "order by target_time, job_id",
        p,
    )
    band = wh.query(
        "select target_time, series, model, p10, p50, p90 from forecasts.carbon "
        "where issued_at = ? order by target_time, series",
        p,
    )
    models = list(dict.fromkeys(band["model"]))
    if len(models) > 1:
        pol = wh.query("select forecast_policy from plans.runs where plan_hour = ?", p)
        policy = str(pol.forecast_policy[0]) if len(pol) else ""
        pick = next((m for m in models if f"carbon={m}" in policy or m == policy), models[0])
        band = band[band["model"] == pick]
    agnostic = None
    try:
        agnostic = agnostic_window(wh, fleet, t0)
    except Exception as exc:  # a plot must never fail the asset that made the plan
        log.warning("plan plot: no carbon-agnostic window for %s: %s", t0, exc)
    if agnostic is None or agnostic.empty:
        horizon = fleet.planning.horizon_h
        agnostic = wh.query(
            "select hour target_time, site, import_mw from plans.agnostic "
            "where hour >= ? and hour < ? order by hour, site",
            [t0.to_pydatetime(), (t0 + horizon * HOUR).to_pydatetime()],
        )
    return {
        "job_runs": runs,
        "carbon_band": band.reset_index(drop=True),
        "agnostic": agnostic if len(agnostic) else None,
    }


def agnostic_window(wh, fleet, t0) -> pd.DataFrame:
    """The carbon-agnostic policy over the plan's window ``[t0, t0+H)``, from the plan's starting
    state on the forecasts issued at ``t0`` (:func:`mpc.baselines.carbon_agnostic`, a heuristic
    evaluation): ``target_time, site, import_mw, export_mw, facility_mw, emissions_t``."""
    from mpc.baselines import carbon_agnostic
    from mpc.receding import window_instance
    from pipelines.lib import plan as pl

    state, inst, _ = pl.window_problem(wh, fleet, t0)  # the window the plan solved
    w, _ = window_instance(state, inst)
    sh = carbon_agnostic(w).site_hours.rename(columns={"time": "target_time"})
    return sh[["target_time", "site", "import_mw", "export_mw", "facility_mw", "emissions_t"]]


# ------------------------------------------------------------------------------ the fleet summary
def fleet_emissions_frame(wh, until=None) -> pd.DataFrame:
    """Per committed hour that the carbon-agnostic counterfactual also has, the fleet's realised
    emissions over the site-hours both have and the counterfactual's (``marts.fleet_hourly``: on
    actuals where the hour was re-stated, as committed otherwise): ``hour, emissions_t,
    agnostic_emissions_t, restated_site_hours, site_hours``. ``until``: hours before it."""
    where, params = "", []
    if until is not None:
        where, params = "and hour < ?", [pd.Timestamp(until).to_pydatetime()]
    return wh.query(
        f"""select hour, compared_emissions_t emissions_t, agnostic_emissions_t,
                   restated_sites restated_site_hours, compared_sites site_hours
            from marts.fleet_hourly where compared_sites > 0 {where} order by hour""",
        params,
    )


def fleet_figure(hourly: pd.DataFrame, title: str = "fleet emissions vs carbon-agnostic"):
    """Cumulative realised emissions (t CO₂) of gridflex and of the carbon-agnostic counterfactual
    over the committed hours both have (:func:`fleet_emissions_frame`), the saving shaded, and
    the saved tonnes and per cent written at the end."""
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    ax = fig.subplots()
    ax.set_ylabel(FLEET_LABEL, fontsize=9)
    ax.set_xlabel("time (UTC)", fontsize=9)
    if hourly is None or hourly.empty:
        ax.text(
            0.5,
            0.5,
            "no committed hour has a carbon-agnostic comparison yet\n"
            "(the counterfactual advances once an hour's actuals are known)",
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=9,
            color="0.35",
        )
        ax.set_title(title, fontsize=11)
        return fig
    h = hourly.sort_values("hour")
    t = _naive_utc(h["hour"])
    x = _edges(t[:1]).append(t[1:] + HOUR) if len(t) > 1 else _edges(t)
    gf = np.concatenate([[0.0], h["emissions_t"].to_numpy(float).cumsum()])
    ag = np.concatenate([[0.0], h["agnostic_emissions_t"].to_numpy(float).cumsum()])
    ax.plot(x, ag, color=_C["agnostic"], lw=1.8, ls=(0, (3, 1.5)), label="carbon-agnostic")
    ax.plot(x, gf, color="tab:green", lw=2.0, label="gridflex (realised where restated)")
    for better, colour, label in ((True, "tab:green", "saved"), (False, "tab:red", "extra")):
        where = (gf <= ag) if better else (gf > ag)
        if np.any(where[1:] & (np.abs(gf - ag)[1:] > 1e-12)):
            ax.fill_between(
                x,
                gf,
                ag,
                where=where,
                color=colour,
                alpha=0.15,
                lw=0,
                label=label,
                interpolate=True,
            )
    saved = ag[-1] - gf[-1]
    pct = 100 * saved / ag[-1] if ag[-1] else float("nan")
    word = "saved" if saved >= 0 else "extra"
    # the saving as a bracket at the end, its value in the free lower right corner
    ax.annotate(
        "",
        xy=(x[-1], ag[-1]),
        xytext=(x[-1], gf[-1]),
        arrowprops={"arrowstyle": "<->", "color": "0.3", "lw": 1.0, "shrinkA": 0, "shrinkB": 0},
    )
    ax.text(
        0.98,
        0.06,
        f"{word} {abs(saved):,.2f} t CO₂ ({abs(pct):.1f} %)\nover {len(h)} committed hour(s)",
        transform=ax.transAxes,
        ha="right",
        va="bottom",
        fontsize=10,
        fontweight="bold",
        color="tab:green" if saved >= 0 else "tab:red",
        bbox={"boxstyle": "round,pad=0.35", "fc": "white", "ec": "0.75"},
    )
    for v, colour in ((ag[-1], _C["agnostic"]), (gf[-1], "tab:green")):
        ax.annotate(
            f"{v:,.1f} t",
            (x[-1], v),
            xytext=(5, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
            color=colour,
        )
    n = len(h)
    on_actuals = int(h["restated_site_hours"].sum()) if "restated_site_hours" in h else None
    site_hours = int(h["site_hours"].sum()) if "site_hours" in h else None
    sub = f"{n} committed hour(s)"
    if on_actuals is not None and site_hours:
        sub += f", {on_actuals} of {site_hours} site-hours re-stated on actuals"
    ax.set_title(f"{title}\n{sub}", fontsize=11)
    ax.set_ylim(bottom=0)
    ax.set_xlim(x[0], x[-1] + (x[-1] - x[0]) * 0.06)
    ax.margins(x=0)
    span_h = (x[-1] - x[0]) / HOUR
    loc = _hour_locator(span_h) if span_h <= 72 else mdates.AutoDateLocator(minticks=4, maxticks=10)
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))
    ax.grid(color="0.9", lw=0.6)
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    return fig


def backtest_figure(hourly: pd.DataFrame, title: str):
    """Cumulative realised emissions per policy over the backtest (``hour, policy, emissions_t``)."""
    fig, ax = plt.subplots(figsize=(9, 3.5))
    for policy, d in hourly.groupby("policy"):
        d = d.sort_values("hour")
        ax.plot(d["hour"].dt.tz_localize(None), d["emissions_t"].cumsum(), label=policy)
    ax.set_ylabel("cumulative t CO2")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    return fig
