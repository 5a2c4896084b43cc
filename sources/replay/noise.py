"""Seeded, documented errors that turn recorded actuals into replayed *forecasts* and estimates.

Why: the recordings hold what happened (Electricity Maps actuals, WattTime actuals, reanalysis
weather). A forecast served as the recorded future would be a perfect forecast and would flatter
every model trained or evaluated against the replay, so forecasts get an error whose spread grows
with lead time, like real ones:

- The error at lead ``k`` (hours from the issue time) is a Gaussian **random walk** ``e_k``:
  ``e_0 ~ N(0, 1)``, each further hour adds ``N(0, 1)``, so ``sd(e_k) = sqrt(k + 1)`` and
  neighbouring hours err alike (real forecast errors are smooth in lead time). WattTime's 5-minute
  points walk in 5-minute steps of variance 1/12, so ``sd = sqrt(lead_hours + 1)`` as well.
- Electricity Maps forecast: ``recorded · exp(EM_SIGMA · e_k)`` (``EM_SIGMA = 0.02``: ~10 % at a
  day ahead).
- WattTime forecast: ``recorded · exp(WT_SIGMA · e_k)`` (``WT_SIGMA = 0.03``).
- Open-Meteo forecast (same model as ``sources.demo``'s forecasts): temperature
  ``+ 0.35 °C · e``, cloud cover ``+ 4 % · e`` clipped to 0–100, humidity ``+ 1.5 % · e`` clipped,
  wind (10 m and 100 m) ``· exp(0.035 · e)``, shortwave recomputed from the forecast cloud; one
  independent walk per variable. The historical-forecast endpoint uses the lead-1 error
  ``sqrt(2) · z`` with ``z ~ N(0, 1)`` drawn per hour.

Every draw comes from :func:`rng` keyed by the server seed, the source, the series and the issue
time, so the same seed and issue time always give the same numbers, whichever endpoint or request
window asks for them.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

EM_SIGMA = 0.02
WT_SIGMA = 0.03
#: Open-Meteo error scales per unit of ``e`` (see the module doc).
OM_SCALE = {
    "temperature_2m": 0.35,
    "cloud_cover": 4.0,
    "relative_humidity_2m": 1.5,
    "wind": 0.035,
}
#: Human-readable statement of the weather error model, put in every forecast's ``replay`` note.
OM_FORMULA = {
    "lead": "hours from the clock's hour (issue time) to the row's hour; 0 at the issue hour",
    "e": "random walk over lead, e_0 ~ N(0,1), +N(0,1) per hour: sd(e) = sqrt(lead+1)",
    "temperature_2m": "recorded + 0.35 °C · e",
    "cloud_cover": "clip(recorded + 4 % · e, 0, 100)",
    "relative_humidity_2m": "clip(recorded + 1.5 % · e, 0, 100)",
    "wind_speed_10m": "recorded · exp(0.035 · e)",
    "wind_speed_100m": "recorded · exp(0.035 · e) (same e as 10 m)",
    "shortwave_radiation": "recomputed from the forecast cloud cover (clear-sky model)",
    "seed": "one walk per variable, drawn from (server seed, location, issue hour)",
}


def _key(part: object) -> int:
    if isinstance(part, pd.Timestamp):
        return int(part.value // 60_000_000_000) & 0xFFFFFFFFFFFF  # minutes since the epoch
    if isinstance(part, int | np.integer):
        return int(part) & 0xFFFFFFFFFFFF
    return zlib.crc32(str(part).encode())


def rng(seed: int, *key: object) -> np.random.Generator:
    """A generator determined by ``seed`` and ``key`` (strings, ints, timestamps) only."""
    return np.random.default_rng(np.random.SeedSequence([_key(seed), *(_key(k) for k in key)]))


def random_walk(gen: np.random.Generator, n: int, steps_per_hour: int = 1, cols: int = 1):
    """``(n, cols)`` walks with ``var(e_k) = 1 + k / steps_per_hour`` (``k`` = step index)."""
    z = gen.standard_normal((max(n, 0), cols))
    if n > 0:
        z[1:] /= np.sqrt(steps_per_hour)
    return np.cumsum(z, axis=0)


def uniform01(seed: int, *key: object) -> float:
    """One reproducible draw in [0, 1) (null faults, revision sizes)."""
    return float(rng(seed, *key).random())


def revision_factor(seed: int, zone: str, hour: pd.Timestamp, shift: float) -> float:
    """Multiplier of an *estimated* Electricity Maps value: ``1 ± shift·u``, ``u`` in [0.5, 1]
    (never equal to the recorded value when ``shift > 0``), the same for both factors of a zone."""
    gen = rng(seed, "em-revision", zone, hour)
    sign = 1.0 if gen.random() < 0.5 else -1.0
    return 1.0 + sign * shift * (0.5 + 0.5 * gen.random())


_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def hash_uniform(seed: int, key: tuple[object, ...], ints: np.ndarray) -> np.ndarray:
    """Reproducible uniforms in [0, 1), one per integer of ``ints`` (e.g. hours since the epoch),
    for ``(seed, *key)``: a vectorised splitmix64, so a year of hours costs microseconds."""
    base = np.uint64(_key(seed))
    for k in key:
        base = np.uint64((int(base) * 0x100000001B3 + _key(k)) & 0xFFFFFFFFFFFFFFFF)
    x = np.asarray(ints, dtype=np.int64).astype(np.uint64)
    with np.errstate(over="ignore"):
        x = x * _GOLDEN + base
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) / float(2**53)
