"""Grid operators' events (OpenADR 3 demand-response signals) as inputs of the window model.

:func:`apply_events` takes the tidy event intervals the warehouse keeps (``staging.grid_events``:
one row per event, interval, payload type and site, values already in the units below) and turns
them into what the MILP reads:

============================  =========================================================================
payload type                  effect in the window (per site and period the interval overlaps)
============================  =========================================================================
``IMPORT_CAPACITY_LIMIT``     import limit ``Icap_st`` (MW; the tightest of overlapping events),
                              elastic (5'): exceeded only when the load that may not be shed is above it
``EXPORT_CAPACITY_LIMIT``     export limit ``Xcap_st`` (MW)
``PRICE``                     replaces the import-price forecast π_st ($/MWh; the highest if several)
``EXPORT_PRICE``              replaces the export price π^x_st ($/MWh)
``GHG``                       replaces the carbon-intensity forecast c_st (g/kWh)
``ALERT_GRID_EMERGENCY``,     stability-first periods (:func:`mpc.model.define_stability`)
``ALERT_FLEX_ALERT``
``SIMPLE`` level >= 2         stability-first as well (levels 0–1: noted, no effect)
anything else                 kept in the warehouse and listed in the notes, no effect on the plan
============================  =========================================================================

An interval that overlaps a period for part of it counts for the whole period (limits are met for
the whole hour). Plain library: pandas only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mpc.instance import GridConditions, Instance

HOUR = pd.Timedelta(hours=1)
#: payload types the planner acts on
USED = (
    "IMPORT_CAPACITY_LIMIT",
    "EXPORT_CAPACITY_LIMIT",
    "PRICE",
    "EXPORT_PRICE",
    "GHG",
    "ALERT_GRID_EMERGENCY",
    "ALERT_FLEX_ALERT",
    "SIMPLE",
)
STABILITY_ALERTS = ("ALERT_GRID_EMERGENCY", "ALERT_FLEX_ALERT")
#: a SIMPLE level at or above this switches the period to stability-first
SIMPLE_STRESS_LEVEL = 2
EVENT_COLUMNS = ("event_id", "site", "payload_type", "start", "end", "value")


@dataclass
class Applied:
    """What :func:`apply_events` did: the events in force in the window and the notes."""

    event_ids: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    stressed_site_hours: int = 0
    capped_site_hours: int = 0


def _periods(index: pd.DatetimeIndex, start, end) -> np.ndarray:
    """Boolean mask of the periods ``[t, t+1h)`` that ``[start, end)`` overlaps."""
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    return np.asarray((index < end) & (index + HOUR > start))


def grid_conditions(
    events: pd.DataFrame, index: pd.DatetimeIndex, sites: list[str]
) -> tuple[GridConditions, dict[str, pd.DataFrame], Applied]:
    """Limits, alerts and signal overrides over ``index`` from event intervals (columns
    :data:`EVENT_COLUMNS`). Returns the :class:`GridConditions`, the overrides by signal name
    (``carbon``, ``price_import``, ``price_export``: frames with NaN where no event speaks) and
    what was applied."""
    nan = np.full((len(index), len(sites)), np.nan)
    icap, xcap = nan.copy(), nan.copy()
    stab = np.zeros((len(index), len(sites)))
    over = {"carbon": nan.copy(), "price_import": nan.copy(), "price_export": nan.copy()}
    target = {"PRICE": "price_import", "EXPORT_PRICE": "price_export", "GHG": "carbon"}
    pos = {s: i for i, s in enumerate(sites)}
    applied = Applied()
    ignored: dict[str, set] = {}
    for r in events.itertuples(index=False):
        if r.site not in pos:
            continue
        mask = _periods(index, r.start, r.end)
        if not mask.any():
            continue
        i, v, kind = pos[r.site], float(r.value) if pd.notna(r.value) else np.nan, r.payload_type
        if kind == "IMPORT_CAPACITY_LIMIT" and np.isfinite(v):
            icap[mask, i] = np.fmin(icap[mask, i], v)
        elif kind == "EXPORT_CAPACITY_LIMIT" and np.isfinite(v):
            xcap[mask, i] = np.fmin(xcap[mask, i], v)
        elif kind in target and np.isfinite(v):
            a = over[target[kind]]
            a[mask, i] = np.fmax(a[mask, i], v)
        elif kind in STABILITY_ALERTS or (
            kind == "SIMPLE" and np.isfinite(v) and v >= SIMPLE_STRESS_LEVEL
        ):
            stab[mask, i] = 1.0
        else:
            ignored.setdefault(kind if kind != "SIMPLE" else f"SIMPLE level {v:g}", set()).add(
                r.event_id
            )
            continue
        if r.event_id not in applied.event_ids:
            applied.event_ids.append(r.event_id)
    for kind, ids in sorted(ignored.items()):
        applied.notes.append(
            f"grid event(s) {', '.join(sorted(ids))}: payload {kind} does not change the plan"
        )
    frame = lambda a: pd.DataFrame(a, index=index, columns=sites)  # noqa: E731
    grid = GridConditions(import_cap=frame(icap), export_cap=frame(xcap), stability=frame(stab))
    applied.stressed_site_hours = int(stab.sum())
    applied.capped_site_hours = int(np.isfinite(icap).sum())
    return grid, {k: frame(a) for k, a in over.items()}, applied


def apply_events(inst: Instance, events: pd.DataFrame | None) -> tuple[Instance, Applied]:
    """``inst`` with the events in force over its window: :class:`GridConditions` set and the
    price / GHG payloads replacing the forecast signals for their intervals. No event in the
    window: ``inst`` unchanged (``grid`` stays None)."""
    if events is None or events.empty:
        return inst, Applied()
    grid, over, applied = grid_conditions(events, inst.index, inst.site_names)
    if not applied.event_ids:
        return inst, applied
    sig = inst.signals
    changes = {}
    for name, o in over.items():
        if o.notna().any().any():
            base = getattr(sig, name).copy()
            base[inst.site_names] = o.where(o.notna(), base[inst.site_names])
            changes[name] = base
    if changes:
        applied.notes.append(
            "signals replaced by grid events: "
            + ", ".join(f"{n} ({int(over[n].notna().sum().sum())} site-hours)" for n in changes)
        )
    return (
        inst.replace(signals=dataclasses.replace(sig, **changes), grid=grid),
        applied,
    )
