"""Switches of the joint model (no Pyomo here, so the receding-horizon code imports cheaply)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

#: Constraint families that can be made elastic, with the paper's equation numbers.
FAMILIES = {
    "it_capacity": "(2) IT capacity it_st <= Cap_s",
    "balance": "(4) power balance",
    "assignment": "(8) mandatory job started exactly once inside its window",
    "inference": "(11) inference demand fully served within latency",
    "inference_capacity": "(12) per-site inference capacity",
    "terminal_soc": "(15) terminal state of charge soc_{s,H-1} >= soc_T",
    "carbon": "(16) carbon budget sum em <= B",
    "import_cap": "(5') grid operator's import capacity limit imp_st <= Icap_st",
}

#: Stability-first weights (see :func:`mpc.model.define_stability`): $ per MWh imported and $ per MW
#: of import ramp in a period under a grid emergency. They sit above any energy price plus carbon
#: cost (so import and ramping are minimised first) and below the penalty of an unmet operator limit
#: and of critical inference not served (so those still come first).
STABILITY_IMPORT_USD_PER_MWH = 2000.0
STABILITY_RAMP_USD_PER_MW = 500.0


@dataclass(frozen=True)
class ModelOptions:
    """Switches that turn the joint model into its variants (see :mod:`mpc.baselines`).

    carbon_budget   include (16)'s budget (no-carbon drops it)
    battery         batteries usable (no-battery: E_s = 0)
    routing         inference may be served at any s ∈ A_k (no-routing: home site only)
    local_generation  local generation usable (compute-only stage 1 ignores it)
    export          export allowed (compute-only stage 1: no export)
    relax_modes     True / False / "auto": LP-relax u_st and w_st (see module docstring)
    elastic         family -> penalty ($ per unit of slack) for families made elastic
    phase1          objective = minimise Σ slack (infeasibility diagnosis)
    fixed_starts    job -> (site, period) or None: fix the training workload
    fixed_routing   (class, site, period) -> units/h: fix the inference routing
    stability_weights  ($/MWh imported, $/MW ramped) in stability-first periods
    """

    carbon_budget: bool = True
    battery: bool = True
    routing: bool = True
    local_generation: bool = True
    export: bool = True
    relax_modes: bool | str = "auto"
    elastic: Mapping[str, float] = field(default_factory=dict)
    phase1: bool = False
    fixed_starts: Mapping[str, tuple[str, int] | None] | None = None
    fixed_routing: Mapping[tuple[str, str, int], float] | None = None
    stability_weights: tuple[float, float] = (
        STABILITY_IMPORT_USD_PER_MWH,
        STABILITY_RAMP_USD_PER_MW,
    )
