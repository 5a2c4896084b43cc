"""What `gridflex fleet check FILE --db DB` adds to the file's own validation: whether the warehouse
holds what the fleet's *file* sources need (they are filled by `gridflex import …`, not fetched), and
whether the series the fleet plans on is the one stored (not another emission factor)."""

from __future__ import annotations

from mpc.fleet import Fleet
from pipelines.lib.checks import factor_mismatch, planned_series
from warehouse import Warehouse


def _present(wh: Warehouse, table: str, column: str, keys: list[str]) -> set[str]:
    df = wh.query(f"select distinct {column} k from {table} where {column} in ?", [keys])
    return set(df.k)


def warehouse_problems(wh: Warehouse, fleet: Fleet) -> list[str]:
    """Sentences naming each missing input and the command that fills it (empty: all present)."""
    out: list[str] = []
    series = planned_series(fleet)
    have = _present(wh, "staging.carbon_intensity", "series", series)
    absent = [s for s in series if s not in have]
    mismatch = factor_mismatch(wh, fleet, absent)
    out.extend(mismatch)
    if fleet.sources.carbon == "electricitymaps_csv":
        for s in absent:
            if not any(s in m for m in mismatch):
                out.append(f"no carbon intensity stored for {s}: `gridflex import em-csv FILE...`")
    if fleet.sources.prices == "csv":
        zones = sorted({s.price_zone or s.zone for s in fleet.sites.values()})
        stored = set(wh.query("select distinct zone from staging.prices").zone)
        for z in zones:
            if z not in stored:
                hint = f" (stored zones: {', '.join(sorted(stored))})" if stored else ""
                out.append(
                    f"no prices stored for zone {z}{hint}: `gridflex import prices FILE --zone {z}` "
                    "or set the site's price_zone"
                )
    if fleet.sources.weather == "csv":
        have_w = _present(wh, "staging.weather_observed", "location", list(fleet.sites))
        for site in fleet.sites:
            if site not in have_w:
                out.append(
                    f"no weather stored for site {site}: `gridflex import weather FILE "
                    f"--site {site}`"
                )
    if fleet.sources.load == "csv":
        have_l = _present(wh, "staging.load", "series", list(fleet.classes))
        for k, c in fleet.classes.items():
            if k not in have_l:
                out.append(
                    f"no inference demand stored for class {k}: `gridflex import load FILE "
                    f"--site {c.home} --series {k}`"
                )
    if fleet.jobs.source == "table":
        jobs = wh.query("select job_id, eligible_sites from staging.jobs")
        if jobs.empty:
            out.append(
                "jobs.source = 'table' but staging.jobs is empty: `gridflex import jobs FILE`"
            )
        for r in jobs.itertuples():
            unknown = sorted(set(r.eligible_sites) - set(fleet.sites))
            if unknown:
                out.append(f"job {r.job_id}: eligible sites {unknown} are not in the fleet")
                break
    return out
