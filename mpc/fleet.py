"""The fleet file: the user's description of their sites, inference classes and job queue.

A TOML file (see ``mpc/fleets/demo.toml``, the built-in demo fleet = the paper's default instance on the
demo grid) validated by pydantic: every error names the field (``sites.frankfurt.battery.energy_mwh``).
:class:`Fleet` turns into the MILP's plain inputs (:class:`mpc.instance.Site`, ``InferenceClass``) and
converts weather into the model's time-varying parameters:

- cooling overhead ``κ_st = min(κmax, κ0 + κ1 · max(0, T_out − T_ref))`` (facility = (1+κ)·IT);
- local generation available ``G_st = pv_mw · pv_cf + wind_mw · wind_cf`` (MW).

Validation is strict (``gridflex fleet check FILE`` runs :func:`load_fleet`): numbers must be finite
numbers (``"5"``, ``inf`` and ``nan`` are refused), unknown keys are refused, and the sources must have
what they need — a WattTime region for every site when planning on WattTime, a ``carbon_signal`` the
carbon source can provide, zones the demo grid has when a signal comes from the demo, an existing job
file. What only the warehouse can tell (imported files, the factor stored) is checked by
``gridflex fleet check FILE --db DB``.

Plain library: no Dagster, no DuckDB.
"""

from __future__ import annotations

import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEMO_FLEET = "demo.toml"
#: Zones the built-in demo grid (sources/demo.py) has, and which signal it provides.
DEMO_ZONES = ("US-CAL-CISO", "DE", "GB")
#: ``planning.carbon_signal``: ``average:<direct|lifecycle>`` (Electricity Maps) or
#: ``marginal:<co2_moer|co2_aoer>`` (WattTime signal types in gCO2/kWh).
CARBON_SIGNAL_RE = re.compile(r"^(average:(direct|lifecycle)|marginal:(co2_moer|co2_aoer))$")
#: What each carbon source can provide.
SIGNALS_OF_SOURCE = {
    "demo": ("average:direct",),
    "electricitymaps_api": ("average:direct", "average:lifecycle"),
    "electricitymaps_csv": ("average:direct", "average:lifecycle"),
    "watttime": ("marginal:co2_moer", "marginal:co2_aoer"),
}


class FleetError(ValueError):
    """A fleet file that cannot be used; the message names the file and each offending field."""


class _Strict(BaseModel):
    # strict: a number written as a string ("5") is an error, not silently converted; inf/nan refused
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class Cooling(_Strict):
    kappa0: float = Field(0.12, ge=0, description="overhead at or below t_ref_c (PUE - 1)")
    kappa1: float = Field(0.012, ge=0, description="extra overhead per degC above t_ref_c")
    t_ref_c: float = 18.0
    kappa_max: float = Field(0.8, ge=0)

    def kappa(self, temperature_c: pd.Series | np.ndarray) -> np.ndarray:
        from mpc.physics import cooling_overhead

        return cooling_overhead(
            temperature_c, self.kappa0, self.kappa1, self.t_ref_c, self.kappa_max
        )


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
    export_price_factor: float = Field(
        0.8, ge=0, le=1, description="export price = factor x import price"
    )
    pv_mw: float = Field(0.0, ge=0)
    wind_mw: float = Field(0.0, ge=0)
    inference_cap_mw: float | None = Field(None, ge=0)
    cooling: Cooling = Cooling()
    battery: BatteryCfg = BatteryCfg()
    gpu_kw: float = Field(
        1.0,
        gt=0,
        description="IT power per GPU in kW, its host, network and storage share included (~1 kW for "
        "an H100 SXM server's per-GPU share): turns training/inference MWh into GPU-hours for the "
        "carbon-efficiency KPIs (marts.fleet_daily)",
    )
    embodied_t_per_day: float = Field(
        0.0,
        ge=0,
        description="embodied emissions of the site's hardware and building allocated per day (t CO2), "
        "the M of the Software Carbon Intensity (ISO/IEC 21031); 0 = not accounted (the default, "
        "and marts say so)",
    )
    openadr_resource: str | None = Field(
        None,
        description="the site's OpenADR 3 target name (RESOURCE_NAME) at the grid operator's VTN; "
        "default: the site's name",
    )

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
    priority: Literal["critical", "flexible", "batch"] = Field(
        "critical",
        description="critical: always served in full (never shed, even under a grid emergency); "
        "flexible: may be routed elsewhere or, at a price, reduced; batch: deferred first",
    )


class JobRuleCfg(_Strict):
    """How the training jobs whose id matches ``match`` (a glob, e.g. ``"batch-*"``) may respond to
    the grid. The first matching rule wins; jobs no rule matches are flexible and rigid."""

    match: str = Field(description="glob on job_id, e.g. 'eval-*' or '*'")
    priority: Literal["critical", "flexible", "batch"] = Field(
        "flexible",
        description="critical: never paused; flexible: may be moved (start time and site); batch: "
        "may also be paused when checkpointable",
    )
    checkpointable: bool = Field(
        False, description="may be suspended and resumed from its last checkpoint"
    )
    max_suspensions: int = Field(2, ge=0, description="resumes allowed per job")
    checkpoint_interval_h: int = Field(
        1, ge=0, description="work lost (and redone) per suspension, hours"
    )
    restart_mwh: float = Field(0.5, ge=0, description="energy to restart from a checkpoint, MWh")

    @model_validator(mode="after")
    def _critical(self):
        if self.priority == "critical" and self.checkpointable:
            raise ValueError("a critical job is never paused: checkpointable must be false")
        return self


class JobQueueCfg(_Strict):
    source: Literal["demo", "csv", "table"] = Field(
        "demo",
        description="demo: the demo generator; csv: `path`, read every hour; table: staging.jobs as "
        "imported with `gridflex import jobs FILE`",
    )
    path: str | None = Field(
        None, description="CSV file (source = 'csv'), relative to the fleet file"
    )
    home_site: str | None = Field(None, description="where the carbon-agnostic policy runs jobs")
    rules: list[JobRuleCfg] = Field(
        [], description="priority classes of jobs by job id ([[jobs.rules]], first match wins)"
    )

    def response(self, job_id: str) -> dict:
        """The grid-response fields of :class:`mpc.instance.Job` for ``job_id``."""
        from fnmatch import fnmatchcase

        for r in self.rules:
            if fnmatchcase(job_id, r.match):
                return {
                    "priority": r.priority,
                    "checkpointable": r.checkpointable,
                    "max_suspensions": r.max_suspensions if r.checkpointable else 0,
                    "lost_h": r.checkpoint_interval_h,
                    "restart_mwh": r.restart_mwh,
                }
        return {}


class GridEventsCfg(_Strict):
    """``[grid_events]``: demand-response, price and alert events from a grid operator (OpenADR 3).
    Secrets are never in the fleet file: ``*_env`` are the NAMES of the environment variables that
    hold them (OAuth2 client credentials, or a static bearer token)."""

    source: Literal["none", "openadr3"] = Field(
        "none", description="none: no grid events; openadr3: poll the VTN at vtn_url every hour"
    )
    vtn_url: str | None = Field(
        None, description="the VTN's API root, e.g. https://vtn.example/oadr3"
    )
    ven_name: str = Field(
        "gridflex", min_length=1, description="gridflex's VEN name (subscription clientName)"
    )
    client_id_env: str = Field("GRIDFLEX_OPENADR_CLIENT_ID", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    client_secret_env: str = Field(
        "GRIDFLEX_OPENADR_CLIENT_SECRET", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$"
    )
    token_env: str = Field("GRIDFLEX_OPENADR_TOKEN", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    push_callback_url: str | None = Field(
        None, description="where the VTN should push event notifications; None = poll only"
    )
    payment_usd_per_mwh: float = Field(
        0.0,
        ge=0,
        description="what the demand-response program pays per MWh of import reduced against the "
        "plan in force before an event (marts.grid_event_delivery.revenue_usd); 0 = not paid",
    )
    timeout_s: float = Field(
        10.0, gt=0, le=120, description="connect / read timeout of each request to the VTN, s"
    )
    max_attempts: int = Field(
        3,
        ge=1,
        le=10,
        description="attempts per request (5xx, 429, timeouts and refused "
        "connections are retried; a 429's Retry-After is waited, 10 s at most)",
    )

    @model_validator(mode="after")
    def _urls(self):
        if self.source == "openadr3" and not self.vtn_url:
            raise ValueError("vtn_url: required when source = 'openadr3'")
        for name in ("vtn_url", "push_callback_url"):
            url = getattr(self, name)
            if url is not None and not re.match(r"^https?://[^\s/]+", url):
                raise ValueError(f"{name}: {url!r} is not an http(s) URL")
        return self


class SourcesCfg(_Strict):
    """Where each signal comes from. ``*_csv`` / ``csv``: files loaded with ``gridflex import …``; the
    hourly assets then read what was imported (and say how far it reaches)."""

    carbon: Literal["demo", "electricitymaps_api", "electricitymaps_csv", "watttime"] = "demo"
    weather: Literal["demo", "openmeteo", "csv"] = "demo"
    prices: Literal["demo", "csv"] = "demo"
    load: Literal["demo", "csv"] = "demo"
    electricitymaps_plan: Literal["free", "paid"] = Field(
        "free",
        description="free: poll `history` (last 24 h) and `latest` every hour; paid: `past-range` "
        "for any window (backfills)",
    )


class PlanningCfg(_Strict):
    horizon_h: int = Field(24, ge=2, le=168)
    carbon_signal: str = Field(
        "average:direct",
        description="'<signal>:<factor>' of the series planned on: average:direct, "
        "average:lifecycle (Electricity Maps), marginal:co2_moer, marginal:co2_aoer (WattTime)",
    )
    daily_carbon_budget_t: float | None = Field(
        None, ge=0, description="t CO2 per day; None = no cap"
    )
    carbon_price: float = Field(0.0, ge=0, description="$ per t CO2 in the objective")
    budget_quantile: Literal["p50", "p90"] = Field(
        "p50",
        description="the carbon-intensity forecast quantile the daily budget is planned against: "
        "p90 keeps the budget unless the grid is dirtier than its p90 (risk-aware)",
    )
    mip_gap: float = Field(0.01, gt=0, lt=1)
    time_limit_s: float = Field(30.0, gt=0)

    @model_validator(mode="after")
    def _signal(self):
        if not CARBON_SIGNAL_RE.match(self.carbon_signal):
            raise ValueError(
                f"carbon_signal {self.carbon_signal!r} is not one of average:direct, "
                "average:lifecycle, marginal:co2_moer, marginal:co2_aoer"
            )
        return self


class Fleet(_Strict):
    name: str = "fleet"
    sources: SourcesCfg = SourcesCfg()
    planning: PlanningCfg = PlanningCfg()
    sites: dict[str, SiteCfg]
    classes: dict[str, ClassCfg] = {}
    jobs: JobQueueCfg = JobQueueCfg()
    grid_events: GridEventsCfg = GridEventsCfg()

    @model_validator(mode="after")
    def _cross(self):
        if not self.sites:
            raise ValueError("sites: at least one site is needed")
        names = set(self.sites)
        for k, c in self.classes.items():
            if c.home not in names:
                raise ValueError(
                    f"classes.{k}.home: unknown site {c.home!r} (sites: {sorted(names)})"
                )
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
        self._check_sources()
        return self

    def _check_sources(self) -> None:
        """The sources can provide what the fleet plans on (what fails later otherwise)."""
        src, signal = self.sources.carbon, self.planning.carbon_signal
        if signal not in SIGNALS_OF_SOURCE[src]:
            raise ValueError(
                f"planning.carbon_signal {signal!r} cannot come from sources.carbon = {src!r} "
                f"(it provides {', '.join(SIGNALS_OF_SOURCE[src])})"
            )
        if src == "watttime":
            missing = [n for n, s in self.sites.items() if not s.watttime_region]
            if missing:
                raise ValueError(
                    f"sites.{missing[0]}.watttime_region: required when sources.carbon = 'watttime' "
                    f"(missing for {', '.join(missing)}); `gridflex fleet check FILE --resolve-regions` "
                    "looks them up from lat/lon"
                )
            by_zone: dict[str, set] = {}
            for s in self.sites.values():
                by_zone.setdefault(s.zone, set()).add(s.watttime_region)
            for zone, regions in by_zone.items():
                if len(regions) > 1:
                    raise ValueError(
                        f"sites in zone {zone!r} name different WattTime regions {sorted(regions)}: "
                        "the marginal series is stored per zone, so give them one region or "
                        "different zones"
                    )
        demo_uses = [
            k for k in ("carbon", "weather", "prices") if getattr(self.sources, k) == "demo"
        ]
        if demo_uses:
            off = sorted({s.zone for s in self.sites.values()} - set(DEMO_ZONES))
            if off:
                raise ValueError(
                    f"sources.{demo_uses[0]} = 'demo' but the demo grid has no zone {off[0]!r} "
                    f"(it has {', '.join(DEMO_ZONES)}); use a real source for that zone"
                )

    # -- conversions to the MILP's inputs ------------------------------------------------------
    def carbon_series(self, site: str) -> str:
        """The staging series a site is planned on, e.g. ``"DE:average:direct"`` or
        ``"US-CAL-CISO:marginal:co2_moer"`` (WattTime rows are stored under the site's zone; the
        WattTime region is kept in the ``region`` column)."""
        return f"{self.sites[site].zone}:{self.planning.carbon_signal}"

    def budget_policy(self):
        """The fleet's carbon budget as the one policy the planner, the simulator and the backtest
        use (:class:`mpc.budget.BudgetPolicy`, per UTC day; no budget when unset)."""
        from mpc.budget import BudgetPolicy

        return BudgetPolicy.daily(self.planning.daily_carbon_budget_t)

    @property
    def carbon_factor(self) -> str:
        """``direct`` / ``lifecycle`` (averages) or the WattTime signal type (marginals)."""
        return self.planning.carbon_signal.split(":")[1]

    def mpc_sites(self):
        from mpc.instance import Battery, Site

        return tuple(
            Site(
                name=n,
                it_capacity_mw=s.it_capacity_mw,
                base_load_mw=s.base_load_mw,
                import_limit_mw=s.import_limit_mw,
                export_limit_mw=s.export_limit_mw,
                battery=Battery(**s.battery.model_dump()),
                inference_cap_mw=s.inference_cap_mw,
            )
            for n, s in self.sites.items()
        )

    def mpc_classes(self):
        from mpc.instance import InferenceClass

        return tuple(
            InferenceClass(
                name=k,
                home_site=c.home,
                energy_mwh=c.energy_mwh_per_unit,
                revenue=c.revenue_per_unit,
                latency_ms=dict(c.latency_ms),
                latency_limit_ms=c.latency_limit_ms,
                priority=c.priority,
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
        return Signals(
            carbon=carbon,
            price_import=price,
            price_export=price * factor,
            generation=generation,
            kappa=kappa,
            demand=demand,
        )

    def generation_mw(self, site: str, pv_cf, wind_cf) -> np.ndarray:
        from mpc.physics import generation_mw

        s = self.sites[site]
        return generation_mw(s.pv_mw, s.wind_mw, pv_cf, wind_cf)


def _format_errors(where: str, exc: ValidationError) -> str:
    lines = []
    for e in exc.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(file)"
        got = e.get("input")
        shown = "" if isinstance(got, dict) or e["type"] == "missing" else f" (got {got!r})"
        lines.append(f"  {loc}: {e['msg']}{shown}")
    return f"{where}: invalid fleet file\n" + "\n".join(lines)


def parse_fleet(data: dict, where: str = "<fleet>") -> Fleet:
    try:
        return Fleet.model_validate(data)
    except ValidationError as exc:
        raise FleetError(_format_errors(where, exc)) from None


def load_fleet(path: str | Path | None = None) -> Fleet:
    """Load and validate a fleet TOML file; ``None`` loads the built-in demo fleet. A relative
    ``jobs.path`` is taken relative to the fleet file and must exist."""
    if path is None:
        text = (resources.files("mpc") / "fleets" / DEMO_FLEET).read_text(encoding="utf-8")
        where = f"built-in {DEMO_FLEET}"
        base = Path.cwd()
    else:
        p = Path(path)
        if not p.is_file():
            raise FleetError(f"{p}: no such fleet file")
        try:
            text = p.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise FleetError(f"{p}: not a UTF-8 text file") from None
        where = str(p)
        base = p.resolve().parent
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise FleetError(f"{where}: not valid TOML: {exc}") from None
    jobs = data.get("jobs")
    if isinstance(jobs, dict) and isinstance(jobs.get("path"), str):
        job_path = Path(jobs["path"])
        job_path = job_path if job_path.is_absolute() else base / job_path
        if jobs.get("source") == "csv" and not job_path.is_file():
            raise FleetError(f"{where}: invalid fleet file\n  jobs.path: no such file {job_path}")
        data = {**data, "jobs": {**jobs, "path": str(job_path)}}
    return parse_fleet(data, where)
