"""The carbon budget across receding-horizon windows: one policy for the hourly step, the closed-loop
simulator, the pipeline and the backtest.

A budget of ``b`` t CO2 per period (a UTC day by default, or one period covering a whole simulation)
is carried in :class:`mpc.receding.State` as what is left of the current period (``budget_left_t``)
and when that period ends (``budget_end``). Each window ``[t0, t0 + H)`` may plan on (the ``B`` of
constraint (16), :func:`mpc.model.define_c16_carbon`)::

    B_w = L_0 · min(1, n_0 / r_0)  +  Σ_{d ≥ 1} b · n_d / N

with ``L_0`` the budget left in the current period, ``r_0`` the hours left in it from ``t0``, ``n_0``
the window's hours in it, ``n_d`` the window's hours in the ``d``-th following period and ``N`` the
hours per period. A window that ends before midnight gets its pro-rata share of what is left today; a
window crossing midnight gets today's remainder *plus* the pro-rata share of tomorrow's budget for the
hours it plans tomorrow (before: nothing for them, so 57 of 168 windows of a week were planned above an
allocation that could not be met). The committed hour's emissions are spent from ``L_0``; a new period
starts with ``b``. An overrun within a period (a realised hour dirtier than planned) is carried: ``L_0``
may go negative, and the next windows of that day get nothing more (``max(0, L_0)``).

In the model the budget is hard where feasible: its slack costs :data:`PENALTY_OVER` $/t on top of the
carbon price, far above any job's value per tonne, so it is used only when the allocation cannot be
met, and then reported (t over, :class:`BudgetUse`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pandas as pd

HOUR = pd.Timedelta(hours=1)
#: $/t of carbon-budget slack (on top of the carbon price): only when the budget cannot be met
PENALTY_OVER = 5e3


@dataclass(frozen=True)
class BudgetUse:
    """What a plan did with its allocation: allocated and planned (t over the window), the slack it
    needed (t over), and the remainder of the period before the step."""

    allocated_t: float | None
    planned_t: float
    over_t: float
    period_left_t: float | None

    @property
    def exceeded(self) -> bool:
        return self.over_t > 1e-6


@dataclass(frozen=True)
class BudgetPolicy:
    """``per_period_t`` t CO2 per period of ``period`` (default: one UTC day, periods starting at
    midnight UTC), or ``None`` for no budget. ``BudgetPolicy.whole(b, start, end)``: one period."""

    per_period_t: float | None
    period: pd.Timedelta = pd.Timedelta(days=1)
    anchor: pd.Timestamp = pd.Timestamp("2000-01-01", tz="UTC")
    #: False: one budget for one period (a simulation's whole span); nothing after it is allocated
    renews: bool = True

    @classmethod
    def daily(cls, per_day_t: float | None) -> BudgetPolicy:
        return cls(per_day_t)

    @classmethod
    def whole(cls, total_t: float | None, start: pd.Timestamp, end: pd.Timestamp) -> BudgetPolicy:
        """One budget for ``[start, end)`` (a closed-loop simulation's whole period)."""
        return cls(
            total_t,
            period=pd.Timestamp(end) - pd.Timestamp(start),
            anchor=pd.Timestamp(start),
            renews=False,
        )

    @property
    def active(self) -> bool:
        return self.per_period_t is not None

    def period_end(self, t: pd.Timestamp) -> pd.Timestamp:
        """End (exclusive) of the period holding hour ``t``."""
        k = (pd.Timestamp(t) - self.anchor) // self.period
        return self.anchor + (k + 1) * self.period

    def refill(self, state):
        """The state with the current period's budget: unchanged inside a period, ``b`` at the start
        of a new one (or cleared when there is no budget)."""
        if not self.active:
            if state.budget_left_t is None and state.budget_end is None:
                return state
            return dataclasses.replace(state, budget_left_t=None, budget_end=None)
        current = state.budget_end is not None and state.budget_end > state.time
        if state.budget_left_t is not None and (current or not self.renews):
            return state
        return dataclasses.replace(
            state, budget_left_t=float(self.per_period_t), budget_end=self.period_end(state.time)
        )

    def allocation(self, state, index: pd.DatetimeIndex) -> float | None:
        """``B_w`` for the window ``index`` from ``state`` (refilled first): the equation above."""
        if not self.active:
            return None
        st = self.refill(state)
        t0 = pd.Timestamp(index[0])
        end0 = st.budget_end
        hours = pd.DatetimeIndex(index)
        n0 = int((hours < end0).sum())
        r0 = max(1.0, (end0 - t0) / HOUR)
        out = max(0.0, st.budget_left_t) * min(1.0, n0 / r0)
        if self.renews:
            per_h = self.per_period_t / (self.period / HOUR)
            out += per_h * int((hours >= end0).sum())
        return float(out)

    def spend(self, state, emissions_t: float):
        """The period's remainder after the committed hour's emissions."""
        if not self.active or state.budget_left_t is None:
            return state
        return dataclasses.replace(state, budget_left_t=state.budget_left_t - float(emissions_t))


NO_BUDGET = BudgetPolicy(None)
