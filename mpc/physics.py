"""Power physics shared by the demo grid, the planner, the backtest and realised generation.

One module so that what the planner expects from a weather *forecast* and what a site is credited with
from the *observed* weather are computed the same way (and the demo's synthetic grid follows the same
rules). Pure numpy: no Dagster, no DuckDB, no pandas state.

Symbols (per hour; arrays broadcast):

=====================  ===========================================================  ==============
symbol                 formula                                                      unit
=====================  ===========================================================  ==============
``GHI_clear``          ``1098 · sin e · exp(−0.057 / sin e)`` at mid-hour (0 when   W/m²
                       the sun is below 0.6°); solar elevation ``e`` from latitude,
                       declination ``δ = 23.44° · sin(2π (284 + doy) / 365)`` and
                       hour angle ``15° · (UTC hour + 0.5 + lon/15 − 12)``
``GHI``                ``GHI_clear · (1 − 0.75 (cloud/100)^3.4)`` (Kasten–Czeplak)  W/m²
``pv_cf``              ``clip(0.9 · GHI/1000 · (1 − 0.004 (T − 25)), 0, 1)``        0..1
``v_hub``              ``v_100m``; without it ``v_10m / 0.72`` (power law,          km/h
                       α = 0.14, 10 m → 100 m)
``wind_cf``            generic turbine: 0 below 3 m/s and above 25 m/s,             0..1
                       ``(v³ − 3³)/(12³ − 3³)`` between, 1 from 12 m/s
``G``                  ``pv_mw · pv_cf + wind_mw · wind_cf``                        MW
``κ``                  ``min(κmax, κ0 + κ1 · max(0, T − T_ref))``                   facility/IT − 1
=====================  ===========================================================  ==============
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: 10 m → 100 m wind speed ratio (power law with α = 0.14): v_10m = 0.72 · v_100m.
WIND_10M_OVER_100M = 0.72


def clear_sky_ghi(ts: pd.DatetimeIndex, lat: float, lon: float) -> np.ndarray:
    """Clear-sky global horizontal irradiance (W/m²) at the middle of each UTC hour ``ts``."""
    mid = pd.DatetimeIndex(ts) + pd.Timedelta(minutes=30)
    doy = mid.dayofyear.to_numpy(dtype=float)
    hour = mid.hour.to_numpy(dtype=float) + mid.minute.to_numpy(dtype=float) / 60.0
    decl = np.deg2rad(23.44) * np.sin(2 * np.pi * (284 + doy) / 365.0)
    omega = np.deg2rad(15.0 * (hour + lon / 15.0 - 12.0))
    phi = np.deg2rad(lat)
    sin_e = np.sin(phi) * np.sin(decl) + np.cos(phi) * np.cos(decl) * np.cos(omega)
    return np.where(sin_e > 0.01, 1098.0 * sin_e * np.exp(-0.057 / np.maximum(sin_e, 0.01)), 0.0)


def shortwave_from_cloud(clear: np.ndarray, cloud_pct: np.ndarray) -> np.ndarray:
    """Irradiance under ``cloud_pct`` % cloud cover from the clear-sky value (Kasten–Czeplak)."""
    return clear * (1.0 - 0.75 * (np.clip(cloud_pct, 0, 100) / 100.0) ** 3.4)


def pv_capacity_factor(shortwave_w_m2, temperature_c) -> np.ndarray:
    """PV capacity factor (0..1) from irradiance (W/m²) and air temperature (°C)."""
    sw = np.asarray(shortwave_w_m2, float)
    t = np.asarray(temperature_c, float)
    return np.clip(0.9 * sw / 1000.0 * (1.0 - 0.004 * (t - 25.0)), 0.0, 1.0)


def wind_power_curve(
    v_ms, cut_in: float = 3.0, rated: float = 12.0, cut_out: float = 25.0
) -> np.ndarray:
    """Capacity factor of a generic turbine at hub-height wind speed ``v_ms`` (m/s)."""
    v = np.asarray(v_ms, dtype=float)
    cf = (v**3 - cut_in**3) / (rated**3 - cut_in**3)
    cf = np.where(v < cut_in, 0.0, np.where(v >= rated, 1.0, cf))
    return np.where(v > cut_out, 0.0, np.clip(cf, 0.0, 1.0))


def hub_wind_kmh(wind_100m_kmh=None, wind_10m_kmh=None) -> np.ndarray:
    """Hub-height (100 m) wind in km/h: the 100 m value where known, else the 10 m one scaled up."""
    w100 = None if wind_100m_kmh is None else np.asarray(wind_100m_kmh, float)
    w10 = None if wind_10m_kmh is None else np.asarray(wind_10m_kmh, float)
    if w100 is None and w10 is None:
        raise ValueError("hub_wind_kmh needs the 100 m or the 10 m wind speed")
    if w100 is None:
        return w10 / WIND_10M_OVER_100M
    if w10 is None:
        return w100
    return np.where(np.isfinite(w100), w100, w10 / WIND_10M_OVER_100M)


def capacity_factors(weather: pd.DataFrame, lat: float, lon: float) -> pd.DataFrame:
    """PV and wind capacity factors for hourly weather rows (columns ``ts``, ``temperature_2m``,
    ``cloud_cover``, ``shortwave_radiation``, ``wind_speed_10m``, ``wind_speed_100m``; the radiation
    and 100 m wind may be missing or NaN: they are derived from cloud cover and the 10 m wind).

    Returns ``ts, pv_cf, wind_cf, derived`` where ``derived`` lists what had to be derived for that row
    (``"shortwave"``, ``"wind_100m"``), so a caller can say so. Hours whose inputs are missing
    altogether get NaN (never a silent zero)."""
    ts = pd.DatetimeIndex(pd.to_datetime(weather["ts"], utc=True))
    n = len(ts)

    def col(name):
        return weather[name].to_numpy(dtype=float) if name in weather else np.full(n, np.nan)

    temp, cloud, sw = col("temperature_2m"), col("cloud_cover"), col("shortwave_radiation")
    w10, w100 = col("wind_speed_10m"), col("wind_speed_100m")
    sw_derived = ~np.isfinite(sw) & np.isfinite(cloud)
    sw = np.where(sw_derived, shortwave_from_cloud(clear_sky_ghi(ts, lat, lon), cloud), sw)
    hub = hub_wind_kmh(w100, w10)
    w_derived = ~np.isfinite(w100) & np.isfinite(w10)
    pv = np.where(np.isfinite(sw) & np.isfinite(temp), pv_capacity_factor(sw, temp), np.nan)
    wind = np.where(np.isfinite(hub), wind_power_curve(hub / 3.6), np.nan)
    derived = [
        ",".join(k for k, flag in (("shortwave", a), ("wind_100m", b)) if flag)
        for a, b in zip(sw_derived, w_derived, strict=True)
    ]
    return pd.DataFrame({"ts": ts, "pv_cf": pv, "wind_cf": wind, "derived": derived})


def generation_mw(pv_mw: float, wind_mw: float, pv_cf, wind_cf) -> np.ndarray:
    """Local generation available ``G = pv_mw · pv_cf + wind_mw · wind_cf`` (MW). Callers check
    that the capacity factors they pass are known; a NaN counts as 0 here."""
    return pv_mw * np.nan_to_num(np.asarray(pv_cf, float)) + wind_mw * np.nan_to_num(
        np.asarray(wind_cf, float)
    )


def cooling_overhead(
    temperature_c, kappa0: float, kappa1: float, t_ref_c: float, kappa_max: float
) -> np.ndarray:
    """``κ = min(κmax, κ0 + κ1 · max(0, T − T_ref))``: facility power = (1 + κ) · IT power."""
    t = np.asarray(temperature_c, dtype=float)
    return np.minimum(kappa_max, kappa0 + kappa1 * np.maximum(0.0, t - t_ref_c))
