"""Generated hourly series for tests and demos (no real data): daily + weekly cycles, noise, and a
known-future covariate that drives the target (so a model has something to learn from it)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.spec import SERIES, TS


def make_series(
    n_series: int = 2,
    days: int = 28,
    *,
    seed: int = 0,
    start: str = "2024-01-01",
    base: float = 300.0,
    with_covariate: bool = True,
) -> pd.DataFrame:
    """Long frame ``series, ts, value[, temp_fc, gen]``: ``temp_fc`` a known-future covariate,
    ``gen`` an observed-only one. Values stay positive."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range(start, periods=days * 24, freq="h", tz="UTC")
    hour = ts.hour.to_numpy()
    dow = ts.dayofweek.to_numpy()
    frames = []
    for i in range(n_series):
        phase = rng.uniform(0, 2 * np.pi)
        drift = rng.normal(0, 1, len(ts)).cumsum() * 0.1
        temp = 10 + 5 * np.sin(2 * np.pi * (hour - 15) / 24) + drift
        v = (
            base * (1 + 0.3 * i)
            + 60 * np.sin(2 * np.pi * hour / 24 + phase)
            + 25 * (dow >= 5)
            + 3 * (temp - 10)
            + rng.normal(0, 8, len(ts))
        )
        f = pd.DataFrame({SERIES: f"s{i}", TS: ts, "value": np.maximum(v, 5.0)})
        if with_covariate:
            f["temp_fc"] = temp + rng.normal(0, 0.5, len(ts))
            f["gen"] = 0.5 * v + rng.normal(0, 5, len(ts))
        frames.append(f)
    return pd.concat(frames, ignore_index=True)
