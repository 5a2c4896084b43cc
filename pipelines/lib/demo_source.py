"""The built-in demo grid served as a *source*: any hour window, deterministic, no network.

:func:`sources.demo.generate_demo` produces a period from a start date. To serve arbitrary windows (an
hourly schedule running today, a backfill of last month) consistently — the same hour always gets the
same values, whichever window asks — the timeline is cut into fixed 28-day blocks anchored at
:data:`DEMO_EPOCH`; block ``b`` is ``generate_demo(EPOCH + 28·b days, 28, seed + b)``. A window is the
concatenation of the block slices it overlaps. Generation takes well under a second per block and
blocks are cached per process.
"""

from __future__ import annotations

from functools import lru_cache

import pandas as pd

from sources.demo import DemoGrid, generate_demo

DEMO_EPOCH = pd.Timestamp("2026-01-05", tz="UTC")  # a Monday
BLOCK_DAYS = 28
DEMO_SEED = 7
FRAMES = ("carbon", "weather", "weather_forecast", "prices", "generation", "inference", "jobs")
#: time column of each frame used to cut windows (jobs by release, forecasts by issue time)
TIME_COLUMN = {"jobs": "release", "weather_forecast": "issued_at"}


@lru_cache(maxsize=8)
def _block(b: int, seed: int) -> DemoGrid:
    # seeds must be non-negative: blocks before the epoch (b < 0) map to odd offsets, later ones to even
    offset = 2 * b if b >= 0 else -2 * b - 1
    return generate_demo(
        start=DEMO_EPOCH + pd.Timedelta(days=BLOCK_DAYS * b), days=BLOCK_DAYS, seed=seed + offset
    )


def demo_window(
    start: pd.Timestamp, end: pd.Timestamp, seed: int = DEMO_SEED
) -> dict[str, pd.DataFrame]:
    """Demo frames for hours ``[start, end)`` (``jobs`` by release hour, weather forecasts by issue time)."""
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("demo_window needs timezone-aware UTC bounds")
    if end <= start:
        raise ValueError(f"empty demo window [{start}, {end})")
    span = pd.Timedelta(days=BLOCK_DAYS)
    first = int((start - DEMO_EPOCH) // span)
    last = int((end - pd.Timedelta(hours=1) - DEMO_EPOCH) // span)
    out: dict[str, list[pd.DataFrame]] = {f: [] for f in FRAMES}
    for b in range(first, last + 1):
        grid = _block(b, seed)
        for f in FRAMES:
            frame = getattr(grid, f)
            col = TIME_COLUMN.get(f, "ts")
            part = frame[(frame[col] >= start) & (frame[col] < end)]
            if f == "jobs":  # job ids restart in every block: make them unique on the timeline
                part = part.assign(job_id=[f"b{b:03d}-{j}" for j in part["job_id"]])
            out[f].append(part)
    return {f: pd.concat(parts, ignore_index=True) for f, parts in out.items()}


def demo_for_fleet(fleet, start: pd.Timestamp, end: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """The demo grid's frames for hours ``[start, end)``, keyed to *this* fleet's names.

    The demo has three zones (``US-CAL-CISO``, ``DE``, ``GB``), one demo site and one inference class
    per zone. A fleet copied from the demo may rename its sites and classes (``fleet check`` only
    requires its zones to be demo zones), so:

    - carbon and prices are keyed by zone already;
    - weather (observed and forecast) of a fleet site is the demo site's of the same zone;
    - a fleet class takes the demand of the demo class of the same name, else of the demo class whose
      home is in the same zone as its home, else the demo classes in turn; its ``site`` is its home;
    - a demo job eligible at a demo site is eligible at every fleet site of that zone (all fleet sites
      when none is left).
    """
    from sources.demo import DEMO_CLASSES, DEMO_SITES

    w = demo_window(start, end)
    zone_site = {s.zone: s.name for s in DEMO_SITES}
    demo_zone = {s.name: s.zone for s in DEMO_SITES}
    out = {
        "carbon": w["carbon"][w["carbon"]["zone"].isin({s.zone for s in fleet.sites.values()})],
        "prices": w["prices"][
            w["prices"]["zone"].isin({s.price_zone or s.zone for s in fleet.sites.values()})
        ],
    }
    for name in ("weather", "weather_forecast"):
        frame = w[name]
        parts = [
            frame[frame["location"] == zone_site[s.zone]].assign(location=site)
            for site, s in fleet.sites.items()
            if s.zone in zone_site
        ]
        out[name] = pd.concat(parts, ignore_index=True) if parts else frame.iloc[:0]
    inf = w["inference"]
    by_name = {c.name: c for c in DEMO_CLASSES}
    by_zone = {demo_zone[c.home]: c for c in DEMO_CLASSES}
    parts = []
    for i, (k, c) in enumerate(fleet.classes.items()):
        demo = by_name.get(k) or by_zone.get(fleet.sites[c.home].zone) or DEMO_CLASSES[i % 3]
        parts.append(inf[inf["series"] == demo.name].assign(series=k, site=c.home))
    out["inference"] = pd.concat(parts, ignore_index=True) if parts else inf.iloc[:0]
    zone_sites: dict[str, list[str]] = {}
    for site, s in fleet.sites.items():
        zone_sites.setdefault(s.zone, []).append(site)
    everywhere = list(fleet.sites)

    def eligible(demo_sites) -> list[str]:
        got = [x for d in demo_sites for x in zone_sites.get(demo_zone.get(d, ""), [])]
        return list(dict.fromkeys(got)) or everywhere

    jobs = w["jobs"]
    out["jobs"] = jobs.assign(eligible_sites=[eligible(e) for e in jobs["eligible_sites"]])
    return {k: v.reset_index(drop=True) for k, v in out.items()}
