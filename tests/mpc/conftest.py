"""Builders of tiny hand-checkable instances for the mpc tests."""

from __future__ import annotations

import pandas as pd
import pytest

from mpc.instance import Battery, InferenceClass, Instance, Job, Signals, Site

T0 = pd.Timestamp("2024-01-01 00:00", tz="UTC")
H1 = pd.Timedelta(hours=1)


def signals(
    hours: int,
    sites: list[str],
    classes: list[str] = (),
    *,
    carbon=None,
    price=None,
    export=None,
    gen=None,
    kappa=None,
    demand=None,
) -> Signals:
    """Per-site (or per-class) lists; a scalar is repeated; missing → 0 (κ, gen, export) / 100."""
    idx = pd.date_range(T0, periods=hours, freq="h", tz="UTC")

    def frame(spec, cols, default):
        spec = {} if spec is None else spec
        data = {}
        for c in cols:
            v = spec.get(c, default) if isinstance(spec, dict) else spec
            data[c] = [float(v)] * hours if isinstance(v, int | float) else [float(x) for x in v]
        return pd.DataFrame(data, index=idx, columns=list(cols))

    return Signals(
        carbon=frame(carbon, sites, 100.0),
        price_import=frame(price, sites, 50.0),
        price_export=frame(export, sites, 0.0),
        generation=frame(gen, sites, 0.0),
        kappa=frame(kappa, sites, 0.0),
        demand=frame(demand, classes, 0.0),
    )


def site(
    name: str, cap: float = 100.0, base: float = 0.0, battery: Battery | None = None, **kw
) -> Site:
    return Site(name, it_capacity_mw=cap, base_load_mw=base, battery=battery or Battery(), **kw)


def job(
    jid: str, power: float, dur: int, release: int, deadline: int, value: float, sites=("A",), **kw
) -> Job:
    return Job(jid, power, dur, T0 + release * H1, T0 + deadline * H1, value, tuple(sites), **kw)


def instance(sites, sig, jobs=(), classes=(), **kw) -> Instance:
    return Instance(sites=tuple(sites), classes=tuple(classes), jobs=tuple(jobs), signals=sig, **kw)


def cls(name, home, energy, revenue, latency, limit) -> InferenceClass:
    return InferenceClass(name, home, energy, revenue, latency, limit)


@pytest.fixture
def tiny():
    """Namespace of the builders."""
    import types

    return types.SimpleNamespace(
        signals=signals, site=site, job=job, instance=instance, cls=cls, T0=T0, H1=H1
    )
