"""Reports read from the warehouse: the monthly location-based Scope 2 statement.

Location-based Scope 2 (GHG Protocol Scope 2 Guidance, 2015): the electricity each site bought from
its grid, hour by hour, times the grid's *average* emission factor for that hour and zone::

    E_site = Σ_h import_MWh(site, h) × EF(zone, h) [g/kWh] / 1000      (t CO2)

``EF`` is the zone's ``average:direct`` intensity (operational emissions, what Scope 2 counts; the
``lifecycle`` factor adds upstream emissions that belong to Scope 3 category 3) when it is stored,
else the series the fleet plans on (``plans.sites.carbon_series``) — the report says which, per
site, so a fleet planning on a marginal signal is never reported on it silently. Hours use what
happened where the committed hour has been re-stated on actuals (``plans.dispatch_realised``), and
the committed plan otherwise (counted). Market-based Scope 2 needs contractual instruments (PPAs,
certificates), which gridflex does not record: not computed, and the report says so.
"""

from __future__ import annotations

import pandas as pd

from warehouse.db import Warehouse

SCOPE2_SQL = """
with h as (
    select d.hour, d.site, s.zone, s.carbon_series,
           r.hour is not null as restated,
           coalesce(r.import_mw, d.import_mw) as import_mwh,
           coalesce(r.export_mw, d.export_mw) as export_mwh,
           coalesce(r.gen_used_mw, d.gen_used_mw) as gen_used_mwh,
           coalesce(r.it_mw, d.it_mw) as it_mwh,
           coalesce(r.facility_mw, d.facility_mw) as facility_mwh,
           coalesce(r.carbon_g_kwh, d.carbon_g_kwh) as planned_g_kwh,
           a.value as average_g_kwh
    from plans.dispatch_current d
    join plans.sites s using (site)
    left join plans.dispatch_realised r using (hour, site)
    left join staging.carbon_best a on a.series = s.zone || ':average:direct' and a.ts = d.hour
    where d.hour >= ? and d.hour < ?
)
select site, zone,
       count(*) as hours,
       count(*) filter (where restated) as hours_on_actuals,
       count(average_g_kwh) as hours_with_average_factor,
       case when count(average_g_kwh) = count(*) then zone || ':average:direct'
            when count(average_g_kwh) = 0 then any_value(carbon_series)
            else zone || ':average:direct, else ' || any_value(carbon_series) end as emission_factor,
       sum(import_mwh) as grid_mwh,
       sum(gen_used_mwh) as onsite_generation_mwh,
       sum(export_mwh) as exported_mwh,
       sum(it_mwh) as it_mwh,
       sum(facility_mwh) as facility_mwh,
       sum(import_mwh * coalesce(average_g_kwh, planned_g_kwh)) / 1e3 as scope2_location_t,
       sum(import_mwh * coalesce(average_g_kwh, planned_g_kwh)) / nullif(sum(import_mwh), 0)
           as average_factor_g_kwh
from h group by site, zone order by site
"""


def month_bounds(month: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``YYYY-MM`` → [first hour, first hour of the next month) in UTC; ValueError naming it."""
    try:
        start = pd.Timestamp(f"{month}-01", tz="UTC")
    except ValueError:
        raise ValueError(f"--month {month!r}: expected YYYY-MM, e.g. 2026-11") from None
    if len(month) != 7 or start.strftime("%Y-%m") != month:
        raise ValueError(f"--month {month!r}: expected YYYY-MM, e.g. 2026-11")
    return start, start + pd.offsets.MonthBegin(1)


def scope2_month(wh: Warehouse, month: str) -> tuple[pd.DataFrame, dict]:
    """Per site: grid electricity (MWh), the emission factor used, location-based Scope 2 (t CO2);
    and the fleet's totals with its carbon-efficiency KPIs for the month (marts.fleet_daily).
    Raises ValueError when no committed hour falls in the month."""
    start, end = month_bounds(month)
    sites = wh.query(SCOPE2_SQL, [start.to_pydatetime(), end.to_pydatetime()])
    if sites.empty:
        span = wh.query("select min(hour) a, max(hour) b from plans.dispatch").iloc[0]
        have = (
            "no committed hours at all"
            if pd.isna(span.a)
            else f"committed hours run {pd.Timestamp(span.a):%Y-%m-%d %H:%M} .. "
            f"{pd.Timestamp(span.b):%Y-%m-%d %H:%M} UTC"
        )
        raise ValueError(f"--month {month}: no committed hour in that month ({have})")
    kpi = wh.query(
        """select sum(emissions_t) emissions_t, sum(it_mwh) it_mwh,
                  sum(training_gpu_hours) training_gpu_hours, sum(inference_requests) requests,
                  sum(jobs_completed) jobs_completed, sum(jobs_missed) jobs_missed,
                  sum(emissions_saved_t) saved_t, sum(agnostic_emissions_t) agnostic_t,
                  sum(embodied_t) embodied_t, sum(gpu_hours) gpu_hours
           from marts.fleet_daily where day >= ? and day < ?""",
        [start.to_pydatetime(), end.to_pydatetime()],
    ).iloc[0]
    total_t = float(sites.scope2_location_t.sum())
    grid = float(sites.grid_mwh.sum())
    totals = {
        "month": month,
        "hours": int(sites.hours.max()),
        "hours_in_month": int((end - start) / pd.Timedelta(hours=1)),
        "grid_mwh": grid,
        "scope2_location_t": total_t,
        "average_factor_g_kwh": 1e3 * total_t / grid if grid else None,
        "facility_emissions_t": float(kpi.emissions_t),  # on the planned signal, as the marts
        "emissions_saved_vs_agnostic_t": None if pd.isna(kpi.saved_t) else float(kpi.saved_t),
        "g_per_it_kwh": 1e3 * total_t / float(kpi.it_mwh) if kpi.it_mwh else None,
        "jobs_completed": int(kpi.jobs_completed),
        "jobs_missed": int(kpi.jobs_missed),
        "embodied_t": float(kpi.embodied_t),
        "sci_g_per_gpu_hour": 1e6 * (total_t + float(kpi.embodied_t)) / float(kpi.gpu_hours)
        if kpi.gpu_hours
        else None,
    }
    return sites, totals


def scope2_markdown(sites: pd.DataFrame, totals: dict) -> str:
    """The report as Markdown: what it is, the per-site table, the totals, and what it leaves out."""
    from tabulate import tabulate

    cols = {
        "site": "site",
        "zone": "zone",
        "hours": "hours",
        "hours_on_actuals": "on actuals",
        "grid_mwh": "grid electricity MWh",
        "average_factor_g_kwh": "factor gCO2/kWh",
        "emission_factor": "emission factor series",
        "scope2_location_t": "Scope 2 (location) t CO2",
        "onsite_generation_mwh": "on-site generation MWh",
        "exported_mwh": "exported MWh",
    }
    table = sites[list(cols)].rename(columns=cols)
    m = totals
    lines = [
        f"# Location-based Scope 2 — {m['month']}",
        "",
        f"{m['hours']} of {m['hours_in_month']} hours of the month planned by gridflex "
        "(hours on actuals where re-stated, as committed otherwise).",
        "",
        tabulate(table, headers="keys", tablefmt="github", showindex=False, floatfmt=",.1f"),
        "",
        f"**Total: {m['scope2_location_t']:,.1f} t CO2** for {m['grid_mwh']:,.1f} MWh from the grid "
        + (
            f"(average {m['average_factor_g_kwh']:,.0f} gCO2/kWh)."
            if m["average_factor_g_kwh"] is not None
            else "."
        ),
        "",
        "Carbon efficiency: "
        + (f"{m['g_per_it_kwh']:,.0f} gCO2 per kWh of IT energy; " if m["g_per_it_kwh"] else "")
        + (
            f"SCI {m['sci_g_per_gpu_hour']:,.0f} gCO2 per GPU-hour "
            if m["sci_g_per_gpu_hour"]
            else ""
        )
        + (
            f"(embodied {m['embodied_t']:,.1f} t included)"
            if m["embodied_t"]
            else "(embodied emissions not accounted: sites.*.embodied_t_per_day = 0)"
        )
        + f"; jobs completed {m['jobs_completed']}, missed {m['jobs_missed']}.",
    ]
    if m["emissions_saved_vs_agnostic_t"] is not None:
        lines += [
            "",
            f"Saved vs carbon-agnostic operation (on the fleet's planning signal, hours both have): "
            f"{m['emissions_saved_vs_agnostic_t']:,.1f} t CO2 (marts.fleet_daily).",
        ]
    lines += [
        "",
        "Method: GHG Protocol Scope 2 location-based: hourly grid electricity × the zone's hourly "
        "average (direct, operational) emission factor; where that series is not stored, the series "
        "the fleet plans on (named above). Market-based Scope 2 is not computed: gridflex records no "
        "contractual instruments (PPAs, certificates).",
    ]
    return "\n".join(lines) + "\n"
