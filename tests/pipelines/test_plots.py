"""The plots a person reads: what the plan and fleet figures draw, checked on their artists."""

import io

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection

from pipelines.lib import plots

matplotlib.use("Agg")

T0 = pd.Timestamp("2026-01-27 04:00", tz="UTC")
H = pd.Timedelta(hours=1)
SITES = ["sanjose", "london"]


def plan_case():
    """2 sites, 6 hours; job-alpha runs 2 h at sanjose, job-with-a-very-long-identifier runs
    twice (t0..t0+1, t0+3..t0+4) at london; a carbon band for both sites."""
    hours = pd.date_range(T0, periods=6, freq="h")
    rows = []
    for k, s in enumerate(SITES):
        for i, t in enumerate(hours):
            rows.append(
                {
                    "plan_hour": T0,
                    "target_time": t,
                    "site": s,
                    "it_mw": 20.0 + 2 * i + k,
                    "import_mw": 15.0 + i - k,
                    "gen_available_mw": 6.0 + (i % 3),
                    "gen_used_mw": 5.0 + (i % 3),
                    "export_mw": 0.0,
                    "charge_mw": 3.0 if i in (1, 2) else 0.0,
                    "discharge_mw": 4.0 if i == 4 else 0.0,
                    "soc_mwh": [10, 13, 16, 16, 12, 12][i] + k,
                    "carbon_g_kwh": 200.0 + 30 * i - 50 * k,
                    "emissions_t": 0.003 * (15 + i),
                }
            )
    site_hours = pd.DataFrame(rows)
    long_id = "job-with-a-very-long-identifier"
    job_runs = pd.DataFrame(
        [
            {"target_time": T0 + 2 * H, "job_id": "job-alpha", "site": "sanjose", "power_mw": 8.0},
            {"target_time": T0 + 3 * H, "job_id": "job-alpha", "site": "sanjose", "power_mw": 8.0},
            *(
                {"target_time": T0 + h * H, "job_id": long_id, "site": "london", "power_mw": 5.0}
                for h in (0, 1, 3, 4)
            ),
        ]
    )
    band = site_hours[["target_time", "site", "carbon_g_kwh"]].rename(
        columns={"site": "series", "carbon_g_kwh": "p50"}
    )
    band = band.assign(p10=band.p50 - 40, p90=band.p50 + 60)
    agnostic = site_hours[["target_time", "site"]].assign(
        import_mw=site_hours.it_mw + 2 - site_hours.gen_used_mw
    )
    return site_hours, job_runs, band, agnostic


def fleet_case():
    hours = pd.date_range(T0, periods=5, freq="h")
    return pd.DataFrame(
        {
            "hour": hours,
            "emissions_t": [1.0, 2.0, 1.5, 0.5, 1.0],
            "agnostic_emissions_t": [1.2, 2.5, 1.5, 1.0, 1.3],
            "restated_site_hours": [2, 2, 1, 0, 0],
            "site_hours": [2, 2, 2, 2, 2],
        }
    )


def _texts(fig) -> list[str]:
    return [t.get_text() for a in fig.axes for t in a.texts]


def _legend_texts(fig) -> list[str]:
    legends = [*fig.legends, *(leg for sub in fig.subfigs for leg in sub.legends)]
    assert len(legends) == 1  # one legend for the figure
    return [t.get_text() for t in legends[0].get_texts()]


def _axes_by_label(fig, label):
    return [a for a in fig.axes if a.get_ylabel() == label]


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=60)
    return buf.getvalue()


def test_plan_figure_units_legend_and_draws():
    sh, jr, band, agn = plan_case()
    fig = plots.plan_figure(sh, "plan at 2026-01-27 04:00 UTC", jr, band, agn)
    ylabels = [a.get_ylabel() for a in fig.axes]
    for unit in ("(MW)", "(MWh)", "(gCO₂/kWh)"):
        assert sum(unit in y for y in ylabels) == len(SITES), (unit, ylabels)
    legend = _legend_texts(fig)
    for want in (
        "carbon, plan (p50)",
        "carbon forecast p10–p90",
        "grid import, carbon-agnostic",
        "grid import",
        "IT load",
        "on-site gen used",
        "on-site gen available",
        "battery charge (+) / discharge (−)",
        "battery SoC (end of hour)",
        "committed hour (t0)",
    ):
        assert want in legend, (want, legend)
    assert len(legend) == len(set(legend))  # one entry per series, not one per site
    assert "2026-01-27 04:00" in fig._suptitle.get_text()
    assert [s._suptitle.get_text() for s in fig.subfigs[1:]] == SITES  # [0]: title and legend
    assert _png(fig)[:8] == b"\x89PNG\r\n\x1a\n"


def test_plan_figure_power_lines_cover_every_hour():
    sh, jr, band, agn = plan_case()
    fig = plots.plan_figure(sh, "t", jr, band, agn)
    ax = _axes_by_label(fig, plots.POWER_LABEL)[0]  # sanjose
    line = next(ln for ln in ax.get_lines() if ln.get_label() == "grid import")
    x = matplotlib.dates.num2date(np.asarray(matplotlib.dates.date2num(line.get_xdata())))
    assert pd.Timestamp(x[-1]) == T0 + 6 * H  # the last hour is drawn to its end
    want = sh[sh.site == "sanjose"].import_mw.tolist()
    assert list(line.get_ydata()) == [*want, want[-1]]
    bars = [p for p in ax.patches if p.get_gid() == "battery"]
    heights = sorted(round(b.get_height(), 6) for b in bars if b.get_height() != 0)
    assert heights == [-4.0, 3.0, 3.0]  # charge +, discharge −


def test_plan_figure_one_gantt_bar_per_run_block_with_job_id():
    sh, jr, band, agn = plan_case()
    fig = plots.plan_figure(sh, "t", jr, band, agn)
    job_axes = _axes_by_label(fig, plots.JOBS_LABEL)
    assert len(job_axes) == len(SITES)
    bars = {
        site: [p for p in a.patches if (p.get_gid() or "").startswith("job:")]
        for site, a in zip(SITES, job_axes, strict=True)
    }
    assert len(bars["sanjose"]) == 1  # job-alpha: one block of 2 h
    assert len(bars["london"]) == 2  # the long job: two blocks
    spans = sorted(
        (matplotlib.dates.num2date(b.get_x()), round(b.get_width() * 24, 6)) for b in bars["london"]
    )
    assert [(pd.Timestamp(t), n) for t, n in spans] == [(T0, 2.0), (T0 + 3 * H, 2.0)]
    texts = [t.get_text() for a in job_axes for t in a.texts]
    assert sum("job-alpha" in t for t in texts) == 1
    long_texts = [t for t in texts if t.startswith("job-with-a-very")]
    assert len(long_texts) == 2 and all("…" in t for t in long_texts)
    assert not any("job-with-a-very-long-identifier" in t for t in texts)  # truncated


def test_plan_figure_committed_span_is_the_first_hour():
    sh, jr, band, agn = plan_case()
    fig = plots.plan_figure(sh, "t", jr, band, agn)
    assert _texts(fig).count(plots.COMMITTED) == len(SITES)
    for ax in fig.axes:
        spans = [p for p in ax.patches if p.get_gid() == plots.COMMITTED]
        assert len(spans) == 1, ax.get_ylabel()
        x0 = pd.Timestamp(matplotlib.dates.num2date(spans[0].get_x()))
        x1 = pd.Timestamp(matplotlib.dates.num2date(spans[0].get_x() + spans[0].get_width()))
        assert (x0, x1) == (T0, T0 + H)


def test_plan_figure_band_only_when_given():
    sh, jr, band, agn = plan_case()

    def bands(fig):
        return [
            c
            for a in _axes_by_label(fig, plots.CARBON_LABEL)
            for c in a.collections
            if isinstance(c, PolyCollection)
        ]

    with_band = plots.plan_figure(sh, "t", jr, band, agn)
    got = bands(with_band)
    assert len(got) == len(SITES)
    # the band spans p10..p90 of the hand-built forecast
    ys = np.concatenate([p.vertices[:, 1] for c in got for p in c.get_paths()])
    assert ys.min() == pytest.approx(band.p10.min()) and ys.max() == pytest.approx(band.p90.max())
    without = plots.plan_figure(sh, "t", jr, None, None)
    assert bands(without) == []
    legend = _legend_texts(without)
    assert "carbon forecast p10–p90" not in legend
    assert "grid import, carbon-agnostic" not in legend
    assert "carbon, plan (p50)" in legend
    # persistence forecasts carry no p10/p90: no band either
    no_q = plots.plan_figure(sh, "t", jr, band.assign(p10=np.nan, p90=np.nan), None)
    assert bands(no_q) == []
    _png(without)


def test_plan_figure_without_jobs_says_so():
    sh, _, band, _ = plan_case()
    fig = plots.plan_figure(sh, "t", None, band, None)
    job_axes = _axes_by_label(fig, plots.JOBS_LABEL)
    assert not [p for a in job_axes for p in a.patches if (p.get_gid() or "").startswith("job:")]
    assert _texts(fig).count("no training job planned here") == len(SITES)
    _png(fig)


def test_plan_figure_height_grows_with_sites():
    sh, jr, band, agn = plan_case()
    one = plots.plan_figure(sh[sh.site == "sanjose"], "t", jr, band, agn)
    two = plots.plan_figure(sh, "t", jr, band, agn)
    assert two.get_figheight() > 1.7 * one.get_figheight()


def test_fleet_figure_ends_at_the_hand_sums():
    hourly = fleet_case()
    fig = plots.fleet_figure(hourly)
    ax = fig.axes[0]
    assert ax.get_ylabel() == plots.FLEET_LABEL and "t CO₂" in ax.get_ylabel()
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    gf = lines["gridflex (realised where restated)"].get_ydata()
    ag = lines["carbon-agnostic"].get_ydata()
    assert gf[0] == 0 and ag[0] == 0
    assert gf[-1] == pytest.approx(6.0) and ag[-1] == pytest.approx(7.5)
    x = lines["carbon-agnostic"].get_xdata()
    assert pd.Timestamp(x[-1]) == pd.Timestamp("2026-01-27 09:00")  # the end of the last hour
    texts = [t.get_text() for t in ax.texts]
    assert sum(t.startswith("saved 1.50 t CO₂ (20.0 %)") for t in texts) == 1, texts
    assert "6.0 t" in texts and "7.5 t" in texts
    assert "5 of 10 site-hours re-stated on actuals" in ax.get_title()
    legend = {t.get_text() for t in ax.get_legend().get_texts()}
    assert legend >= {"carbon-agnostic", "saved"} and "extra" not in legend
    assert _png(fig)[:4] == b"\x89PNG"


def test_fleet_figure_extra_and_empty():
    hourly = fleet_case().assign(agnostic_emissions_t=[0.5, 1.0, 1.0, 0.5, 1.0])
    fig = plots.fleet_figure(hourly)
    assert any(t.get_text().startswith("extra 2.00 t CO₂ (50.0 %)") for t in fig.axes[0].texts)
    assert {t.get_text() for t in fig.axes[0].get_legend().get_texts()} >= {"extra"}
    empty = plots.fleet_figure(fleet_case().iloc[0:0])
    assert any("no committed hour" in t.get_text() for t in empty.axes[0].texts)
    _png(fig)
    _png(empty)


@pytest.fixture
def warehouse(tmp_path):
    from warehouse.db import Warehouse

    wh = Warehouse(tmp_path / "gf.duckdb")
    wh.ensure_schema()
    return wh


def _insert(wh, table, frame):
    with wh.writer() as con:
        con.register("f", frame)
        cols = ", ".join(frame.columns)
        con.execute(f"insert into {table} ({cols}) select {cols} from f")
        con.unregister("f")


def test_fleet_emissions_frame_uses_realised_where_restated(warehouse):
    hours = pd.date_range(T0, periods=3, freq="h")
    disp = pd.DataFrame(
        [
            {"hour": t, "site": s, "emissions_t": 1.0 + i + k}
            for i, t in enumerate(hours)
            for k, s in enumerate(SITES)
        ]
    )
    _insert(warehouse, "plans.dispatch", disp)
    # the counterfactual has the first two hours only; one site-hour re-stated on actuals
    agn = disp[disp.hour < hours[2]].assign(emissions_t=lambda d: d.emissions_t + 1)
    _insert(warehouse, "plans.agnostic", agn)
    real = pd.DataFrame(
        [{"hour": hours[1], "site": "london", "emissions_t": 10.0, "restated_at": T0}]
    )
    _insert(warehouse, "plans.dispatch_realised", real)
    f = plots.fleet_emissions_frame(warehouse)
    assert list(f.hour) == list(hours[:2])
    assert f.emissions_t.tolist() == [1 + 2, 2 + 10]
    assert f.agnostic_emissions_t.tolist() == [2 + 3, 3 + 4]
    assert f.restated_site_hours.tolist() == [0, 1]
    assert plots.fleet_emissions_frame(warehouse, until=hours[1]).hour.tolist() == [hours[0]]
    # the same hours and totals as the marts compare
    marts = warehouse.query(
        "select hour, compared_emissions_t em, agnostic_emissions_t a from marts.fleet_hourly "
        "where compared_sites > 0 order by hour"
    )
    assert marts.hour.tolist() == f.hour.tolist()
    assert marts.em.tolist() == f.emissions_t.tolist()
    assert marts.a.tolist() == f.agnostic_emissions_t.tolist()


def test_plan_plot_inputs_reads_the_plan_hour(warehouse):
    from pipelines.defs.resources import FleetResource

    fleet = FleetResource().load()
    sh, jr, band, _ = plan_case()
    _insert(warehouse, "plans.job_runs", jr.assign(plan_hour=T0))
    _insert(warehouse, "plans.job_runs", jr.assign(plan_hour=T0 - H))  # another plan
    fc = band.assign(issued_at=T0, model="m1")
    _insert(warehouse, "forecasts.carbon", fc)
    _insert(warehouse, "forecasts.carbon", fc.assign(model="m2", p10=0.0))
    _insert(
        warehouse,
        "plans.runs",
        pd.DataFrame(
            [
                {
                    "plan_hour": T0,
                    "horizon_h": 24,
                    "status": "optimal",
                    "forecast_policy": "carbon=m2; load=x",
                    "degraded": False,
                    "created_at": T0,
                }
            ]
        ),
    )
    agn = pd.DataFrame(
        [
            {"hour": T0, "site": "sanjose", "import_mw": 7.0},
            {"hour": T0 - H, "site": "sanjose", "import_mw": 9.0},
        ]
    )
    _insert(warehouse, "plans.agnostic", agn)
    got = plots.plan_plot_inputs(warehouse, fleet, T0)
    assert len(got["job_runs"]) == len(jr)
    assert set(got["carbon_band"].model) == {"m2"}  # the model the plan used
    assert len(got["carbon_band"]) == len(band)
    # no data to evaluate the agnostic policy on: the recorded counterfactual's overlap
    assert got["agnostic"].target_time.tolist() == [T0]
    assert got["agnostic"].import_mw.tolist() == [7.0]
    fig = plots.plan_figure(sh, "t", **got)
    assert "grid import, carbon-agnostic" in _legend_texts(fig)
    _png(fig)


def test_metadata_tables_show_numbers_a_person_reads():
    # the marts record showed the load model's MAE as 5.874e+04
    import pandas as pd

    from pipelines.defs.common import preview

    md = preview(
        pd.DataFrame(
            {"target": ["load", "carbon"], "mae": [58740.4, 40.6912], "cov": [0.0004, None]}
        )
    ).value
    assert "58,740" in md and "40.69" in md and "0.000400" in md and " - |" in md
    assert "-------:|" in md  # numbers right-aligned
    assert "e+" not in md and "e-" not in md
