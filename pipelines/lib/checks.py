"""Data checks behind the Dagster asset checks: plain queries, evaluated on what an asset just wrote
(its partition's window) and on the fleet's own series only — a bad value in a zone the fleet does not
plan on never blocks the fleet, and a check's cost does not grow with the warehouse.

Missing data does not block planning (the planner degrades to persistence and says so): gap and lag
checks warn. Corrupt data (out of range, a forecast issued after the hour it describes) blocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from mpc.fleet import Fleet
from sources.frames import PLAUSIBLE
from warehouse import Warehouse

HOUR = pd.Timedelta(hours=1)
#: how far back the gap checks look before the hour being planned
CHECK_DAYS = 7


@dataclass
class CheckOutcome:
    passed: bool
    metadata: dict = field(default_factory=dict)
    #: a sentence a person reads when it did not pass
    problem: str | None = None


def _py(t):
    return pd.Timestamp(t).to_pydatetime()


def planned_series(fleet: Fleet) -> list[str]:
    return sorted({fleet.carbon_series(s) for s in fleet.sites})


def carbon_in_range(wh: Warehouse, fleet: Fleet, start, end) -> CheckOutcome:
    """Every stored value of the fleet's series in ``[start, end)`` is finite and plausible."""
    lo, hi = PLAUSIBLE["carbon_g_kwh"]
    r = wh.query(
        f"""select count(*) n, count(*) filter (where not isfinite(value) or value < {lo}
                   or value > {hi}) bad, min(value) lo, max(value) hi
            from staging.carbon_intensity where series in ? and ts >= ? and ts < ?""",
        [planned_series(fleet), _py(start), _py(end)],
    ).iloc[0]
    md = {
        "rows": int(r.n),
        "out_of_range": int(r.bad),
        "min_g_kwh": round(float(r.lo), 1) if r.n else None,
        "max_g_kwh": round(float(r.hi), 1) if r.n else None,
    }
    ok = int(r.bad) == 0
    return CheckOutcome(ok, md, None if ok else f"{int(r.bad)} value(s) outside {lo:g}..{hi:g}")


def _gaps(wh: Warehouse, table: str, key: str, keys: list[str], t_end) -> pd.DataFrame:
    """Per key: hours present / missing in ``[t_end - CHECK_DAYS, t_end)`` and the latest hour."""
    start = pd.Timestamp(t_end) - pd.Timedelta(days=CHECK_DAYS)
    df = wh.query(
        f"""select k.key, count(distinct t.ts) n, max(t.ts) latest
            from (select unnest(?::varchar[]) as key) k
            left join {table} t on t.{key} = k.key and t.ts >= ? and t.ts < ?
            group by k.key order by k.key""",
        [keys, _py(start), _py(t_end)],
    )
    expected = CHECK_DAYS * 24
    df["missing_hours"] = expected - df["n"].astype(int)
    df["hours_behind"] = [
        int((pd.Timestamp(t_end) - HOUR - pd.Timestamp(t)) / HOUR) if not pd.isna(t) else None
        for t in df["latest"]
    ]
    return df


def factor_mismatch(wh: Warehouse, fleet: Fleet, series: list[str]) -> list[str]:
    """For planned series with nothing stored: sentences naming what *is* stored for the same zone
    (a different emission factor or signal), so the mismatch is said in words."""
    out = []
    for s in series:
        zone = s.split(":")[0]
        other = wh.query(
            "select distinct series from staging.carbon_intensity where zone = ? and series <> ?",
            [zone, s],
        ).series.tolist()
        if other:
            out.append(
                f"the fleet plans on {s} but the warehouse has only {', '.join(sorted(other))} for "
                f"zone {zone}: set planning.carbon_signal to match, or fetch/import {s}"
            )
    return out


def carbon_gaps(wh: Warehouse, fleet: Fleet, t_end) -> CheckOutcome:
    """No missing hours in the ``CHECK_DAYS`` before ``t_end`` (the hour being planned) for the
    fleet's planned series; warns — the planner degrades on lag or gaps rather than stopping."""
    series = planned_series(fleet)
    df = _gaps(wh, "staging.carbon_intensity", "series", series, t_end)
    absent = df[df["latest"].isna()]["key"].tolist()
    md = {
        "missing_hours": int(df.missing_hours.sum()),
        "absent_series": ", ".join(absent) or "none",
        "per_series": df[["key", "missing_hours", "hours_behind", "latest"]].rename(
            columns={"key": "series"}
        ),
    }
    problems = factor_mismatch(wh, fleet, absent)
    if problems:
        md["mismatch"] = " | ".join(problems)
    ok = md["missing_hours"] == 0
    behind = df[pd.to_numeric(df.hours_behind, errors="coerce").fillna(0) > 0]
    problem = None
    if not ok:
        problem = (
            f"{md['missing_hours']} hour(s) missing in the {CHECK_DAYS} days before "
            f"{pd.Timestamp(t_end):%Y-%m-%d %H:%M} UTC"
            + (
                "; behind: "
                + ", ".join(f"{r.key} {int(r.hours_behind)} h" for r in behind.itertuples())
                if len(behind)
                else ""
            )
            + (f"; {problems[0]}" if problems else "")
        )
    return CheckOutcome(ok, md, problem)


def load_gaps(wh: Warehouse, fleet: Fleet, t_end) -> CheckOutcome:
    classes = sorted(fleet.classes)
    df = _gaps(wh, "staging.load", "series", classes, t_end)
    md = {
        "missing_hours": int(df.missing_hours.sum()),
        "classes_found": int(df.latest.notna().sum()),
        "per_class": df[["key", "missing_hours", "hours_behind", "latest"]].rename(
            columns={"key": "class"}
        ),
    }
    ok = md["missing_hours"] == 0 and md["classes_found"] == len(classes)
    return CheckOutcome(ok, md, None if ok else f"{md['missing_hours']} class-hour(s) missing")


def weather_not_from_future(wh: Warehouse, fleet: Fleet, start, end) -> CheckOutcome:
    """Forecasts issued in the window describe hours at or after their issue (an Open-Meteo
    answer's past hours are analysis, stored as observations, never as forecasts)."""
    n = wh.query(
        "select count(*) n from staging.weather_forecast where location in ? and issued_at >= ? "
        "and issued_at < ? and ts < issued_at",
        [list(fleet.sites), _py(start), _py(end)],
    ).n[0]
    ok = int(n) == 0
    return CheckOutcome(
        ok,
        {"rows_before_their_issue": int(n)},
        None if ok else f"{int(n)} forecast row(s) describe hours before their issue",
    )


def prices_present(wh: Warehouse, fleet: Fleet, start, end) -> CheckOutcome:
    """Prices for every zone the fleet pays, over ``[start, end)`` (the window and the horizon after
    it: day-ahead prices), within the plausible range."""
    lo, hi = PLAUSIBLE["price_per_mwh"]
    zones = sorted({s.price_zone or s.zone for s in fleet.sites.values()})
    df = wh.query(
        f"""select k.zone, count(distinct p.ts) n,
                   count(*) filter (where not isfinite(p.price) or p.price < {lo} or p.price > {hi}) bad
            from (select unnest(?::varchar[]) as zone) k
            left join staging.prices p on p.zone = k.zone and p.ts >= ? and p.ts < ?
            group by k.zone order by k.zone""",
        [zones, _py(start), _py(end)],
    )
    expected = int((pd.Timestamp(end) - pd.Timestamp(start)) / HOUR)
    missing = int((expected - df.n).clip(lower=0).sum())
    bad = int(df.bad.sum())
    md = {"hours_expected_per_zone": expected, "missing_zone_hours": missing, "out_of_range": bad}
    ok = missing == 0 and bad == 0
    problem = (
        None
        if ok
        else (
            f"{missing} zone-hour(s) without a price (the planner uses the price 24 h earlier)"
            if bad == 0
            else f"{bad} price(s) outside {lo:g}..{hi:g}"
        )
    )
    return CheckOutcome(ok, md, problem)
