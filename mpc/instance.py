"""Typed, validated inputs of the scheduling model: fleet (sites, batteries, classes), jobs,
signals.

Everything here is plain data (frozen dataclasses + pandas DataFrames); nothing imports Pyomo.
Validation happens at construction and raises :class:`InstanceError` whose message names the field
(``sites[frankfurt].battery.energy_mwh``, ``jobs[job-3].deadline``, ``signals.carbon``...).

Time: periods are hour-start UTC timestamps (``pd.DatetimeIndex``, tz UTC, hourly, no gaps).
Signal frames are indexed by that index with one column per site (carbon gCO2/kWh, prices $/MWh,
local generation available MW, cooling coefficient κ) or per inference class (demand, units/h).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

#: Site-indexed signal frames, then the class-indexed one.
SITE_SIGNALS = ("carbon", "price_import", "price_export", "generation", "kappa")
CLASS_SIGNALS = ("demand",)
#: How a workload may respond to the grid (fleet file ``priority``): ``critical`` never shed (an
#: inference class served in full; a training job rigid and mandatory), ``flexible`` may be moved or
#: reduced (inference routed elsewhere or, at a price, not served; a job moved in time and space),
#: ``batch`` may be paused (inference deferred first; a checkpointable job suspended and resumed).
PRIORITIES = ("critical", "flexible", "batch")


class InstanceError(ValueError):
    """An impossible input. ``field`` names the offending input (dotted path)."""

    def __init__(self, field_name: str, problem: str):
        self.field = field_name
        self.problem = problem
        super().__init__(f"{field_name}: {problem}")


def _nonneg(field_name: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value)) or value < 0:
        raise InstanceError(field_name, f"must be a finite number >= 0, got {value!r}")


def _utc_hour(field_name: str, ts) -> pd.Timestamp:
    try:
        t = pd.Timestamp(ts)
    except Exception as exc:  # noqa: BLE001
        raise InstanceError(field_name, f"not a timestamp: {ts!r}") from exc
    if t.tzinfo is None:
        raise InstanceError(field_name, f"must be timezone-aware UTC, got naive {t}")
    t = t.tz_convert("UTC")
    if t != t.floor("h"):
        raise InstanceError(field_name, f"must be an hour start, got {t}")
    return t


@dataclass(frozen=True)
class Battery:
    """A site battery. ``energy_mwh = 0`` means no battery.

    energy_mwh E_s, charge_mw Pc_s, discharge_mw Pd_s, eta_c ηc, eta_d ηd, soc0 as a *fraction* of
    E_s (the initial state and the terminal target), soc_min/soc_max σmin/σmax (fractions),
    throughput_cost ψ ($/MWh charged or discharged).
    """

    energy_mwh: float = 0.0
    charge_mw: float = 0.0
    discharge_mw: float = 0.0
    eta_c: float = 0.95
    eta_d: float = 0.95
    soc0: float = 0.5
    soc_min: float = 0.1
    soc_max: float = 0.9
    throughput_cost: float = 0.0

    def validate(self, where: str) -> None:
        for f in ("energy_mwh", "charge_mw", "discharge_mw", "throughput_cost"):
            _nonneg(f"{where}.{f}", getattr(self, f))
        for f in ("eta_c", "eta_d"):
            v = getattr(self, f)
            if not 0 < v <= 1:
                raise InstanceError(f"{where}.{f}", f"efficiency must be in (0, 1], got {v}")
        for f in ("soc0", "soc_min", "soc_max"):
            v = getattr(self, f)
            if not 0 <= v <= 1:
                raise InstanceError(f"{where}.{f}", f"fraction must be in [0, 1], got {v}")
        if self.soc_min > self.soc_max:
            raise InstanceError(f"{where}.soc_min", "soc_min > soc_max")
        if not self.soc_min <= self.soc0 <= self.soc_max:
            raise InstanceError(f"{where}.soc0", f"soc0 {self.soc0} outside [soc_min, soc_max]")

    @property
    def soc0_mwh(self) -> float:
        return self.soc0 * self.energy_mwh


@dataclass(frozen=True)
class Site:
    """A data centre and its microgrid. Powers in MW; ``inference_cap_mw`` caps Σ_k e_k q_kst
    (12)."""

    name: str
    it_capacity_mw: float
    base_load_mw: float = 0.0
    import_limit_mw: float = 1e3
    export_limit_mw: float = 0.0
    battery: Battery = field(default_factory=Battery)
    inference_cap_mw: float | None = None

    def validate(self) -> None:
        w = f"sites[{self.name}]"
        for f in ("it_capacity_mw", "base_load_mw", "import_limit_mw", "export_limit_mw"):
            _nonneg(f"{w}.{f}", getattr(self, f))
        if self.base_load_mw > self.it_capacity_mw:
            raise InstanceError(f"{w}.base_load_mw", "base load exceeds IT capacity")
        if self.inference_cap_mw is not None:
            _nonneg(f"{w}.inference_cap_mw", self.inference_cap_mw)
        self.battery.validate(f"{w}.battery")


@dataclass(frozen=True)
class InferenceClass:
    """An elastic inference class. ``latency_ms`` maps site → ms from the class's users; the class
    may be served at site s iff ``latency_ms[s] <= latency_limit_ms`` (A_k). ``energy_mwh`` e_k per
    unit,
    ``revenue`` ρ_k $ per unit."""

    name: str
    home_site: str
    energy_mwh: float
    revenue: float
    latency_ms: Mapping[str, float]
    latency_limit_ms: float
    #: :data:`PRIORITIES`: what not serving a unit costs in the window model (mpc.receding)
    priority: str = "critical"

    def feasible_sites(self, sites: list[str]) -> list[str]:
        return [s for s in sites if self.latency_ms.get(s, math.inf) <= self.latency_limit_ms]


@dataclass(frozen=True)
class Job:
    """A rigid training job: ``power_mw`` P_j for ``duration_h`` D_j consecutive hours at one site
    of ``eligible_sites``; may start in the ``release`` hour and must end by the end of the
    ``deadline`` hour (both UTC hour starts). ``value`` V_j $ earned when it runs. ``home_site`` is
    where the
    carbon-agnostic / energy-only baselines run it (default: first eligible site).

    Checkpointable jobs (``checkpointable``; an extension of the rigid family that leaves
    non-checkpointable jobs exactly as in the paper): a running job may be suspended and resumed
    later at the same site, at most ``max_suspensions`` times; each resume repeats the work since
    the last checkpoint (``lost_h`` hours) and costs ``restart_mwh`` of restart energy in its first
    hour. The receding horizon (:func:`mpc.receding.window_instance`) represents a running or
    suspended checkpointable job as a job of ``duration_h`` = work left + ``lost_h`` with
    ``resumed=True``; ``resume_site`` marks the site where it is running now: a start there in the
    window's first period *continues* it (``duration_h − lost_h`` hours, no restart energy)."""

    job_id: str
    power_mw: float
    duration_h: int
    release: pd.Timestamp
    deadline: pd.Timestamp
    value: float
    eligible_sites: tuple[str, ...]
    home_site: str | None = None
    mandatory: bool = True
    priority: str = "flexible"
    checkpointable: bool = False
    max_suspensions: int = 0
    lost_h: int = 1
    restart_mwh: float = 0.0
    resume_site: str | None = None
    resumed: bool = False

    @property
    def home(self) -> str:
        return self.home_site or self.eligible_sites[0]

    @property
    def latest_start(self) -> pd.Timestamp:
        return self.deadline - pd.Timedelta(hours=self.duration_h - 1)

    def continues(self, site: str, period: int) -> bool:
        """A start at ``(site, period)`` continues the run in progress (no restart)."""
        return self.resume_site == site and period == 0

    def hours_from(self, site: str, period: int) -> int:
        """Hours a start at ``(site, period)`` runs: the work left when it continues the run in
        progress, otherwise ``duration_h``."""
        return self.duration_h - self.lost_h if self.continues(site, period) else self.duration_h

    def restart_energy(self, site: str, period: int) -> float:
        """MWh of restart energy a start at ``(site, period)`` costs (a resume from a checkpoint)."""
        return self.restart_mwh if self.resumed and not self.continues(site, period) else 0.0


@dataclass(frozen=True)
class RunningJob:
    """A job already started (in a receding-horizon window): it occupies ``power_mw`` at ``site``
    for the next ``periods_left`` periods and cannot move or pause. Its value was earned when it
    started."""

    job_id: str
    site: str
    periods_left: int
    power_mw: float


@dataclass(frozen=True, eq=False)
class Signals:
    """Exogenous time series over one index (hour-start UTC).

    carbon (gCO2/kWh), price_import / price_export ($/MWh), generation (MW available), kappa
    (cooling overhead κ): one column per site. demand (units/h): one column per inference class.
    """

    carbon: pd.DataFrame
    price_import: pd.DataFrame
    price_export: pd.DataFrame
    generation: pd.DataFrame
    kappa: pd.DataFrame
    demand: pd.DataFrame

    @property
    def index(self) -> pd.DatetimeIndex:
        return self.carbon.index

    def frames(self) -> dict[str, pd.DataFrame]:
        return {n: getattr(self, n) for n in (*SITE_SIGNALS, *CLASS_SIGNALS)}

    def window(self, start: pd.Timestamp, hours: int) -> Signals:
        """The rows ``[start, start + hours)`` (fewer at the end of the data)."""
        i = self.index.get_loc(start)
        return Signals(**{n: f.iloc[i : i + hours] for n, f in self.frames().items()})

    def reindex(self, index: pd.DatetimeIndex) -> Signals:
        return Signals(**{n: f.reindex(index) for n, f in self.frames().items()})

    def validate(self, sites: list[str], classes: list[str]) -> None:
        idx = self.index
        if not isinstance(idx, pd.DatetimeIndex) or idx.tz is None or str(idx.tz) != "UTC":
            raise InstanceError("signals.carbon.index", "must be a tz-aware UTC DatetimeIndex")
        if len(idx) == 0:
            raise InstanceError("signals.carbon.index", "empty: no periods")
        if len(idx) > 1 and not (idx[1:] - idx[:-1] == pd.Timedelta(hours=1)).all():
            raise InstanceError("signals.carbon.index", "periods must be consecutive hours")
        if (idx != idx.floor("h")).any():
            raise InstanceError("signals.carbon.index", "periods must be hour starts")
        for name, f in self.frames().items():
            cols = classes if name in CLASS_SIGNALS else sites
            if len(f) != len(idx):
                raise InstanceError(
                    f"signals.{name}", f"has {len(f)} rows, expected {len(idx)} (one per period)"
                )
            if not f.index.equals(idx):
                raise InstanceError(f"signals.{name}.index", "differs from signals.carbon.index")
            missing = [c for c in cols if c not in f.columns]
            if missing:
                raise InstanceError(f"signals.{name}", f"missing columns {missing}")
            vals = f[cols]
            if vals.isna().any().any():
                raise InstanceError(f"signals.{name}", "contains NaN")
            if name not in ("price_import", "price_export") and (vals < 0).any().any():
                c = vals.columns[(vals < 0).any()][0]
                raise InstanceError(f"signals.{name}[{c}]", "negative values")


@dataclass(frozen=True, eq=False)
class GridConditions:
    """What the grid operator asked for, per period and site (:mod:`mpc.events` builds it from
    demand-response events): ``import_cap`` / ``export_cap`` MW (NaN: no event limit; the site's
    own ``import_limit_mw`` still holds) and ``stability`` (1: an emergency or flex alert — the
    window plans stability-first in that period, see :func:`mpc.model.define_stability`)."""

    import_cap: pd.DataFrame
    export_cap: pd.DataFrame
    stability: pd.DataFrame

    def frames(self) -> dict[str, pd.DataFrame]:
        return {
            "import_cap": self.import_cap,
            "export_cap": self.export_cap,
            "stability": self.stability,
        }

    def window(self, start: pd.Timestamp, hours: int) -> GridConditions:
        i = self.import_cap.index.get_loc(start)
        return GridConditions(**{n: f.iloc[i : i + hours] for n, f in self.frames().items()})

    @property
    def active(self) -> bool:
        return bool(
            self.import_cap.notna().any().any()
            or self.export_cap.notna().any().any()
            or (self.stability > 0).any().any()
        )

    def validate(self, index: pd.DatetimeIndex, sites: list[str]) -> None:
        for n, f in self.frames().items():
            if not f.index.equals(index) or any(s not in f.columns for s in sites):
                raise InstanceError(f"grid.{n}", "needs the signals' index and every site")
            v = f[sites]
            if n == "stability":
                if v.isna().any().any() or not v.isin([0, 1]).all().all():
                    raise InstanceError("grid.stability", "must be 0 or 1 everywhere")
            elif (v < 0).any().any():
                raise InstanceError(f"grid.{n}", "negative limit")


@dataclass(frozen=True, eq=False)
class Instance:
    """One optimisation problem: fleet + jobs + signals over ``signals.index`` + carbon settings.

    ``carbon_budget_t`` B (t CO2 over the horizon; ``None`` = no constraint (16)),
    ``carbon_price`` p_c ($/t), ``running`` jobs already started (receding horizon),
    ``soc_init_mwh`` overrides each battery's initial state (receding horizon), ``soc_target_mwh``
    the terminal lower bound (default: each battery's configured ``soc0``).
    """

    sites: tuple[Site, ...]
    classes: tuple[InferenceClass, ...]
    jobs: tuple[Job, ...]
    signals: Signals
    carbon_budget_t: float | None = None
    carbon_price: float = 0.0
    running: tuple[RunningJob, ...] = ()
    soc_init_mwh: Mapping[str, float] | None = None
    soc_target_mwh: Mapping[str, float] | None = None
    dt_h: float = 1.0
    name: str = "instance"
    #: intensity (g/kWh, one column per site) the carbon *budget* is planned against instead of
    #: ``signals.carbon`` (e.g. the forecast's p90: risk-aware planning); accounting stays on p50
    budget_carbon: pd.DataFrame | None = None
    #: demand-response limits and alerts (:class:`GridConditions`; None: none)
    grid: GridConditions | None = None

    def __post_init__(self) -> None:
        self.validate()

    # ---------------------------------------------------------------- convenience
    @property
    def index(self) -> pd.DatetimeIndex:
        return self.signals.index

    @property
    def site_names(self) -> list[str]:
        return [s.name for s in self.sites]

    @property
    def class_names(self) -> list[str]:
        return [k.name for k in self.classes]

    def site(self, name: str) -> Site:
        return next(s for s in self.sites if s.name == name)

    def soc_init(self, s: Site) -> float:
        if self.soc_init_mwh is not None and s.name in self.soc_init_mwh:
            return float(self.soc_init_mwh[s.name])
        return s.battery.soc0_mwh

    def soc_target(self, s: Site) -> float:
        if self.soc_target_mwh is not None and s.name in self.soc_target_mwh:
            return float(self.soc_target_mwh[s.name])
        return s.battery.soc0_mwh

    def period(self, ts: pd.Timestamp) -> int:
        """Period number of an hour-start timestamp (may be < 0 or >= H: outside the horizon)."""
        return int((ts - self.index[0]) // pd.Timedelta(hours=1))

    def replace(self, **changes) -> Instance:
        return replace(self, **changes)

    def fingerprint(self) -> str:
        """A hash of everything the model is built from (sites, classes, jobs, running jobs, battery
        states, carbon settings and every signal value rounded to 9 significant digits): two
        instances with the same fingerprint give the same plan. Lets a re-run of an hour tell
        "nothing changed" from "the inputs were revised"."""
        import hashlib
        import json
        from dataclasses import asdict

        def sig(f: pd.DataFrame) -> dict:
            vals = np.asarray(f.to_numpy(float), float)
            with np.errstate(divide="ignore", invalid="ignore"):
                rounded = [float(f"{v:.9g}") for v in vals.ravel()]
            return {"columns": [str(c) for c in f.columns], "values": rounded}

        doc = {
            "index": [t.isoformat() for t in self.index],
            "sites": [asdict(s) for s in self.sites],
            "classes": [_fingerprint_fields(k, {"priority": "critical"}) for k in self.classes],
            "jobs": [
                _fingerprint_fields(j, _JOB_FIELD_DEFAULTS)
                for j in sorted(self.jobs, key=lambda j: j.job_id)
            ],
            "running": [asdict(r) for r in sorted(self.running, key=lambda r: r.job_id)],
            "signals": {n: sig(f) for n, f in self.signals.frames().items()},
            "carbon_budget_t": self.carbon_budget_t,
            "carbon_price": self.carbon_price,
            "soc_init_mwh": dict(sorted((self.soc_init_mwh or {}).items())),
            "soc_target_mwh": dict(sorted((self.soc_target_mwh or {}).items())),
            "budget_carbon": None if self.budget_carbon is None else sig(self.budget_carbon),
        }
        if self.grid is not None and self.grid.active:  # absent otherwise: old hashes still hold
            doc["grid"] = {n: sig(f.fillna(-1.0)) for n, f in self.grid.frames().items()}
        text = json.dumps(doc, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    # ---------------------------------------------------------------- validation
    def validate(self) -> None:
        names = self.site_names
        if not names:
            raise InstanceError("sites", "no sites")
        if len(set(names)) != len(names):
            raise InstanceError("sites", "duplicate site names")
        for s in self.sites:
            s.validate()
        cnames = self.class_names
        if len(set(cnames)) != len(cnames):
            raise InstanceError("classes", "duplicate class names")
        for k in self.classes:
            w = f"classes[{k.name}]"
            if k.home_site not in names:
                raise InstanceError(f"{w}.home_site", f"unknown site {k.home_site!r}")
            _nonneg(f"{w}.energy_mwh", k.energy_mwh)
            _nonneg(f"{w}.revenue", k.revenue)
            _nonneg(f"{w}.latency_limit_ms", k.latency_limit_ms)
            if not k.feasible_sites(names):
                raise InstanceError(
                    f"{w}.latency_ms", f"no site within the latency limit {k.latency_limit_ms} ms"
                )
        self.signals.validate(names, cnames)
        ids = [j.job_id for j in self.jobs]
        if len(set(ids)) != len(ids):
            raise InstanceError("jobs", "duplicate job ids")
        for j in self.jobs:
            self._validate_job(j, names)
        for r in self.running:
            w = f"running[{r.job_id}]"
            if r.site not in names:
                raise InstanceError(f"{w}.site", f"unknown site {r.site!r}")
            if r.periods_left < 1:
                raise InstanceError(f"{w}.periods_left", "must be >= 1")
            _nonneg(f"{w}.power_mw", r.power_mw)
        if self.carbon_budget_t is not None:
            _nonneg("carbon_budget_t", self.carbon_budget_t)
        if self.budget_carbon is not None:
            bc = self.budget_carbon
            if not bc.index.equals(self.index) or any(s not in bc for s in names):
                raise InstanceError("budget_carbon", "needs the signals' index and every site")
            if bc[names].isna().any().any() or (bc[names] < 0).any().any():
                raise InstanceError("budget_carbon", "contains NaN or negative values")
        _nonneg("carbon_price", self.carbon_price)
        if self.grid is not None:
            self.grid.validate(self.index, names)
        for k in self.classes:
            if k.priority not in PRIORITIES:
                raise InstanceError(f"classes[{k.name}].priority", f"must be one of {PRIORITIES}")
        if self.dt_h != 1.0:
            raise InstanceError("dt_h", "only hourly periods (dt_h = 1) are supported")

    @staticmethod
    def _validate_job(j: Job, names: list[str]) -> None:
        w = f"jobs[{j.job_id}]"
        _nonneg(f"{w}.power_mw", j.power_mw)
        _nonneg(f"{w}.value", j.value)
        if not isinstance(j.duration_h, int) or j.duration_h < 1:
            raise InstanceError(f"{w}.duration_h", f"must be an integer >= 1, got {j.duration_h!r}")
        rel = _utc_hour(f"{w}.release", j.release)
        dl = _utc_hour(f"{w}.deadline", j.deadline)
        if dl < rel:
            raise InstanceError(f"{w}.deadline", f"deadline {dl} before release {rel}")
        window_h = int((dl - rel) / pd.Timedelta(hours=1)) + 1
        if j.duration_h > window_h:
            raise InstanceError(
                f"{w}.duration_h", f"job of {j.duration_h} h longer than its window of {window_h} h"
            )
        if not j.eligible_sites:
            raise InstanceError(f"{w}.eligible_sites", "empty")
        bad = [s for s in j.eligible_sites if s not in names]
        if bad:
            raise InstanceError(f"{w}.eligible_sites", f"unknown sites {bad}")
        if j.home_site is not None and j.home_site not in j.eligible_sites:
            raise InstanceError(f"{w}.home_site", f"{j.home_site!r} is not an eligible site")
        if j.priority not in PRIORITIES:
            raise InstanceError(f"{w}.priority", f"must be one of {PRIORITIES}, got {j.priority!r}")
        if j.checkpointable or j.resumed:
            if not isinstance(j.lost_h, int) or j.lost_h < 0:
                raise InstanceError(f"{w}.lost_h", f"must be an integer >= 0, got {j.lost_h!r}")
            if not isinstance(j.max_suspensions, int) or j.max_suspensions < 0:
                raise InstanceError(f"{w}.max_suspensions", "must be an integer >= 0")
            _nonneg(f"{w}.restart_mwh", j.restart_mwh)
        if j.resume_site is not None:
            if j.resume_site not in j.eligible_sites:
                raise InstanceError(f"{w}.resume_site", "must be an eligible site")
            if j.duration_h - j.lost_h < 1:
                raise InstanceError(f"{w}.duration_h", "a continued run needs at least 1 hour left")


def make_job(
    job_id: str,
    power_mw: float,
    duration_h: int,
    release,
    deadline,
    value: float,
    eligible_sites,
    home_site: str | None = None,
    mandatory: bool = True,
    **response,
) -> Job:
    """Build a :class:`Job`, coercing timestamps to UTC and sites to a tuple. ``response``: the
    grid-response fields (``priority``, ``checkpointable``, ``max_suspensions``, ``lost_h``,
    ``restart_mwh``)."""
    return Job(
        job_id,
        float(power_mw),
        int(duration_h),
        pd.Timestamp(release),
        pd.Timestamp(deadline),
        float(value),
        tuple(eligible_sites),
        home_site,
        mandatory,
        **response,
    )


#: the grid-response fields of a job and their defaults (a frame may carry them as columns)
JOB_RESPONSE_DEFAULTS = {
    "priority": "flexible",
    "checkpointable": False,
    "max_suspensions": 0,
    "lost_h": 1,
    "restart_mwh": 0.0,
}
_JOB_FIELD_DEFAULTS = {**JOB_RESPONSE_DEFAULTS, "resume_site": None, "resumed": False}
_CASTS = {
    "priority": str,
    "checkpointable": bool,
    "max_suspensions": int,
    "lost_h": int,
    "restart_mwh": float,
}


def _fingerprint_fields(obj, defaults: Mapping[str, object]) -> dict:
    """``asdict(obj)`` without the fields that hold their default (so hashes taken before those
    fields existed still match)."""
    from dataclasses import asdict

    d = asdict(obj)
    return {k: v for k, v in d.items() if k not in defaults or v != defaults[k]}


def jobs_from_frame(
    frame: pd.DataFrame,
    home_sites: Mapping[str, str] | None = None,
    response_defaults=None,
) -> tuple[Job, ...]:
    """Jobs from a ``sources.frames.JOB_COLUMNS`` frame (``job_id, power_mw, duration_h, release,
    deadline, value, eligible_sites``; optional ``home_site``, ``mandatory`` and the grid-response
    columns of :data:`JOB_RESPONSE_DEFAULTS`, a missing or null value taking
    ``response_defaults`` — a mapping, or a function of the job id such as the fleet's
    ``JobQueueCfg.response`` — or the built-in default)."""
    out = []
    for r in frame.itertuples(index=False):
        per_job = response_defaults(r.job_id) if callable(response_defaults) else response_defaults
        defaults = {**JOB_RESPONSE_DEFAULTS, **(per_job or {})}
        home = getattr(r, "home_site", None) or (home_sites or {}).get(r.job_id)
        mand = bool(getattr(r, "mandatory", True))
        response = {}
        for k, default in defaults.items():
            v = getattr(r, k, None)
            response[k] = _CASTS[k](
                default if v is None or (not isinstance(v, str) and pd.isna(v)) else v
            )
        out.append(
            make_job(
                r.job_id,
                r.power_mw,
                int(r.duration_h),
                r.release,
                r.deadline,
                r.value,
                list(r.eligible_sites),
                home,
                mand,
                **response,
            )
        )
    return tuple(out)
