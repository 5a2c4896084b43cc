"""Plots a person reads in the Dagster UI (PNG via matplotlib's Agg backend; no display needed)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def plan_figure(site_hours: pd.DataFrame, title: str):
    """Per site: IT load and grid import (MW), battery state of charge (MWh) and carbon intensity."""
    sites = list(dict.fromkeys(site_hours["site"]))
    fig, axes = plt.subplots(
        len(sites), 1, figsize=(9, 2.3 * len(sites)), sharex=True, squeeze=False
    )
    for ax, site in zip(axes[:, 0], sites, strict=True):
        d = site_hours[site_hours["site"] == site].sort_values("target_time")
        t = d["target_time"].dt.tz_convert("UTC").dt.tz_localize(None)
        ax.step(t, d["it_mw"], where="post", label="IT load MW", color="tab:blue")
        ax.step(t, d["import_mw"], where="post", label="grid import MW", color="tab:red")
        ax.step(
            t, d["gen_used_mw"], where="post", label="on-site gen MW", color="tab:green", alpha=0.7
        )
        ax.plot(t, d["soc_mwh"], label="battery SoC MWh", color="tab:purple", ls="--")
        ax.set_ylabel(site)
        ax2 = ax.twinx()
        ax2.plot(t, d["carbon_g_kwh"], color="grey", alpha=0.6, label="gCO2/kWh")
        ax2.set_ylabel("gCO2/kWh", color="grey")
    axes[0, 0].legend(loc="upper left", fontsize=7, ncol=4)
    axes[0, 0].set_title(title)
    fig.autofmt_xdate()
    return fig


def backtest_figure(hourly: pd.DataFrame, title: str):
    """Cumulative realised emissions per policy over the backtest (``hour, policy, emissions_t``)."""
    fig, ax = plt.subplots(figsize=(9, 3.5))
    for policy, d in hourly.groupby("policy"):
        d = d.sort_values("hour")
        ax.plot(d["hour"].dt.tz_localize(None), d["emissions_t"].cumsum(), label=policy)
    ax.set_ylabel("cumulative t CO2")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    return fig
