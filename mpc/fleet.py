"""The fleet file: the user's description of their sites, inference classes and job queue.

A TOML file (see ``mpc/fleets/demo.toml``, the built-in demo fleet = the paper's default instance on the
demo grid) validated by pydantic: every error names the field (``sites.frankfurt.battery.energy_mwh``).
:class:`Fleet` turns into the MILP's plain inputs (:class:`mpc.instance.Site`, ``InferenceClass``) and
converts weather into the model's time-varying parameters:

- cooling overhead ``κ_st = min(κmax, κ0 + κ1 · max(0, T_out − T_ref))`` (facility = (1+κ)·IT);
- local generation available ``G_st = pv_mw · pv_cf + wind_mw · wind_cf`` (MW).

Plain library: no Dagster, no DuckDB. ``gridflex fleet check FILE`` runs :func:`load_fleet`.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEMO_FLEET = "demo.toml"


class FleetError(ValueError):
    """A fleet file that cannot be used; the message names the file and each offending field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Cooling(_Strict):
    kappa0: float = Field(0.12, ge=0, description="overhead at or below t_ref_c (PUE - 1)")
    kappa1: float = Field(0.012, ge=0, description="extra overhead per degC above t_ref_c")
    t_ref_c: float = 18.0
    kappa_max: float = Field(0.8, ge=0)

    def kappa(self, temperature_c: pd.Series | np.ndarray) -> np.ndarray:
        t = np.asarray(temperature_c, dtype=float)
        return np.minimum(self.kappa_max, self.kappa0 + self.kappa1 * np.maximum(0.0, t - self.t_ref_c))


class BatteryCfg(_Strict):
    energy_mwh: float = Field(0.0, ge=0)
    charge_mw: float = Field(0.0, ge=0)
    discharge_mw: float = Field(0.0, ge=0)
    eta_c: float = Field(0.95, gt=0, le=1)
    eta_d: float = Field(0.95, gt=0, le=1)
    soc0: float = Field(0.5, ge=0, le=1)
    soc_min: float = Field(0.1, ge=0, le=1)
    soc_max: float = Field(0.9, ge=0, le=1)
    throughput_cost: float = Field(2.0, ge=0, description="$ per MWh charged or discharged")

    @model_validator(mode="after")
    def _bounds(self):
        if self.soc_min > self.soc_max:
            raise ValueError("soc_min must be <= soc_max")
        if not self.soc_min <= self.soc0 <= self.soc_max:
            raise ValueError("soc0 must lie within [soc_min, soc_max]")
        return self


class SiteCfg(_Strict):
    zone: str = Field(description="Electricity Maps zone of the site's grid, e.g. 'DE'")
    watttime_region: str | None = Field(None, description="WattTime region, e.g. 'CAISO_NORTH'")
    price_zone: str | None = Field(None, description="zone of the price series (default: zone)")
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    it_capacity_mw: float = Field(gt=0)
    base_load_mw: float = Field(0.0, ge=0)
    import_limit_mw: float = Field(ge=0)
    export_limit_mw: float = Field(0.0, ge=0)
    export_price_factor: float = Field(0.8, ge=0, le=1, description="export price = factor x import price")
    pv_mw: float = Field(0.0, ge=0)
    wind_mw: float = Field(0.0, ge=0)
    inference_cap_mw: float | None = Field(None, ge=0)
    cooling: Cooling = Cooling()
    battery: BatteryCfg = BatteryCfg()

    @model_validator(mode="after")
    def _base(self):
        if self.base_load_mw > self.it_capacity_mw:
            raise ValueError("base_load_mw exceeds it_capacity_mw")
        return self


class ClassCfg(_Strict):
    home: str
    latency_ms: dict[str, float] = Field(description="latency from the class's users to each site")
    latency_limit_ms: float = Field(gt=0)
    energy_mwh_per_unit: float = Field(gt=0, description="MWh per request")
    revenue_per_unit: float = Field(ge=0, description="$ per request")


class JobQueueCfg(_Strict):
    source: Literal["demo", "csv", "table"] = "demo"
    path: str | None = Field(None, description="CSV file (source = 'csv')")
    home_site: str | None = Field(None, description="where the carbon-agnostic policy runs jobs")


class SourcesCfg(_Strict):
    carbon: Literal["demo", "electricitymaps_api", "electricitymaps_csv", "watttime"] = "demo"
    weather: Literal["demo", "openmeteo"] = "demo"
    prices: Literal["demo", "csv"] = "demo"
    load: Literal["demo", "csv"] = "demo"


class PlanningCfg(_Strict):
    horizon_h: int = Field(24, ge=2, le=168)
    carbon_signal: str = Field("average:direct", description="'<signal>:<factor>' of the series planned on")
    daily_carbon_budget_t: float | None = Field(None, ge=0, description="t CO2 per day; None = no cap")
    carbon_price: float = Field(0.0, ge=0, description="$ per t CO2 in the objective")
    mip_gap: float = Field(0.01, gt=0, lt=1)
    time_limit_s: float = Field(30.0, gt=0)


class Fleet(_Strict):
    name: str = "fleet"
    sources: SourcesCfg = SourcesCfg()
    planning: PlanningCfg = PlanningCfg()
    sites: dict[str, SiteCfg]
    classes: dict[str, ClassCfg] = {}
    jobs: JobQueueCfg = JobQueueCfg()

    @model_validator(mode="after")
    def _cross(self):
        if not self.sites:
            raise ValueError("sites: at least one site is needed")
        names = set(self.sites)
        for k, c in self.classes.items():
            if c.home not in names:
                raise ValueError(f"classes.{k}.home: unknown site {c.home!r} (sites: {sorted(names)})")
            unknown = set(c.latency_ms) - names
            if unknown:
                raise ValueError(f"classes.{k}.latency_ms: unknown sites {sorted(unknown)}")
            if not any(v <= c.latency_limit_ms for v in c.latency_ms.values()):
                raise ValueError(
                    f"classes.{k}: no site within latency_limit_ms={c.latency_limit_ms} "
                    f"(latencies {c.latency_ms})"
                )
        if self.jobs.source == "csv" and not self.jobs.path:
            raise ValueError("jobs.path: required when jobs.source = 'csv'")
        if self.jobs.home_site and self.jobs.home_site not in names:
            raise ValueError(f"jobs.home_site: unknown site {self.jobs.home_site!r}")
        return self

    # -- conversions to the MILP's inputs ------------------------------------------------------
    def carbon_series(self, site: str) -> str:
        """The staging series a site is planned on, e.g. ``"DE:average:direct"``."""
        return f"{self.sites[site].zone}:{self.planning.carbon_signal}"

    def mpc_sites(self):
        from mpc.instance import Battery, Site

        return tuple(
            Site(
                name=n, it_capacity_mw=s.it_capacity_mw, base_load_mw=s.base_load_mw,
                import_limit_mw=s.import_limit_mw, export_limit_mw=s.export_limit_mw,
                battery=Battery(**s.battery.model_dump()), inference_cap_mw=s.inference_cap_mw,
            )
            for n, s in self.sites.items()
        )

    def mpc_classes(self):
        from mpc.instance import InferenceClass

        return tuple(
            InferenceClass(
                name=k, home_site=c.home, energy_mwh=c.energy_mwh_per_unit, revenue=c.revenue_per_unit,
                latency_ms=dict(c.latency_ms), latency_limit_ms=c.latency_limit_ms,
            )
            for k, c in self.classes.items()
        )

    def kappa(self, site: str, temperature_c) -> np.ndarray:
        return self.sites[site].cooling.kappa(temperature_c)

    def signals(self, *, carbon, price, generation, kappa, demand):
        """:class:`mpc.instance.Signals` with the export price of each site = import price x its
        ``export_price_factor``."""
        from mpc.instance import Signals

        factor = pd.Series({n: s.export_price_factor for n, s in self.sites.items()})
        return Signals(carbon=carbon, price_import=price, price_export=price * factor,
                       generation=generation, kappa=kappa, demand=demand)

    def generation_mw(self, site: str, pv_cf, wind_cf) -> np.ndarray:
        s = self.sites[site]
        return s.pv_mw * np.nan_to_num(np.asarray(pv_cf, float)) + s.wind_mw * np.nan_to_num(
            np.asarray(wind_cf, float)
        )


def _format_errors(where: str, exc: ValidationError) -> str:
    lines = []
    for e in exc.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(file)"
        lines.append(f"  {loc}: {e['msg']}")
    return f"{where}: invalid fleet file\n" + "\n".join(lines)


def parse_fleet(data: dict, where: str = "<fleet>") -> Fleet:
    try:
        return Fleet.model_validate(data)
    except ValidationError as exc:
        raise FleetError(_format_errors(where, exc)) from None


def load_fleet(path: str | Path | None = None) -> Fleet:
    """Load and validate a fleet TOML file; ``None`` loads the built-in demo fleet."""
    if path is None:
        text = (resources.files("mpc") / "fleets" / DEMO_FLEET).read_text(encoding="utf-8")
        where = f"built-in {DEMO_FLEET}"
    else:
        p = Path(path)
        if not p.is_file():
            raise FleetError(f"{p}: no such fleet file")
        text = p.read_text(encoding="utf-8")
        where = str(p)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise FleetError(f"{where}: not valid TOML: {exc}") from None
    return parse_fleet(data, where)
