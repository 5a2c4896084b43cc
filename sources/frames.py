"""The tidy frames every source produces: the contract between sources, the warehouse and the libraries.

Every frame is hourly, hour-start, in UTC (``datetime64[ns, UTC]``). Sources never return local time.
Each loader returns ``(frame, RepairReport)``: what it had to repair is counted, never silent. A
problem that cannot be repaired raises :class:`SourceError` naming the input, the row and the problem.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

#: Carbon-intensity signals. One row per (series, ts, source).
#: ``series`` is ``"<zone>:<signal>:<factor>"`` e.g. ``"GB:average:direct"``, ``"CAISO_NORTH:marginal:co2_moer"``.
#: ``value`` is always gCO2eq/kWh. ``signal`` is ``average`` (Electricity Maps) or ``marginal`` (WattTime):
#: different quantities, never mixed in one series. ``factor`` is ``direct`` / ``lifecycle`` for averages and
#: the WattTime signal type (``co2_moer`` ...) for marginals.
CARBON_COLUMNS = [
    "series",
    "zone",
    "ts",
    "value",
    "signal",
    "factor",
    "source",
    "is_estimated",
    "estimation_method",
    "received_at",
]
#: Forecasts published by a source (EM forecast, WattTime forecast): CARBON_COLUMNS + ``issued_at``.
CARBON_FORECAST_COLUMNS = [*CARBON_COLUMNS, "issued_at"]

#: Weather, one row per (location, ts, source, kind, issued_at). ``kind`` is ``observed`` (reanalysis /
#: archive: what happened) or ``forecast`` (issued at ``issued_at``; NaT for observed rows).
#: Units: °C, %, %, km/h, km/h, W/m².
WEATHER_COLUMNS = [
    "location",
    "ts",
    "temperature_2m",
    "relative_humidity_2m",
    "cloud_cover",
    "wind_speed_10m",
    "wind_speed_100m",
    "shortwave_radiation",
    "kind",
    "issued_at",
    "source",
    "received_at",
]

#: Wholesale electricity prices, one row per (zone, ts, source). ``price`` in ``currency`` per MWh.
PRICE_COLUMNS = ["zone", "ts", "price", "currency", "source", "received_at"]

#: Data-centre load, one row per (site, series, ts, source). ``series`` is an inference class or a
#: cluster name; ``unit`` says what ``value`` counts (``requests/h``, ``MW``, ``gpus``).
LOAD_COLUMNS = ["site", "series", "ts", "value", "unit", "source", "received_at"]

#: Training-job queue, one row per job. ``release``/``deadline`` are UTC hour starts: the job may start
#: in the release hour and must have finished by the end of the deadline hour. ``eligible_sites`` is a
#: list of site names.
JOB_COLUMNS = ["job_id", "power_mw", "duration_h", "release", "deadline", "value", "eligible_sites"]


#: Plausible ranges per quantity, checked at import and in the ingest checks. Outside them a unit error or
#: a corrupt row is likelier than a real reading, so the value is refused (naming input, row and value).
#: Carbon: the dirtiest grids are ~1,100 gCO2eq/kWh (lignite). Prices per MWh: real markets clear from
#: about -500 (EU floor) to 16,600 (the Australian cap); ERCOT's cap is 5,000 $/MWh.
PLAUSIBLE = {
    "carbon_g_kwh": (0.0, 2000.0),
    "price_per_mwh": (-1500.0, 20000.0),
}


def check_range(values, quantity: str, source: str, rows=None, what: str | None = None) -> None:
    """Raise :class:`SourceError` for the first value that is not finite or lies outside
    :data:`PLAUSIBLE` ``[quantity]``, naming the source, its row (``rows[i]`` when given, e.g. the
    file line) and the value."""
    import numpy as np

    lo, hi = PLAUSIBLE[quantity]
    v = np.asarray(values, dtype=float)
    bad = ~np.isfinite(v) | (v < lo) | (v > hi)
    if bad.any():
        i = int(np.argmax(bad))
        row = rows[i] if rows is not None else i
        raise SourceError(
            source,
            f"implausible {what or quantity} {v[i]!r} (expected a finite value in {lo:g}..{hi:g})",
            row,
        )


class SourceError(ValueError):
    """An input that cannot be used as it is. The message names the input, the row and the problem."""

    def __init__(self, source: str, problem: str, row: int | str | None = None):
        self.source = source
        self.problem = problem
        self.row = row
        where = f"{source}" + (f", row {row}" if row is not None else "")
        super().__init__(f"{where}: {problem}")


@dataclass
class RepairReport:
    """What a loader repaired. ``counts`` maps a repair kind (e.g. ``"dst_duplicate_dropped"``,
    ``"gap_interpolated"``) to how many rows it touched; ``notes`` are human-readable lines."""

    source: str
    counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, kind: str, n: int = 1, note: str | None = None) -> None:
        if n <= 0:
            return
        self.counts[kind] = self.counts.get(kind, 0) + n
        if note:
            self.notes.append(note)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def merge(self, other: RepairReport) -> RepairReport:
        out = RepairReport(self.source, dict(self.counts), list(self.notes))
        for k, v in other.counts.items():
            out.add(k, v)
        out.notes.extend(other.notes)
        return out


def utc_now() -> pd.Timestamp:
    """Receive time for ``received_at`` columns (hour precision is not applied: this is wall time)."""
    return pd.Timestamp.now(tz="UTC")


def empty_frame(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
