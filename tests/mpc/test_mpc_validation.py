"""Impossible inputs are rejected with a message naming the field."""

from __future__ import annotations

import dataclasses

import pytest

from mpc.instance import Battery, InstanceError
from mpc.paper import default_instance


def _raises(field: str, fn):
    with pytest.raises(InstanceError) as e:
        fn()
    assert field in str(e.value), str(e.value)
    return e.value


def test_negative_capacity(tiny):
    sig = tiny.signals(2, ["A"])
    _raises("sites[A].it_capacity_mw", lambda: tiny.instance([tiny.site("A", cap=-1.0)], sig))
    _raises(
        "sites[A].battery.energy_mwh",
        lambda: tiny.instance([tiny.site("A", battery=Battery(energy_mwh=-5))], sig),
    )


def test_deadline_before_release(tiny):
    sig = tiny.signals(4, ["A"])
    _raises(
        "jobs[j].deadline",
        lambda: tiny.instance([tiny.site("A")], sig, [tiny.job("j", 1, 1, 3, 1, 10)]),
    )


def test_job_longer_than_its_window(tiny):
    sig = tiny.signals(4, ["A"])
    e = _raises(
        "jobs[j].duration_h",
        lambda: tiny.instance([tiny.site("A")], sig, [tiny.job("j", 1, 3, 0, 1, 10)]),
    )
    assert "longer than its window" in str(e)


def test_class_without_latency_feasible_site(tiny):
    sig = tiny.signals(2, ["A"], ["chat"])
    k = tiny.cls("chat", "A", 0.001, 0.1, {"A": 90.0}, 50.0)
    _raises("classes[chat].latency_ms", lambda: tiny.instance([tiny.site("A")], sig, classes=[k]))


def test_mismatched_series_lengths(tiny):
    sig = tiny.signals(3, ["A"])
    bad = dataclasses.replace(sig, price_import=sig.price_import.iloc[:2])
    _raises("signals.price_import", lambda: tiny.instance([tiny.site("A")], bad))


def test_unknown_eligible_site_and_missing_column(tiny):
    sig = tiny.signals(3, ["A"])
    _raises(
        "jobs[j].eligible_sites",
        lambda: tiny.instance([tiny.site("A")], sig, [tiny.job("j", 1, 1, 0, 2, 10, sites=("Z",))]),
    )
    _raises("signals.carbon", lambda: tiny.instance([tiny.site("A"), tiny.site("B")], sig))


def test_naive_timestamp_rejected(tiny):
    import pandas as pd

    sig = tiny.signals(3, ["A"])
    j = tiny.job("j", 1, 1, 0, 2, 10)
    j = dataclasses.replace(j, release=pd.Timestamp("2024-01-01 00:00"))
    _raises("jobs[j].release", lambda: tiny.instance([tiny.site("A")], sig, [j]))


def test_default_instance_is_valid_and_deterministic():
    a, b = default_instance(), default_instance()
    assert a.site_names == ["sanjose", "frankfurt", "london"]
    assert a.class_names == ["chat", "vision", "code"]
    assert len(a.jobs) == 6 and len(a.index) == 24 and str(a.index.tz) == "UTC"
    for n, f in a.signals.frames().items():
        assert f.equals(b.signals.frames()[n])
